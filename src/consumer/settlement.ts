/**
 * Settlement: what an ack, nack, reject or extend of a delivery does in Redis. The plain
 * strategy here acks ownership-checked, coalescing the acks of one tick into one script call;
 * an idempotent consumer replaces it with one that records a done marker with the ack.
 */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../connection/client.js';
import { StaleDeliveryError, type SluiceError } from '../errors/index.js';
import type { DeathReason } from '../message/death-history.js';
import type { QueueKeys } from '../keys/index.js';
import { ackOwned, extendOwned, releaseOwned, requeueOwned } from './scripts.js';
import { idRange } from './stream-ids.js';
import type { Delivery } from './types.js';

/** How the consumer's deliveries are settled. Each method checks that the consumer owns it. */
export interface Settlement {
  ack(delivery: Delivery): Promise<void>;
  /** The ack after a handler resolved: shares its flush's promise, which never rejects. */
  autoAck(delivery: Delivery): Promise<void>;
  /**
   * Back to the tail of the queue now, or after `delayMs`, its delivery count raised; with
   * `lastError` (an error record's stored form) when a handler's failure sends it back.
   */
  requeue(delivery: Delivery, delayMs: number, lastError?: string): Promise<void>;
  /**
   * Gives back the deliveries of a consumer that closes, in place: they keep their place in
   * the queue, ahead of newer messages, and the next reclaim of any consumer takes them over.
   * `counted` false for deliveries never handed to a handler (a takeover does not count them).
   */
  giveBack(deliveries: readonly Delivery[], counted: boolean): Promise<void>;
  /** Dead-lettered with reason `rejected`; resolves once it is in the outbox. */
  reject(delivery: Delivery): Promise<void>;
  extend(delivery: Delivery): Promise<void>;
  /** Resolves once every settlement sent so far has been answered or has passed its deadline. */
  idle(): Promise<void>;
  /** Counts a delivery that is no longer this consumer's, and the error that says so. */
  stale(delivery: Delivery): StaleDeliveryError;
}

/** Counters that settlements raise (a part of the consumer's stats). */
export interface SettlementCounts {
  acked: number;
  requeued: number;
  delayed: number;
  rejected: number;
  stale: number;
}

/** What the plain settlement needs from its consumer. */
export interface SettlementContext {
  readonly redis: RedisClient;
  readonly queue: string;
  readonly keys: QueueKeys;
  readonly consumerName: string;
  /** An ordered consumer's fencing token for the partition: acks are refused once deposed. */
  readonly token: number | undefined;
  readonly counts: SettlementCounts;
  /** How many deliveries the consumer holds unsettled (bounds the ack script's scan). */
  held(): number;
  /**
   * The most deliveries the queue allows a message: a requeue of the last one is no retry
   * (the next read dead-letters it), and is not counted as `redelivered`.
   */
  deliveryLimit(): number;
  /** The delivery no longer counts against the prefetch: its settlement was sent. */
  released(delivery: Delivery): void;
  /** Moves an owned entry to the outbox; false when it was not owned. */
  deadLetter(streamId: string, messageId: string, reason: DeathReason): Promise<boolean>;
  /** A failure nobody awaits (an automatic ack's). */
  report(error: SluiceError): void;
  /** Automatic acks that failed (not as stale): an ordered consumer sends them again. */
  readonly autoAckFailed?: (deliveries: readonly Delivery[]) => void;
}

/** The promise of a manual ack; automatic acks have none of their own. */
interface AckWaiter {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** A flush of one tick's acks: resolved once it is answered; what automatic acks wait for. */
interface Flush {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

function unresolved(): void {
  // Replaced by the promise's own resolve at once; a module function, so no closure per flush.
}

function newFlush(): Flush {
  let resolve: () => void = unresolved;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

/** Slack for the ack script's XPENDING: entries reclaimed into this consumer not yet read. */
const ACK_SCAN_SLACK = 16;

/**
 * Plain ownership-checked settlement. As with AMQP's basic.ack, a delivery stops counting
 * against the prefetch once its settlement is sent, so the next read overlaps the round trip.
 */
export class PlainSettlement implements Settlement {
  /** The acks of this tick, and beside each its manual ack's promise (undefined: automatic). */
  private ackDeliveries: Delivery[] = [];
  private ackWaiters: (AckWaiter | undefined)[] = [];
  /** The flush scheduled for this tick's acks, until it is sent. */
  private scheduled: Flush | undefined;
  /** Flushes sent and not yet answered (nor past their deadline). */
  private readonly flushing = new Set<Flush>();
  /** Other settlement calls sent and not yet answered (nor past their deadline). */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Sends the scheduled flush (one function for every tick, not a closure per tick). */
  private readonly sendScheduled = (): void => void this.flushAcks();

  constructor(private readonly context: SettlementContext) {}

  ack(delivery: Delivery): Promise<void> {
    return new Promise<void>((resolve, reject) => this.queueAck(delivery, { resolve, reject }));
  }

  autoAck(delivery: Delivery): Promise<void> {
    return this.queueAck(delivery, undefined).promise;
  }

  private queueAck(delivery: Delivery, waiter: AckWaiter | undefined): Flush {
    this.ackDeliveries.push(delivery);
    this.ackWaiters.push(waiter);
    this.context.released(delivery);
    let flush = this.scheduled;
    if (flush === undefined) {
      flush = newFlush();
      this.scheduled = flush;
      // All acks of this tick go in one script call.
      process.nextTick(this.sendScheduled);
    }
    return flush;
  }

  /** Sends the acks of this tick; never rejects (each manual ack's own promise does). */
  private async flushAcks(): Promise<void> {
    const flush = this.scheduled as Flush;
    const deliveries = this.ackDeliveries;
    const waiters = this.ackWaiters;
    this.scheduled = undefined;
    this.ackDeliveries = [];
    this.ackWaiters = [];
    this.flushing.add(flush);
    try {
      const ids = deliveries.map((delivery) => delivery.streamId);
      const { lowestId, highestId } = idRange(ids);
      const limit = ids.length + this.context.held() + ACK_SCAN_SLACK;
      const { redis, keys, consumerName: consumer, counts, token } = this.context;
      const acked = await ackOwned(redis, keys, {
        consumer,
        lowestId,
        highestId,
        limit,
        token,
        ids,
      });
      for (let i = 0; i < deliveries.length; i++) {
        const waiter = waiters[i];
        const outcome = acked === true ? 'acked' : acked[i];
        if (outcome === 'acked') counts.acked++;
        // Settled already: an earlier send of this same ack was applied and its reply lost.
        if (outcome === 'acked' || outcome === 'settled') {
          waiter?.resolve();
        } else {
          const stale = this.stale(deliveries[i] as Delivery);
          waiter?.reject(stale);
        }
      }
    } catch (error) {
      const failure = error as SluiceError;
      const automatic: Delivery[] = [];
      waiters.forEach((waiter, i) => {
        if (waiter === undefined) automatic.push(deliveries[i] as Delivery);
        else waiter.reject(failure);
      });
      if (automatic.length > 0) {
        this.context.report(failure);
        this.context.autoAckFailed?.(automatic);
      }
    } finally {
      this.flushing.delete(flush);
      flush.resolve();
    }
  }

  async requeue(delivery: Delivery, delayMs: number, lastError?: string): Promise<void> {
    const dueAtMs = delayMs > 0 ? Date.now() + delayMs : 0;
    const { redis, keys, consumerName: consumer } = this.context;
    const call = requeueOwned(redis, keys, {
      consumer,
      id: delivery.streamId,
      dueAtMs,
      retryId: randomUUID(),
      lastError,
      retry: delivery.deliveryCount < this.context.deliveryLimit(),
    });
    this.context.released(delivery);
    if (!(await this.track(call))) throw this.stale(delivery);
    if (dueAtMs > 0) this.context.counts.delayed++;
    else this.context.counts.requeued++;
  }

  async giveBack(deliveries: readonly Delivery[], counted: boolean): Promise<void> {
    if (deliveries.length === 0) return;
    const { redis, keys, consumerName: consumer } = this.context;
    const ids = deliveries.map((delivery) => delivery.streamId);
    const call = releaseOwned(redis, keys, { consumer, counted, ids });
    for (const delivery of deliveries) this.context.released(delivery);
    await this.track(call);
  }

  async reject(delivery: Delivery): Promise<void> {
    const call = this.context.deadLetter(delivery.streamId, delivery.messageId, 'rejected');
    this.context.released(delivery);
    if (!(await this.track(call))) throw this.stale(delivery);
    this.context.counts.rejected++;
  }

  async extend(delivery: Delivery): Promise<void> {
    const { redis, keys, consumerName: consumer } = this.context;
    const [extended] = await this.track(
      extendOwned(redis, keys, { consumer, ids: [delivery.streamId] }),
    );
    if (extended !== true) throw this.stale(delivery);
  }

  async idle(): Promise<void> {
    while (this.scheduled !== undefined || this.flushing.size > 0 || this.inFlight.size > 0) {
      if (this.scheduled !== undefined) {
        await new Promise((resolve) => process.nextTick(resolve));
      } else {
        const flushes = [...this.flushing].map((flush) => flush.promise);
        await Promise.allSettled([...flushes, ...this.inFlight]);
      }
    }
  }

  /** Keeps `call` in {@link inFlight} until it settles. */
  private track<R>(call: Promise<R>): Promise<R> {
    this.inFlight.add(call);
    const untrack = (): void => void this.inFlight.delete(call);
    call.then(untrack, untrack);
    return call;
  }

  stale(delivery: Delivery): StaleDeliveryError {
    this.context.counts.stale++;
    return new StaleDeliveryError(
      `delivery ${delivery.streamId} of queue '${this.context.queue}' is no longer owned by this consumer`,
    );
  }
}
