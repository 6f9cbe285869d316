import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Connection, type ServerInfo } from './connection/connection.js';
import { ConsumerImpl } from './consumer/consumer.js';
import { QueueKeeper } from './consumer/keeper.js';
import type { Consumer, ConsumeOptions, Handler, MessageStream } from './consumer/types.js';
import { ClosedError, InvalidArgumentError } from './errors/index.js';
import { Keyspace } from './keys/index.js';
import { TopologyCache } from './topology/cache.js';
import { DeadLetterRelay } from './dead-letter/relay.js';
import { DeadLetterTools } from './dead-letter/tools.js';
import { validateRetryPolicy } from './consumer/retry.js';
import { defaultCodec, type Codec } from './message/codec.js';
import {
  Producer,
  type BatchMessage,
  type PublishBatchOptions,
  type PublishConfirm,
  type PublishOptions,
} from './producer/producer.js';
import {
  assertDurabilitySupported,
  producerSettings,
  type ProducerConnectOptions,
  type ProducerSettings,
} from './producer/settings.js';
import {
  Topology,
  type DeleteExchangeOptions,
  type DeleteQueueOptions,
  type ExchangeOptions,
  type QueueInfo,
  type QueueOptions,
} from './topology/topology.js';
import type { BindingArguments, ExchangeType } from './topology/types.js';
import { validateIntegerOption, validateName, validateOptionsObject } from './validation/index.js';

/** Options of {@link Sluice.connect}: where Redis is, plus the namespace and limits. */
export type ConnectOptions = ({ readonly url: string } | { readonly redis: Redis }) &
  ProducerConnectOptions & {
    /** Prefix of every key; one deployment, one namespace. Default `sluice`. */
    readonly namespace?: string;
    /** How long connecting may take before it fails with ConnectionError. Default 10 000. */
    readonly connectTimeoutMs?: number;
    /** Body codec. Default: Buffer as bytes, string as text, anything else as JSON. */
    readonly codec?: Codec;
  };

/**
 * A sluice client: topology, publishing and consuming on one Redis namespace.
 *
 * ```ts
 * const sluice = await Sluice.connect({ url: 'redis://127.0.0.1:6379', namespace: 'shop' });
 * ```
 */
export class Sluice {
  private readonly consumers = new Set<{ close(): Promise<void> }>();
  private readonly topology: Topology;
  private readonly producer: Producer;
  private readonly cache: TopologyCache;
  private readonly relay: DeadLetterRelay;
  private readonly keeper: QueueKeeper;
  /** Dead-letter queue tools: list, show, replay, purge. */
  readonly dlq: DeadLetterTools;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly connection: Connection,
    private readonly keys: Keyspace,
    private readonly codec: Codec,
    settings: ProducerSettings,
  ) {
    this.topology = new Topology(connection.redis, keys, () => this.cache.invalidate());
    this.cache = new TopologyCache(connection.redis, keys, this.topology);
    this.relay = new DeadLetterRelay(connection.redis, keys, this.cache);
    this.keeper = new QueueKeeper(connection.redis, keys, this.relay);
    this.dlq = new DeadLetterTools(connection.redis, keys, this.topology, this.cache, codec);
    this.producer = new Producer({
      connection,
      keys,
      topology: this.cache,
      codec,
      settings,
      drainDeadLetters: (queue) => this.relay.drain(queue),
    });
  }

  /** Connects to Redis (or adopts a client, which sluice will never close). */
  static async connect(options: ConnectOptions): Promise<Sluice> {
    validateOptionsObject('connect options', options);
    if (options === undefined) throw new InvalidArgumentError('connect options are required');
    const namespace = options.namespace ?? 'sluice';
    validateName('namespace', namespace);
    validateIntegerOption('connectTimeoutMs', options.connectTimeoutMs, 1, 600_000);
    const settings = producerSettings(options);
    const codec = options.codec ?? defaultCodec;
    if (typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
      throw new InvalidArgumentError('codec must have encode and decode functions');
    }
    const source = 'redis' in options ? { redis: options.redis } : { url: options.url };
    const connection = await Connection.open(source, options.connectTimeoutMs ?? 10_000);
    try {
      assertDurabilitySupported(connection, settings.durability);
    } catch (error) {
      await connection.close();
      throw error;
    }
    return new Sluice(connection, new Keyspace(namespace), codec, settings);
  }

  /** The server sluice is connected to and the optional features it has. */
  get server(): ServerInfo {
    return this.connection.server;
  }

  /** The namespace every key of this client starts with. */
  get namespace(): string {
    return this.keys.namespace;
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new ClosedError('sluice client is closed');
  }

  /** Declares an exchange; again with the same arguments is a no-op, with others PreconditionFailedError. */
  declareExchange(name: string, type: ExchangeType, options?: ExchangeOptions): Promise<void> {
    return this.guard(() => this.topology.declareExchange(name, type, options));
  }

  /** Deletes an exchange with its bindings. */
  deleteExchange(name: string, options?: DeleteExchangeOptions): Promise<void> {
    return this.guard(() => this.topology.deleteExchange(name, options));
  }

  /** Declares a queue with its arguments; it is bound to the default exchange by its name. */
  declareQueue(name: string, options?: QueueOptions): Promise<void> {
    return this.guard(() => this.topology.declareQueue(name, options));
  }

  /** Deletes a queue with its bindings and messages. */
  deleteQueue(name: string, options?: DeleteQueueOptions): Promise<void> {
    return this.guard(() => this.topology.deleteQueue(name, options));
  }

  /** Counts of a queue: ready, unacked, delayed, dead letters not yet routed, consumers. */
  inspectQueue(name: string): Promise<QueueInfo> {
    return this.guard(() => this.topology.inspectQueue(name));
  }

  /** Removes the queue's ready messages (not the unacked ones); resolves with how many. */
  purgeQueue(name: string): Promise<number> {
    return this.guard(() => this.topology.purgeQueue(name));
  }

  /** Binds a queue to an exchange by binding key, or by header arguments for a headers exchange. */
  bindQueue(
    queue: string,
    exchange: string,
    keyOrArguments?: string | BindingArguments,
  ): Promise<void> {
    return this.guard(() => this.topology.bindQueue(queue, exchange, keyOrArguments));
  }

  /** Removes a queue binding. */
  unbindQueue(
    queue: string,
    exchange: string,
    keyOrArguments?: string | BindingArguments,
  ): Promise<void> {
    return this.guard(() => this.topology.unbindQueue(queue, exchange, keyOrArguments));
  }

  /** Binds exchange `destination` to exchange `source`. */
  bindExchange(
    destination: string,
    source: string,
    keyOrArguments?: string | BindingArguments,
  ): Promise<void> {
    return this.guard(() => this.topology.bindExchange(destination, source, keyOrArguments));
  }

  /** Removes an exchange-to-exchange binding. */
  unbindExchange(
    destination: string,
    source: string,
    keyOrArguments?: string | BindingArguments,
  ): Promise<void> {
    return this.guard(() => this.topology.unbindExchange(destination, source, keyOrArguments));
  }

  /**
   * Publishes a message. Resolves with the confirm once the message is appended to every
   * queue it routes to; `mandatory` publishes that route nowhere reject with UnroutableError.
   */
  publish(
    exchange: string,
    routingKey: string,
    body: unknown,
    options?: PublishOptions,
  ): Promise<PublishConfirm> {
    return this.guard(() => this.producer.publish(exchange, routingKey, body, options));
  }

  /**
   * Publishes many messages in one round trip; one confirm per message, in order. With
   * `atomic`, either every message is stored or none is.
   */
  publishBatch(
    messages: readonly BatchMessage[],
    options?: PublishBatchOptions,
  ): Promise<PublishConfirm[]> {
    return this.guard(() => this.producer.publishBatch(messages, options));
  }

  /**
   * Runs `handler` for each message of `queue`. Resolving acks, throwing requeues;
   * the handler may also settle the delivery itself.
   */
  async consume<T = unknown>(
    queue: string,
    handler: Handler<T>,
    options?: ConsumeOptions,
  ): Promise<Consumer<T>> {
    this.assertOpen();
    if (typeof handler !== 'function') throw new InvalidArgumentError('handler must be a function');
    const consumer = this.createConsumer<T>(queue, handler, options);
    await this.startConsumer(consumer);
    return consumer;
  }

  /**
   * The iterator form: `for await (const msg of sluice.messages(queue))`; ack each message
   * yourself. Reading starts at once; a failed start is reported by the iteration.
   */
  messages<T = unknown>(queue: string, options?: ConsumeOptions): MessageStream<T> {
    this.assertOpen();
    const consumer = this.createConsumer<T>(queue, undefined, options);
    // Iteration reports a failed start; this keeps it from being unhandled before then.
    this.startConsumer(consumer).catch(() => undefined);
    return consumer;
  }

  private createConsumer<T>(
    queue: string,
    handler: Handler<T> | undefined,
    options: ConsumeOptions = {},
  ): ConsumerImpl<T> {
    validateName('queue', queue);
    validateOptionsObject('consume options', options);
    validateIntegerOption('prefetch', options.prefetch, 1, 10_000);
    validateIntegerOption('concurrency', options.concurrency, 1, 10_000);
    validateRetryPolicy(options.retry);
    const prefetch = options.prefetch ?? 100;
    const concurrency = Math.min(options.concurrency ?? 1, prefetch);
    const consumerName = `${hostname()}-${process.pid}-${randomBytes(6).toString('hex')}`;
    const consumer: ConsumerImpl<T> = new ConsumerImpl<T>(
      {
        connection: this.connection,
        keys: this.keys,
        codec: this.codec,
        topology: this.cache,
        keeper: this.keeper,
        consumerName,
        onClosed: () => this.consumers.delete(consumer),
      },
      queue,
      handler,
      { prefetch, concurrency, retry: options.retry },
    );
    // Registered from the start, so that closing the client also stops one still starting.
    this.consumers.add(consumer);
    return consumer;
  }

  /** Starts a consumer; one that fails to start is closed, releasing what it opened. */
  private async startConsumer<T>(consumer: ConsumerImpl<T>): Promise<void> {
    try {
      await consumer.start();
    } catch (error) {
      await consumer.close();
      throw error;
    }
  }

  /** Runs an operation of an open client; async, so that a synchronous throw rejects. */
  private async guard<R>(operation: () => Promise<R>): Promise<R> {
    this.assertOpen();
    return operation();
  }

  /**
   * Closes every consumer gracefully, then the connections sluice opened. With Redis
   * unreachable it still finishes within a few seconds (plus the wait for running handlers).
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await Promise.all([...this.consumers].map((consumer) => consumer.close()));
    await this.keeper.close();
    await this.connection.close();
  }
}
