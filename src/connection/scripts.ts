import { readdirSync, readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** A script argument as ioredis accepts it. */
export type ScriptArg = string | Buffer | number;

type ScriptCommand = (numberOfKeys: number, ...args: ScriptArg[]) => Promise<unknown>;

const LUA_DIR = new URL('../lua/', import.meta.url);

function luaFiles(dir: URL): Map<string, string> {
  return new Map(
    readdirSync(dir)
      .filter((file) => file.endsWith('.lua'))
      .map((file) => [file.slice(0, -'.lua'.length), readFileSync(new URL(file, dir), 'utf8')]),
  );
}

/** Shared Lua functions, one per file of src/lua/lib named as the function. */
const library = luaFiles(new URL('lib/', LUA_DIR));

/**
 * Every script under src/lua, one per operation, by file name without `.lua`, with the
 * library functions it calls prepended (Redis scripts cannot import one another).
 */
const sources = new Map<string, string>(
  [...luaFiles(LUA_DIR)].map(([name, lua]) => {
    const used = [...library].filter(([fn]) => new RegExp(`\\b${fn}\\(`, 'u').test(lua));
    return [name, [...used.map(([, code]) => code), lua].join('\n')];
  }),
);

function commandName(name: string): string {
  return `sluice_${name}`;
}

/**
 * Registers every script with ioredis `defineCommand`, which sends EVALSHA and falls
 * back to EVAL on NOSCRIPT (after a restart or SCRIPT FLUSH).
 */
export function registerScripts(redis: Redis): void {
  for (const [name, lua] of sources) redis.defineCommand(commandName(name), { lua });
}

/** Runs a registered script: `name` is a file of src/lua without `.lua`. */
export function runScript(
  redis: Redis,
  name: string,
  keys: readonly string[],
  args: readonly ScriptArg[],
): Promise<unknown> {
  return call(redis, commandName(name), name, keys, args);
}

/** As {@link runScript}, with bulk strings in the reply as Buffers (for message bodies). */
export function runScriptBuffer(
  redis: Redis,
  name: string,
  keys: readonly string[],
  args: readonly ScriptArg[],
): Promise<unknown> {
  return call(redis, `${commandName(name)}Buffer`, name, keys, args);
}

function call(
  redis: Redis,
  method: string,
  name: string,
  keys: readonly string[],
  args: readonly ScriptArg[],
): Promise<unknown> {
  const command = (redis as unknown as Record<string, ScriptCommand | undefined>)[method];
  if (command === undefined || !sources.has(name)) {
    return Promise.reject(new Error(`script ${name} is not registered`));
  }
  return command.call(redis, keys.length, ...keys, ...args);
}
