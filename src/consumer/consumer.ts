/**
 * A consumer of one queue, put together from its parts: the reader takes entries within the
 * prefetch credit, admission decides what reaches a handler, the dispatcher runs handlers (or
 * feeds the iterator), the settlement acks, leases and reclaim keep deliveries with a living
 * consumer, and the client's keeper runs the queue's chores. This module wires them, owns the
 * counters and events, and shuts them down in order.
 */
import type { Redis } from 'ioredis';
import { toSluiceError, type Connection } from '../connection/connection.js';
import type { DeathReason } from '../message/death-history.js';
import { NotFoundError, SluiceError, StaleDeliveryError, ClosedError } from '../errors/index.js';
import type { Keyspace, QueueKeys } from '../keys/index.js';
import type { Codec } from '../message/codec.js';
import { encodeErrorRecord, recordError } from '../message/error-record.js';
import type { TopologyCache } from '../routing/compiled.js';
import { ensureConsumerGroup } from '../queue/group.js';
import type { QueueRecord } from '../topology/types.js';
import { optionNames, validateIntegerOption, validateOptionsObject } from '../validation/index.js';
import { admit, deliveryLimit, type AdmissionRules } from './admission.js';
import { ReplyBudget } from './deadline.js';
import { DeliveryImpl } from './delivery.js';
import { Dispatcher } from './dispatcher.js';
import { CONSUMER_EVENT_NAMES, Events } from '../events.js';
import type { Detach, QueueKeeper } from './keeper.js';
import { Leases } from './leases.js';
import { Reader } from './reader.js';
import { Reclaimer } from './reclaim.js';
import { Registration } from './registration.js';
import {
  IdempotentSettlement,
  runWithStore,
  type IdempotencySettings,
  type IdempotencyStore,
  type IdempotentHandler,
} from './idempotency.js';
import { retryDelayMs, type RetryPolicy } from './retry.js';
import { deadLetterOwned } from './scripts.js';
import { PlainSettlement, type Settlement } from './settlement.js';
import type {
  CloseOptions,
  ConsumerEventName,
  ConsumerEvents,
  ConsumerListener,
  ConsumerStats,
  Delivery,
  Handler,
  MessageStream,
} from './types.js';

const CLOSE_OPTIONS = optionNames<CloseOptions>({ timeoutMs: true });

/** Everything a consumer needs from its client. */
export interface ConsumerContext {
  readonly connection: Connection;
  readonly keys: Keyspace;
  readonly codec: Codec;
  readonly topology: TopologyCache;
  readonly keeper: QueueKeeper;
  readonly consumerName: string;
  /** Called once the consumer has shut down. */
  readonly onClosed: () => void;
}

/** The settings a consumer runs with, options resolved. */
export interface ConsumerSettings {
  readonly prefetch: number;
  readonly concurrency: number;
  /** The backoff after a handler failure; `false` requeues at once. */
  readonly retry: RetryPolicy | false;
  readonly idempotency: IdempotencySettings | undefined;
}

/** Default visibility timeout when the queue sets no `ackTimeoutMs`. */
const DEFAULT_ACK_TIMEOUT_MS = 30_000;
const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;
/** The longest timer Node runs as asked (setTimeout's limit). */
const MAX_CLOSE_TIMEOUT_MS = 2_147_483_647;

/** Mutable counters behind the {@link ConsumerStats} snapshots. */
type Counts = { -readonly [K in keyof ConsumerStats]: ConsumerStats[K] } & {
  deadLettered: Record<DeathReason, number>;
};

/**
 * Reads one queue through its consumer group. In the handler form it runs the handler for each
 * delivery (automatic acks); in the iterator form it yields deliveries that the caller settles.
 * At most `prefetch` deliveries are unsettled at any time.
 */
export class ConsumerImpl<T = unknown> implements MessageStream<T> {
  private readonly counts: Counts = {
    delivered: 0,
    acked: 0,
    requeued: 0,
    delayed: 0,
    rejected: 0,
    reclaimed: 0,
    deadLettered: { rejected: 0, expired: 0, maxlen: 0, delivery_limit: 0, poison: 0 },
    stale: 0,
    handlerErrors: 0,
    duplicates: 0,
  };
  private readonly events = new Events<ConsumerEvents<T>>(CONSUMER_EVENT_NAMES);
  private readonly redis: Redis;
  private readonly queueKeys: QueueKeys;
  private readonly leases: Leases<T>;
  private readonly settlement: Settlement;
  private readonly dispatcher: Dispatcher<T>;
  private readonly reader: Reader;
  private readonly reclaimer: Reclaimer;
  private readonly registration: Registration;
  private rules: AdmissionRules = {};
  private started: Promise<void> | undefined;
  private detachKeeper: Detach | undefined;
  /** Whether this consumer got as far as registering with the group. */
  private registered = false;
  private wakeIdle: (() => void) | undefined;
  private closing = false;
  private closed: Promise<void> | undefined;
  private shutDown = false;
  /**
   * Whether `delivery.handled` / `delivery.failed` have listeners: kept up to date by
   * {@link on} and {@link off}, so that the per-delivery path looks at a field, not a map.
   */
  private listensHandled = false;
  private listensFailed = false;

  /** The Redis store's settlement of an idempotent consumer (its leases stop at close). */
  private readonly idempotent: IdempotentSettlement | undefined;

  constructor(
    private readonly context: ConsumerContext,
    readonly queue: string,
    private readonly handler: IdempotentHandler<T, unknown> | undefined,
    private readonly settings: ConsumerSettings,
  ) {
    this.redis = context.connection.redis;
    this.queueKeys = context.keys.queue(queue);
    const { consumerName } = context;
    const parts = { redis: this.redis, keys: this.queueKeys, consumerName };
    const report = (error: unknown): void => this.report(error);
    this.leases = new Leases<T>({ ...parts, report });
    this.registration = new Registration(this.redis, this.queueKeys, consumerName, report);
    const plain = new PlainSettlement({
      ...parts,
      queue,
      counts: this.counts,
      held: () => this.leases.size,
      released: (delivery) => this.released(delivery),
      deadLetter: (streamId, messageId, reason) => this.deadLetter(streamId, messageId, reason),
      report,
    });
    const idempotency = settings.idempotency;
    if (idempotency !== undefined && idempotency.store === undefined) {
      this.idempotent = new IdempotentSettlement(plain, idempotency, {
        redis: this.redis,
        keys: context.keys,
        queue,
        consumerName,
        cluster: context.connection.server.cluster,
        released: (delivery) => this.released(delivery),
        duplicate: (delivery) => this.duplicate(delivery),
        acked: () => void this.counts.acked++,
        refused: (delivery) => this.refused(delivery),
        report,
      });
    }
    this.settlement = this.idempotent ?? plain;
    this.dispatcher = new Dispatcher<T>(this.dispatched(handler), settings.concurrency, {
      timed: () => this.listensHandled || this.listensFailed,
      finished: (delivery, failed, error, startedAt) =>
        this.finished(delivery, failed, error, startedAt),
    });
    this.reader = new Reader({
      connection: context.connection,
      stream: this.queueKeys.stream,
      fence: this.queueKeys.fence,
      queue,
      consumerName,
      credit: () => settings.prefetch - this.leases.size,
      receive: (streamId, fields) => this.receive(streamId, fields, 1, false),
      report,
      groupRecreated: () => this.events.emit('groupRecreated', { queue }),
      cancelled: () => this.cancelled(),
      connectionLost: (error) => {
        this.events.emit('connection.lost', { queue, error });
        this.report(error);
      },
      connectionRestored: (downtimeMs) =>
        this.events.emit('connection.restored', { queue, downtimeMs }),
    });
    this.reclaimer = new Reclaimer({
      ...parts,
      credit: () => this.reader.credit(),
      receive: ({ streamId, fields, timesDelivered }) => {
        this.counts.reclaimed++;
        return this.receive(streamId, fields, timesDelivered, true);
      },
      report,
    });
  }

  /**
   * What the dispatcher runs per delivery: the handler itself, or for an idempotent consumer
   * the handler behind its key's lease (Redis store) or inside the store's transaction.
   */
  private dispatched(handler: IdempotentHandler<T, unknown> | undefined): Handler<T> | undefined {
    const idempotency = this.settings.idempotency;
    if (handler === undefined || idempotency === undefined) return handler as Handler<T>;
    const idempotent = this.idempotent;
    if (idempotent !== undefined) {
      return (delivery) => idempotent.run(delivery as DeliveryImpl<T>, handler);
    }
    const store = idempotency.store as IdempotencyStore<unknown>;
    return (delivery) =>
      runWithStore(idempotency, store, delivery as DeliveryImpl<T>, handler, (d) =>
        this.duplicate(d),
      );
  }

  /** An idempotent commit dead-lettered `delivery`: Redis refused one of its writes. */
  private refused(delivery: Delivery): void {
    this.counts.deadLettered.rejected++;
    if (this.events.has('delivery.deadLettered')) {
      const { streamId, messageId } = delivery;
      this.events.emit('delivery.deadLettered', {
        queue: this.queue,
        streamId,
        messageId,
        reason: 'rejected',
      });
    }
    this.context.keeper.kick(this.queue);
  }

  /** A delivery whose key was done: acked without running the handler. */
  private duplicate(delivery: Delivery): void {
    (delivery as DeliveryImpl<T>).skipped = true;
    this.counts.duplicates++;
    if (this.events.has('delivery.duplicate')) {
      this.events.emit('delivery.duplicate', {
        queue: this.queue,
        streamId: delivery.streamId,
        messageId: delivery.messageId,
        delivery: delivery as Delivery<T>,
      });
    }
  }

  get stats(): ConsumerStats {
    return { ...this.counts, deadLettered: { ...this.counts.deadLettered } };
  }

  on<K extends ConsumerEventName>(name: K, listener: ConsumerListener<K, T>): this {
    this.events.on(name, listener);
    this.listenersChanged();
    return this;
  }

  off<K extends ConsumerEventName>(name: K, listener: ConsumerListener<K, T>): this {
    this.events.off(name, listener);
    this.listenersChanged();
    return this;
  }

  private listenersChanged(): void {
    this.listensHandled = this.events.has('delivery.handled');
    this.listensFailed = this.events.has('delivery.failed');
  }

  /** Checks the queue exists, registers with the group, opens the reading connection, reads. */
  start(): Promise<void> {
    this.started ??= this.open().catch((error: unknown) => {
      throw toSluiceError(error, this.redis, `starting a consumer of queue '${this.queue}'`);
    });
    return this.started;
  }

  private async open(): Promise<void> {
    const record = await this.queueRecord();
    if (record === undefined) throw new NotFoundError(`queue '${this.queue}' does not exist`);
    this.rules = record;
    await ensureConsumerGroup(this.redis, this.queueKeys.stream);
    // Registered before the first read, so the queue counts as in use from now on.
    if (!(await this.registration.register())) {
      throw new NotFoundError(`queue '${this.queue}' does not exist`);
    }
    this.registered = true;
    if (!this.closing) await this.reader.open();
    const ackTimeoutMs = record.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
    // What a closed consumer gave back (or a crashed one left) comes before anything newer.
    if (!this.closing) await this.reclaimer.start(ackTimeoutMs);
    if (this.closing) {
      // Closed meanwhile: shutdown may be past releasing, so this start undoes itself.
      this.reader.release();
      throw new ClosedError(`consumer of queue '${this.queue}' was closed while starting`);
    }
    this.leases.start(ackTimeoutMs);
    this.registration.start();
    this.reader.start();
    this.detachKeeper = this.context.keeper.attach(this.queue, (error) => this.report(error));
  }

  private async queueRecord(): Promise<QueueRecord | undefined> {
    const cached = await this.context.topology.get();
    const record = cached.snapshot.queues.get(this.queue);
    if (record !== undefined) return record;
    // Declared after this client cached the topology?
    this.context.topology.invalidate(cached);
    return (await this.context.topology.get()).snapshot.queues.get(this.queue);
  }

  /**
   * Turns an entry into a delivery, unless admission refuses it: then it goes to the
   * dead-letter outbox, and only then is there something to wait for.
   */
  private receive(
    streamId: string,
    fields: Buffer[] | null,
    timesDelivered: number,
    reclaimed: boolean,
  ): Promise<boolean> | undefined {
    const admission = admit(
      streamId,
      fields,
      timesDelivered,
      this.rules,
      Date.now(),
      this.context.codec,
    );
    if (reclaimed && this.events.has('delivery.reclaimed')) {
      const messageId = admission.deliver ? admission.envelope.messageId : admission.messageId;
      this.events.emit('delivery.reclaimed', {
        queue: this.queue,
        streamId,
        messageId,
        timesDelivered,
      });
    }
    if (!admission.deliver) return this.deadLetter(streamId, admission.messageId, admission.reason);
    const delivery = new DeliveryImpl<T>(
      this.queue,
      streamId,
      admission.envelope,
      admission.body as T,
      admission.deliveryCount,
      this.settlement,
    );
    this.counts.delivered++;
    this.leases.add(delivery);
    this.dispatcher.push(delivery);
    return undefined;
  }

  /** Moves an owned entry to the outbox; the keeper routes it to the dead-letter exchange. */
  private async deadLetter(
    streamId: string,
    messageId: string | undefined,
    reason: DeathReason,
  ): Promise<boolean> {
    const [moved] = await deadLetterOwned(this.redis, this.queueKeys, {
      consumer: this.context.consumerName,
      reason,
      timeMs: Date.now(),
      ids: [streamId],
    });
    if (moved !== true) return false;
    if (reason !== 'rejected') this.counts.deadLettered[reason]++;
    if (this.events.has('delivery.deadLettered')) {
      this.events.emit('delivery.deadLettered', { queue: this.queue, streamId, messageId, reason });
    }
    this.context.keeper.kick(this.queue);
    return true;
  }

  /**
   * After a handler: settles the delivery unless the handler did (ack on success; on failure
   * requeue, after the retry policy's delay, with the error recorded in the entry for its death
   * record). A failed automatic settlement is counted (stale) or reported, not thrown: the entry
   * stays pending and is reclaimed.
   */
  private finished(
    delivery: DeliveryImpl<T>,
    failed: boolean,
    error: unknown,
    startedAt: number,
  ): void {
    if (failed) {
      this.counts.handlerErrors++;
      if (!delivery.settled) {
        const retry = this.settings.retry;
        // The last delivery the queue allows comes back at once: the next read dead-letters it.
        const last = delivery.deliveryCount >= deliveryLimit(this.rules);
        const delayMs = retry === false || last ? 0 : retryDelayMs(retry, delivery.deliveryCount);
        const lastError = encodeErrorRecord(recordError(error));
        delivery.requeueAfterFailure(delayMs, lastError).catch((failure: unknown) => {
          if (!(failure instanceof StaleDeliveryError)) this.report(failure);
        });
      }
      if (this.listensFailed) {
        this.events.emit('delivery.failed', {
          ...this.deliveryEvent(delivery, startedAt),
          error,
        });
      }
    } else {
      delivery.ackAutomatically();
      if (this.listensHandled && !delivery.skipped) {
        this.events.emit('delivery.handled', this.deliveryEvent(delivery, startedAt));
      }
    }
    this.checkIdle();
  }

  private deliveryEvent(
    delivery: DeliveryImpl<T>,
    startedAt: number,
  ): ConsumerEvents<T>['delivery.handled'] {
    return {
      queue: this.queue,
      streamId: delivery.streamId,
      messageId: delivery.messageId,
      delivery,
      // A listener added while the handler ran finds it untimed.
      durationMs: startedAt === 0 ? 0 : performance.now() - startedAt,
    };
  }

  /** A settlement was sent: the delivery stops counting against the prefetch. */
  private released(delivery: Delivery): void {
    if (!this.leases.delete(delivery)) return;
    this.reader.wake();
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.leases.size === 0 && this.dispatcher.active === 0) this.wakeIdle?.();
  }

  /**
   * The queue was deleted: say so, and close at once. Handlers still running are not waited
   * for: what they hold can no longer be settled.
   */
  private cancelled(): void {
    this.events.emit('cancelled', { queue: this.queue });
    this.close({ timeoutMs: 0 }).catch((error: unknown) => this.report(error));
  }

  /** Emits `readError` with a SluiceError, until the consumer has closed. */
  private report(error: unknown): void {
    // A chore that was in flight when Redis went away may fail after close: old news.
    if (this.shutDown) return;
    const failure =
      error instanceof SluiceError
        ? error
        : toSluiceError(error, this.redis, `consumer of queue '${this.queue}'`);
    this.events.emit('readError', failure);
  }

  /** Iterator form: yields deliveries until the consumer is closed; leaving the loop closes it. */
  async *[Symbol.asyncIterator](): AsyncIterator<Delivery<T>> {
    try {
      try {
        await this.start();
      } catch (error) {
        // A stream closed while it was starting simply has nothing to yield.
        if (error instanceof ClosedError && this.closing) return;
        throw error;
      }
      for (;;) {
        const next = this.dispatcher.next();
        if (next !== undefined) {
          if (this.idempotent === undefined || (await this.acquired(this.idempotent, next))) {
            yield next;
          }
          continue;
        }
        if (this.closing) return;
        await this.dispatcher.arrival();
      }
    } finally {
      await this.close();
    }
  }

  /**
   * Iterator form of an idempotent consumer: whether `delivery` holds its key and is to be
   * handed out. One that cannot take it (a key function that fails, Redis unreachable) goes
   * back to the queue, and the failure is a `readError`.
   */
  private async acquired(
    idempotent: IdempotentSettlement,
    delivery: DeliveryImpl<T>,
  ): Promise<boolean> {
    try {
      return (await idempotent.acquire(delivery)) !== undefined;
    } catch (error) {
      this.report(error);
      await delivery.nack().catch((failure: unknown) => this.report(failure));
      return false;
    }
  }

  async close(options: CloseOptions = {}): Promise<void> {
    // Checked before anything changes: a refused close leaves the consumer as it was.
    validateOptionsObject('close options', options, CLOSE_OPTIONS);
    validateIntegerOption('timeoutMs', options.timeoutMs, 0, MAX_CLOSE_TIMEOUT_MS);
    this.closed ??= this.shutdown(options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    return this.closed;
  }

  /**
   * Stops reading and reclaiming, lets running handlers finish (up to `timeoutMs`) while
   * their leases are still renewed, waits for the settlements sent, deregisters, detaches from
   * the keeper and releases the reading connection. Each wait for Redis is bounded, and
   * skipped while Redis is not connected, so that closing never hangs on an outage.
   */
  private async shutdown(timeoutMs: number): Promise<void> {
    this.closing = true;
    const stopping = new ReplyBudget(this.redis);
    if (this.started !== undefined) await stopping.wait(this.started);
    this.dispatcher.wake();
    const reclaiming = this.reclaimer.stop();
    await this.reader.stop(stopping);
    await stopping.wait(reclaiming);
    if (this.handler === undefined) {
      // Deliveries not handed to the caller go back in place, uncounted; those the caller
      // holds can still be settled after close, so there is nothing to wait for.
      await stopping.wait(this.settlement.giveBack(this.dispatcher.takeUnseen(), false));
    } else if (this.leases.size > 0 || this.dispatcher.active > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.wakeIdle = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    const leaving = new ReplyBudget(this.redis);
    await leaving.wait(this.settlement.idle());
    await leaving.wait(
      Promise.all([this.leases.stop(), this.registration.stop(), this.idempotent?.stop()]),
    );
    // What no handler settled in time goes back in place, ahead of newer messages, as a closed
    // AMQP channel's unacked messages do.
    if (this.handler !== undefined && leaving.open) {
      await leaving.wait(this.settlement.giveBack(this.leases.all(), true));
    }
    if (this.registered && leaving.open) await leaving.wait(this.registration.deregister());
    if (this.detachKeeper !== undefined) await leaving.wait(this.detachKeeper());
    this.reader.release();
    this.shutDown = true;
    this.context.onClosed();
  }
}
