#!/usr/bin/env node
/**
 * The `sluice` command line: topology, queues, messages and dead-letter queues of one
 * namespace, and the dashboard. Every command is documented in docs/operations.md.
 */
import { createRequire } from 'node:module';
import { Command, CommanderError, Option } from 'commander';
import { SluiceError } from '../errors/index.js';
import { registerDashboard } from './commands/dashboard.js';
import { registerDlq } from './commands/dlq.js';
import { registerPublish } from './commands/publish.js';
import { registerQueue } from './commands/queue.js';
import { registerQueues, registerTopology } from './commands/topology.js';
import { nameOf, redisUrl, serverList, stopOutput } from './context.js';
import { EXIT, EXIT_CODES_HELP, RefusedError, UsageError } from './exit-codes.js';

/** The package's own manifest: dist/cli/main.js and src/cli/main.ts both sit two folders down. */
const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

function buildProgram(): Command {
  const program = new Command('sluice')
    .description('Command line for sluice: RabbitMQ semantics on Redis Streams')
    .version(version, '-V, --version')
    // Set before the commands are added: each inherits it, so that a usage error anywhere
    // reaches main() as a CommanderError instead of ending the process with commander's code.
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .addOption(
      new Option('--url <url>', 'Redis URL')
        .env('SLUICE_URL')
        .default('redis://127.0.0.1:6379')
        .argParser(redisUrl),
    )
    .addOption(
      new Option('--cluster <host:port,...>', 'Redis Cluster seed nodes, instead of --url')
        .env('SLUICE_CLUSTER')
        .argParser(serverList),
    )
    .addOption(
      new Option(
        '--sentinels <host:port,...>',
        'Sentinels, instead of --url (with --sentinel-name)',
      )
        .env('SLUICE_SENTINELS')
        .argParser(serverList),
    )
    .addOption(
      new Option('--sentinel-name <name>', 'the primary the Sentinels monitor').env(
        'SLUICE_SENTINEL_NAME',
      ),
    )
    .addOption(
      new Option(
        '--username <user>',
        'ACL user for --cluster or --sentinels (a URL carries its own); password: SLUICE_PASSWORD',
      ).env('SLUICE_USERNAME'),
    )
    .addOption(
      new Option('--namespace <namespace>', 'sluice namespace (prefix of every key)')
        .env('SLUICE_NAMESPACE')
        .default('sluice')
        .argParser(nameOf('namespace')),
    )
    .addHelpText('afterAll', EXIT_CODES_HELP);
  registerTopology(program);
  registerQueues(program);
  registerQueue(program);
  registerPublish(program);
  registerDlq(program);
  registerDashboard(program);
  return program;
}

/**
 * A sluice error's exit code: a value sluice refused before sending anything (a name, a count, a
 * stream id) is a wrong call, as a value the command itself cannot parse is.
 */
function sluiceErrorExit(error: SluiceError): number {
  if (error.code === 'NOT_FOUND') return EXIT.notFound;
  if (error.code === 'INVALID_ARGUMENT') return EXIT.usage;
  return EXIT.error;
}

/** The exit code and the line to print for an error that ended a command. */
function failure(error: unknown): { code: number; line?: string } {
  // Commander printed its own message already (or the help, or the version: exit code 0).
  if (error instanceof CommanderError) return { code: error.exitCode === 0 ? EXIT.ok : EXIT.usage };
  if (error instanceof UsageError) return { code: EXIT.usage, line: `error: ${error.message}` };
  if (error instanceof RefusedError) return { code: EXIT.refused, line: error.message };
  if (error instanceof SluiceError) {
    return { code: sluiceErrorExit(error), line: `error: ${error.code}: ${error.message}` };
  }
  return {
    code: EXIT.error,
    line: `error: ${error instanceof Error ? error.message : String(error)}`,
  };
}

/** Runs the command line; whatever ends a command becomes one line on stderr and an exit code. */
async function main(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync([...argv]);
  } catch (error) {
    const { code, line } = failure(error);
    if (line !== undefined) console.error(line);
    process.exitCode = code;
  }
}

// A reader that stops early (`sluice dlq list q | head`) closes the pipe: what the command still
// has to print goes nowhere, and the command ends as it would have (its work done, its exit
// code), as any Unix filter does, instead of with an unhandled 'error' event.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') {
    stopOutput();
    return;
  }
  console.error(`error: writing the output: ${error.message}`);
  process.exitCode = EXIT.error;
  stopOutput();
});

await main(process.argv);
