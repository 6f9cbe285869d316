/**
 * The consumer's Lua scripts, one typed function each: keys from the key schema and named
 * arguments in, a decoded reply out. Every call fails only with a SluiceError, within
 * {@link SETTLEMENT_TIMEOUT_MS}. The ARGV order lives here and in each script's header only.
 */
import type { RedisClient } from '../connection/client.js';
import { toSluiceError } from '../connection/connection.js';
import {
  ACK,
  type AckOutcome,
  DEAD_LETTER,
  DEREGISTER,
  EXPIRE,
  EXTEND,
  IDEM_BEGIN,
  IDEM_COMMIT,
  IDEM_EXTEND,
  IDEM_RELEASE,
  MEMBERS,
  OWN,
  PRUNE_GROUP,
  READ_ORDERED,
  REDELIVER,
  type IdempotencyBegin,
  type IdempotencyCommit,
  PROMOTE,
  RECLAIM,
  REGISTER,
  RELEASE,
  REQUEUE,
} from '../connection/script-catalog.js';
import {
  callScript,
  type Script,
  type ScriptArg,
  type ScriptArgs,
  type ScriptKeys,
} from '../connection/scripts.js';
import type { DeathReason } from '../message/death-history.js';
import { CONSUMER_GROUP, RELEASED_HOLDER, type QueueKeys } from '../keys/index.js';
import { DeadlineQueue, SETTLEMENT_TIMEOUT_MS, deadlineError } from './deadline.js';
import { idRange } from './stream-ids.js';

/** The settlement deadlines of each client's script calls: one timer per client for them all. */
const deadlines = new WeakMap<RedisClient, DeadlineQueue>();

function deadlinesOf(redis: RedisClient): DeadlineQueue {
  let queue = deadlines.get(redis);
  if (queue === undefined) {
    queue = new DeadlineQueue(SETTLEMENT_TIMEOUT_MS);
    deadlines.set(redis, queue);
  }
  return queue;
}

/** What a call is, for its error only: not worked out per call. */
function describe(script: { readonly file: string }, keys: object): string {
  const [first] = Object.values(keys as Readonly<Record<string, unknown>>);
  return `${script.file} on ${typeof first === 'string' ? first : 'its keys'}`;
}

/** Runs a script within the settlement deadline; it fails only with a SluiceError. */
function run<K extends string, A extends string, R>(
  redis: RedisClient,
  script: Script<K, A, R>,
  keys: ScriptKeys<Script<K, A, R>>,
  args: ScriptArgs<Script<K, A, R>>,
): Promise<R> {
  return deadlinesOf(redis).watch(
    callScript(redis, script, keys, args),
    (error) => toSluiceError(error, redis, describe(script, keys)),
    () => deadlineError(redis, describe(script, keys), SETTLEMENT_TIMEOUT_MS),
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
  /** An ordered consumer's fencing token: acks nothing unless it owns the partition under it. */
  readonly token: number | undefined;
  readonly ids: readonly string[];
}

/** ack.lua: acks and deletes the entries `consumer` owns; `true` when all were, else per id. */
export function ackOwned(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'stream' | 'owner' | 'stats'>,
  args: AckArgs,
): Promise<true | AckOutcome[]> {
  const { consumer, lowestId, highestId, limit, ids } = args;
  const token = args.token === undefined ? '' : String(args.token);
  return run(
    redis,
    ACK,
    { stream: keys.stream, owner: keys.owner, stats: keys.stats },
    { group: CONSUMER_GROUP, consumer, lowestId, highestId, limit, token, ids },
  );
}

/**
 * dead_letter.lua: moves owned entries to the queue's outbox, with `lastError` (an error
 * record's stored form) added to their fields when given; per id, whether it was moved.
 */
export async function deadLetterOwned(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'stream' | 'deadLetters' | 'owner' | 'stats'>,
  args: {
    readonly consumer: string;
    readonly reason: DeathReason;
    readonly timeMs: number;
    readonly lastError?: string | undefined;
    /** An ordered consumer's fencing token: nothing moves unless it owns the partition. */
    readonly token?: number | undefined;
    readonly ids: readonly string[];
  },
): Promise<boolean[]> {
  const { consumer, reason, timeMs, lastError, token, ids } = args;
  return run(
    redis,
    DEAD_LETTER,
    { stream: keys.stream, outbox: keys.deadLetters, owner: keys.owner, stats: keys.stats },
    {
      group: CONSUMER_GROUP,
      consumer,
      reason,
      timeMs,
      lastError: lastError ?? '',
      token: token === undefined ? '' : String(token),
      ids,
    },
  );
}

/**
 * requeue.lua: gives an owned entry back with its delivery count raised, at the tail now
 * (`dueAtMs` 0) or parked in the delayed set until `dueAtMs`, with `lastError` recorded in it
 * if given; counted as `redelivered` when `retry`. False if not owned.
 */
export async function requeueOwned(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'stream' | 'delayed' | 'delayedEntries' | 'stats'>,
  args: {
    readonly consumer: string;
    readonly id: string;
    readonly dueAtMs: number;
    /** Member of the delayed set, unique per retry. */
    readonly retryId: string;
    /** The handler's error that made it come back (its stored form). */
    readonly lastError: string | undefined;
    /** False when the delivery was the last the queue's delivery limit allows. */
    readonly retry: boolean;
  },
): Promise<boolean> {
  const { stream, delayed, delayedEntries, stats } = keys;
  return run(
    redis,
    REQUEUE,
    { stream, delayed, delayedEntries, stats },
    {
      group: CONSUMER_GROUP,
      consumer: args.consumer,
      entryId: args.id,
      dueAtMs: args.dueAtMs,
      retryId: args.retryId,
      lastError: args.lastError ?? '',
      retry: args.retry ? '1' : '0',
    },
  );
}

/**
 * register.lua: registers `consumer` (or renews it) for `leaseMs`; false when the queue is gone.
 * Registrations that expired are forgotten on the way.
 */
export async function registerConsumer(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'stream' | 'fence' | 'consumers' | 'members'>,
  args: { readonly consumer: string; readonly leaseMs: number; readonly ordered: boolean },
): Promise<'ok' | 'gone' | 'refused'> {
  const { stream, fence, consumers, members } = keys;
  return run(
    redis,
    REGISTER,
    { stream, fence, consumers, members },
    {
      group: CONSUMER_GROUP,
      consumer: args.consumer,
      leaseMs: args.leaseMs,
      mode: args.ordered ? 'ordered' : 'plain',
    },
  );
}

/**
 * members.lua: an ordered consumer joins its queue's membership for `leaseMs` (or renews it);
 * the live members in join order, a conflict with an unordered consumer, or the queue gone.
 */
export function joinMembers(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'fence' | 'consumers' | 'members' | 'joined'>,
  args: { readonly consumer: string; readonly leaseMs: number },
): Promise<
  | { readonly kind: 'ok'; readonly members: readonly string[] }
  | { readonly kind: 'conflict'; readonly consumer: string }
  | { readonly kind: 'gone' }
> {
  const { fence, consumers, members, joined } = keys;
  return run(redis, MEMBERS, { fence, consumers, members, joined }, args);
}

/**
 * own.lua: acquires, renews or releases a partition's ownership; the fencing token (acquire,
 * renew), 1 (release), 0 when refused, -1 when the queue is gone.
 */
export function ownPartition(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'fence' | 'owner'>,
  args: {
    readonly consumer: string;
    readonly op: 'acquire' | 'renew' | 'release';
    readonly leaseMs: number;
    readonly token: number;
  },
): Promise<number> {
  return run(redis, OWN, { fence: keys.fence, owner: keys.owner }, args);
}

/** What {@link readOrdered} read. */
export type OrderedRead =
  | { readonly kind: 'ok'; readonly entries: [Buffer, Buffer[] | null][] }
  | { readonly kind: 'empty'; readonly lastId: string }
  | { readonly kind: 'lost' };

/** read_ordered.lua: new entries of a partition this consumer owns under `token`. */
export function readOrdered(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'stream' | 'owner'>,
  args: { readonly consumer: string; readonly token: number; readonly count: number },
): Promise<OrderedRead> {
  return run(
    redis,
    READ_ORDERED,
    { stream: keys.stream, owner: keys.owner },
    { group: CONSUMER_GROUP, ...args },
  );
}

/**
 * redeliver.lua: delivers an entry this owner holds again, in place; its fields and count.
 * Counted as `redelivered` when `retry` (false when the delivery was the last the queue's
 * delivery limit allows).
 */
export function redeliverOwned(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'stream' | 'owner' | 'stats'>,
  args: {
    readonly consumer: string;
    readonly token: number;
    readonly id: string;
    readonly retry: boolean;
  },
): Promise<
  | { readonly kind: 'ok'; readonly fields: Buffer[]; readonly timesDelivered: number }
  | { readonly kind: 'lost' | 'stale' | 'gone' }
> {
  return run(
    redis,
    REDELIVER,
    { stream: keys.stream, owner: keys.owner, stats: keys.stats },
    { group: CONSUMER_GROUP, ...args, retry: args.retry ? '1' : '0' },
  );
}

/** prune_group.lua: forgets the group's consumers that hold nothing, idle for `minIdleMs`. */
export function pruneGroup(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'stream'>,
  args: { readonly consumer: string; readonly minIdleMs: number },
): Promise<number> {
  return run(redis, PRUNE_GROUP, { stream: keys.stream }, { group: CONSUMER_GROUP, ...args });
}

/** deregister.lua: `consumer` leaves; true when it left the group too (it held nothing). */
export async function deregisterConsumer(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'stream' | 'consumers'>,
  consumer: string,
): Promise<boolean> {
  const { stream, consumers } = keys;
  return run(redis, DEREGISTER, { stream, consumers }, { group: CONSUMER_GROUP, consumer });
}

/**
 * The idle time of a delivery given back by {@link releaseOwned}: ten years, past any ack
 * timeout, so that the next reclaim takes it.
 */
const RELEASED_IDLE_MS = 10 * 365 * 24 * 3_600_000;

/**
 * release.lua: gives owned entries back in place (their stream ids, so ahead of newer
 * messages) for any consumer's next reclaim; `counted` false leaves their delivery count as it
 * was before this consumer read them. Resolves with how many were owned.
 */
export async function releaseOwned(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'stream' | 'deadLetters' | 'stats'>,
  args: { readonly consumer: string; readonly counted: boolean; readonly ids: readonly string[] },
): Promise<number> {
  return run(
    redis,
    RELEASE,
    { stream: keys.stream, outbox: keys.deadLetters, stats: keys.stats },
    {
      group: CONSUMER_GROUP,
      consumer: args.consumer,
      holder: RELEASED_HOLDER,
      idleMs: RELEASED_IDLE_MS,
      counted: args.counted ? '1' : '0',
      timeMs: Date.now(),
      ids: args.ids,
    },
  );
}

/** extend.lua: renews the leases of owned entries; per id, whether it was owned. */
export async function extendOwned(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'stream'>,
  args: { readonly consumer: string; readonly ids: readonly string[] },
): Promise<boolean[]> {
  return run(
    redis,
    EXTEND,
    { stream: keys.stream },
    { group: CONSUMER_GROUP, consumer: args.consumer, ids: args.ids },
  );
}

/** What {@link promoteDue} did. */
export interface PromoteResult {
  readonly moved: number;
  /** Due time of the next delayed retry, if there is one. */
  readonly nextDueAtMs: number | undefined;
}

/** promote.lua: moves up to `limit` delayed retries due at `nowMs` back into the stream. */
export async function promoteDue(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'stream' | 'delayed' | 'delayedEntries' | 'stats'>,
  args: { readonly nowMs: number; readonly limit: number },
): Promise<PromoteResult> {
  const { stream, delayed, delayedEntries, stats } = keys;
  return run(redis, PROMOTE, { stream, delayed, delayedEntries, stats }, args);
}

/** One delivery of a {@link beginIdempotent} call: its key's marker, entry and token. */
export interface BeginItem {
  readonly marker: string;
  readonly entryId: string;
  readonly token: string;
}

/**
 * idem_begin.lua: takes each marker's processing lease for its entry, or acks a duplicate;
 * per item what it found.
 */
export async function beginIdempotent(
  redis: RedisClient,
  { stream, stats }: Pick<QueueKeys, 'stream' | 'stats'>,
  args: {
    readonly consumer: string;
    readonly leaseMs: number;
    /** The most deliveries the consumer may hold (bounds the ownership scan). */
    readonly limit: number;
    readonly items: readonly BeginItem[];
  },
): Promise<IdempotencyBegin[]> {
  const { consumer, leaseMs, limit, items } = args;
  return run(
    redis,
    IDEM_BEGIN,
    { stream, stats, markers: items.map((item) => item.marker) },
    {
      group: CONSUMER_GROUP,
      consumer,
      leaseMs,
      ...idRange(items.map((item) => item.entryId)),
      limit,
      entries: items.flatMap((item) => [item.entryId, item.token]),
    },
  );
}

/** One delivery of a {@link commitIdempotent} call. */
export interface CommitItem {
  readonly marker: string;
  readonly entryId: string;
  readonly token: string;
  readonly writes: {
    readonly keys: readonly string[];
    readonly args: readonly (readonly ScriptArg[])[];
  };
}

/**
 * idem_commit.lua: per item, applies its `writes` (each a command and its arguments; `keys` are
 * theirs), marks its key done for `ttlMs` and acks its entry (dead-letters it at `timeMs` when
 * Redis refuses a write); per item what it did.
 */
export async function commitIdempotent(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'stream' | 'deadLetters' | 'stats'>,
  args: {
    readonly consumer: string;
    readonly ttlMs: number;
    readonly timeMs: number;
    /** The most deliveries the consumer may hold (bounds the ownership scan). */
    readonly limit: number;
    readonly items: readonly CommitItem[];
  },
): Promise<IdempotencyCommit[]> {
  const { consumer, ttlMs, timeMs, limit, items } = args;
  return run(
    redis,
    IDEM_COMMIT,
    {
      stream: keys.stream,
      outbox: keys.deadLetters,
      stats: keys.stats,
      markers: items.map((item) => item.marker),
      writeKeys: items.flatMap((item) => item.writes.keys),
    },
    {
      group: CONSUMER_GROUP,
      consumer,
      ttlMs,
      timeMs,
      ...idRange(items.map((item) => item.entryId)),
      limit,
      count: items.length,
      commits: items.flatMap((item) => [
        item.entryId,
        item.token,
        item.writes.args.length,
        ...item.writes.args.flatMap((write) => [write.length, ...write]),
      ]),
    },
  );
}

/** idem_release.lua: gives up `marker`'s lease held under `token`. */
export async function releaseIdempotent(
  redis: RedisClient,
  marker: string,
  token: string,
): Promise<boolean> {
  return run(redis, IDEM_RELEASE, { marker }, { token });
}

/** idem_extend.lua: renews the leases of `markers` held under `tokens`, for `leaseMs`. */
export async function extendIdempotent(
  redis: RedisClient,
  args: {
    readonly markers: readonly string[];
    readonly tokens: readonly string[];
    readonly leaseMs: number;
  },
): Promise<boolean[]> {
  return run(
    redis,
    IDEM_EXTEND,
    { markers: args.markers },
    { leaseMs: args.leaseMs, tokens: args.tokens },
  );
}

/** What {@link expireHead} did. */
export interface ExpireResult {
  readonly expired: number;
  /** When the entry now at the head expires, if it can. */
  readonly nextDueAtMs: number | undefined;
}

/**
 * expire.lua: dead-letters, as `expired`, the ready entries at the head of the queue that have
 * expired at `nowMs` (up to `limit`), under the queue's `ttlMs` and their own expiration.
 */
export async function expireHead(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'stream' | 'deadLetters' | 'stats'>,
  args: { readonly nowMs: number; readonly ttlMs: number | undefined; readonly limit: number },
): Promise<ExpireResult> {
  return run(
    redis,
    EXPIRE,
    { stream: keys.stream, outbox: keys.deadLetters, stats: keys.stats },
    { group: CONSUMER_GROUP, nowMs: args.nowMs, ttlMs: args.ttlMs ?? -1, limit: args.limit },
  );
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
 * `startId`; pending entries whose data is gone go to the outbox as `poison`. With `token`,
 * only while this consumer owns the partition under it ('lost' otherwise).
 */
export async function reclaimIdle(
  redis: RedisClient,
  keys: Pick<QueueKeys, 'stream' | 'deadLetters' | 'owner' | 'stats'>,
  args: {
    readonly consumer: string;
    readonly minIdleMs: number;
    readonly startId: string;
    readonly count: number;
    readonly timeMs: number;
    readonly token?: number | undefined;
  },
): Promise<ReclaimResult | 'lost'> {
  const { token, ...rest } = args;
  return run(
    redis,
    RECLAIM,
    { stream: keys.stream, outbox: keys.deadLetters, owner: keys.owner, stats: keys.stats },
    { group: CONSUMER_GROUP, ...rest, token: token === undefined ? '' : String(token) },
  );
}
