import { InvalidArgumentError as CommanderArgumentError, type Command } from 'commander';
import { SluiceError } from '../errors/index.js';
import type { ServerAddress } from '../connection/source.js';
import { Sluice, type ConnectOptions } from '../sluice.js';
import { validateName } from '../validation/index.js';
import { UsageError } from './exit-codes.js';

/** The options every command takes: where Redis is, as whom, and which namespace. */
export interface GlobalOptions {
  readonly url: string;
  readonly cluster?: ServerAddress[];
  readonly sentinels?: ServerAddress[];
  readonly sentinelName?: string;
  readonly username?: string;
  readonly namespace: string;
}

/** The `--json` flag of read commands, as commander parses it. */
export interface JsonFlag {
  readonly json?: true;
}

/** How long the CLI waits to connect: a wrong URL fails fast instead of hanging. */
const CONNECT_TIMEOUT_MS = 5000;

/** False once standard output broke (its reader went away): the rest of the output is dropped. */
let outputOpen = true;

/** Drops whatever the command prints from now on (standard output is gone). */
export function stopOutput(): void {
  outputOpen = false;
}

/** Writes one line of a command's output to standard output. */
export function print(line: string): void {
  if (outputOpen) process.stdout.write(`${line}\n`);
}

/** Parses a positive integer option (`--count 5`); anything else is a usage error. */
export function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/u.test(value) || !Number.isSafeInteger(parsed) || parsed < 1)
    throw new CommanderArgumentError('expected a positive integer');
  return parsed;
}

/**
 * A parser that checks a name (queue, namespace) as sluice would, so that a bad one is a usage
 * error (exit 2) found before connecting.
 */
export function nameOf(kind: string): (value: string) => string {
  return (value) => {
    try {
      validateName(kind, value);
    } catch (error) {
      if (error instanceof SluiceError) throw new CommanderArgumentError(error.message);
      throw error;
    }
    return value;
  };
}

/** Parses `--url`: a redis:// or rediss:// URL. */
export function redisUrl(value: string): string {
  if (!URL.canParse(value) || !/^rediss?:$/u.test(new URL(value).protocol))
    throw new CommanderArgumentError('expected a redis:// or rediss:// URL');
  return value;
}

/** Parses `--cluster` and `--sentinels`: `host:port` servers, separated by commas. */
export function serverList(value: string): ServerAddress[] {
  return value.split(',').map((part) => {
    const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/u.exec(part.trim());
    const port = Number(match?.[2]);
    if (match?.[1] === undefined || port < 1 || port > 65_535)
      throw new CommanderArgumentError(`expected host:port[,host:port...], not '${part}'`);
    return { host: match[1].replace(/^\[|\]$/gu, ''), port };
  });
}

/** Where a global option's value came from: a flag, a variable, its default, or nowhere. */
function sourceOf(program: Command, option: string): 'cli' | 'env' | undefined {
  const source: string | undefined = program.getOptionValueSource(option);
  if (source === 'cli') return 'cli';
  return source === 'env' ? 'env' : undefined;
}

/**
 * Where the global options say Redis is: a Cluster's seed nodes, the Sentinels of a primary,
 * else the URL; with the ACL user and `SLUICE_PASSWORD`, when given, for the data servers.
 */
function location(program: Command): ConnectOptions {
  const options = program.opts<GlobalOptions>();
  const { cluster, sentinels, sentinelName, username } = options;
  const password = process.env.SLUICE_PASSWORD;
  // Each place Redis may be given, with where it came from; a flag wins over a variable.
  const forms = [
    { name: '--cluster', variable: 'SLUICE_CLUSTER', source: sourceOf(program, 'cluster') },
    { name: '--sentinels', variable: 'SLUICE_SENTINELS', source: sourceOf(program, 'sentinels') },
    { name: '--url', variable: 'SLUICE_URL', source: sourceOf(program, 'url') },
  ];
  const byFlag = forms.filter((form) => form.source === 'cli');
  const chosen = byFlag.length > 0 ? byFlag : forms.filter((form) => form.source === 'env');
  if (chosen.length > 1) {
    const names = chosen.map((form) => (form.source === 'cli' ? form.name : form.variable));
    throw new UsageError(`give one of --url, --cluster, --sentinels, not ${names.join(' and ')}`);
  }
  const where = chosen[0]?.name ?? '--url';
  if (where === '--sentinels' && sentinelName === undefined)
    throw new UsageError('--sentinels and --sentinel-name go together');
  const credentials = {
    ...(username === undefined ? {} : { username }),
    ...(password === undefined || password === '' ? {} : { password }),
  };
  const common = { namespace: options.namespace, connectTimeoutMs: CONNECT_TIMEOUT_MS };
  if (where === '--cluster' && cluster !== undefined) return { cluster, ...credentials, ...common };
  if (where === '--sentinels' && sentinels !== undefined && sentinelName !== undefined)
    return { sentinels, name: sentinelName, ...credentials, ...common };
  if (Object.keys(credentials).length > 0)
    throw new UsageError(
      '--username and SLUICE_PASSWORD go with --cluster or --sentinels: a URL carries its user and password',
    );
  return { url: options.url, ...common };
}

/** Runs `action` with a client connected as the global options say, closing it afterwards. */
export async function withSluice<R>(
  program: Command,
  action: (sluice: Sluice) => Promise<R>,
): Promise<R> {
  const sluice = await Sluice.connect(location(program));
  try {
    return await action(sluice);
  } finally {
    await sluice.close();
  }
}
