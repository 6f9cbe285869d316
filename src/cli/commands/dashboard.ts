import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { InvalidArgumentError as CommanderArgumentError, type Command } from 'commander';
import { startDashboard } from '../../dashboard/server.js';
import { print, withSluice } from '../context.js';

/** The options of `dashboard` as commander parses them. */
interface DashboardFlags {
  readonly port: number;
  readonly host: string;
  readonly readOnly?: true;
  readonly token?: string;
  readonly allowHost: string[];
}

/** Parses `--port`: 0 (any free port) to 65535. */
function port(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/u.test(value) || parsed > 65_535)
    throw new CommanderArgumentError('expected a port, 0 to 65535');
  return parsed;
}

/** Parses `--token`: at least 16 characters, so that it cannot be guessed in a few tries. */
function token(value: string): string {
  if (value.length < 16) throw new CommanderArgumentError('expected at least 16 characters');
  return value;
}

/** Collects `--allow-host` names, one per use of the option. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `sluice dashboard`: serves the web dashboard until interrupted. */
export function registerDashboard(program: Command): void {
  program
    .command('dashboard')
    .description('serve the web dashboard: overview, bindings graph, queues, dead-letter browser')
    .option('--port <port>', 'port to listen on (0: any free port)', port, 15672)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--read-only', 'hide write actions and refuse them (403)')
    .option('--token <token>', 'token that write actions must carry (default: a random one)', token)
    .option(
      '--allow-host <name>',
      'a host name the dashboard is reached by, besides IP addresses and localhost (repeatable)',
      collect,
      [],
    )
    .addHelpText(
      'after',
      `
Write actions (replay, purge) need the token in the x-sluice-token header; the
URL printed at the start carries it for the browser (?token=…), which keeps it
for the tab. Listens on 127.0.0.1 unless --host says otherwise. Requests for
any other host name than an IP address, localhost, --host or an --allow-host
are refused (403), against DNS rebinding. Stops on SIGINT or SIGTERM.`,
    )
    .action(async (flags: DashboardFlags) => {
      await withSluice(program, async (sluice) => {
        const writeToken = flags.token ?? randomBytes(18).toString('base64url');
        const dashboard = await startDashboard({
          sluice,
          host: flags.host,
          port: flags.port,
          readOnly: flags.readOnly === true,
          token: writeToken,
          allowedHosts: flags.allowHost,
        });
        print(
          flags.readOnly === true
            ? `dashboard (read-only) at ${dashboard.url}`
            : `dashboard at ${dashboard.url}?token=${encodeURIComponent(writeToken)}`,
        );
        await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
        await dashboard.close();
      });
    });
}
