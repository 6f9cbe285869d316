/**
 * Settlement: what an ack, nack, reject or extend of a delivery does in Redis. The plain
 * strategy here acks ownership-checked, coalescing the acks of one tick into one script call;
 * an idempotent consumer replaces it with one that records a done marker with the ack.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { StaleDeliveryError, type SluiceError } from '../errors/index.js';
import type { DeathReason } from '../message/death-history.js';
import type { QueueKeys } from '../keys/index.js';
import { ackOwned, extendOwned, requeueOwned } from './scripts.js';
import type { Delivery } from './types.js';

/** How the consumer's deliveries are settled. Each method checks that the consumer owns it. */
export interface Settlement {
  ack(delivery: Delivery): Promise<void>;
  /** The ack after a handler resolved: shares its flush's promise, which never rejects. */
  autoAck(delivery: Delivery): Promise<void>;
  /** Back to the queue now, or after `delayMs`; `counted` raises its delivery count. */
  requeue(delivery: Delivery, delayMs: number, counted: boolean): Promise<void>;
  /** Dead-lettered with reason `rejected`; resolves once it is in the outbox. */
  reject(delivery: Delivery): Promise<void>;
  extend(delivery: Delivery): Promise<void>;
  /** Resolves once every settlement sent so far has been answered or has passed its deadline. */
  idle(): Promise<void>;
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
  readonly redis: Redis;
  readonly queue: string;
  readonly keys: QueueKeys;
  readonly consumerName: string;
  readonly counts: SettlementCounts;
  /** How many deliveries the consumer holds unsettled (bounds the ack script's scan). */
  held(): number;
  /** The delivery no longer counts against the prefetch: its settlement was sent. */
  released(delivery: Delivery): void;
  /** Moves an owned entry to the outbox; false when it was not owned. */
  deadLetter(streamId: string, messageId: string, reason: DeathReason): Promise<boolean>;
  /** A failure nobody awaits (an automatic ack's). */
  report(error: SluiceError): void;
}

/** An ack waiting for its flush; automatic acks have no promise of their own. */
interface PendingAck {
  readonly delivery: Delivery;
  readonly resolve?: () => void;
  readonly reject?: (error: unknown) => void;
}

/** Lowest and highest of stream ids (`<ms>-<seq>`), compared as numbers. */
function idRange(ids: readonly string[]): [string, string] {
  const parse = (id: string): [number, number] => {
    const dash = id.indexOf('-');
    return [Number(id.slice(0, dash)), Number(id.slice(dash + 1))];
  };
  const before = (a: [number, number], b: [number, number]): boolean =>
    a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  let lowest = ids[0] as string;
  let highest = lowest;
  let low = parse(lowest);
  let high = low;
  for (const id of ids) {
    const parsed = parse(id);
    if (before(parsed, low)) [lowest, low] = [id, parsed];
    if (before(high, parsed)) [highest, high] = [id, parsed];
  }
  return [lowest, highest];
}

/** A promise with its resolve function, for the automatic acks of one flush. */
interface Flushed {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

function flushed(): Flushed {
  let resolve: () => void = () => undefined;
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
  private acks: PendingAck[] = [];
  private ackScheduled = false;
  /** Resolved when the pending flush is answered: what automatic acks wait for. */
  private flush: Flushed | undefined;
  /** Settlement calls sent and not yet answered (nor past their deadline). */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly context: SettlementContext) {}

  ack(delivery: Delivery): Promise<void> {
    return new Promise<void>((resolve, reject) => this.queueAck({ delivery, resolve, reject }));
  }

  autoAck(delivery: Delivery): Promise<void> {
    this.queueAck({ delivery });
    this.flush ??= flushed();
    return this.flush.promise;
  }

  private queueAck(pending: PendingAck): void {
    this.acks.push(pending);
    this.context.released(pending.delivery);
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    // All acks of this tick go in one script call.
    process.nextTick(() => void this.track(this.flushAcks()));
  }

  /** Sends the acks of this tick; never rejects (each ack's own promise does). */
  private async flushAcks(): Promise<void> {
    this.ackScheduled = false;
    const batch = this.acks;
    const done = this.flush;
    this.acks = [];
    this.flush = undefined;
    try {
      const ids = batch.map((pending) => pending.delivery.streamId);
      const [lowestId, highestId] = idRange(ids);
      const limit = ids.length + this.context.held() + ACK_SCAN_SLACK;
      const { redis, keys, consumerName: consumer } = this.context;
      const acked = await ackOwned(redis, keys, { consumer, lowestId, highestId, limit, ids });
      batch.forEach((pending, i) => {
        if (acked === true || acked[i] === true) {
          this.context.counts.acked++;
          pending.resolve?.();
        } else {
          pending.reject?.(this.stale(pending.delivery));
        }
      });
    } catch (error) {
      const failure = error as SluiceError;
      for (const pending of batch) pending.reject?.(failure);
      if (batch.some((pending) => pending.reject === undefined)) this.context.report(failure);
    } finally {
      done?.resolve();
    }
  }

  async requeue(delivery: Delivery, delayMs: number, counted: boolean): Promise<void> {
    const dueAtMs = delayMs > 0 ? Date.now() + delayMs : 0;
    const { redis, keys, consumerName: consumer } = this.context;
    const call = requeueOwned(redis, keys, {
      consumer,
      id: delivery.streamId,
      dueAtMs,
      retryId: randomUUID(),
      counted,
    });
    this.context.released(delivery);
    if (!(await this.track(call))) throw this.stale(delivery);
    if (dueAtMs > 0) this.context.counts.delayed++;
    else this.context.counts.requeued++;
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
    while (this.ackScheduled || this.inFlight.size > 0) {
      if (this.ackScheduled) await new Promise((resolve) => process.nextTick(resolve));
      else await Promise.allSettled([...this.inFlight]);
    }
  }

  /** Keeps `call` in {@link inFlight} until it settles. */
  private track<R>(call: Promise<R>): Promise<R> {
    this.inFlight.add(call);
    const untrack = (): void => void this.inFlight.delete(call);
    call.then(untrack, untrack);
    return call;
  }

  private stale(delivery: Delivery): StaleDeliveryError {
    this.context.counts.stale++;
    return new StaleDeliveryError(
      `delivery ${delivery.streamId} of queue '${this.context.queue}' is no longer owned by this consumer`,
    );
  }
}
