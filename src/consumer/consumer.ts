import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { toSluiceError, type Connection } from '../connection/connection.js';
import { runScript, runScriptBuffer, type ScriptArg } from '../connection/scripts.js';
import type { DeathReason } from '../dead-letter/death.js';
import type { DeadLetterRelay } from '../dead-letter/relay.js';
import { NotFoundError, StaleDeliveryError } from '../errors/index.js';
import { CONSUMER_GROUP, type Keyspace, type QueueKeys } from '../keys/index.js';
import type { Codec } from '../message/codec.js';
import { decodeEnvelope, type Envelope } from '../message/envelope.js';
import type { TopologyCache } from '../topology/cache.js';
import { ensureConsumerGroup } from '../topology/group.js';
import type { QueueRecord } from '../topology/types.js';
import { Delivery, type Settlement } from './delivery.js';
import { retryDelayMs, type RetryPolicy } from './retry.js';

/** Options of a consumer. */
export interface ConsumeOptions {
  /** Most deliveries held unsettled at once (RabbitMQ's basic.qos prefetch). Default 100. */
  readonly prefetch?: number;
  /** Most handlers running at once (handler form only). Default 1. */
  readonly concurrency?: number;
  /** Delayed retry for handlers that throw (handler form); without it they are requeued at once. */
  readonly retry?: RetryPolicy;
}

/** Options of {@link Consumer.close}. */
export interface CloseOptions {
  /** How long in-flight deliveries may take to finish; the rest stay unacked. Default 30 000. */
  readonly timeoutMs?: number;
}

/** Counters of one consumer. */
export interface ConsumerStats {
  delivered: number;
  acked: number;
  requeued: number;
  /** Requeued with a delay (parked in the delayed set). */
  delayed: number;
  rejected: number;
  /** Entries taken over from consumers that left them unacked past the ack timeout. */
  reclaimed: number;
  /** Moved to the dead-letter outbox, by reason (not counting `rejected` settlements). */
  deadLettered: Record<DeathReason, number>;
  /** Settlements refused because the delivery was no longer owned by this consumer. */
  stale: number;
  /** Handlers that threw. */
  handlerErrors: number;
}

/** Events of a consumer, for metrics and logs. */
export interface ConsumerEvents {
  /** An entry left the queue for the dead-letter outbox without reaching a handler. */
  deadLettered: [event: { streamId: string; messageId: string | undefined; reason: DeathReason }];
  /** The stream or consumer group had disappeared and was created again. */
  groupRecreated: [];
  /** Reading or maintenance failed; the consumer retries. */
  readError: [error: unknown];
}

/** A message handler; resolving acks the delivery, throwing requeues it (or retries it later). */
export type Handler<T = unknown> = (delivery: Delivery<T>) => Promise<void> | void;

/** Everything a consumer needs from its client. */
export interface ConsumerContext {
  readonly connection: Connection;
  readonly keys: Keyspace;
  readonly codec: Codec;
  readonly topology: TopologyCache;
  readonly relay: DeadLetterRelay;
  readonly consumerName: string;
  /** Called once the consumer has shut down. */
  readonly onClosed: () => void;
}

/** The settings a consumer runs with, options and queue arguments resolved. */
export interface ConsumerSettings {
  readonly prefetch: number;
  readonly concurrency: number;
  readonly retry: RetryPolicy | undefined;
}

/** Default visibility timeout when the queue sets no `ackTimeoutMs`. */
export const DEFAULT_ACK_TIMEOUT_MS = 30_000;
const BLOCK_MS = 2000;
const ERROR_BACKOFF_MS = 250;
const MAINTENANCE_INTERVAL_MS = 250;
const PROMOTE_BATCH = 500;

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

interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

function deferred(): Deferred {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

function enqueuedAt(streamId: string): number {
  return Number(streamId.slice(0, streamId.indexOf('-')));
}

/**
 * Reads one queue through its consumer group. In the handler form it runs the handler
 * for each delivery (automatic acks); in the iterator form it yields deliveries that the
 * caller settles. At most `prefetch` deliveries are unsettled at any time.
 *
 * Besides reading, a consumer keeps the queue healthy: it reclaims entries that other
 * consumers left unacked past the ack timeout, extends the leases of its own unsettled
 * deliveries, promotes due delayed retries and routes the queue's dead letters.
 */
export class Consumer<T = unknown>
  extends EventEmitter<ConsumerEvents>
  implements Settlement, AsyncIterable<Delivery<T>>
{
  readonly stats: ConsumerStats = {
    delivered: 0,
    acked: 0,
    requeued: 0,
    delayed: 0,
    rejected: 0,
    reclaimed: 0,
    deadLettered: { rejected: 0, expired: 0, maxlen: 0, delivery_limit: 0, poison: 0 },
    stale: 0,
    handlerErrors: 0,
  };
  private readonly queueKeys: QueueKeys;
  private readonly redis: Redis;
  private record: QueueRecord | undefined;
  private ackTimeoutMs = DEFAULT_ACK_TIMEOUT_MS;
  /** Deliveries not yet settled, by stream id: the leases this consumer keeps. */
  private readonly unsettled = new Map<string, Delivery<T>>();
  private running = 0;
  /** Entries read and not yet turned into deliveries (they count against the prefetch). */
  private receiving = 0;
  /** The chain that turns read entries into deliveries, in read order. */
  private processing: Promise<void> = Promise.resolve();
  private readonly ready: Delivery<T>[] = [];
  private wakeReader: (() => void) | undefined;
  private wakeIdle: (() => void) | undefined;
  private wakeIterator: (() => void) | undefined;
  private acks: PendingAck[] = [];
  private ackScheduled = false;
  /** Resolved when the pending flush is answered: what automatic acks wait for. */
  private flushed: Deferred | undefined;
  /** Ack calls sent and not yet answered; close waits for them. */
  private readonly acksInFlight = new Set<Promise<void>>();
  private closing = false;
  private closed: Promise<void> | undefined;
  private reader: Redis | undefined;
  private readerId: number | undefined;
  private loop: Promise<void> | undefined;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private maintenance: Promise<void> | undefined;
  private reclaimCursor = '0-0';
  private lastExtendAt = Date.now();

  constructor(
    private readonly context: ConsumerContext,
    readonly queue: string,
    private readonly handler: Handler<T> | undefined,
    private readonly settings: ConsumerSettings,
  ) {
    super();
    this.queueKeys = context.keys.queue(queue);
    this.redis = context.connection.redis;
  }

  /** Checks the queue exists, opens the blocking connection and starts reading. */
  async start(): Promise<void> {
    this.record = await this.queueRecord();
    if (this.record === undefined) throw new NotFoundError(`queue '${this.queue}' does not exist`);
    this.ackTimeoutMs = this.record.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
    await ensureConsumerGroup(this.redis, this.queueKeys.stream);
    // Registered before the first read, so the queue counts as in use from now on.
    await this.redis.xgroup(
      'CREATECONSUMER',
      this.queueKeys.stream,
      CONSUMER_GROUP,
      this.context.consumerName,
    );
    this.reader = await this.context.connection.duplicate();
    this.readerId = Number(await this.reader.client('ID'));
    this.loop = this.read();
    this.scheduleMaintenance(0);
  }

  private async queueRecord(): Promise<QueueRecord | undefined> {
    const cached = await this.context.topology.get();
    const record = cached.snapshot.queues.get(this.queue);
    if (record !== undefined) return record;
    // Declared after this client cached the topology?
    this.context.topology.invalidate(cached);
    return (await this.context.topology.get()).snapshot.queues.get(this.queue);
  }

  /** Deliveries this consumer may still take: the prefetch less what it holds or is taking. */
  private credit(): number {
    return this.settings.prefetch - this.unsettled.size - this.receiving;
  }

  /**
   * The read loop. Each read takes what the prefetch allows, and its entries are turned into
   * deliveries after the next read (if any credit is left) has been sent, so that Redis
   * prepares it while this process handles the current one.
   */
  private async read(): Promise<void> {
    const reader = this.reader as Redis;
    while (!this.closing) {
      const credit = this.credit();
      if (credit <= 0) {
        await new Promise<void>((resolve) => (this.wakeReader = resolve));
        continue;
      }
      let reply: unknown;
      try {
        reply = await reader.callBuffer(
          'XREADGROUP',
          'GROUP',
          CONSUMER_GROUP,
          this.context.consumerName,
          'COUNT',
          credit,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          this.queueKeys.stream,
          '>',
        );
      } catch (error) {
        if (this.closing) break;
        await this.recover(error);
        continue;
      }
      if (reply === null) continue;
      for (const [, entries] of reply as [Buffer, [Buffer, Buffer[]][]][]) {
        this.receiving += entries.length;
        this.processing = this.processing.then(() => this.receiveAll(entries));
      }
    }
    await this.processing;
  }

  /** Turns a read's entries into deliveries, in order. */
  private async receiveAll(entries: readonly [Buffer, Buffer[]][]): Promise<void> {
    for (const [id, fields] of entries) {
      this.receiving--;
      const deadLettered = this.receive(id.toString(), fields, 1);
      if (deadLettered !== undefined) {
        await deadLettered.catch((error: unknown) => this.report(error));
        // A dead-lettered entry became no delivery: its credit is free again.
        this.wake();
      }
    }
  }

  /** Lets a read loop waiting for credit go on. */
  private wake(): void {
    this.wakeReader?.();
    this.wakeReader = undefined;
  }

  /** Emits `readError`; a listener that throws must not stop the consumer. */
  private report(error: unknown): void {
    try {
      this.emit('readError', error);
    } catch {
      // The listener's own failure is not the consumer's.
    }
  }

  /** After a failed read: recreate a lost group (FLUSH, failover), else back off. */
  private async recover(error: unknown): Promise<void> {
    this.report(error);
    try {
      if (
        (error as Error).message.startsWith('NOGROUP') &&
        (await ensureConsumerGroup(this.redis, this.queueKeys.stream))
      ) {
        this.emit('groupRecreated');
        return;
      }
    } catch (cause) {
      this.report(cause);
    }
    await new Promise((resolve) => setTimeout(resolve, ERROR_BACKOFF_MS));
  }

  /**
   * Turns an entry into a delivery, unless it must not reach a handler: unreadable
   * (poison), past its delivery limit, or expired. Those go to the dead-letter outbox, and
   * only then is there something to wait for: the common path stays synchronous.
   */
  private receive(
    streamId: string,
    fields: Buffer[] | null,
    timesDelivered: number,
  ): Promise<boolean> | undefined {
    let envelope: Envelope;
    let body: T;
    try {
      if (fields === null) throw new Error('entry has no data');
      envelope = decodeEnvelope(fields);
      body = this.context.codec.decode(envelope.body, envelope.contentType) as T;
    } catch {
      return this.deadLetter(streamId, undefined, 'poison');
    }
    const deliveryCount = envelope.redeliveries + timesDelivered;
    const maxDeliveries = this.record?.maxDeliveries;
    if (maxDeliveries !== undefined && deliveryCount > maxDeliveries) {
      return this.deadLetter(streamId, envelope.messageId, 'delivery_limit');
    }
    if (this.expired(streamId, envelope)) {
      return this.deadLetter(streamId, envelope.messageId, 'expired');
    }
    const delivery = new Delivery<T>(this.queue, streamId, envelope, body, deliveryCount, this);
    this.stats.delivered++;
    this.unsettled.set(streamId, delivery);
    this.ready.push(delivery);
    if (this.handler === undefined) this.wakeIterator?.();
    else this.dispatch();
    return undefined;
  }

  /** Per-message expiration counts from publish; the queue's TTL from entering this queue. */
  private expired(streamId: string, envelope: Envelope): boolean {
    const now = Date.now();
    if (envelope.expirationMs !== undefined && now >= envelope.publishedAt + envelope.expirationMs)
      return true;
    const ttl = this.record?.messageTtlMs;
    return ttl !== undefined && now >= enqueuedAt(streamId) + ttl;
  }

  /** Moves an owned entry to the outbox and routes it to the dead-letter exchange. */
  private async deadLetter(
    streamId: string,
    messageId: string | undefined,
    reason: DeathReason,
  ): Promise<boolean> {
    const [moved] = (await this.script(
      'dead_letter',
      [this.queueKeys.stream, this.queueKeys.deadLetters],
      [CONSUMER_GROUP, this.context.consumerName, reason, Date.now(), streamId],
    )) as number[];
    if (moved !== 1) return false;
    if (reason !== 'rejected') {
      this.stats.deadLettered[reason]++;
      this.emit('deadLettered', { streamId, messageId, reason });
    }
    await this.context.relay.drain(this.queue);
    return true;
  }

  /**
   * Runs a script on the command connection (`buffers`: bulk replies as Buffers, for message
   * bodies); failures become typed SluiceErrors.
   */
  private script(
    name: string,
    keys: readonly string[],
    args: readonly ScriptArg[],
    replies: 'text' | 'buffers' = 'text',
  ): Promise<unknown> {
    const run = replies === 'buffers' ? runScriptBuffer : runScript;
    return run(this.redis, name, keys, args).catch((error: unknown) => {
      throw toSluiceError(error, this.redis, `${name} on queue '${this.queue}'`);
    });
  }

  private dispatch(): void {
    const handler = this.handler as Handler<T>;
    while (this.running < this.settings.concurrency && this.ready.length > 0) {
      const delivery = this.ready.shift() as Delivery<T>;
      this.running++;
      void this.handle(handler, delivery);
    }
  }

  /** Runs the handler; a synchronous handler costs no promise of sluice's own. */
  private handle(handler: Handler<T>, delivery: Delivery<T>): void {
    let outcome: Promise<void> | void;
    try {
      outcome = handler(delivery);
    } catch {
      this.finish(delivery, false);
      return;
    }
    // Any thenable counts (Bluebird, another realm's Promise), not only this realm's Promise.
    const pending = outcome as PromiseLike<void> | undefined;
    if (typeof pending?.then === 'function') {
      pending.then(
        () => this.finish(delivery, true),
        () => this.finish(delivery, false),
      );
    } else {
      this.finish(delivery, true);
    }
  }

  /**
   * After a handler: settles the delivery unless the handler did (ack on success; on
   * failure requeue, after the retry policy's delay if there is one), then frees its slot.
   * A failed automatic settlement (stale delivery, lost connection) is counted, not thrown:
   * the entry stays pending and is reclaimed.
   */
  private finish(delivery: Delivery<T>, succeeded: boolean): void {
    if (!delivery.settled) {
      if (succeeded) {
        delivery.ackAutomatically();
      } else {
        this.stats.handlerErrors++;
        const retry = this.settings.retry;
        const delayMs = retry === undefined ? 0 : retryDelayMs(retry, delivery.deliveryCount);
        delivery.nack({ delayMs }).catch(() => undefined);
      }
    } else if (!succeeded) {
      this.stats.handlerErrors++;
    }
    this.running--;
    this.dispatch();
    this.checkIdle();
  }

  private settled(delivery: Delivery): void {
    if (!this.unsettled.delete(delivery.streamId)) return;
    this.wake();
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.unsettled.size === 0 && this.running === 0) this.wakeIdle?.();
  }

  /**
   * Acks are coalesced: all acks of one tick go to Redis in one script call. As with AMQP's
   * basic.ack, the delivery stops counting against the prefetch once its ack is sent, so
   * the next read overlaps the ack's round trip.
   */
  ack(delivery: Delivery): Promise<void> {
    return new Promise<void>((resolve, reject) => this.queueAck({ delivery, resolve, reject }));
  }

  /**
   * The ack of automatic mode: no promise per message, only the flush's, which resolves
   * once the flush is answered. A stale delivery is counted in `stats.stale`.
   */
  autoAck(delivery: Delivery): Promise<void> {
    this.queueAck({ delivery });
    this.flushed ??= deferred();
    return this.flushed.promise;
  }

  private queueAck(pending: PendingAck): void {
    this.acks.push(pending);
    this.settled(pending.delivery);
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    process.nextTick(() => {
      const flush = this.flushAcks();
      this.acksInFlight.add(flush);
      void flush.finally(() => this.acksInFlight.delete(flush));
    });
  }

  /** Sends the acks of this tick; never rejects (each ack's own promise does). */
  private async flushAcks(): Promise<void> {
    this.ackScheduled = false;
    const batch = this.acks;
    const flushed = this.flushed;
    this.acks = [];
    this.flushed = undefined;
    try {
      const ids = batch.map((a) => a.delivery.streamId);
      const [lowest, highest] = idRange(ids);
      // This consumer holds at most the batch plus its other unsettled deliveries; a few
      // more may have been reclaimed into it and not read yet (the script checks those).
      const limit = ids.length + this.unsettled.size + 16;
      // 1: all acked; else one result per id.
      const results = (await this.script(
        'ack',
        [this.queueKeys.stream],
        [CONSUMER_GROUP, this.context.consumerName, lowest, highest, limit, ...ids],
      )) as number | number[];
      batch.forEach((pending, i) => {
        if (results === 1 || (results as number[])[i] === 1) {
          this.stats.acked++;
          pending.resolve?.();
        } else {
          const stale = this.stale(pending.delivery);
          pending.reject?.(stale);
        }
      });
    } catch (error) {
      for (const pending of batch) pending.reject?.(error);
    } finally {
      flushed?.resolve();
    }
  }

  private stale(delivery: Delivery): StaleDeliveryError {
    this.stats.stale++;
    return new StaleDeliveryError(
      `delivery ${delivery.streamId} of queue '${this.queue}' is no longer owned by this consumer`,
    );
  }

  /** Puts the message back at the tail of the queue, now or after `delayMs`, with its delivery count raised. */
  async requeue(delivery: Delivery, delayMs: number, counted = true): Promise<void> {
    try {
      const dueAt = delayMs > 0 ? Date.now() + delayMs : 0;
      const done = (await this.script(
        'requeue',
        [this.queueKeys.stream, this.queueKeys.delayed, this.queueKeys.delayedEntries],
        [
          CONSUMER_GROUP,
          this.context.consumerName,
          delivery.streamId,
          dueAt,
          randomUUID(),
          counted ? '1' : '0',
        ],
      )) as number;
      if (done !== 1) throw this.stale(delivery);
      if (dueAt > 0) this.stats.delayed++;
      else this.stats.requeued++;
    } finally {
      this.settled(delivery);
    }
  }

  /** Dead-letters the message with reason `rejected`; without a dead-letter exchange it is dropped. */
  async reject(delivery: Delivery): Promise<void> {
    try {
      if (!(await this.deadLetter(delivery.streamId, delivery.messageId, 'rejected')))
        throw this.stale(delivery);
      this.stats.rejected++;
    } finally {
      this.settled(delivery);
    }
  }

  /** Renews one delivery's lease now. */
  async extend(delivery: Delivery): Promise<void> {
    const [extended] = await this.extendLeases([delivery.streamId]);
    if (extended !== 1) throw this.stale(delivery);
  }

  private async extendLeases(ids: readonly string[]): Promise<number[]> {
    if (ids.length === 0) return [];
    return (await this.script(
      'extend',
      [this.queueKeys.stream],
      [CONSUMER_GROUP, this.context.consumerName, ...ids],
    )) as number[];
  }

  private scheduleMaintenance(delayMs: number): void {
    if (this.closing) return;
    this.maintenanceTimer = setTimeout(() => {
      this.maintenance = this.maintain()
        .catch((error: unknown) => {
          this.report(error);
        })
        .finally(() =>
          this.scheduleMaintenance(Math.min(MAINTENANCE_INTERVAL_MS, this.ackTimeoutMs / 4)),
        );
    }, delayMs);
  }

  /** The periodic work: leases, delayed retries, crashed consumers' entries, dead letters. */
  private async maintain(): Promise<void> {
    // Renewed every quarter timeout, checked every quarter timeout: a lease is never
    // idle for more than half the ack timeout while this consumer lives.
    if (Date.now() - this.lastExtendAt >= this.ackTimeoutMs / 4) {
      this.lastExtendAt = Date.now();
      await this.extendLeases([...this.unsettled.keys()]);
    }
    await this.script(
      'promote',
      [this.queueKeys.stream, this.queueKeys.delayed, this.queueKeys.delayedEntries],
      [Date.now(), PROMOTE_BATCH],
    );
    await this.reclaim();
    await this.context.relay.drain(this.queue);
  }

  /** Takes over entries idle past the ack timeout, as many as the prefetch allows. */
  private async reclaim(): Promise<void> {
    const credit = this.credit();
    if (credit <= 0 || this.closing) return;
    const [cursor, entries] = (await this.script(
      'reclaim',
      [this.queueKeys.stream, this.queueKeys.deadLetters],
      [
        CONSUMER_GROUP,
        this.context.consumerName,
        this.ackTimeoutMs,
        this.reclaimCursor,
        Math.min(credit, 100),
        Date.now(),
      ],
      'buffers',
    )) as [Buffer, [Buffer, Buffer[], number][]];
    this.reclaimCursor = cursor.toString();
    for (const [id, fields, timesDelivered] of entries) {
      this.stats.reclaimed++;
      const deadLettered = this.receive(id.toString(), fields, timesDelivered);
      if (deadLettered !== undefined) await deadLettered;
    }
  }

  /** Iterator form: yields deliveries until the consumer is closed; leaving the loop closes it. */
  async *[Symbol.asyncIterator](): AsyncIterator<Delivery<T>> {
    try {
      for (;;) {
        const next = this.ready.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (this.closing) return;
        await new Promise<void>((resolve) => (this.wakeIterator = resolve));
        this.wakeIterator = undefined;
      }
    } finally {
      await this.close();
    }
  }

  /**
   * Graceful shutdown: stop reading, let in-flight deliveries finish and settle (up to
   * `timeoutMs`), then release the connection. What is not settled by then stays unacked
   * and is reclaimed by another consumer after the queue's ack timeout.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.closed ??= this.shutdown(options.timeoutMs ?? 30_000);
    return this.closed;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.closing = true;
    clearTimeout(this.maintenanceTimer);
    this.wakeIterator?.();
    this.wakeReader?.();
    if (this.readerId !== undefined) {
      // Ends the blocking read at once; Redis answers it as a timeout, so no entry is lost.
      await this.redis.client('UNBLOCK', this.readerId, 'TIMEOUT').catch(() => undefined);
    }
    await this.loop;
    await this.maintenance;
    // Iterator form: deliveries not yet handed to the caller go back to the queue; those
    // the caller holds can still be settled after close, so there is nothing to wait for.
    if (this.handler === undefined) {
      // Never handed out, so not counted as a delivery: the count stays as it was.
      for (const delivery of this.ready.splice(0)) {
        await this.requeue(delivery, 0, false).catch(() => undefined);
      }
    } else if (this.unsettled.size > 0 || this.running > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.wakeIdle = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    await Promise.all(this.acksInFlight);
    await this.deregister();
    if (this.reader !== undefined) this.context.connection.release(this.reader);
    this.context.onClosed();
  }

  /** Removes this consumer from the group unless it still holds unacked entries. */
  private async deregister(): Promise<void> {
    const held = (await this.redis
      .xpending(this.queueKeys.stream, CONSUMER_GROUP, '-', '+', 1, this.context.consumerName)
      .catch(() => [1])) as unknown[];
    if (held.length === 0) {
      await this.redis
        .xgroup('DELCONSUMER', this.queueKeys.stream, CONSUMER_GROUP, this.context.consumerName)
        .catch(() => 0);
    }
  }
}
