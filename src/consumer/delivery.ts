import type { DeathHistory } from '../message/death-history.js';
import { InvalidArgumentError, PreconditionFailedError } from '../errors/index.js';
import type { Envelope } from '../message/envelope.js';
import type { Headers } from '../message/headers.js';
import {
  optionNames,
  validateBooleanOption,
  validateIntegerOption,
  validateOptionsObject,
} from '../validation/index.js';
import type { RedisWrites } from './redis-writes.js';
import type { Settlement } from './settlement.js';
import type { Delivery, NackOptions } from './types.js';

/** The longest delay of a delayed retry: 30 days. */
export const MAX_DELAY_MS = 30 * 86_400_000;

const NACK_OPTIONS = optionNames<NackOptions>({ requeue: true, delayMs: true });

function ignore(): void {
  // A settlement's outcome is its caller's business; this only waits for it.
}

/** The three ways a delivery can be settled; `nack({ requeue: false })` is a reject. */
type SettledAs = 'ack' | 'requeue' | 'reject';

/**
 * The implementation of {@link Delivery}: the message's fields, and settle-once bookkeeping
 * in front of the consumer's {@link Settlement}. Calling the same settlement again returns
 * the first call's outcome; a different one is refused.
 */
export class DeliveryImpl<T = unknown> implements Delivery<T> {
  readonly messageId: string;
  readonly dedupKey: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly headers: Headers;
  readonly contentType: string;
  readonly correlationId: string | undefined;
  readonly expirationMs: number | undefined;
  readonly publishedAt: number;
  readonly redelivered: boolean;
  readonly deathHistory: DeathHistory | undefined;
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  readonly partitionKey: string;
  /** Not handed to the handler after all (an idempotent consumer's duplicate). */
  skipped = false;
  /**
   * Ordered consumers with `onPoison: 'halt'`: past the delivery limit, kept at its key's head
   * without running the handler.
   */
  halted = false;
  /** An idempotent consumer's recorded writes for this delivery, once it holds its key. */
  tx: RedisWrites | undefined;
  private settledAs: SettledAs | undefined;
  private settlement: Promise<void> | undefined;

  constructor(
    readonly queue: string,
    readonly partition: number,
    readonly fencingToken: number | undefined,
    readonly streamId: string,
    envelope: Envelope,
    readonly body: T,
    readonly deliveryCount: number,
    /** How it is settled: its partition's settlement. */
    readonly settler: Settlement,
  ) {
    this.messageId = envelope.messageId;
    this.dedupKey = envelope.dedupKey ?? envelope.messageId;
    this.exchange = envelope.exchange;
    this.routingKey = envelope.routingKey;
    this.partitionKey = envelope.partitionKey ?? envelope.routingKey;
    this.headers = envelope.headers;
    this.contentType = envelope.contentType;
    this.correlationId = envelope.correlationId;
    this.expirationMs = envelope.expirationMs;
    this.publishedAt = envelope.publishedAt;
    this.deathHistory = envelope.deathHistory;
    this.traceparent = envelope.traceparent;
    this.tracestate = envelope.tracestate;
    this.redelivered = deliveryCount > 1;
  }

  /**
   * Settled by a script of the consumer's own (an idempotent consumer acked a duplicate, or
   * found the delivery taken over): a settlement called now returns at once, as after an ack.
   */
  /** Settles as an ack through `action` (an idempotent consumer's commit). */
  settleWith(action: () => Promise<void>): Promise<void> {
    return this.settle('ack', action);
  }

  settledElsewhere(): void {
    this.skipped = true;
    this.settledAs = 'ack';
    this.settlement = Promise.resolve();
  }

  get settled(): boolean {
    return this.settledAs !== undefined;
  }

  /** Resolves once its settlement (if any) is done, whatever its outcome. */
  whenSettled(): Promise<void> {
    return (this.settlement ?? Promise.resolve()).then(ignore, ignore);
  }

  /** How it was settled, if it was. */
  get outcome(): SettledAs | undefined {
    return this.settledAs;
  }

  ack(): Promise<void> {
    return this.settle('ack', () => this.settler.ack(this));
  }

  /**
   * The consumer's ack after a handler resolved without settling: its promise is shared by
   * all acks of one flush and never rejects (the consumer counts and reports failures).
   */
  ackAutomatically(): void {
    if (this.settledAs !== undefined) return;
    this.settledAs = 'ack';
    this.settlement = this.settler.autoAck(this);
  }

  async nack(options: NackOptions = {}): Promise<void> {
    validateOptionsObject('nack options', options, NACK_OPTIONS);
    validateBooleanOption('requeue', options.requeue);
    validateIntegerOption('delayMs', options.delayMs, 0, MAX_DELAY_MS);
    if (options.requeue === false && options.delayMs !== undefined) {
      throw new InvalidArgumentError(
        'delayMs requeues the message; it cannot go with requeue: false',
      );
    }
    if (options.requeue === false) return this.reject();
    return this.settle('requeue', () => this.settler.requeue(this, options.delayMs ?? 0));
  }

  /**
   * The consumer's requeue after the handler threw: a nack after `delayMs` (from the retry
   * policy, within what nack accepts), with the handler's error recorded in the entry
   * (`lastError`, an error record's stored form) for the death record, should the message be
   * dead-lettered.
   */
  requeueAfterFailure(delayMs: number, lastError: string): Promise<void> {
    return this.settle('requeue', () => this.settler.requeue(this, delayMs, lastError));
  }

  reject(): Promise<void> {
    return this.settle('reject', () => this.settler.reject(this));
  }

  extend(): Promise<void> {
    return this.settler.extend(this);
  }

  private settle(as: SettledAs, action: () => Promise<void>): Promise<void> {
    if (this.settledAs === undefined) {
      this.settledAs = as;
      this.settlement = action();
    }
    if (this.settledAs === as) return this.settlement as Promise<void>;
    return Promise.reject(
      new PreconditionFailedError(
        `delivery ${this.streamId} of queue '${this.queue}' was already settled with ` +
          `${this.settledAs}; it cannot also be settled with ${as}`,
      ),
    );
  }
}
