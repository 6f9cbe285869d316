import type { Redis } from 'ioredis';
import type { Connection } from '../connection/connection.js';
import { runScript } from '../connection/scripts.js';
import { StaleDeliveryError } from '../errors/index.js';
import { CONSUMER_GROUP, type Keyspace } from '../keys/index.js';
import type { Codec } from '../message/codec.js';
import { decodeEnvelope } from '../message/envelope.js';
import { Delivery, type Settlement } from './delivery.js';

/** Options of a consumer. */
export interface ConsumeOptions {
  /** Most deliveries held unsettled at once (RabbitMQ's basic.qos prefetch). Default 100. */
  readonly prefetch?: number;
  /** Most handlers running at once (handler form only). Default 1. */
  readonly concurrency?: number;
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
  rejected: number;
  /** Entries that were not sluice messages; acked and dropped. */
  poison: number;
  /** Settlements refused because the delivery was no longer owned by this consumer. */
  stale: number;
  /** Handlers that threw (their deliveries were requeued). */
  handlerErrors: number;
}

/** A message handler; resolving acks the delivery, throwing requeues it. */
export type Handler<T = unknown> = (delivery: Delivery<T>) => Promise<void> | void;

/** Everything a consumer needs from its client. */
export interface ConsumerContext {
  readonly connection: Connection;
  readonly keys: Keyspace;
  readonly codec: Codec;
  readonly consumerName: string;
  /** Called once the consumer has shut down. */
  readonly onClosed: () => void;
}

const BLOCK_MS = 2000;
const ERROR_BACKOFF_MS = 250;

interface PendingAck {
  readonly delivery: Delivery;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Reads one queue through its consumer group. In the handler form it runs the handler
 * for each delivery (automatic acks); in the iterator form it yields deliveries that the
 * caller settles. At most `prefetch` deliveries are unsettled at any time.
 */
export class Consumer<T = unknown> implements Settlement, AsyncIterable<Delivery<T>> {
  readonly stats: ConsumerStats = {
    delivered: 0,
    acked: 0,
    requeued: 0,
    rejected: 0,
    poison: 0,
    stale: 0,
    handlerErrors: 0,
  };
  private readonly stream: string;
  private readonly prefetch: number;
  private readonly concurrency: number;
  private unsettled = 0;
  private running = 0;
  private readonly ready: Delivery<T>[] = [];
  private wakeReader: (() => void) | undefined;
  private wakeIdle: (() => void) | undefined;
  private wakeIterator: (() => void) | undefined;
  private acks: PendingAck[] = [];
  private ackScheduled = false;
  private closing = false;
  private closed: Promise<void> | undefined;
  private reader: Redis | undefined;
  private readerId: number | undefined;
  private loop: Promise<void> | undefined;
  private readError: unknown;

  constructor(
    private readonly context: ConsumerContext,
    readonly queue: string,
    private readonly handler: Handler<T> | undefined,
    options: Required<ConsumeOptions>,
  ) {
    this.stream = context.keys.queue(queue).stream;
    this.prefetch = options.prefetch;
    this.concurrency = options.concurrency;
  }

  /** Opens the blocking connection and starts reading. */
  async start(): Promise<void> {
    this.reader = await this.context.connection.duplicate();
    this.readerId = Number(await this.reader.client('ID'));
    await this.ensureGroup();
    // Registered before the first read, so the queue counts as in use from now on.
    await this.context.connection.redis.xgroup(
      'CREATECONSUMER',
      this.stream,
      CONSUMER_GROUP,
      this.context.consumerName,
    );
    this.loop = this.read();
  }

  private async ensureGroup(): Promise<void> {
    await this.context.connection.redis
      .xgroup('CREATE', this.stream, CONSUMER_GROUP, '0', 'MKSTREAM')
      .catch((error: Error) => {
        if (!error.message.startsWith('BUSYGROUP')) throw error;
      });
  }

  private async read(): Promise<void> {
    const reader = this.reader as Redis;
    while (!this.closing) {
      if (this.unsettled >= this.prefetch) {
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
          this.prefetch - this.unsettled,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          this.stream,
          '>',
        );
      } catch (error) {
        if (this.closing) break;
        this.readError = error;
        if ((error as Error).message.startsWith('NOGROUP'))
          await this.ensureGroup().catch(() => undefined);
        else await new Promise((resolve) => setTimeout(resolve, ERROR_BACKOFF_MS));
        continue;
      }
      this.readError = undefined;
      if (reply === null) continue;
      for (const [, entries] of reply as [Buffer, [Buffer, Buffer[] | null][]][]) {
        for (const [id, fields] of entries) await this.receive(id.toString(), fields);
      }
    }
  }

  /** The last error of the read loop, until a read succeeds again (for health checks). */
  get lastReadError(): unknown {
    return this.readError;
  }

  private async receive(streamId: string, fields: Buffer[] | null): Promise<void> {
    let delivery: Delivery<T>;
    try {
      if (fields === null) throw new Error('entry was deleted');
      const envelope = decodeEnvelope(fields);
      const body = this.context.codec.decode(envelope.body, envelope.contentType) as T;
      delivery = new Delivery<T>(this.queue, streamId, envelope, body, this);
    } catch {
      // Not a sluice message (or a body the codec cannot read): drop it rather than crash.
      this.stats.poison++;
      await runScript(
        this.context.connection.redis,
        'ack',
        [this.stream],
        [CONSUMER_GROUP, this.context.consumerName, streamId],
      );
      return;
    }
    this.stats.delivered++;
    this.unsettled++;
    this.ready.push(delivery);
    if (this.handler === undefined) this.wakeIterator?.();
    else this.dispatch();
  }

  private dispatch(): void {
    const handler = this.handler as Handler<T>;
    while (this.running < this.concurrency && this.ready.length > 0) {
      const delivery = this.ready.shift() as Delivery<T>;
      this.running++;
      void this.handle(handler, delivery);
    }
  }

  private async handle(handler: Handler<T>, delivery: Delivery<T>): Promise<void> {
    try {
      await handler(delivery);
      if (!delivery.settled) await delivery.ack();
    } catch {
      if (!delivery.settled) {
        this.stats.handlerErrors++;
        await delivery.nack({ requeue: true }).catch(() => undefined);
      }
    } finally {
      this.running--;
      this.dispatch();
      this.checkIdle();
    }
  }

  private settled(): void {
    this.unsettled--;
    this.wakeReader?.();
    this.wakeReader = undefined;
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.unsettled === 0 && this.running === 0) this.wakeIdle?.();
  }

  /** Acks are coalesced: all acks of one tick go to Redis in one script call. */
  ack(delivery: Delivery): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.acks.push({ delivery, resolve, reject });
      if (this.ackScheduled) return;
      this.ackScheduled = true;
      process.nextTick(() => void this.flushAcks());
    }).then(() => {
      this.stats.acked++;
    });
  }

  private async flushAcks(): Promise<void> {
    this.ackScheduled = false;
    const batch = this.acks;
    this.acks = [];
    try {
      const results = (await runScript(
        this.context.connection.redis,
        'ack',
        [this.stream],
        [CONSUMER_GROUP, this.context.consumerName, ...batch.map((a) => a.delivery.streamId)],
      )) as number[];
      batch.forEach((pending, i) => {
        if (results[i] === 1) pending.resolve();
        else pending.reject(this.stale(pending.delivery));
      });
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      for (let i = 0; i < batch.length; i++) this.settled();
    }
  }

  private stale(delivery: Delivery): StaleDeliveryError {
    this.stats.stale++;
    return new StaleDeliveryError(
      `delivery ${delivery.streamId} of queue '${this.queue}' is no longer owned by this consumer`,
    );
  }

  /** Puts the message back at the tail of the queue with its delivery count raised. */
  async requeue(delivery: Delivery): Promise<void> {
    try {
      const id = await runScript(
        this.context.connection.redis,
        'requeue',
        [this.stream],
        [CONSUMER_GROUP, this.context.consumerName, delivery.streamId],
      );
      if (id === null) throw this.stale(delivery);
      this.stats.requeued++;
    } finally {
      this.settled();
    }
  }

  /** Without a dead-letter exchange a rejected message is dropped, as in RabbitMQ. */
  async reject(delivery: Delivery): Promise<void> {
    try {
      const [result] = (await runScript(
        this.context.connection.redis,
        'ack',
        [this.stream],
        [CONSUMER_GROUP, this.context.consumerName, delivery.streamId],
      )) as number[];
      if (result !== 1) throw this.stale(delivery);
      this.stats.rejected++;
    } finally {
      this.settled();
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
   * `timeoutMs`), then release the connection. What is not settled by then stays unacked.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.closed ??= this.shutdown(options.timeoutMs ?? 30_000);
    return this.closed;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.closing = true;
    this.wakeIterator?.();
    this.wakeReader?.();
    if (this.readerId !== undefined) {
      // Ends the blocking read at once; Redis answers it as a timeout, so no entry is lost.
      await this.context.connection.redis
        .client('UNBLOCK', this.readerId, 'TIMEOUT')
        .catch(() => undefined);
    }
    await this.loop;
    // Iterator form: deliveries not yet handed to the caller go back to the queue; those
    // the caller holds can still be settled after close, so there is nothing to wait for.
    if (this.handler === undefined) {
      for (const delivery of this.ready.splice(0))
        await delivery.nack({ requeue: true }).catch(() => undefined);
    } else if (this.unsettled > 0 || this.running > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.wakeIdle = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    await this.deregister();
    if (this.reader !== undefined) this.context.connection.release(this.reader);
    this.context.onClosed();
  }

  /** Removes this consumer from the group unless it still holds unacked entries. */
  private async deregister(): Promise<void> {
    const redis = this.context.connection.redis;
    const held = (await redis
      .xpending(this.stream, CONSUMER_GROUP, '-', '+', 1, this.context.consumerName)
      .catch(() => [1])) as unknown[];
    if (held.length === 0) {
      await redis
        .xgroup('DELCONSUMER', this.stream, CONSUMER_GROUP, this.context.consumerName)
        .catch(() => 0);
    }
  }
}
