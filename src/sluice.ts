import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { RedisClient } from './connection/client.js';
import {
  LOCATION_OPTIONS,
  serverSource,
  type ServerCredentials,
  type ServerLocation,
} from './connection/source.js';
import { Connection, withDeadline, type ServerInfo } from './connection/connection.js';
import { Operations } from './connection/operation.js';
import { ConsumerImpl } from './consumer/consumer.js';
import { QueueKeeper } from './consumer/keeper.js';
import type {
  Consumer,
  ConsumeOptions,
  Handler,
  IdempotentConsumeOptions,
  IdempotentDelivery,
  MessageStream,
} from './consumer/types.js';
import {
  idempotencySettings,
  type IdempotencyOptions,
  type IdempotencyStore,
  type IdempotentHandler,
} from './consumer/idempotency.js';
import {
  ClosedError,
  InvalidArgumentError,
  TimeoutError,
  UnsupportedError,
} from './errors/index.js';
import { callListener, CLIENT_EVENT_NAMES, Events, type ClientEvents } from './events.js';
import { Keyspace } from './keys/index.js';
import { TopologyCache } from './routing/compiled.js';
import { DeadLetterRelay } from './dead-letter/relay.js';
import {
  DeadLetterTools as DeadLetterQueues,
  type DeadLetter,
  type DeadLetterPage,
  type ForeignEntry,
  type ListOptions,
  type ReplayOptions,
  type ReplayResult,
} from './dead-letter/tools.js';
import { DEFAULT_RETRY_POLICY, validateRetryPolicy } from './consumer/retry.js';
import { defaultCodec, type Codec } from './message/codec.js';
import type { BatchMessage, PublishOptions } from './producer/prepare.js';
import { Producer, type PublishBatchOptions } from './producer/producer.js';
import type { PublishConfirm } from './producer/publication.js';
import { QueueData, type QueueInfo, type QueueStats } from './queue/data.js';
import { partitionCount } from './queue/partitions.js';
import { peekQueue, type PeekedMessage } from './queue/peek.js';
import { loadTracing, type Tracing } from './tracing/tracing.js';
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
} from './topology/topology.js';
import type { BindingArguments } from './routing/headers.js';
import type { ExchangeType, QueueOptions, TopologyListing } from './topology/types.js';
import {
  isPlainData,
  optionNames,
  validateBooleanOption,
  validateCodec,
  validateEnumOption,
  validateIntegerOption,
  validateName,
  validateOptionsObject,
} from './validation/index.js';

/**
 * Emits `connection.lost` when the client's connection breaks and `connection.restored` when it
 * is ready again (once each per outage); returns the function that stops watching.
 */
function watchConnection(redis: RedisClient, events: Events<ClientEvents>): () => void {
  let lost = false;
  const onClose = (): void => {
    if (lost) return;
    lost = true;
    if (events.has('connection.lost')) events.emit('connection.lost', { time: Date.now() });
  };
  const onReady = (): void => {
    if (!lost) return;
    lost = false;
    if (events.has('connection.restored')) {
      events.emit('connection.restored', { time: Date.now() });
    }
  };
  redis.on('close', onClose);
  redis.on('ready', onReady);
  return () => {
    redis.off('close', onClose);
    redis.off('ready', onReady);
  };
}

/**
 * Options of {@link Sluice.connect}: where Redis is (a URL, an ioredis client, a Redis
 * Cluster's seed nodes, or Sentinels with the name of their primary) and how to log in, plus
 * the namespace and limits.
 */
export type ConnectOptions = ServerLocation &
  ServerCredentials &
  ProducerConnectOptions &
  ClientOptions;

/** The options of {@link ConnectOptions} besides where Redis is and the producer's. */
export interface ClientOptions {
  /** Prefix of every key; one deployment, one namespace. Default `sluice`. */
  readonly namespace?: string | undefined;
  /** How long connecting may take before it fails with ConnectionError. Default 10 000. */
  readonly connectTimeoutMs?: number | undefined;
  /**
   * Deadline of every operation other than publishing (declarations, bindings, deletes,
   * purges, `inspectQueue`, `stats`, `listTopology`, the `dlq` tools), retries included: it
   * resolves or rejects within it, with TimeoutError when Redis did not answer in time.
   * Default 10 000.
   */
  readonly operationTimeoutMs?: number | undefined;
  /** Body codec. Default: Buffer as bytes, string as text, anything else as JSON. */
  readonly codec?: Codec | undefined;
  /**
   * OpenTelemetry spans of publishing and processing when the application has
   * `@opentelemetry/api` (docs/metrics.md#tracing). Default true; false makes none, and the
   * messages carry only the `traceparent` a publish gives.
   */
  readonly tracing?: boolean | undefined;
}

const CONNECT_OPTIONS = new Set([
  ...LOCATION_OPTIONS,
  ...optionNames<ProducerConnectOptions & ClientOptions>({
    namespace: true,
    connectTimeoutMs: true,
    operationTimeoutMs: true,
    codec: true,
    tracing: true,
    maxBodyBytes: true,
    durability: true,
    replicas: true,
    durabilityTimeoutMs: true,
    confirmTimeoutMs: true,
    dedupWindowMs: true,
  }),
]);
const CONSUME_OPTIONS = optionNames<IdempotentConsumeOptions<unknown>>({
  prefetch: true,
  concurrency: true,
  retry: true,
  idempotency: true,
  ordered: true,
  onPoison: true,
});
const POISON_POLICIES: readonly ('dead-letter' | 'halt')[] = ['dead-letter', 'halt'];

/**
 * The dead-letter queue tools of a client (`sluice.dlq`): list, show, replay, purge. Each is
 * retried and bounded by `operationTimeoutMs`, like the other operations besides publishing.
 */
export interface DeadLetterTools {
  /** A page of the queue's messages, oldest first. */
  list(queue: string, options?: ListOptions): Promise<DeadLetterPage>;
  /** One message by stream id or message id, with its death history; NotFoundError if none. */
  show(queue: string, id: string): Promise<DeadLetter | ForeignEntry>;
  /**
   * Sends dead letters back, oldest first, skipping those a consumer holds: by default each to
   * the queue it died in and to no other; through its original exchange with `viaExchange`
   * (every queue bound there gets a copy); or to `toQueue`. One whose queue is gone stays in
   * the queue, counted in `failed` with a NotFoundError in `failures`. A replay that is
   * interrupted and run again never doubles a message; a message that routes nowhere by then
   * stays in the queue.
   */
  replay(queue: string, options?: ReplayOptions): Promise<ReplayResult>;
  /** Removes the queue's ready messages; resolves with how many. */
  purge(queue: string): Promise<number>;
}

/** Every operation the facade retries is idempotent as a whole (see Operations). */
const IDEMPOTENT = { idempotent: true } as const;

/**
 * `options` of a replay with its `onProgress` also reporting progress to the operation runner;
 * options that replay refuses are handed on as they are, for replay to refuse them. A callback
 * that throws (or rejects) does not stop the replay, as a throwing event listener stops nothing.
 */
function reportingProgress(
  options: ReplayOptions | undefined,
  progress: () => void,
): ReplayOptions | undefined {
  if (options !== undefined && !isPlainData(options)) return options;
  const onProgress = options?.onProgress;
  if (onProgress !== undefined && typeof onProgress !== 'function') return options;
  return {
    ...options,
    onProgress: (done, total) => {
      progress();
      callListener(() => onProgress?.(done, total));
    },
  };
}

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
  private readonly queues: QueueData;
  private readonly producer: Producer;
  private readonly cache: TopologyCache;
  private readonly relay: DeadLetterRelay;
  private readonly operations: Operations;
  private readonly keeper: QueueKeeper;
  /** Dead-letter queue tools: list, show, replay, purge. */
  readonly dlq: DeadLetterTools;
  private closing: Promise<void> | undefined;
  private readonly events = new Events<ClientEvents>(CLIENT_EVENT_NAMES);
  /** Stops reporting the connection's losses (see {@link watchConnection}). */
  private readonly watchConnection: () => void;

  private constructor(
    private readonly connection: Connection,
    private readonly keys: Keyspace,
    private readonly codec: Codec,
    settings: ProducerSettings,
    private readonly operationTimeoutMs: number,
    /** Spans of publishing and processing; undefined without `@opentelemetry/api`. */
    private readonly tracing: Tracing | undefined,
  ) {
    this.queues = new QueueData(connection.redis, keys, (queue) =>
      this.topology.queueRecord(queue),
    );
    this.topology = new Topology(connection.redis, keys, this.queues, () =>
      this.cache.invalidate(),
    );
    this.cache = new TopologyCache(this.topology);
    this.relay = new DeadLetterRelay(
      { redis: connection.redis, keys, cluster: connection.server.cluster },
      keys,
      this.cache,
      // The keeper comes next: it routes its sweeps through this relay.
      {
        expireAt: (queue, partition, dueAtMs, ttlMs) =>
          this.keeper.expireAt(queue, partition, dueAtMs, ttlMs),
      },
    );
    this.keeper = new QueueKeeper(connection.redis, keys, this.relay, (queue, error) => {
      if (this.events.has('expiry.failed')) this.events.emit('expiry.failed', { queue, error });
    });
    this.operations = new Operations(connection, operationTimeoutMs);
    const dlq = new DeadLetterQueues(
      connection.redis,
      keys,
      this.queues,
      this.cache,
      this.relay,
      codec,
    );
    this.dlq = {
      list: (queue, options) => this.admin('dlq.list', () => dlq.list(queue, options)),
      show: (queue, id) => this.admin('dlq.show', () => dlq.show(queue, id)),
      replay: (queue, options) =>
        this.admin('dlq.replay', (progress) =>
          dlq.replay(queue, reportingProgress(options, progress)),
        ),
      purge: (queue) => this.admin('dlq.purge', () => dlq.purge(queue)),
    };
    this.producer = new Producer({
      connection,
      keys,
      topology: this.cache,
      codec,
      settings,
      relay: this.relay,
      expiry: this.keeper,
      events: this.events,
      tracing,
    });
    this.watchConnection = watchConnection(connection.redis, this.events);
  }

  /**
   * Listens to an instrumentation event of this client: `publish.confirmed`, `publish.retried`,
   * `publish.failed`, `connection.lost`, `connection.restored` (see {@link ClientEvents}).
   * Events nobody listens to cost nothing; a listener that throws does not affect sluice. Another
   * name, or a listener that is not a function, fails with InvalidArgumentError.
   */
  on<K extends keyof ClientEvents>(name: K, listener: (event: ClientEvents[K]) => void): this {
    this.events.on(name, listener);
    return this;
  }

  /** Stops listening (see {@link on}). */
  off<K extends keyof ClientEvents>(name: K, listener: (event: ClientEvents[K]) => void): this {
    this.events.off(name, listener);
    return this;
  }

  /**
   * Connects to Redis at `url` (or adopts the client `redis`, which sluice will never close: one
   * of the two). Options are plain data; an option set to `undefined` is absent.
   */
  static async connect(options: ConnectOptions): Promise<Sluice> {
    validateOptionsObject('connect options', options, CONNECT_OPTIONS);
    if (options === undefined) throw new InvalidArgumentError('connect options are required');
    // Undefined is an option's absence; null is a value, refused like any other of a wrong type.
    const namespace = options.namespace === undefined ? 'sluice' : options.namespace;
    validateName('namespace', namespace);
    validateIntegerOption('connectTimeoutMs', options.connectTimeoutMs, 1, 600_000);
    validateIntegerOption('operationTimeoutMs', options.operationTimeoutMs, 100, 3_600_000);
    validateBooleanOption('tracing', options.tracing);
    const settings = producerSettings(options);
    if (options.codec !== undefined) validateCodec(options.codec);
    const codec = options.codec ?? defaultCodec;
    const source = serverSource(options);
    const connection = await Connection.open(source, options.connectTimeoutMs ?? 10_000);
    try {
      assertDurabilitySupported(connection, settings.durability);
    } catch (error) {
      await connection.close();
      throw error;
    }
    return new Sluice(
      connection,
      new Keyspace(namespace),
      codec,
      settings,
      options.operationTimeoutMs ?? 10_000,
      options.tracing === false ? undefined : await loadTracing(),
    );
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
    return this.admin('declareExchange', () => this.topology.declareExchange(name, type, options));
  }

  /** Deletes an exchange with its bindings. */
  deleteExchange(name: string, options?: DeleteExchangeOptions): Promise<void> {
    return this.admin('deleteExchange', () => this.topology.deleteExchange(name, options));
  }

  /** Declares a queue with its arguments; it is bound to the default exchange by its name. */
  declareQueue(name: string, options?: QueueOptions): Promise<void> {
    return this.admin('declareQueue', () => this.topology.declareQueue(name, options));
  }

  /** Deletes a queue with its bindings and messages. */
  deleteQueue(name: string, options?: DeleteQueueOptions): Promise<void> {
    return this.admin('deleteQueue', () => this.topology.deleteQueue(name, options));
  }

  /** Counts of a queue: ready, unacked, delayed, dead letters not yet routed, consumers. */
  inspectQueue(name: string): Promise<QueueInfo> {
    return this.admin('inspectQueue', () => this.queues.inspect(name));
  }

  /**
   * Up to `count` (default 20, at most 10 000) of the oldest ready messages of a queue, read
   * without consuming them: nothing is delivered, acked or moved.
   */
  peekQueue(name: string, options: { readonly count?: number } = {}): Promise<PeekedMessage[]> {
    return this.admin('peekQueue', () =>
      peekQueue(
        this.connection.redis,
        this.keys,
        this.queues,
        this.codec,
        name,
        options.count ?? 20,
      ),
    );
  }

  /**
   * Statistics of a queue (see {@link QueueStats}): its counts, the age of its oldest message,
   * its totals, and their per-second rates since this client's previous `stats()` of it.
   * NotFoundError when the queue is not declared.
   */
  stats(queue: string): Promise<QueueStats>;
  /** Statistics of every declared queue, sorted by name. */
  stats(): Promise<QueueStats[]>;
  stats(queue?: string): Promise<QueueStats | QueueStats[]> {
    if (queue !== undefined) return this.admin('stats', () => this.queues.stats(queue));
    return this.admin('stats', async () => {
      const { queues } = await this.topology.list();
      return Promise.all(
        queues.map((record) => this.queues.statsOf(record.name, partitionCount(record))),
      );
    });
  }

  /**
   * The topology at one version: exchanges (the default and `amq.*` ones included), queues with
   * their arguments, and bindings, each sorted by name.
   */
  listTopology(): Promise<TopologyListing> {
    return this.admin('listTopology', () => this.topology.list());
  }

  /** Removes the queue's ready messages (not the unacked ones); resolves with how many. */
  purgeQueue(name: string): Promise<number> {
    return this.admin('purgeQueue', () => this.queues.purge(name));
  }

  /** Binds a queue to an exchange by binding key, or by header arguments for a headers exchange. */
  bindQueue(
    queue: string,
    exchange: string,
    keyOrArguments?: string | BindingArguments,
  ): Promise<void> {
    return this.admin('bindQueue', () => this.topology.bindQueue(queue, exchange, keyOrArguments));
  }

  /** Removes a queue binding. */
  unbindQueue(
    queue: string,
    exchange: string,
    keyOrArguments?: string | BindingArguments,
  ): Promise<void> {
    return this.admin('unbindQueue', () =>
      this.topology.unbindQueue(queue, exchange, keyOrArguments),
    );
  }

  /** Binds exchange `destination` to exchange `source`. */
  bindExchange(
    destination: string,
    source: string,
    keyOrArguments?: string | BindingArguments,
  ): Promise<void> {
    return this.admin('bindExchange', () =>
      this.topology.bindExchange(destination, source, keyOrArguments),
    );
  }

  /** Removes an exchange-to-exchange binding. */
  unbindExchange(
    destination: string,
    source: string,
    keyOrArguments?: string | BindingArguments,
  ): Promise<void> {
    return this.admin('unbindExchange', () =>
      this.topology.unbindExchange(destination, source, keyOrArguments),
    );
  }

  /**
   * Publishes a message. Resolves with the confirm once the message is appended to every
   * queue it routes to; `mandatory` publishes that route nowhere reject with UnroutableError.
   */
  publish<T = unknown>(
    exchange: string,
    routingKey: string,
    body: T,
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
   * An idempotent consumer: `handler` runs once per idempotency key (by default the message's
   * `dedupKey`) within the marker window, its second argument the store's context (`ctx.tx`,
   * Redis writes applied with the done marker and the ack). See docs/idempotency.md.
   */
  consume<T = unknown>(
    queue: string,
    handler: IdempotentHandler<T>,
    options: IdempotentConsumeOptions & {
      readonly idempotency: { readonly store?: undefined };
    },
  ): Promise<Consumer<T>>;
  /**
   * An idempotent consumer with a store of its own (the PostgreSQL inbox): `ctx` is what the
   * store gives its work (`ctx.db` for PostgreSQL).
   */
  consume<T, C>(
    queue: string,
    handler: IdempotentHandler<T, C>,
    options: IdempotentConsumeOptions<C> & {
      readonly idempotency: { readonly store: IdempotencyStore<C> };
    },
  ): Promise<Consumer<T>>;
  /**
   * Runs `handler` for each message of `queue`. Resolving acks; throwing retries the message
   * after the `retry` backoff (1 s, doubling up to 5 minutes, by default), with the error kept
   * for its death record; the handler may also settle the delivery itself.
   */
  consume<T = unknown>(
    queue: string,
    handler: Handler<T>,
    options?: ConsumeOptions,
  ): Promise<Consumer<T>>;
  async consume<T = unknown>(
    queue: string,
    handler: IdempotentHandler<T, never>,
    options?: ConsumeOptions & { readonly idempotency?: IdempotencyOptions<unknown> | undefined },
  ): Promise<Consumer<T>> {
    this.assertOpen();
    if (typeof handler !== 'function') throw new InvalidArgumentError('handler must be a function');
    // The store's context is the handler's: what it gets is the store's to type.
    const consumer = this.createConsumer<T>(
      queue,
      handler as IdempotentHandler<T, unknown>,
      options,
    );
    await this.startConsumer(consumer);
    return consumer;
  }

  /**
   * The idempotent iterator form: each delivery it yields holds its key (duplicates are acked
   * without being yielded), and `msg.ack()` applies `msg.tx`'s writes with the done marker.
   */
  messages<T = unknown>(
    queue: string,
    options: IdempotentConsumeOptions & { readonly idempotency: { readonly store?: undefined } },
  ): MessageStream<T, IdempotentDelivery<T>>;
  /**
   * The iterator form: `for await (const msg of sluice.messages(queue))`; ack each message
   * yourself. Reading starts at once; a failed start is reported by the iteration.
   */
  messages<T = unknown>(queue: string, options?: ConsumeOptions): MessageStream<T>;
  messages<T = unknown>(
    queue: string,
    options?: ConsumeOptions & { readonly idempotency?: IdempotencyOptions<unknown> | undefined },
  ): MessageStream<T> {
    this.assertOpen();
    const consumer = this.createConsumer<T>(queue, undefined, options);
    // Iteration reports a failed start; this keeps it from being unhandled before then.
    this.startConsumer(consumer).catch(() => undefined);
    return consumer;
  }

  private createConsumer<T>(
    queue: string,
    handler: IdempotentHandler<T, unknown> | undefined,
    options: ConsumeOptions & {
      readonly idempotency?: IdempotencyOptions<unknown> | undefined;
    } = {},
  ): ConsumerImpl<T> {
    validateName('queue', queue);
    validateOptionsObject('consume options', options, CONSUME_OPTIONS);
    validateIntegerOption('prefetch', options.prefetch, 1, 10_000);
    validateIntegerOption('concurrency', options.concurrency, 1, 10_000);
    validateRetryPolicy(options.retry);
    validateBooleanOption('ordered', options.ordered);
    validateEnumOption('onPoison', options.onPoison, POISON_POLICIES);
    if (options.onPoison !== undefined && options.ordered !== true) {
      throw new InvalidArgumentError('onPoison is an option of ordered consumers (ordered: true)');
    }
    if (handler === undefined && options.ordered === true) {
      throw new UnsupportedError('an ordered consumer runs a handler per key: use consume()');
    }
    const idempotency =
      options.idempotency === undefined ? undefined : idempotencySettings(options.idempotency);
    // Read once the options are known to be plain data (a getter would run here otherwise).
    if (handler === undefined && idempotency?.store !== undefined) {
      throw new UnsupportedError(
        'an idempotency store of your own runs the handler in its transaction: use consume()',
      );
    }
    const prefetch = options.prefetch ?? 100;
    const concurrency = Math.min(options.concurrency ?? 1, prefetch);
    const consumerName = `${hostname()}-${process.pid}-${randomBytes(6).toString('hex')}`;
    const traced =
      handler === undefined || this.tracing === undefined
        ? handler
        : this.tracing.processing(handler);
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
      traced,
      {
        prefetch,
        concurrency,
        retry: options.retry ?? DEFAULT_RETRY_POLICY,
        idempotency,
        ordered: options.ordered === true,
        onPoison: options.onPoison ?? 'dead-letter',
      },
    );
    // Registered from the start, so that closing the client also stops one still starting.
    this.consumers.add(consumer);
    return consumer;
  }

  /** Starts a consumer; one that fails to start is closed, releasing what it opened. */
  /**
   * Starts a consumer within `operationTimeoutMs` (its start reads the topology and registers
   * it, which wait for an unreachable Redis); one that fails or times out is closed, releasing
   * what it opened (`sluice.close()` waits for that).
   */
  private async startConsumer<T>(consumer: ConsumerImpl<T>): Promise<void> {
    const timeoutMs = this.operationTimeoutMs;
    try {
      await withDeadline(
        consumer.start(),
        timeoutMs,
        () =>
          new TimeoutError(`consumer of '${consumer.queue}' not started within ${timeoutMs} ms`),
      );
    } catch (error) {
      // Closed in the background: its own close is bounded, and must not delay the rejection.
      consumer.close().catch(() => undefined);
      throw error;
    }
  }

  /** Runs an operation of an open client; async, so that a synchronous throw rejects. */
  private async guard<R>(operation: () => Promise<R>): Promise<R> {
    this.assertOpen();
    return operation();
  }

  /**
   * Runs an operation other than publishing of an open client: retried and bounded by
   * `operationTimeoutMs` (see Operations).
   */
  private admin<R>(what: string, operation: (progress: () => void) => Promise<R>): Promise<R> {
    return this.guard(() => this.operations.run(what, operation, IDEMPOTENT));
  }

  /**
   * Closes every consumer gracefully, then the connections sluice opened (those even if a
   * consumer failed to close: the connection's close is bounded, nothing may keep it open).
   * With Redis unreachable it still finishes within a few seconds (plus the wait for running
   * handlers).
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    try {
      await Promise.all([...this.consumers].map((consumer) => consumer.close()));
      await this.keeper.close();
    } finally {
      this.watchConnection();
      await this.connection.close();
      this.operations.close();
    }
  }
}
