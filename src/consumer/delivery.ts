import type { Envelope } from '../message/envelope.js';
import type { Headers } from '../topology/types.js';

/** Options of {@link Delivery.nack}. */
export interface NackOptions {
  /** Put the message back in the queue (default) or drop it (dead-letter it, when the queue has a DLX). */
  readonly requeue?: boolean;
}

/** How a delivery was settled, decided by the consumer that created it. */
export interface Settlement {
  ack(delivery: Delivery): Promise<void>;
  requeue(delivery: Delivery): Promise<void>;
  reject(delivery: Delivery): Promise<void>;
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
  /** How many times this message has been delivered, this delivery included. */
  readonly deliveryCount: number;
  /** True when an earlier delivery of this message was not acked. */
  readonly redelivered: boolean;
  private settlement: Promise<void> | undefined;

  constructor(
    readonly queue: string,
    /** The entry's id in the queue's stream. */
    readonly streamId: string,
    envelope: Envelope,
    readonly body: T,
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
    this.deliveryCount = envelope.redeliveries + 1;
    this.redelivered = this.deliveryCount > 1;
  }

  /** True once ack, nack or reject has been called. */
  get settled(): boolean {
    return this.settlement !== undefined;
  }

  /** Acknowledges the message: it is removed from the queue. */
  ack(): Promise<void> {
    return this.settle(() => this.settler.ack(this));
  }

  /** Negative acknowledgement: requeue (default) or drop/dead-letter with `{ requeue: false }`. */
  nack(options: NackOptions = {}): Promise<void> {
    return this.settle(() =>
      options.requeue === false ? this.settler.reject(this) : this.settler.requeue(this),
    );
  }

  /** Rejects the message without requeue: it is dead-lettered with reason `rejected`, or dropped. */
  reject(): Promise<void> {
    return this.settle(() => this.settler.reject(this));
  }

  private settle(action: () => Promise<void>): Promise<void> {
    // A second settlement is a no-op that reports the first one's outcome.
    this.settlement ??= action();
    return this.settlement;
  }
}
