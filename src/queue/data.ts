import type { Redis } from 'ioredis';
import { unlinkMatching } from '../connection/connection.js';
import { PURGE } from '../connection/script-catalog.js';
import { callScript } from '../connection/scripts.js';
import { NotFoundError } from '../errors/index.js';
import { CONSUMER_GROUP, RELEASED_HOLDER, type Keyspace } from '../keys/index.js';
import { validateName } from '../validation/index.js';
import { ensureConsumerGroup } from './group.js';

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
}

const PURGE_BATCH = 1000;

/**
 * The data of queues, in each queue's own slot: its stream and consumer group, counts, purge,
 * and removing every key of a deleted queue. The queue records themselves are the topology's.
 */
export class QueueData {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    /** Whether a queue is declared (the topology's records). */
    private readonly exists: (queue: string) => Promise<boolean>,
  ) {}

  /** Creates the queue's stream and consumer group when they are missing. */
  async create(queue: string): Promise<void> {
    await ensureConsumerGroup(this.redis, this.keys.queue(queue).stream);
  }

  /**
   * Counts of a queue, like RabbitMQ's `queue.declare` passive reply and more: ready and
   * unacked messages, delayed retries, dead letters not yet routed, registered consumers.
   */
  async inspect(queue: string): Promise<QueueInfo> {
    validateName('queue', queue);
    await this.require(queue);
    return this.counts(queue);
  }

  /** The counts of {@link inspect}, read in one transaction; all 0 for a missing stream. */
  async counts(queue: string): Promise<QueueInfo> {
    const keys = this.keys.queue(queue);
    const replies = await this.redis
      .multi()
      .xlen(keys.stream)
      .xpending(keys.stream, CONSUMER_GROUP)
      .zcard(keys.delayed)
      .xlen(keys.deadLetters)
      .time()
      .zrange(keys.consumers, 0, -1, 'WITHSCORES')
      .exec();
    // A missing group (XPENDING / XINFO errors) means nothing is pending and no one consumes.
    const value = (index: number): unknown =>
      replies?.[index]?.[0] ? undefined : replies?.[index]?.[1];
    const length = Number(value(0) ?? 0);
    // Deliveries given back in place (pending for RELEASED_HOLDER) are ready, not unacked.
    const pending = value(1) as [number, unknown, unknown, [string, string][] | null] | undefined;
    const released = Number(pending?.[3]?.find(([holder]) => holder === RELEASED_HOLDER)?.[1] ?? 0);
    const unacked = Number(pending?.[0] ?? 0) - released;
    // Registrations by when their lease ends, against the server's clock.
    const [seconds, micros] = (value(4) as [string, string] | undefined) ?? ['0', '0'];
    const nowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const leases = (value(5) as string[] | undefined) ?? [];
    let consumers = 0;
    for (let i = 1; i < leases.length; i += 2) if (Number(leases[i]) >= nowMs) consumers++;
    return {
      name: queue,
      messages: length - unacked,
      unacked,
      delayed: Number(value(2) ?? 0),
      deadLetterBacklog: Number(value(3) ?? 0),
      consumers,
    };
  }

  /** Removes every message that no consumer holds; unacked deliveries stay. Returns how many. */
  async purge(queue: string): Promise<number> {
    validateName('queue', queue);
    await this.require(queue);
    let purged = 0;
    for (;;) {
      const deleted = await callScript(
        this.redis,
        PURGE,
        { stream: this.keys.queue(queue).stream },
        { group: CONSUMER_GROUP, count: PURGE_BATCH, holder: RELEASED_HOLDER },
      );
      if (deleted === 0) return purged;
      purged += deleted;
    }
  }

  /** Deletes every key of a queue whose record is gone. */
  async remove(queue: string): Promise<void> {
    const keys = this.keys.queue(queue);
    // The fence goes with the stream: a producer still routing to the queue finds it missing
    // and writes nothing (a missing fence refuses, as a raised one does).
    await this.redis.unlink(
      keys.fence,
      keys.stream,
      keys.deadLetters,
      keys.delayed,
      keys.delayedEntries,
      keys.consumers,
    );
    // Dedup slots are named by window, so they are found by pattern; left alone they would
    // make a new queue of the same name report duplicates until they expire.
    await unlinkMatching(this.redis, this.keys.dedupSlotPattern(queue));
    // Idempotency markers too: a new queue of the same name starts with no key done.
    await unlinkMatching(this.redis, this.keys.idempotencyPattern(queue));
  }

  /** Fails with NotFoundError unless `queue` is declared. */
  async require(queue: string): Promise<void> {
    if (!(await this.exists(queue))) throw new NotFoundError(`queue '${queue}' does not exist`);
  }
}
