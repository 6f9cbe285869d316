/**
 * The public face of consuming: what a handler receives, what `consume()` and `messages()`
 * hand back, their options and events. Interfaces only; the implementations are internal.
 */
import type { DeathReason } from '../message/death-history.js';
import type { MessageProperties } from '../message/properties.js';
import type { IdempotencyContext, IdempotencyOptions } from './idempotency.js';
import type { RedisWrites } from './redis-writes.js';
import type { SluiceError } from '../errors/index.js';
import type { RetryPolicy } from './retry.js';

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

/**
 * One message handed to a consumer. Settle it once with {@link Delivery.ack},
 * {@link Delivery.nack} or {@link Delivery.reject}; in automatic mode the consumer does it.
 * Every settlement rejects only with a `SluiceError`, within `SETTLEMENT_TIMEOUT_MS`.
 */
export interface Delivery<T = unknown> extends MessageProperties {
  /** The queue it was read from. */
  readonly queue: string;
  /** The queue's partition it was read from (0 for a queue of one partition). */
  readonly partition: number;
  /** The key that picked its partition: the publish's `partitionKey`, else its routing key. */
  readonly partitionKey: string;
  /**
   * An ordered consumer's fencing token for the partition: it grows with every change of
   * owner, so a target that remembers the highest token it saw can refuse a write from a
   * deposed owner. Undefined for a consumer that is not ordered.
   */
  readonly fencingToken: number | undefined;
  readonly correlationId: string | undefined;
  readonly expirationMs: number | undefined;
  /** The body, decoded by the client's codec. */
  readonly body: T;
  /** How many times this message has been delivered, this delivery included. */
  readonly deliveryCount: number;
  /** True when an earlier delivery of this message was not acked. */
  readonly redelivered: boolean;
  /** True once ack, nack or reject has been called. */
  readonly settled: boolean;
  /** Acknowledges the message: it is removed from the queue. */
  ack(): Promise<void>;
  /** Negative acknowledgement: requeue (default, optionally after `delayMs`) or dead-letter. */
  nack(options?: NackOptions): Promise<void>;
  /**
   * Rejects the message: dead-lettered with reason `rejected` (dropped without a dead-letter
   * exchange). Resolves once it is in the queue's dead-letter outbox; it is routed from there
   * to the dead-letter exchange right after.
   */
  reject(): Promise<void>;
  /**
   * Renews the lease now, so the delivery is not reclaimed for another `ackTimeoutMs`.
   * The consumer also does this by itself while the delivery is unsettled.
   */
  extend(): Promise<void>;
}

/**
 * A message handler; resolving acks the delivery, throwing retries it after the consumer's
 * `retry` backoff (until the queue's `maxDeliveries` dead-letters it).
 */
export type Handler<T = unknown> = (delivery: Delivery<T>) => Promise<void> | void;

/** Options of a consumer. */
export interface ConsumeOptions {
  /** Most deliveries held unsettled at once (RabbitMQ's basic.qos prefetch). Default 100. */
  readonly prefetch?: number;
  /** Most handlers running at once (handler form only). Default 1. */
  readonly concurrency?: number;
  /**
   * The backoff before a message whose handler threw is delivered again (handler form). Default:
   * 1 s, doubling up to 5 minutes, ± 20 % (fields left out take these values); `false`
   * requeues it at once, at the tail of the queue.
   */
  readonly retry?: RetryPolicy | false;
  /**
   * Per-key ordering (handler form; see docs/ordering.md): each partition of the queue has one
   * owner among the queue's ordered consumers at a time, and within it messages of one
   * partition key are handled one at a time, in publish order, while different keys run in
   * parallel up to `concurrency`. A failing message is retried in place, holding back only its
   * key. Default false; a queue declared with `singleActiveConsumer` is always consumed so.
   */
  readonly ordered?: boolean;
  /**
   * Ordered consumers: what a message past the queue's `maxDeliveries` does to its key.
   * `'dead-letter'` (default) dead-letters it (`delivery_limit`) and the key moves on;
   * `'halt'` keeps it, the key stays blocked, and the consumer emits `key.halted`.
   */
  readonly onPoison?: 'dead-letter' | 'halt';
}

/** Options of an idempotent consumer: {@link ConsumeOptions} and `idempotency`. */
export interface IdempotentConsumeOptions<C = IdempotencyContext> extends ConsumeOptions {
  /** Run the handler once per idempotency key (see docs/idempotency.md). */
  readonly idempotency: IdempotencyOptions<C>;
}

/** Options of {@link Consumer.close}. */
export interface CloseOptions {
  /**
   * How long in-flight deliveries may take to finish (0 to 2 147 483 647 ms); the rest go
   * back to the queue. Default 30 000.
   */
  readonly timeoutMs?: number;
}

/** Counters of one consumer, as a snapshot taken when read. */
export interface ConsumerStats {
  readonly delivered: number;
  readonly acked: number;
  readonly requeued: number;
  /** Requeued with a delay (parked in the delayed set). */
  readonly delayed: number;
  readonly rejected: number;
  /** Entries taken over from consumers that left them unacked past the ack timeout. */
  readonly reclaimed: number;
  /** Moved to the dead-letter outbox, by reason (not counting `rejected` settlements). */
  readonly deadLettered: Readonly<Record<DeathReason, number>>;
  /** Settlements refused because the delivery was no longer owned by this consumer. */
  readonly stale: number;
  /** Handlers that threw. */
  readonly handlerErrors: number;
  /**
   * Deliveries an idempotent consumer acked without running the handler, their key done
   * already (counted in `acked` too).
   */
  readonly duplicates: number;
}

/** What the events of a delivery that reached the handler say about it. */
export interface DeliveryEvent<T = unknown> {
  readonly queue: string;
  readonly streamId: string;
  readonly messageId: string;
  /** The delivery itself, for logs that want its headers or body. */
  readonly delivery: Delivery<T>;
}

/** What the events of an entry that did not reach a handler say about it. */
export interface EntryEvent {
  readonly queue: string;
  readonly streamId: string;
  /** Undefined for an entry that is not a readable sluice message. */
  readonly messageId: string | undefined;
}

/**
 * Events of a consumer, for metrics and logs, by name. Payloads are built only when the event
 * has a listener; a listener that throws does not disturb the consumer or other listeners.
 */
export interface ConsumerEvents<T = unknown> {
  /** A handler resolved, `durationMs` after it was called. */
  'delivery.handled': DeliveryEvent<T> & { readonly durationMs: number };
  /**
   * A handler threw or rejected with `error` (every time it does); the delivery is retried
   * (after the `retry` backoff) unless the handler settled it.
   */
  'delivery.failed': DeliveryEvent<T> & { readonly durationMs: number; readonly error: unknown };
  /**
   * An entry went to the queue's dead-letter outbox: rejected by the application, or refused
   * before reaching a handler (`poison`, `delivery_limit`, `expired`).
   */
  'delivery.deadLettered': EntryEvent & {
    readonly reason: DeathReason;
    /**
     * True when the queue has no dead-letter exchange: the message is dropped (counted in the
     * queue's `stats().totals.dropped`), not routed anywhere. A dead-letter exchange that routes
     * it to no queue drops it too, later, at the relay: only `totals.dropped` shows that.
     */
    readonly dropped: boolean;
  };
  /**
   * An idempotent consumer met a delivery whose key was done already: it was acked without
   * running the handler.
   */
  'delivery.duplicate': DeliveryEvent<T>;
  /** An entry another consumer had left unacked past the ack timeout was taken over. */
  'delivery.reclaimed': EntryEvent & {
    /** Deliveries of this entry so far, the takeover included. */
    readonly timesDelivered: number;
  };
  /** The consumer's reading connection to Redis was lost; it reconnects by itself. */
  'connection.lost': { readonly queue: string; readonly error: SluiceError };
  /** The reading connection is back, `downtimeMs` after it was lost; reading resumes. */
  'connection.restored': { readonly queue: string; readonly downtimeMs: number };
  /**
   * Reading, maintenance (lease renewal, reclaim, delayed retries, dead-letter routing) or an
   * automatic settlement failed; the consumer carries on and retries by itself.
   */
  readError: SluiceError;
  /** The stream or consumer group had disappeared (the queue had not) and was created again. */
  groupRecreated: { readonly queue: string };
  /**
   * The queue was deleted (as RabbitMQ's basic.cancel): the consumer stops reading and closes
   * by itself, and a `messages()` loop ends. Deliveries it held can no longer be settled.
   */
  cancelled: { readonly queue: string };
  /**
   * An ordered consumer became the owner of a partition, under fencing token `token`: it
   * handles what the previous owner left pending first.
   */
  'partition.assigned': {
    readonly queue: string;
    readonly partition: number;
    readonly token: number;
  };
  /**
   * An ordered consumer stopped owning a partition: `rebalanced` (handed over to another
   * consumer after its handlers finished), `lost` (its lease ended before it could renew it:
   * what it held is another's now, and its settlements fail with StaleDeliveryError) or
   * `closed`.
   */
  'partition.revoked': {
    readonly queue: string;
    readonly partition: number;
    readonly reason: 'rebalanced' | 'lost' | 'closed';
  };
  /**
   * With `onPoison: 'halt'`: a message reached the queue's delivery limit and stays; its key
   * is held back until the consumer closes or the partition moves (the next owner tries it
   * again). Other keys go on.
   */
  'key.halted': EntryEvent & {
    readonly partition: number;
    readonly key: string;
    readonly deliveryCount: number;
  };
}

/** The name of a consumer event. */
export type ConsumerEventName = keyof ConsumerEvents;

/** A listener of consumer event `K`. */
export type ConsumerListener<K extends ConsumerEventName, T = unknown> = (
  event: ConsumerEvents<T>[K],
) => void;

/**
 * A running consumer of one queue, as `consume()` returns it. It reads until closed; `T` is
 * the body type of its deliveries.
 */
export interface Consumer<T = unknown> {
  /** The queue it consumes. */
  readonly queue: string;
  /**
   * Its name in the queue's consumer group, unique per consumer: what `inspectQueue()`'s
   * `consumerDetails`, `sluice queue inspect` and the dashboard list it by.
   */
  readonly name: string;
  /** Its counters, as a snapshot taken now. */
  readonly stats: ConsumerStats;
  /** Adds a listener of event `name`. */
  on<K extends ConsumerEventName>(name: K, listener: ConsumerListener<K, T>): this;
  /** Removes a listener added with {@link Consumer.on}. */
  off<K extends ConsumerEventName>(name: K, listener: ConsumerListener<K, T>): this;
  /**
   * Graceful shutdown: stop reading, let in-flight deliveries finish and settle (up to
   * `timeoutMs`), then release the connection. What a handler has not settled by then goes
   * back to the queue in its place, ahead of newer messages, for the next consumer (as a
   * closed AMQP channel's unacked messages do); so do deliveries a `messages()` stream read but
   * never handed out, while the ones it handed out can still be settled. With Redis
   * unreachable it still finishes within a few seconds (plus the wait for running handlers).
   */
  close(options?: CloseOptions): Promise<void>;
}

/**
 * A stream of deliveries for `for await`, as `messages()` returns it; settle each one
 * yourself. Leaving the loop closes it. `D` is what it yields: an idempotent stream's
 * deliveries carry their recorded writes.
 */
export interface MessageStream<T = unknown, D extends Delivery<T> = Delivery<T>>
  extends Consumer<T>, AsyncIterable<D> {}

/**
 * A delivery of an idempotent `messages()` stream: it holds its key's processing lease, and
 * `ack()` applies `tx`'s writes with the key's done marker and the ack, in one script.
 */
export interface IdempotentDelivery<T = unknown> extends Delivery<T> {
  /** Redis writes applied with the ack, or not at all (nack and reject drop them). */
  readonly tx: RedisWrites;
}
