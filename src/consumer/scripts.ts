/**
 * The consumer's Lua scripts, one typed function each: keys from the key schema and named
 * arguments in, a decoded reply out. Every call fails only with a SluiceError, within
 * {@link SETTLEMENT_TIMEOUT_MS}. The ARGV order lives here and in each script's header only.
 */
import type { Redis } from 'ioredis';
import { toSluiceError } from '../connection/connection.js';
import { runScript, runScriptBuffer, type ScriptArg } from '../connection/scripts.js';
import type { DeathReason } from '../dead-letter/death.js';
import { CONSUMER_GROUP, type QueueKeys } from '../keys/index.js';
import { SETTLEMENT_TIMEOUT_MS, deadlineError, withDeadline } from './deadline.js';

function run(
  redis: Redis,
  name: string,
  keys: readonly string[],
  args: readonly ScriptArg[],
  replies: 'text' | 'buffers' = 'text',
): Promise<unknown> {
  const what = `${name} on ${keys[0] ?? ''}`;
  const call = (replies === 'buffers' ? runScriptBuffer : runScript)(redis, name, keys, args);
  return withDeadline(
    call.catch((error: unknown) => {
      throw toSluiceError(error, redis, what);
    }),
    SETTLEMENT_TIMEOUT_MS,
    () => deadlineError(redis, what, SETTLEMENT_TIMEOUT_MS),
  );
}

/** Arguments of {@link ackOwned}. */
export interface AckArgs {
  readonly consumer: string;
  /** Lowest and highest of `ids`, as stream ids compare. */
  readonly lowestId: string;
  readonly highestId: string;
  /** Most entries the consumer may hold in that range (bounds the script's XPENDING). */
  readonly limit: number;
  readonly ids: readonly string[];
}

/** ack.lua: acks and deletes the entries `consumer` owns; `true` when all were, else per id. */
export async function ackOwned(
  redis: Redis,
  keys: Pick<QueueKeys, 'stream'>,
  args: AckArgs,
): Promise<true | boolean[]> {
  const reply = (await run(
    redis,
    'ack',
    [keys.stream],
    [CONSUMER_GROUP, args.consumer, args.lowestId, args.highestId, args.limit, ...args.ids],
  )) as 1 | number[];
  return reply === 1 ? true : reply.map((acked) => acked === 1);
}

/** dead_letter.lua: moves owned entries to the queue's outbox; per id, whether it was moved. */
export async function deadLetterOwned(
  redis: Redis,
  keys: Pick<QueueKeys, 'stream' | 'deadLetters'>,
  args: {
    readonly consumer: string;
    readonly reason: DeathReason;
    readonly timeMs: number;
    readonly ids: readonly string[];
  },
): Promise<boolean[]> {
  const reply = (await run(
    redis,
    'dead_letter',
    [keys.stream, keys.deadLetters],
    [CONSUMER_GROUP, args.consumer, args.reason, args.timeMs, ...args.ids],
  )) as number[];
  return reply.map((moved) => moved === 1);
}

/**
 * requeue.lua: gives an owned entry back, at the tail now (`dueAtMs` 0) or parked in the
 * delayed set until `dueAtMs`; `counted` raises its delivery count. False if not owned.
 */
export async function requeueOwned(
  redis: Redis,
  keys: Pick<QueueKeys, 'stream' | 'delayed' | 'delayedEntries'>,
  args: {
    readonly consumer: string;
    readonly id: string;
    readonly dueAtMs: number;
    /** Member of the delayed set, unique per retry. */
    readonly retryId: string;
    readonly counted: boolean;
  },
): Promise<boolean> {
  const reply = await run(
    redis,
    'requeue',
    [keys.stream, keys.delayed, keys.delayedEntries],
    [CONSUMER_GROUP, args.consumer, args.id, args.dueAtMs, args.retryId, args.counted ? '1' : '0'],
  );
  return reply === 1;
}

/** extend.lua: renews the leases of owned entries; per id, whether it was owned. */
export async function extendOwned(
  redis: Redis,
  keys: Pick<QueueKeys, 'stream'>,
  args: { readonly consumer: string; readonly ids: readonly string[] },
): Promise<boolean[]> {
  const reply = (await run(
    redis,
    'extend',
    [keys.stream],
    [CONSUMER_GROUP, args.consumer, ...args.ids],
  )) as number[];
  return reply.map((extended) => extended === 1);
}

/** What {@link promoteDue} did. */
export interface PromoteResult {
  readonly moved: number;
  /** Due time of the next delayed retry, if there is one. */
  readonly nextDueAtMs: number | undefined;
}

/** promote.lua: moves up to `limit` delayed retries due at `nowMs` back into the stream. */
export async function promoteDue(
  redis: Redis,
  keys: Pick<QueueKeys, 'stream' | 'delayed' | 'delayedEntries'>,
  args: { readonly nowMs: number; readonly limit: number },
): Promise<PromoteResult> {
  const [moved, nextDue] = (await run(
    redis,
    'promote',
    [keys.stream, keys.delayed, keys.delayedEntries],
    [args.nowMs, args.limit],
  )) as [number, string];
  return { moved, nextDueAtMs: nextDue === '-1' ? undefined : Number(nextDue) };
}

/** An entry taken over by {@link reclaimIdle}. */
export interface ReclaimedEntry {
  readonly streamId: string;
  readonly fields: Buffer[];
  /** Deliveries of the entry so far (the PEL's counter), this takeover included. */
  readonly timesDelivered: number;
}

/** What {@link reclaimIdle} took over, and where the next call starts. */
export interface ReclaimResult {
  readonly cursor: string;
  readonly entries: ReclaimedEntry[];
}

/**
 * reclaim.lua: takes over up to `count` entries idle for `minIdleMs`, scanning the PEL from
 * `startId`; pending entries whose data is gone go to the outbox as `poison`.
 */
export async function reclaimIdle(
  redis: Redis,
  keys: Pick<QueueKeys, 'stream' | 'deadLetters'>,
  args: {
    readonly consumer: string;
    readonly minIdleMs: number;
    readonly startId: string;
    readonly count: number;
    readonly timeMs: number;
  },
): Promise<ReclaimResult> {
  const [cursor, entries] = (await run(
    redis,
    'reclaim',
    [keys.stream, keys.deadLetters],
    [CONSUMER_GROUP, args.consumer, args.minIdleMs, args.startId, args.count, args.timeMs],
    'buffers',
  )) as [Buffer, [Buffer, Buffer[], number][]];
  return {
    cursor: cursor.toString(),
    entries: entries.map(([id, fields, timesDelivered]) => ({
      streamId: id.toString(),
      fields,
      timesDelivered,
    })),
  };
}
