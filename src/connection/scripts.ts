import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { RedisClient } from './client.js';
import { Field } from '../message/fields.js';

/** A script argument as ioredis accepts it. */
export type ScriptArg = string | Buffer | number;

/** `name...` in a descriptor stands for any number of values (KEYS or ARGV) at that place. */
type BaseName<S extends string> = S extends `${infer Base}...` ? Base : S;
type Slot<S extends string, V> = S extends `${string}...` ? readonly V[] : V;
type Named<N extends string, V> = { readonly [S in N as BaseName<S>]: Slot<S, V> };

/**
 * One Lua script of src/lua: the names of its KEYS and ARGV in order, exactly as its header
 * lists them (a unit test compares the two), and the decoder of its reply. A call passes keys
 * and arguments by name, so it cannot pass them in the wrong order, and gets a typed result.
 */
export interface Script<K extends string, A extends string, R> {
  /** File of src/lua without `.lua`. */
  readonly file: string;
  readonly keys: readonly K[];
  readonly args: readonly A[];
  /** Bulk strings in the reply as Buffers (for message bodies) instead of strings. */
  readonly buffers: boolean;
  /**
   * True for the one script whose keys may span hash slots, on a standalone server only: the
   * publish of one tick to several queues, which is atomic there. Every other call's keys
   * share one slot, on any server.
   */
  readonly crossSlotOnStandalone: boolean;
  readonly decode: (reply: unknown) => R;
}

/** The keys of a call of `script`, by name. */
export type ScriptKeys<S> = S extends Script<infer K, string, unknown> ? Named<K, string> : never;
/** The arguments of a call of `script`, by name. */
export type ScriptArgs<S> =
  S extends Script<string, infer A, unknown> ? Named<A, ScriptArg> : never;

/** Declares a script; see {@link Script}. */
export function defineScript<
  const K extends readonly string[],
  const A extends readonly string[],
  R,
>(spec: {
  readonly file: string;
  readonly keys: K;
  readonly args: A;
  readonly buffers?: boolean;
  readonly crossSlotOnStandalone?: boolean;
  readonly decode: (reply: unknown) => R;
}): Script<K[number], A[number], R> {
  return {
    file: spec.file,
    keys: spec.keys,
    args: spec.args,
    buffers: spec.buffers ?? false,
    crossSlotOnStandalone: spec.crossSlotOnStandalone ?? false,
    decode: spec.decode,
  };
}

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

/** The field-name table as the Lua table `F`, for scripts that read or write entry fields. */
const FIELD_TABLE = `local F = {${Object.entries(Field)
  .map(([name, value]) => `${name} = '${value}'`)
  .join(', ')}}`;

/** The text of every Lua file of src/lua, headers included, by file name without `.lua`. */
export const luaSources: ReadonlyMap<string, string> = luaFiles(LUA_DIR);

/**
 * What Redis runs for each script: the library functions it calls and, when it or they use
 * field names, the table `F`, before its own text (Redis scripts cannot import one another).
 */
export const scriptBodies: ReadonlyMap<string, string> = new Map(
  [...luaSources].map(([name, lua]) => {
    const used = [...library].filter(([fn]) => new RegExp(`\\b${fn}\\(`, 'u').test(lua));
    const parts = [...used.map(([, code]) => code), lua];
    if (parts.some((part) => /\bF\./u.test(part))) parts.unshift(FIELD_TABLE);
    return [name, parts.join('\n')];
  }),
);

/** The scripts by the SHA1 of what Redis runs, to read a failed line back (see commandOnLine). */
const bodiesBySha: ReadonlyMap<string, string> = new Map(
  [...scriptBodies.values()].map((body) => [createHash('sha1').update(body).digest('hex'), body]),
);

/**
 * The Redis command that line `line` of the script with SHA1 `sha` calls, as an error
 * reply of Redis points at it; undefined when that line calls none.
 */
export function commandOnLine(sha: string, line: number): string | undefined {
  const text = bodiesBySha.get(sha)?.split('\n')[line - 1];
  const call = text === undefined ? null : /redis\.p?call\(\s*'([A-Za-z]+)'/u.exec(text);
  return call === null ? undefined : (call[1] as string).toLowerCase();
}

function commandName(file: string): string {
  return `sluice_${file}`;
}

/**
 * Registers every script with ioredis `defineCommand`, which sends EVALSHA and falls
 * back to EVAL on NOSCRIPT (after a restart or SCRIPT FLUSH).
 */
export function registerScripts(redis: RedisClient): void {
  for (const [name, lua] of scriptBodies) redis.defineCommand(commandName(name), { lua });
}

/** A script's ioredis method, given its numberOfKeys, KEYS and ARGV as one array. */
type ScriptCommand = (this: RedisClient, argv: readonly ScriptArg[]) => Promise<unknown>;

/** What a call of a script needs, worked out once per script rather than per call. */
interface Compiled {
  /** The ioredis method: `sluice_<file>`, or its `Buffer` variant. */
  readonly method: string;
  /** KEYS then ARGV names (without `...`), and whether each stands for many values. */
  readonly keyNames: readonly string[];
  readonly keyMany: readonly boolean[];
  readonly argNames: readonly string[];
  readonly argMany: readonly boolean[];
}

const compiledScripts = new WeakMap<object, Compiled>();

function compile(script: Script<string, string, unknown>): Compiled {
  let compiled = compiledScripts.get(script);
  if (compiled === undefined) {
    if (!scriptBodies.has(script.file)) throw new Error(`script ${script.file} is not registered`);
    const base = (name: string): string => (name.endsWith('...') ? name.slice(0, -3) : name);
    compiled = {
      method: `${commandName(script.file)}${script.buffers ? 'Buffer' : ''}`,
      keyNames: script.keys.map(base),
      keyMany: script.keys.map((name) => name.endsWith('...')),
      argNames: script.args.map(base),
      argMany: script.args.map((name) => name.endsWith('...')),
    };
    compiledScripts.set(script, compiled);
  }
  return compiled;
}

/** Appends the values of `names` from `values` to `out`, many-valued ones spread out. */
function append(
  out: ScriptArg[],
  names: readonly string[],
  many: readonly boolean[],
  values: Readonly<Record<string, unknown>>,
): void {
  for (let i = 0; i < names.length; i++) {
    const value = values[names[i] as string];
    if (many[i] === true) {
      const list = value as readonly ScriptArg[];
      for (let j = 0; j < list.length; j++) out.push(list[j] as ScriptArg);
    } else {
      out.push(value as ScriptArg);
    }
  }
}

/** Runs a registered script with its keys and arguments by name; resolves with its decoded reply. */
export function callScript<K extends string, A extends string, R>(
  redis: RedisClient,
  script: Script<K, A, R>,
  keys: Named<K, string>,
  args: Named<A, ScriptArg>,
): Promise<R> {
  // Every failure, a synchronous one too, is a rejection (as from an async function).
  try {
    const compiled = compile(script);
    const command = (redis as unknown as Record<string, ScriptCommand | undefined>)[
      compiled.method
    ];
    if (command === undefined) throw new Error(`script ${script.file} is not registered`);
    // numberOfKeys, KEYS, ARGV: one array, built in place.
    const argv: ScriptArg[] = [0];
    append(argv, compiled.keyNames, compiled.keyMany, keys);
    argv[0] = argv.length - 1;
    append(argv, compiled.argNames, compiled.argMany, args);
    // As one array argument (ioredis flattens it), not spread: a call of an atomic batch has
    // ~10 arguments per message, past what a spread call's stack takes at 10,000 messages.
    return command.call(redis, argv).then(script.decode);
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}
