/**
 * The descriptors of sluice's Lua scripts (src/lua): keys and arguments by name, in the order
 * of each file's header, and a decoder of the reply. test/unit/scripts.test.ts compares every
 * header with its descriptor.
 */
import { ServerError } from '../errors/index.js';
import { defineScript } from './scripts.js';

type Status<T extends string> = readonly [status: T, value?: string | number];

function tuple<T extends string>(reply: unknown): Status<T> {
  return reply as Status<T>;
}

/** Creates an exchange or queue record; `{'ok', version}`, `{'ok', 0}` if identical, or a conflict. */
export const DECLARE = defineScript({
  file: 'declare',
  keys: ['records', 'version'],
  args: ['name', 'record'],
  decode: (reply) => tuple<'ok' | 'precondition'>(reply),
});

/** Adds a binding if both ends exist. */
export const BIND = defineScript({
  file: 'bind',
  keys: ['exchanges', 'destinations', 'bindings', 'version'],
  args: ['source', 'destination', 'binding'],
  decode: (reply) => tuple<'ok' | 'no_source' | 'no_destination'>(reply),
});

/** Removes a binding. */
export const UNBIND = defineScript({
  file: 'unbind',
  keys: ['bindings', 'version'],
  args: ['binding'],
  decode: (reply) => tuple<'ok'>(reply),
});

/** Removes a queue record and its bindings. */
export const DELETE_QUEUE = defineScript({
  file: 'delete_queue',
  keys: ['queues', 'bindings', 'version'],
  args: ['name'],
  decode: (reply) => tuple<'ok'>(reply),
});

/** Removes an exchange and its bindings. */
export const DELETE_EXCHANGE = defineScript({
  file: 'delete_exchange',
  keys: ['exchanges', 'bindings', 'version'],
  args: ['name', 'ifUnused'],
  decode: (reply) => tuple<'ok' | 'in_use'>(reply),
});

/** Deletes up to `count` ready entries; resolves with how many it deleted. */
export const PURGE = defineScript({
  file: 'purge',
  keys: ['stream'],
  args: ['group', 'count', 'holder'],
  decode: (reply) => Number(reply),
});

/** Raises a queue's fence; resolves with its value after the call, undefined when missing. */
export const FENCE = defineScript({
  file: 'fence',
  keys: ['fence'],
  args: ['version', 'create'],
  decode: (reply) => (reply === null ? undefined : Number(reply)),
});

/** What an ack did to one entry: acked now, settled already (pending for nobody), or another's. */
export type AckOutcome = 'acked' | 'settled' | 'stale';

const ACK_OUTCOMES: Readonly<Record<number, AckOutcome>> = { 0: 'stale', 1: 'acked', 2: 'settled' };

/** Acks and deletes owned entries: `true` when all were owned, else per id what happened. */
export const ACK = defineScript({
  file: 'ack',
  keys: ['stream', 'owner', 'stats'],
  args: ['group', 'consumer', 'lowestId', 'highestId', 'limit', 'token', 'ids...'],
  decode: (reply): true | AckOutcome[] =>
    reply === 1 ? true : (reply as number[]).map((outcome) => ACK_OUTCOMES[outcome] ?? 'stale'),
});

/** Moves owned entries to the queue's outbox; per id, whether it was moved. */
export const DEAD_LETTER = defineScript({
  file: 'dead_letter',
  keys: ['stream', 'outbox', 'owner', 'stats'],
  args: ['group', 'consumer', 'reason', 'timeMs', 'lastError', 'token', 'ids...'],
  decode: (reply) => (reply as number[]).map((moved) => moved === 1),
});

/** Gives an owned entry back (now, or into the delayed set); false when not owned. */
export const REQUEUE = defineScript({
  file: 'requeue',
  keys: ['stream', 'delayed', 'delayedEntries', 'stats'],
  args: ['group', 'consumer', 'entryId', 'dueAtMs', 'retryId', 'lastError', 'retry'],
  decode: (reply) => reply === 1,
});

/** Registers or renews a consumer, forgetting expired ones; false when the queue is gone. */
export const REGISTER = defineScript({
  file: 'register',
  keys: ['stream', 'fence', 'consumers', 'members'],
  args: ['group', 'consumer', 'leaseMs', 'mode'],
  decode: (reply) => (reply === 1 ? 'ok' : reply === 0 ? 'gone' : 'refused'),
});

/** Forgets the consumers of a partition's group that hold nothing and are idle: how many. */
export const PRUNE_GROUP = defineScript({
  file: 'prune_group',
  keys: ['stream'],
  args: ['group', 'consumer', 'minIdleMs'],
  decode: (reply) => Number(reply),
});

/** An ordered consumer's membership: the live members in join order, or why not. */
export const MEMBERS = defineScript({
  file: 'members',
  keys: ['fence', 'consumers', 'members', 'joined'],
  args: ['consumer', 'leaseMs'],
  decode: (reply) => {
    const [status, ...names] = reply as string[];
    return status === 'ok'
      ? { kind: 'ok' as const, members: names }
      : status === 'conflict'
        ? { kind: 'conflict' as const, consumer: names[0] as string }
        : { kind: 'gone' as const };
  },
});

/** A partition's ownership: acquire, renew or release; the token, 0 refused, -1 queue gone. */
export const OWN = defineScript({
  file: 'own',
  keys: ['fence', 'owner'],
  args: ['consumer', 'op', 'leaseMs', 'token'],
  decode: (reply) => Number(reply),
});

/** A raw stream entry as Redis returns it with buffers. */
type RawEntry = [id: Buffer, fields: Buffer[] | null];

/** An ordered consumer's read of its partition: entries, nothing new (and the last id), lost. */
export const READ_ORDERED = defineScript({
  file: 'read_ordered',
  keys: ['stream', 'owner'],
  args: ['group', 'consumer', 'token', 'count'],
  buffers: true,
  decode: (reply) => {
    const [status, value] = reply as [Buffer, RawEntry[] | Buffer | undefined];
    const kind = status.toString();
    if (kind === 'ok') return { kind: 'ok' as const, entries: value as RawEntry[] };
    if (kind === 'empty') return { kind: 'empty' as const, lastId: (value as Buffer).toString() };
    return { kind: 'lost' as const };
  },
});

/** Delivers an entry an ordered consumer holds again, in place, its delivery count raised. */
export const REDELIVER = defineScript({
  file: 'redeliver',
  keys: ['stream', 'owner', 'stats'],
  args: ['group', 'consumer', 'token', 'id', 'retry'],
  buffers: true,
  decode: (reply) => {
    const [status, fields, timesDelivered] = reply as [Buffer, Buffer[]?, number?];
    const kind = status.toString();
    if (kind === 'ok') {
      return {
        kind: 'ok' as const,
        fields: fields as Buffer[],
        timesDelivered: Number(timesDelivered),
      };
    }
    return { kind: kind as 'lost' | 'stale' | 'gone' };
  },
});

/** Deregisters a consumer; true when it also left the group (it held nothing). */
export const DEREGISTER = defineScript({
  file: 'deregister',
  keys: ['stream', 'consumers'],
  args: ['group', 'consumer'],
  decode: (reply) => reply === 1,
});

/** Gives owned entries back in place, idle for a takeover at once: how many were owned. */
export const RELEASE = defineScript({
  file: 'release',
  keys: ['stream', 'outbox', 'stats'],
  args: ['group', 'consumer', 'holder', 'idleMs', 'counted', 'timeMs', 'ids...'],
  decode: (reply) => reply as number,
});

/** Renews the leases of owned entries; per id, whether it was owned. */
export const EXTEND = defineScript({
  file: 'extend',
  keys: ['stream'],
  args: ['group', 'consumer', 'ids...'],
  decode: (reply) => (reply as number[]).map((extended) => extended === 1),
});

/** Moves due delayed retries back into the stream: how many, and when the next one is due. */
export const PROMOTE = defineScript({
  file: 'promote',
  keys: ['stream', 'delayed', 'delayedEntries', 'stats'],
  args: ['nowMs', 'limit'],
  decode: (reply) => {
    const [moved, nextDue] = reply as [number, string];
    return { moved, nextDueAtMs: nextDue === '-1' ? undefined : Number(nextDue) };
  },
});

/** Dead-letters the expired ready entries at a queue's head: how many, and when the next expires. */
export const EXPIRE = defineScript({
  file: 'expire',
  keys: ['stream', 'outbox', 'stats'],
  args: ['group', 'nowMs', 'ttlMs', 'limit'],
  decode: (reply) => {
    const [expired, nextDue] = reply as [number, number];
    return { expired, nextDueAtMs: nextDue < 0 ? undefined : nextDue };
  },
});

/** Takes over idle entries; bodies as Buffers. */
export const RECLAIM = defineScript({
  file: 'reclaim',
  keys: ['stream', 'outbox', 'owner', 'stats'],
  args: ['group', 'consumer', 'minIdleMs', 'startId', 'count', 'timeMs', 'token'],
  buffers: true,
  decode: (reply) => {
    const [cursor, entries] = reply as [Buffer, [Buffer, Buffer[], number][] | undefined];
    if (entries === undefined) return 'lost' as const;
    return {
      cursor: cursor.toString(),
      entries: entries.map(([id, fields, timesDelivered]) => ({
        streamId: id.toString(),
        fields,
        timesDelivered,
      })),
    };
  },
});

/** Puts an outbox entry back into its queue's stream as it was. */
export const RESTORE = defineScript({
  file: 'restore',
  keys: ['outbox', 'stream'],
  args: ['entryId'],
  decode: (reply) => reply as 'ok' | 'gone',
});

/** Deletes a dead letter that routes nowhere from its outbox, counting it as dropped. */
export const DROP = defineScript({
  file: 'drop',
  keys: ['outbox', 'stats'],
  args: ['entryId'],
  decode: (reply) => reply as 'dropped' | 'gone',
});

/** Moves a queue entry into the queue's outbox with a replay route, unless a consumer holds it. */
export const TAKE = defineScript({
  file: 'take',
  keys: ['stream', 'outbox'],
  args: ['group', 'entryId', 'route', 'timeMs'],
  decode: (reply) => reply as 'ok' | 'gone' | 'busy',
});

/** What one publish call answered (see src/lua/publish.lua). */
export type PublishReply =
  /**
   * The fence of the queue at `queue` (1-based) was above the version routed with, or missing
   * (`missing`): nothing was written.
   */
  | { readonly kind: 'stale'; readonly queue: number; readonly missing: boolean }
  /** An atomic call met a full target: nothing was written. Positions are 1-based. */
  | { readonly kind: 'full'; readonly message: number; readonly target: number }
  /** Per message: 'new' or 'dup' and one value per target, or 'full' and a target position. */
  | { readonly kind: 'ok'; readonly replies: readonly (string | number)[] };

/** Appends messages to queues with dedup, overflow and the fence check. */
export const PUBLISH = defineScript({
  file: 'publish',
  keys: ['queues...', 'dedupSlots...', 'guards...'],
  args: ['version', 'plan...'],
  crossSlotOnStandalone: true,
  decode: (reply): PublishReply => {
    const [status, ...rest] = reply as [string, ...unknown[]];
    if (status === 'stale' || status === 'nofence') {
      return { kind: 'stale', queue: rest[0] as number, missing: status === 'nofence' };
    }
    if (status === 'full') {
      return { kind: 'full', message: rest[0] as number, target: rest[1] as number };
    }
    if (status !== 'ok') throw new ServerError(`publish answered '${String(status)}'`, reply);
    return { kind: 'ok', replies: rest as (string | number)[] };
  },
});

/** Takes the processing leases of idempotency keys (one per delivery), or acks duplicates. */
export const IDEM_BEGIN = defineScript({
  file: 'idem_begin',
  keys: ['stream', 'stats', 'markers...'],
  args: ['group', 'consumer', 'leaseMs', 'lowestId', 'highestId', 'limit', 'entries...'],
  decode: (reply): IdempotencyBegin[] => {
    const values = reply as (string | number)[];
    const out: IdempotencyBegin[] = [];
    for (let i = 0; i < values.length; i += 2) {
      const kind = values[i] as IdempotencyBegin['kind'];
      out.push(kind === 'busy' ? { kind, leftMs: Number(values[i + 1]) } : { kind });
    }
    return out;
  },
});

/** What {@link IDEM_BEGIN} found. */
export type IdempotencyBegin =
  | { readonly kind: 'acquired' }
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'stale' }
  | { readonly kind: 'busy'; readonly leftMs: number };

/**
 * Applies idempotent handlers' writes, marks their keys done and acks, one step per delivery,
 * the deliveries of one tick in one call; `stale`
 * when this consumer was deposed, `refused` when Redis refused a write (the key is done and
 * the delivery dead-lettered). The writes' keys may lie anywhere on a standalone server.
 */
export const IDEM_COMMIT = defineScript({
  file: 'idem_commit',
  keys: ['stream', 'outbox', 'stats', 'markers...', 'writeKeys...'],
  args: [
    'group',
    'consumer',
    'ttlMs',
    'timeMs',
    'lowestId',
    'highestId',
    'limit',
    'count',
    'commits...',
  ],
  crossSlotOnStandalone: true,
  decode: (reply): IdempotencyCommit[] => {
    const values = reply as (string | number)[];
    const out: IdempotencyCommit[] = [];
    for (let i = 0; i < values.length; i += 3) {
      const kind = String(values[i]);
      if (kind === 'refused') {
        out.push({ kind, write: Number(values[i + 1]), error: String(values[i + 2]) });
      } else out.push({ kind: kind === 'ok' ? 'ok' : 'stale' });
    }
    return out;
  },
});

/** What {@link IDEM_COMMIT} did. */
export type IdempotencyCommit =
  | { readonly kind: 'ok' }
  | { readonly kind: 'stale' }
  | { readonly kind: 'refused'; readonly write: number; readonly error: string };

/** Gives up an idempotency key's processing lease; false when it was not held any more. */
export const IDEM_RELEASE = defineScript({
  file: 'idem_release',
  keys: ['marker'],
  args: ['token'],
  decode: (reply) => reply === 1,
});

/** Renews processing leases; per marker, whether it was still held. */
export const IDEM_EXTEND = defineScript({
  file: 'idem_extend',
  keys: ['markers...'],
  args: ['leaseMs', 'tokens...'],
  decode: (reply) => (reply as number[]).map((renewed) => renewed === 1),
});
