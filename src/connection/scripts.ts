import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** The Lua scripts under src/lua, one per operation. */
export type ScriptName =
  | 'ack'
  | 'bind'
  | 'declare'
  | 'delete_exchange'
  | 'delete_queue'
  | 'publish'
  | 'purge'
  | 'requeue'
  | 'unbind';

const SCRIPT_NAMES: readonly ScriptName[] = [
  'ack',
  'bind',
  'declare',
  'delete_exchange',
  'delete_queue',
  'publish',
  'purge',
  'requeue',
  'unbind',
];

/** A script argument as ioredis accepts it. */
export type ScriptArg = string | Buffer | number;

type ScriptCommand = (numberOfKeys: number, ...args: ScriptArg[]) => Promise<unknown>;

const sources = new Map<ScriptName, string>(
  SCRIPT_NAMES.map((name) => [
    name,
    readFileSync(new URL(`../lua/${name}.lua`, import.meta.url), 'utf8'),
  ]),
);

function commandName(name: ScriptName): string {
  return `sluice_${name}`;
}

/**
 * Registers every script with ioredis `defineCommand`, which sends EVALSHA and falls
 * back to EVAL on NOSCRIPT (after a restart or SCRIPT FLUSH).
 */
export function registerScripts(redis: Redis): void {
  for (const [name, lua] of sources) redis.defineCommand(commandName(name), { lua });
}

/** Runs a registered script. */
export function runScript(
  redis: Redis,
  name: ScriptName,
  keys: readonly string[],
  args: readonly ScriptArg[],
): Promise<unknown> {
  const command = (redis as unknown as Record<string, ScriptCommand>)[commandName(name)];
  if (command === undefined) throw new Error(`script ${name} is not registered`);
  return command.call(redis, keys.length, ...keys, ...args);
}
