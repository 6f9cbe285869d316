import { InvalidArgumentError as CommanderArgumentError, type Command } from 'commander';
import { SluiceError } from '../errors/index.js';
import { Sluice } from '../sluice.js';
import { validateName } from '../validation/index.js';

/** The options every command takes: where Redis is and which namespace. */
export interface GlobalOptions {
  readonly url: string;
  readonly namespace: string;
}

/** The `--json` flag of read commands, as commander parses it. */
export interface JsonFlag {
  readonly json?: true;
}

/** How long the CLI waits to connect: a wrong URL fails fast instead of hanging. */
const CONNECT_TIMEOUT_MS = 5000;

/** Writes one line of a command's output to standard output. */
export function print(line: string): void {
  process.stdout.write(`${line}\n`);
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

/** Runs `action` with a client connected as the global options say, closing it afterwards. */
export async function withSluice<R>(
  program: Command,
  action: (sluice: Sluice) => Promise<R>,
): Promise<R> {
  const { url, namespace } = program.opts<GlobalOptions>();
  const sluice = await Sluice.connect({ url, namespace, connectTimeoutMs: CONNECT_TIMEOUT_MS });
  try {
    return await action(sluice);
  } finally {
    await sluice.close();
  }
}
