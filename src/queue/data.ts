import type { RedisClient } from '../connection/client.js';
import { unlinkMatching } from '../connection/connection.js';
import { PURGE } from '../connection/script-catalog.js';
import { callScript } from '../connection/scripts.js';
import { NotFoundError } from '../errors/index.js';
import { CONSUMER_GROUP, RELEASED_HOLDER, type Keyspace } from '../keys/index.js';
import { DEATH_REASONS, type DeathReason } from '../message/death-history.js';
import type { QueueRecord } from '../topology/types.js';
import { validateName } from '../validation/index.js';
import { ensureConsumerGroup } from './group.js';
import { MAX_PARTITIONS, partitionCount, partitionNumbers } from './partitions.js';

/** One partition's share of {@link QueueInfo}. */
export interface PartitionInfo {
  readonly partition: number;
  /** Ready messages of the partition. */
  readonly messages: number;
  /** Delivered and not yet acked. */
  readonly unacked: number;
  /**
   * The ordered consumer that owns the partition now (its lease has not ended), with the
   * fencing token of its ownership; undefined when no one does.
   */
  readonly owner: { readonly consumer: string; readonly token: number } | undefined;
}

/** A live consumer of a queue, as {@link QueueInfo.consumerDetails} lists it. */
export interface ConsumerDetails {
  /** The consumer's name, as its consumer group and `sluice.stats()` know it. */
  readonly name: string;
  /** An ordered consumer (`ordered: true`, or of a `singleActiveConsumer` queue). */
  readonly ordered: boolean;
  /**
   * The partitions it reads: an ordered consumer the ones it owns now (none while it waits
   * for one), any other consumer every partition of the queue.
   */
  readonly partitions: readonly number[];
  /** Deliveries it holds unacked, in every partition. */
  readonly unacked: number;
  /**
   * How long its registration lease has to run, by the server's clock: a live consumer renews
   * it every few seconds, so this stays well above 0; a consumer that stopped renewing (frozen,
   * or cut off from Redis) is dropped from the list when it reaches 0.
   */
  readonly leaseRemainingMs: number;
}

/** What {@link Sluice.inspectQueue} reports. */
export interface QueueInfo {
  readonly name: string;
  /** Ready messages: in the queue and not delivered to any consumer. */
  readonly messages: number;
  /** Delivered and not yet acked. */
  readonly unacked: number;
  /** Parked for a delayed retry. */
  readonly delayed: number;
  /** Dead letters waiting to be routed to the dead-letter exchange (normally 0). */
  readonly deadLetterBacklog: number;
  /**
   * Live consumers: registered, with a registration lease that has not ended (a crashed
   * consumer stops counting within 15 s).
   */
  readonly consumers: number;
  /**
   * The live consumers themselves (`consumers` of them), by name, as RabbitMQ's management API
   * gives `consumer_details`. Deliveries still held by a consumer that died count in `unacked`
   * but in no consumer's, until they are reclaimed.
   */
  readonly consumerDetails: readonly ConsumerDetails[];
  /** Each partition's counts and owner (one element for a queue of one partition). */
  readonly partitions: readonly PartitionInfo[];
}

/**
 * Totals of a queue since it was declared: counters that only grow, summed over its partitions.
 * Redis keeps the stream's `entries-added`; sluice's scripts keep the rest in each partition's
 * stats hash (acks, entries appended again, failures), so that no publish writes more than its
 * entry: only the scripts of acks and of failures (requeues, dead-lettering, drops, overflow)
 * count there. An always-failing handler shows as `delivered` growing, `acked` not, and
 * `redelivered` then `deadLettered.delivery_limit` (or `dropped`) growing instead.
 */
export interface QueueTotals {
  /**
   * Messages that entered the queue: publishes routed to it, dead letters and DLQ replays sent
   * to it. A requeued message, or a delayed retry coming back, is not counted again.
   */
  readonly published: number;
  /**
   * Deliveries of new entries: messages read by a consumer for the first time since they were
   * appended (a requeued message's next delivery counts; a reclaim of an unacked one does not).
   * Derived as appended minus still unread, so a message that left the queue unread (purged,
   * expired at the head, dropped by overflow, taken by a DLQ replay) counts here too.
   */
  readonly delivered: number;
  /** Deliveries acked, duplicates an idempotent consumer acked without its handler included. */
  readonly acked: number;
  /**
   * Failed deliveries given back for another delivery: nacked or thrown by a handler, then
   * requeued at the tail, parked for a delayed retry, or (an ordered consumer's) delivered again
   * in place. Not counted: the failure of a message's last delivery under the queue's
   * `maxDeliveries` (it is dead-lettered instead: a message delivered n times and failing every
   * time counts n - 1 here), deliveries a closing consumer gives back, and takeovers of
   * deliveries left unacked past the ack timeout (`reclaimed` in a consumer's own stats).
   */
  readonly redelivered: number;
  /**
   * Messages that died in the queue, by reason, counted when they enter its dead-letter outbox:
   * `rejected` (a reject, or an idempotent commit Redis refused), `expired` (TTL at the head),
   * `maxlen` (overflow: `drop-head`'s oldest, `reject-publish-dlx`'s refused), `delivery_limit`
   * (past `maxDeliveries`), `poison` (unreadable, or its data trimmed away). A queue without a
   * dead-letter exchange counts them here too: then each is also `dropped`.
   */
  readonly deadLettered: Readonly<Record<DeathReason, number>>;
  /**
   * Dead letters that went nowhere and are gone: the queue has no dead-letter exchange, or it
   * routed the message to no queue (as RabbitMQ drops them). Counted among `deadLettered` too.
   */
  readonly dropped: number;
}

/** Per-second rates of a queue's {@link QueueTotals} between two readings of this client. */
export interface QueueRates {
  readonly publishedPerSecond: number;
  readonly deliveredPerSecond: number;
  readonly ackedPerSecond: number;
  readonly redeliveredPerSecond: number;
  /** Dead letters of every reason. */
  readonly deadLetteredPerSecond: number;
  readonly droppedPerSecond: number;
  /** The interval the rates are averaged over: from the previous reading to this one. */
  readonly intervalMs: number;
}

/** What {@link Sluice.stats} reports of a queue: {@link QueueInfo} plus age, totals and rates. */
export interface QueueStats extends QueueInfo {
  /**
   * Age of the oldest message in the queue, ready or unacked (the lag of its slowest consumer):
   * the server's time now minus the time in the stream id of the oldest entry of any partition
   * (acked entries are deleted, so the oldest left is the oldest not yet acked). A requeued
   * message counts from its requeue; delayed retries and dead letters waiting for routing are
   * not in the stream. 0 when the queue's streams are empty.
   */
  readonly oldestMessageAgeMs: number;
  readonly totals: QueueTotals;
  /**
   * The totals' rates since this client's previous `stats()` reading of the queue; undefined on
   * the first reading (call again a moment later for rates from a single process), and after
   * the queue's counters went back (it was deleted and declared again).
   */
  readonly rates: QueueRates | undefined;
  /** When the reading was taken: the server's time, ms since the epoch. */
  readonly sampledAtMs: number;
}

const PURGE_BATCH = 1000;

/** The counts of one partition, as read in one transaction. */
interface PartitionCounts extends PartitionInfo {
  readonly delayed: number;
  readonly deadLetterBacklog: number;
  /** Live registrations by name, with when their leases end (partition 0 holds them). */
  readonly registrations: ReadonlyMap<string, number>;
  /** The live ordered consumers (partition 0 holds them). */
  readonly members: ReadonlySet<string>;
  /** Deliveries pending for each consumer of the partition's group. */
  readonly pendingBy: ReadonlyMap<string, number>;
  readonly totals: QueueTotals;
  /** The time in the stream id of the partition's oldest entry; undefined when it has none. */
  readonly oldestEntryMs: number | undefined;
  /** The server's time of the reading. */
  readonly nowMs: number;
}

/** A reading of a queue's totals, kept for the rates of the next one. */
interface TotalsReading {
  readonly atMs: number;
  readonly totals: QueueTotals;
}

/**
 * The leases of a `ZRANGE ... WITHSCORES` reply of names by when their lease ends that have
 * not ended at `nowMs`, by name.
 */
function liveLeases(reply: unknown, nowMs: number): Map<string, number> {
  const items = Array.isArray(reply) ? (reply as string[]) : [];
  const live = new Map<string, number>();
  for (let i = 0; i + 1 < items.length; i += 2) {
    const endsAtMs = Number(items[i + 1]);
    if (endsAtMs >= nowMs) live.set(items[i] as string, endsAtMs);
  }
  return live;
}

/** Fields of a flat `[name, value, name, value, ...]` reply (XINFO STREAM) by name. */
function replyFields(reply: unknown): Map<string, unknown> {
  const items = Array.isArray(reply) ? (reply as unknown[]) : [];
  const fields = new Map<string, unknown>();
  for (let i = 0; i + 1 < items.length; i += 2) fields.set(String(items[i]), items[i + 1]);
  return fields;
}

/**
 * The rates between two readings of a queue's totals; undefined without an earlier reading, when
 * no time passed, or when a counter went back (the queue was deleted and declared again).
 */
export function ratesBetween(
  previous: TotalsReading | undefined,
  current: TotalsReading,
): QueueRates | undefined {
  if (previous === undefined) return undefined;
  const intervalMs = current.atMs - previous.atMs;
  if (intervalMs <= 0) return undefined;
  const before = rated(previous.totals);
  const now = rated(current.totals);
  const rates = RATED.map((field) => ((now[field] - before[field]) * 1000) / intervalMs);
  if (rates.some((rate) => rate < 0)) return undefined;
  const [published, delivered, acked, redelivered, deadLettered, dropped] = rates as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return {
    publishedPerSecond: published,
    deliveredPerSecond: delivered,
    ackedPerSecond: acked,
    redeliveredPerSecond: redelivered,
    deadLetteredPerSecond: deadLettered,
    droppedPerSecond: dropped,
    intervalMs,
  };
}

/** The totals that {@link QueueRates} has a rate of, in its order. */
const RATED = [
  'published',
  'delivered',
  'acked',
  'redelivered',
  'deadLettered',
  'dropped',
] as const;

/** A queue's totals as plain numbers: the dead letters of every reason summed. */
function rated(totals: QueueTotals): Record<(typeof RATED)[number], number> {
  return { ...totals, deadLettered: sumOf(DEATH_REASONS.map((r) => totals.deadLettered[r])) };
}

function sumOf(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

/** The stats-hash field that counts the dead letters of `reason` (see src/lua/lib/to_outbox.lua). */
function deadLetteredField(reason: DeathReason): string {
  return `deadLettered:${reason}`;
}

/** The fields of a partition's stats hash that {@link QueueData} reads, in the order it reads. */
const STATS_FIELDS = [
  'acked',
  'reappended',
  'redelivered',
  'dropped',
  ...DEATH_REASONS.map(deadLetteredField),
];

/** A queue's totals: its partitions' summed. */
function sumTotals(parts: readonly { readonly totals: QueueTotals }[]): QueueTotals {
  const sum = (value: (totals: QueueTotals) => number): number =>
    sumOf(parts.map((part) => value(part.totals)));
  return {
    published: sum((t) => t.published),
    delivered: sum((t) => t.delivered),
    acked: sum((t) => t.acked),
    redelivered: sum((t) => t.redelivered),
    deadLettered: Object.fromEntries(
      DEATH_REASONS.map((reason) => [reason, sum((t) => t.deadLettered[reason])]),
    ) as Record<DeathReason, number>,
    dropped: sum((t) => t.dropped),
  };
}

/**
 * The data of queues, in each queue partition's own slot: its stream and consumer group,
 * counts, purge, and removing every key of a deleted queue. The queue records themselves are
 * the topology's.
 */
export class QueueData {
  /** This client's last reading of each queue's totals, for {@link stats}'s rates. */
  private readonly readings = new Map<string, TotalsReading>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keyspace,
    /** The record of a declared queue (the topology's). */
    private readonly record: (queue: string) => Promise<QueueRecord | undefined>,
  ) {}

  /** Creates each partition's stream and consumer group when they are missing. */
  async create(queue: string, partitions: number): Promise<void> {
    await Promise.all(
      partitionNumbers(partitions).map((p) =>
        ensureConsumerGroup(this.redis, this.keys.queue(queue, p).stream),
      ),
    );
  }

  /**
   * Counts of a queue, like RabbitMQ's `queue.declare` passive reply and more: ready and
   * unacked messages, delayed retries, dead letters not yet routed, registered consumers, and
   * each partition's counts and owner.
   */
  async inspect(queue: string): Promise<QueueInfo> {
    validateName('queue', queue);
    return this.counts(queue, partitionCount(await this.require(queue)));
  }

  /**
   * {@link inspect}'s counts with the oldest message's age, the totals and their rates since
   * this client's previous reading of the queue.
   */
  async stats(queue: string): Promise<QueueStats> {
    validateName('queue', queue);
    return this.statsOf(queue, partitionCount(await this.require(queue)));
  }

  /** {@link stats} of a queue whose partition count is known (from a topology snapshot). */
  async statsOf(queue: string, partitions: number): Promise<QueueStats> {
    const parts = await this.allPartitionCounts(queue, partitions);
    const info = this.info(queue, parts);
    const totals = sumTotals(parts);
    // One clock for the whole reading: the latest of the partitions' (their servers may differ).
    const sampledAtMs = Math.max(...parts.map((part) => part.nowMs));
    const oldest = parts.reduce(
      (min, part) => Math.min(min, part.oldestEntryMs ?? Number.POSITIVE_INFINITY),
      Number.POSITIVE_INFINITY,
    );
    const reading = { atMs: sampledAtMs, totals };
    const rates = ratesBetween(this.readings.get(queue), reading);
    this.readings.set(queue, reading);
    return {
      ...info,
      oldestMessageAgeMs:
        oldest === Number.POSITIVE_INFINITY ? 0 : Math.max(0, sampledAtMs - oldest),
      totals,
      rates,
      sampledAtMs,
    };
  }

  /** The counts of {@link inspect}; all 0 for missing streams. */
  async counts(queue: string, partitions: number): Promise<QueueInfo> {
    return this.info(queue, await this.allPartitionCounts(queue, partitions));
  }

  private allPartitionCounts(queue: string, partitions: number): Promise<PartitionCounts[]> {
    return Promise.all(partitionNumbers(partitions).map((p) => this.partitionCounts(queue, p)));
  }

  /** A queue's {@link QueueInfo} from its partitions' counts. */
  private info(queue: string, parts: readonly PartitionCounts[]): QueueInfo {
    const sum = (field: 'messages' | 'unacked' | 'delayed' | 'deadLetterBacklog'): number =>
      parts.reduce((total, part) => total + part[field], 0);
    const first = parts[0] as PartitionCounts;
    const consumerDetails = [...first.registrations]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, leaseEndsAtMs]): ConsumerDetails => {
        const ordered = first.members.has(name);
        return {
          name,
          ordered,
          partitions: parts
            .filter((part) => !ordered || part.owner?.consumer === name)
            .map((part) => part.partition),
          unacked: sumOf(parts.map((part) => part.pendingBy.get(name) ?? 0)),
          leaseRemainingMs: Math.max(0, leaseEndsAtMs - first.nowMs),
        };
      });
    return {
      name: queue,
      messages: sum('messages'),
      unacked: sum('unacked'),
      delayed: sum('delayed'),
      deadLetterBacklog: sum('deadLetterBacklog'),
      consumers: consumerDetails.length,
      consumerDetails,
      partitions: parts.map(({ partition, messages, unacked, owner }) => ({
        partition,
        messages,
        unacked,
        owner,
      })),
    };
  }

  /** One partition's counts, read in one transaction in its slot. */
  private async partitionCounts(queue: string, partition: number): Promise<PartitionCounts> {
    const keys = this.keys.queue(queue, partition);
    const replies = await this.redis
      .multi()
      .xlen(keys.stream)
      .xpending(keys.stream, CONSUMER_GROUP)
      .zcard(keys.delayed)
      .xlen(keys.deadLetters)
      .time()
      .zrange(keys.consumers, 0, -1, 'WITHSCORES')
      .zrange(keys.members, 0, -1, 'WITHSCORES')
      .hmget(keys.owner, 'consumer', 'token', 'until')
      .xinfo('STREAM', keys.stream)
      .hmget(keys.stats, ...STATS_FIELDS)
      .exec();
    // A missing group (XPENDING / XINFO errors) means nothing is pending and no one consumes.
    const value = (index: number): unknown =>
      replies?.[index]?.[0] ? undefined : replies?.[index]?.[1];
    const length = Number(value(0) ?? 0);
    // Deliveries given back in place (pending for RELEASED_HOLDER) are ready, not unacked.
    const pending = value(1) as [number, unknown, unknown, [string, string][] | null] | undefined;
    const pendingCount = Number(pending?.[0] ?? 0);
    const released = Number(pending?.[3]?.find(([holder]) => holder === RELEASED_HOLDER)?.[1] ?? 0);
    const unacked = pendingCount - released;
    // Leases by when they end, against the server's clock.
    const [seconds, micros] = (value(4) as [string, string] | undefined) ?? ['0', '0'];
    const nowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const registrations = liveLeases(value(5), nowMs);
    const members = new Set(liveLeases(value(6), nowMs).keys());
    const [owner, token, until] = (value(7) as (string | null)[] | undefined) ?? [];
    const stream = replyFields(value(8));
    const counters = ((value(9) as (string | null)[] | undefined) ?? []).map(Number);
    const [acked = 0, reappended = 0, redelivered = 0, dropped = 0, ...deaths] = counters;
    const appended = Number(stream.get('entries-added') ?? 0);
    // Acked entries are deleted: what the stream holds is pending (released ones too) or unread.
    const unread = length - pendingCount;
    const firstEntry = stream.get('first-entry') as [string, unknown] | null | undefined;
    return {
      partition,
      messages: length - unacked,
      unacked,
      delayed: Number(value(2) ?? 0),
      deadLetterBacklog: Number(value(3) ?? 0),
      registrations,
      members,
      pendingBy: new Map(
        (pending?.[3] ?? []).map(([holder, count]): [string, number] => [holder, Number(count)]),
      ),
      owner:
        typeof owner === 'string' && Number(until) >= nowMs
          ? { consumer: owner, token: Number(token) }
          : undefined,
      totals: {
        published: appended - reappended,
        delivered: Math.max(0, appended - unread),
        acked,
        redelivered,
        deadLettered: Object.fromEntries(
          DEATH_REASONS.map((reason, i) => [reason, deaths[i] ?? 0]),
        ) as Record<DeathReason, number>,
        dropped,
      },
      oldestEntryMs: firstEntry ? Number(firstEntry[0].split('-')[0]) : undefined,
      nowMs,
    };
  }

  /** Removes every message that no consumer holds; unacked deliveries stay. Returns how many. */
  async purge(queue: string): Promise<number> {
    validateName('queue', queue);
    const partitions = partitionCount(await this.require(queue));
    const purged = await Promise.all(
      partitionNumbers(partitions).map(async (p) => {
        let count = 0;
        for (;;) {
          const deleted = await callScript(
            this.redis,
            PURGE,
            { stream: this.keys.queue(queue, p).stream },
            { group: CONSUMER_GROUP, count: PURGE_BATCH, holder: RELEASED_HOLDER },
          );
          if (deleted === 0) return count;
          count += deleted;
        }
      }),
    );
    return purged.reduce((total, count) => total + count, 0);
  }

  /**
   * Deletes every key of a queue whose record is gone, the last partition first: a removal
   * that is interrupted leaves partitions 0 to k, which {@link partitionsLeft} finds.
   */
  async remove(queue: string, partitions: number): Promise<void> {
    for (let p = partitions - 1; p >= 0; p--) {
      const keys = this.keys.queue(queue, p);
      // The fence goes with the stream: a producer still routing to the queue finds it missing
      // and writes nothing (a missing fence refuses, as a raised one does).
      await this.redis.unlink(
        keys.fence,
        keys.stream,
        keys.deadLetters,
        keys.delayed,
        keys.delayedEntries,
        keys.consumers,
        keys.owner,
        keys.members,
        keys.joined,
        keys.stats,
      );
      // Dedup slots are named by window, so they are found by pattern; left alone they would
      // make a new queue of the same name report duplicates until they expire.
      await unlinkMatching(this.redis, this.keys.dedupSlotPattern(queue, p));
      // Idempotency markers too: a new queue of the same name starts with no key done.
      await unlinkMatching(this.redis, this.keys.idempotencyPattern(queue, p));
    }
  }

  /**
   * How many partitions of a queue whose record is gone still have keys: partitions go from
   * the last, so those left are 0 to k (at least 1, for the keys of partition 0 besides its
   * stream and fence).
   */
  async partitionsLeft(queue: string): Promise<number> {
    let count = 1;
    while (count < MAX_PARTITIONS) {
      const keys = this.keys.queue(queue, count);
      if ((await this.redis.exists(keys.fence, keys.stream)) === 0) break;
      count++;
    }
    return count;
  }

  /** The queue's record; fails with NotFoundError unless `queue` is declared. */
  async require(queue: string): Promise<QueueRecord> {
    const record = await this.record(queue);
    if (record === undefined) throw new NotFoundError(`queue '${queue}' does not exist`);
    return record;
  }
}
