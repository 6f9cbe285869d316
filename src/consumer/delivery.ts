import type { DeathHistory } from '../dead-letter/death.js';
import { InvalidArgumentError } from '../errors/index.js';
import type { Envelope } from '../message/envelope.js';
import type { Headers } from '../topology/types.js';
import { validateIntegerOption, validateOptionsObject } from '../validation/index.js';

/** Options of {@link Delivery.nack}. */
export interface NackOptions {
  /**
   * Put the message back in the queue (default), or, with `false`, dead-letter it with
   * reason `rejected` (dropped when the queue has no dead-letter exchange).
   */
  readonly requeue?: boolean;
  /** Requeue after this delay instead of at once (a delayed retry). */
  readonly delayMs?: number;
}

/** The longest delay of a delayed retry: 30 days. */
export const MAX_DELAY_MS = 30 * 86_400_000;

/** What the consumer does when a delivery is settled. */
export interface Settlement {
  ack(delivery: Delivery): Promise<void>;
  autoAck(delivery: Delivery): Promise<void>;
  requeue(delivery: Delivery, delayMs: number): Promise<void>;
  reject(delivery: Delivery): Promise<void>;
  extend(delivery: Delivery): Promise<void>;
}

/**
 * One message handed to a consumer. Settle it exactly once with {@link ack},
 * {@link nack} or {@link reject}; in automatic mode the consumer does it for you.
 */
export class Delivery<T = unknown> {
  readonly messageId: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly headers: Headers;
  readonly contentType: string;
  readonly correlationId: string | undefined;
  readonly expirationMs: number | undefined;
  /** Publish time, milliseconds since the epoch. */
  readonly publishedAt: number;
  /** True when an earlier delivery of this message was not acked. */
  readonly redelivered: boolean;
  /** Set when the message was dead-lettered before: its death records, first and last death. */
  readonly deathHistory: DeathHistory | undefined;
  private settlement: Promise<void> | undefined;

  constructor(
    readonly queue: string,
    /** The entry's id in the queue's stream. */
    readonly streamId: string,
    envelope: Envelope,
    readonly body: T,
    /** How many times this message has been delivered, this delivery included. */
    readonly deliveryCount: number,
    private readonly settler: Settlement,
  ) {
    this.messageId = envelope.messageId;
    this.exchange = envelope.exchange;
    this.routingKey = envelope.routingKey;
    this.headers = envelope.headers;
    this.contentType = envelope.contentType;
    this.correlationId = envelope.correlationId;
    this.expirationMs = envelope.expirationMs;
    this.publishedAt = envelope.publishedAt;
    this.deathHistory = envelope.deathHistory;
    this.redelivered = deliveryCount > 1;
  }

  /** True once ack, nack or reject has been called. */
  get settled(): boolean {
    return this.settlement !== undefined;
  }

  /** Acknowledges the message: it is removed from the queue. */
  ack(): Promise<void> {
    return this.settle(() => this.settler.ack(this));
  }

  /**
   * The consumer's automatic ack after a handler resolved: like {@link ack}, but the promise
   * is shared by all acks of one flush and does not reject (a stale delivery is counted in
   * the consumer's stats instead). Called by the consumer; use {@link ack} in handlers.
   */
  ackAutomatically(): void {
    this.settlement ??= this.settler.autoAck(this);
  }

  /** Negative acknowledgement: requeue (default, optionally after `delayMs`) or dead-letter. */
  async nack(options: NackOptions = {}): Promise<void> {
    validateOptionsObject('nack options', options);
    validateIntegerOption('delayMs', options.delayMs, 0, MAX_DELAY_MS);
    if (options.requeue === false && options.delayMs !== undefined) {
      throw new InvalidArgumentError(
        'delayMs requeues the message; it cannot go with requeue: false',
      );
    }
    return this.settle(() =>
      options.requeue === false
        ? this.settler.reject(this)
        : this.settler.requeue(this, options.delayMs ?? 0),
    );
  }

  /** Rejects the message: dead-lettered with reason `rejected`, or dropped without a DLX. */
  reject(): Promise<void> {
    return this.settle(() => this.settler.reject(this));
  }

  /**
   * Renews the lease now, so the delivery is not reclaimed for another `ackTimeoutMs`.
   * The consumer also does this by itself while the delivery is unsettled.
   */
  extend(): Promise<void> {
    return this.settler.extend(this);
  }

  private settle(action: () => Promise<void>): Promise<void> {
    // A second settlement is a no-op that reports the first one's outcome.
    this.settlement ??= action();
    return this.settlement;
  }
}
