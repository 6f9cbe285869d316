/**
 * A consumer of one queue, put together from its parts: the reader takes entries within the
 * prefetch credit, admission decides what reaches a handler, the dispatcher runs handlers (or
 * feeds the iterator), the settlement acks, leases and reclaim keep deliveries with a living
 * consumer, and the client's keeper runs the queue's chores. This module wires them, owns the
 * counters and events, and shuts them down in order.
 */
import type { RedisClient } from '../connection/client.js';
import { toSluiceError, type Connection } from '../connection/connection.js';
import type { DeathReason } from '../message/death-history.js';
import {
  ClosedError,
  NotFoundError,
  PreconditionFailedError,
  SluiceError,
  StaleDeliveryError,
  UnsupportedError,
} from '../errors/index.js';
import { partitionCount, partitionNumbers } from '../queue/partitions.js';
import { KeyLanes } from './lanes.js';
import { Ownership } from './ownership.js';
import type { Keyspace, QueueKeys } from '../keys/index.js';
import type { Codec } from '../message/codec.js';
import { encodeErrorRecord, recordError } from '../message/error-record.js';
import type { TopologyCache } from '../routing/compiled.js';
import { ensureConsumerGroup } from '../queue/group.js';
import type { QueueRecord } from '../topology/types.js';
import { optionNames, validateIntegerOption, validateOptionsObject } from '../validation/index.js';
import { admit, deliveryLimit, type Delivered } from './admission.js';
import { ReplyBudget } from './deadline.js';
import { DeliveryImpl } from './delivery.js';
import { Dispatcher, type DispatchHooks } from './dispatcher.js';
import { CONSUMER_EVENT_NAMES, Events } from '../events.js';
import type { Detach, QueueKeeper } from './keeper.js';
import { Leases } from './leases.js';
import { Reader } from './reader.js';
import { Reclaimer } from './reclaim.js';
import { REGISTRATION_LEASE_MS, Registration } from './registration.js';
import {
  IdempotentSettlement,
  runWithStore,
  type IdempotencySettings,
  type IdempotentHandler,
} from './idempotency.js';
import { retryDelayMs, type RetryPolicy } from './retry.js';
import {
  deadLetterOwned,
  deregisterConsumer,
  pruneGroup,
  reclaimIdle,
  redeliverOwned,
} from './scripts.js';
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
  /** Per-key ordering (a single-active-consumer queue is consumed so whatever this says). */
  readonly ordered: boolean;
  readonly onPoison: 'dead-letter' | 'halt';
}

/** Default visibility timeout when the queue sets no `ackTimeoutMs`. */
const DEFAULT_ACK_TIMEOUT_MS = 30_000;
const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;
/** After a retry in place failed to reach Redis, how long until it is tried again. */
const RETRY_AGAIN_MS = 1000;
/** Most pending entries one step of a new owner's takeover claims. */
const TAKEOVER_BATCH = 100;
/** The longest timer Node runs as asked (setTimeout's limit). */
const MAX_CLOSE_TIMEOUT_MS = 2_147_483_647;

/** Mutable counters behind the {@link ConsumerStats} snapshots. */
type Counts = { -readonly [K in keyof ConsumerStats]: ConsumerStats[K] } & {
  deadLettered: Record<DeathReason, number>;
};

/** One partition a consumer reads: its keys, settlement, reader, and what owns it. */
interface PartitionPart {
  readonly partition: number;
  readonly keys: QueueKeys;
  readonly settlement: Settlement;
  readonly reader: Reader;
  /** Unordered consumers: taking over what crashed consumers left. */
  readonly reclaimer: Reclaimer | undefined;
  /** Ordered consumers: the fencing token the partition is owned under. */
  readonly token: number | undefined;
}

/**
 * A retry in place that an ordered consumer's settlement noted, to run after `delayMs`, with
 * the handler's error that caused it (for the death record, should the limit be reached).
 */
interface InPlaceRetry {
  readonly delayMs: number;
  readonly lastError: string | undefined;
}

/**
 * An ordered consumer's settlement: a requeue is a retry in place (the entry stays pending for
 * this owner and is delivered again after the delay, keeping its key's place), noted here for
 * the consumer to run once the handler is done; everything else is the plain settlement's.
 */
class InPlaceRequeue implements Settlement {
  constructor(
    private readonly plain: Settlement,
    private readonly retries: Map<Delivery, InPlaceRetry>,
  ) {}
  ack(delivery: Delivery): Promise<void> {
    return this.plain.ack(delivery);
  }
  autoAck(delivery: Delivery): Promise<void> {
    return this.plain.autoAck(delivery);
  }
  requeue(delivery: Delivery, delayMs: number, lastError?: string): Promise<void> {
    this.retries.set(delivery, { delayMs, lastError });
    return Promise.resolve();
  }
  giveBack(deliveries: readonly Delivery[], counted: boolean): Promise<void> {
    return this.plain.giveBack(deliveries, counted);
  }
  reject(delivery: Delivery): Promise<void> {
    return this.plain.reject(delivery);
  }
  extend(delivery: Delivery): Promise<void> {
    return this.plain.extend(delivery);
  }
  idle(): Promise<void> {
    return this.plain.idle();
  }
  stale(delivery: Delivery): StaleDeliveryError {
    return this.plain.stale(delivery);
  }
}

/**
 * Reads one queue through its consumer group, every partition of it (or, ordered, the
 * partitions it owns). In the handler form it runs the handler for each delivery (automatic
 * acks); in the iterator form it yields deliveries that the caller settles. At most
 * `prefetch` deliveries are unsettled at any time (shared among the partitions it reads).
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
  private readonly redis: RedisClient;
  /** Partition 0's keys: the queue-wide ones (registration, membership) are there. */
  private readonly queueKeys: QueueKeys;
  private readonly leases: Leases<T>;
  private readonly registration: Registration;
  /** The dispatcher of an unordered consumer, or the key lanes of an ordered one. */
  private dispatcher: Dispatcher<T> | undefined;
  private lanes: KeyLanes<T> | undefined;
  /** The partitions read now. */
  private readonly parts = new Map<number, PartitionPart>();
  /** Unsettled deliveries per partition (a reader's share of the prefetch). */
  private readonly heldIn = new Map<number, number>();
  /** Idempotent settlements of every partition read (their leases stop at close). */
  private readonly idempotents = new Set<IdempotentSettlement>();
  /** Ordered: retries in place noted by the settlement, and those waiting for their delay. */
  private readonly retries = new Map<Delivery, InPlaceRetry>();
  private readonly retryTimers = new Map<DeliveryImpl<T>, NodeJS.Timeout>();
  private ownership: Ownership | undefined;
  private ordered = false;
  private rules: QueueRecord = { name: '', durable: true };
  private ackTimeoutMs = DEFAULT_ACK_TIMEOUT_MS;
  private started: Promise<void> | undefined;
  private detachKeeper: Detach | undefined;
  /** Whether this consumer got as far as registering with the group. */
  private registered = false;
  private wakeIdle: (() => void) | undefined;
  /** Waiting for a partition's handlers to finish (a handover), by partition. */
  private readonly partitionIdle = new Map<number, () => void>();
  private closing = false;
  private closed: Promise<void> | undefined;
  private shutDown = false;
  private cancelledOnce = false;
  /** Events of the start (partitions assigned), held until the caller has the consumer. */
  private startEvents: (() => void)[] | undefined = [];
  /**
   * Whether `delivery.handled` / `delivery.failed` have listeners: kept up to date by
   * {@link on} and {@link off}, so that the per-delivery path looks at a field, not a map.
   */
  private listensHandled = false;
  private listensFailed = false;
  private readonly report = (error: unknown): void => this.reportError(error);

  get name(): string {
    return this.context.consumerName;
  }

  constructor(
    private readonly context: ConsumerContext,
    readonly queue: string,
    private readonly handler: IdempotentHandler<T, unknown> | undefined,
    private readonly settings: ConsumerSettings,
  ) {
    this.redis = context.connection.redis;
    this.queueKeys = context.keys.queue(queue);
    const { consumerName } = context;
    this.leases = new Leases<T>({
      redis: this.redis,
      keys: (partition) => context.keys.queue(queue, partition),
      consumerName,
      report: this.report,
    });
    this.registration = new Registration(
      this.redis,
      this.queueKeys,
      consumerName,
      () => this.ordered,
      this.report,
      (error) => {
        // Ordered consumers joined while this one was cut off: it must not read past them.
        this.report(error);
        this.close({ timeoutMs: 0 }).catch(this.report);
      },
    );
  }

  /** The parts of one partition: settlement (plain or idempotent), reader, reclaim. */
  private openPart(partition: number, token: number | undefined): PartitionPart {
    const { context, queue } = this;
    const { consumerName } = context;
    const keys = context.keys.queue(queue, partition);
    const plain = new PlainSettlement({
      redis: this.redis,
      keys,
      consumerName,
      token,
      queue,
      counts: this.counts,
      held: () => this.leases.size,
      deliveryLimit: () => deliveryLimit(this.rules),
      released: (delivery) => this.released(delivery),
      deadLetter: (streamId, messageId, reason) =>
        this.deadLetter({ keys, token }, streamId, messageId, reason),
      report: this.report,
      ...(token === undefined
        ? {}
        : { autoAckFailed: (deliveries) => this.ackAgain(partition, token, deliveries) }),
    });
    const base: Settlement = token === undefined ? plain : new InPlaceRequeue(plain, this.retries);
    let settlement = base;
    const idempotency = this.settings.idempotency;
    if (idempotency !== undefined && idempotency.store === undefined) {
      const idempotent = new IdempotentSettlement(base, idempotency, {
        redis: this.redis,
        keys: context.keys,
        queue,
        partition,
        consumerName,
        cluster: context.connection.server.cluster,
        ordered: token !== undefined,
        held: () => this.leases.size,
        released: (delivery) => this.released(delivery),
        duplicate: (delivery) => this.duplicate(delivery),
        acked: () => void this.counts.acked++,
        refused: (delivery) => this.refused(delivery),
        report: this.report,
      });
      this.idempotents.add(idempotent);
      settlement = idempotent;
    }
    const part: PartitionPart = {
      partition,
      keys,
      settlement,
      token,
      reader: new Reader({
        connection: context.connection,
        stream: keys.stream,
        fence: keys.fence,
        queue,
        consumerName,
        ...(token === undefined
          ? {}
          : { ordered: { owner: keys.owner, token, lost: () => this.partitionLost(partition) } }),
        credit: () => this.creditOf(partition),
        receive: (streamId, fields) => this.receive(part, streamId, fields, 1, false),
        report: this.report,
        groupRecreated: () => this.events.emit('groupRecreated', { queue }),
        cancelled: () => this.cancelled(),
        connectionLost: (error) => {
          this.events.emit('connection.lost', { queue, error });
          this.report(error);
        },
        connectionRestored: (downtimeMs) =>
          this.events.emit('connection.restored', { queue, downtimeMs }),
      }),
      reclaimer:
        token !== undefined
          ? undefined
          : new Reclaimer({
              redis: this.redis,
              keys,
              consumerName,
              credit: () => part.reader.credit(),
              receive: ({ streamId, fields, timesDelivered }) => {
                this.counts.reclaimed++;
                return this.receive(part, streamId, fields, timesDelivered, true);
              },
              report: this.report,
            }),
    };
    return part;
  }

  /** What a partition's reader may still take: the consumer's credit, and its fair share. */
  private creditOf(partition: number): number {
    const free = this.settings.prefetch - this.leases.size;
    const share = Math.ceil(this.settings.prefetch / Math.max(1, this.parts.size));
    return Math.min(free, share - (this.heldIn.get(partition) ?? 0));
  }

  /**
   * What the dispatcher runs per delivery: the handler itself, or for an idempotent consumer
   * the handler behind its key's lease (Redis store) or inside the store's transaction.
   */
  private dispatched(handler: IdempotentHandler<T, unknown>): Handler<T> {
    const idempotency = this.settings.idempotency;
    if (idempotency === undefined) return handler as Handler<T>;
    const store = idempotency.store;
    if (store === undefined) {
      return (delivery) => {
        const impl = delivery as DeliveryImpl<T>;
        return (impl.settler as IdempotentSettlement).run(impl, handler);
      };
    }
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
        dropped: this.rules.deadLetterExchange === undefined,
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

  /** Checks the queue exists, registers with the group, opens the reading connections, reads. */
  start(): Promise<void> {
    this.started ??= this.open().then(
      () => {
        // After the caller of consume() got the consumer and could listen: what was assigned
        // while it started is told now.
        setImmediate(() => {
          const held = this.startEvents ?? [];
          this.startEvents = undefined;
          for (const emit of held) emit();
        });
      },
      (error: unknown) => {
        throw toSluiceError(error, this.redis, `starting a consumer of queue '${this.queue}'`);
      },
    );
    return this.started;
  }

  private async open(): Promise<void> {
    const record = await this.queueRecord();
    if (record === undefined) throw new NotFoundError(`queue '${this.queue}' does not exist`);
    this.rules = record;
    this.ackTimeoutMs = record.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
    this.ordered = this.settings.ordered || record.singleActiveConsumer === true;
    const partitions = partitionCount(record);
    const hooks: DispatchHooks<T> = {
      timed: () => this.listensHandled || this.listensFailed,
      finished: (delivery, failed, error, startedAt) =>
        this.finished(delivery, failed, error, startedAt),
    };
    if (this.ordered) {
      if (this.handler === undefined) {
        throw new UnsupportedError(
          `queue '${this.queue}' is consumed in order (ordered, or a single active consumer): ` +
            'use consume() with a handler',
        );
      }
      this.lanes = new KeyLanes<T>(this.dispatched(this.handler), this.settings.concurrency, {
        ...hooks,
        halted: (delivery) => this.halted(delivery),
        owned: (delivery) => this.owned(delivery),
        discarded: (delivery) => this.drop(delivery),
      });
    } else {
      const handler = this.handler === undefined ? undefined : this.dispatched(this.handler);
      this.dispatcher = new Dispatcher<T>(handler, this.settings.concurrency, hooks);
    }
    await Promise.all(
      partitionNumbers(partitions).map((p) =>
        ensureConsumerGroup(this.redis, this.context.keys.queue(this.queue, p).stream),
      ),
    );
    if (this.ordered) {
      this.ownership = new Ownership({
        redis: this.redis,
        keys: (partition) => this.context.keys.queue(this.queue, partition),
        queue: this.queue,
        consumerName: this.context.consumerName,
        partitions,
        single: record.singleActiveConsumer === true,
        acquired: (partition, token) => this.acquired(partition, token),
        lost: (partition) => this.partitionLost(partition),
        handOver: (partition) => this.handOver(partition),
        busy: (partition) => (this.lanes?.activeIn(partition) ?? 0) > 0,
        gone: () => this.cancelled(),
        report: this.report,
      });
      // A member before it is registered: the membership script of the others takes a
      // registered consumer that is no member for an unordered one (a conflict).
      if ((await this.ownership.join()) === 'gone') {
        throw new NotFoundError(`queue '${this.queue}' does not exist`);
      }
    }
    // Registered before the first read, so the queue counts as in use from now on.
    const registered = await this.registration.register();
    if (registered === 'gone') throw new NotFoundError(`queue '${this.queue}' does not exist`);
    if (registered === 'refused') {
      throw new PreconditionFailedError(
        `queue '${this.queue}' has ordered consumers: ordered and unordered consumers cannot ` +
          'share a queue',
      );
    }
    this.registered = true;
    if (this.ownership !== undefined) {
      const ownership = this.ownership;
      if (!this.closing) await ownership.start();
    } else {
      for (const p of partitionNumbers(partitions)) this.parts.set(p, this.openPart(p, undefined));
      if (!this.closing)
        await Promise.all([...this.parts.values()].map((part) => part.reader.open()));
      // What a closed consumer gave back (or a crashed one left) comes before anything newer.
      if (!this.closing) {
        await Promise.all(
          [...this.parts.values()].map(
            (part) => part.reclaimer?.start(this.ackTimeoutMs) ?? Promise.resolve(),
          ),
        );
      }
    }
    if (this.closing) {
      // Closed meanwhile: shutdown may be past releasing, so this start undoes itself.
      for (const part of this.parts.values()) part.reader.release();
      throw new ClosedError(`consumer of queue '${this.queue}' was closed while starting`);
    }
    this.leases.start(this.ackTimeoutMs);
    this.registration.start();
    if (!this.ordered) {
      for (const part of this.parts.values()) {
        if (part.partition > 0) this.pruneGroup(part);
        part.reader.start();
      }
    }
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
   * Ordered: this consumer owns `partition` under `token` now. What is pending in it (the
   * previous owner's deliveries, given back or left by a crash) is taken over and handled
   * first, in stream order; then the partition is read.
   */
  private async acquired(partition: number, token: number): Promise<void> {
    const part = this.openPart(partition, token);
    this.parts.set(partition, part);
    await part.reader.open();
    for (let cursor = '0-0'; ;) {
      const claimed = await reclaimIdle(this.redis, part.keys, {
        consumer: this.context.consumerName,
        minIdleMs: 0,
        startId: cursor,
        count: TAKEOVER_BATCH,
        timeMs: Date.now(),
        token,
      });
      if (claimed === 'lost') return this.partitionLost(partition);
      if (this.parts.get(partition) !== part) return;
      for (const entry of claimed.entries) {
        await this.receive(part, entry.streamId, entry.fields, entry.timesDelivered, true);
      }
      cursor = claimed.cursor;
      if (cursor === '0-0') break;
    }
    if (this.parts.get(partition) !== part || this.closing) return;
    if (partition > 0) this.pruneGroup(part);
    part.reader.start();
    const emit = (): void =>
      this.events.emit('partition.assigned', { queue: this.queue, partition, token });
    if (this.startEvents === undefined) emit();
    else this.startEvents.push(emit);
  }

  /**
   * Ordered: whether `delivery`'s partition is still surely this consumer's, under the token it
   * was read with. A lease that lapsed here (the process was frozen, or cut off from Redis) is
   * taken as lost at once: no handler of it starts.
   */
  private owned(delivery: DeliveryImpl<T>): boolean {
    const ownership = this.ownership as Ownership;
    if (ownership.owns(delivery.partition, delivery.fencingToken)) return true;
    if (this.parts.get(delivery.partition)?.token === delivery.fencingToken) {
      this.partitionLost(delivery.partition);
    }
    return false;
  }

  /** Ordered: `partition`'s lease was lost; what this consumer held of it is another's now. */
  private partitionLost(partition: number): void {
    const part = this.parts.get(partition);
    if (part === undefined) return;
    this.ownership?.forget(partition);
    this.parts.delete(partition);
    this.stopPart(part);
    for (const delivery of this.lanes?.dropPartition(partition) ?? []) this.drop(delivery);
    // Its keys' leases were for an ownership that is over.
    this.stopIdempotent(part);
    this.events.emit('partition.revoked', { queue: this.queue, partition, reason: 'lost' });
  }

  /**
   * Ordered: `partition` goes to another consumer. Reading stops, what did not start goes back
   * in place (ahead of newer messages, for the next owner's takeover), and this resolves once
   * the handlers of it that run now are done and settled.
   */
  private async handOver(partition: number): Promise<void> {
    const part = this.parts.get(partition);
    if (part === undefined) return;
    await part.reader.stop(new ReplyBudget(this.redis));
    const back = this.lanes?.dropPartition(partition) ?? [];
    for (const delivery of back) this.cancelRetry(delivery);
    await this.giveBack(part, back);
    if ((this.lanes?.activeIn(partition) ?? 0) > 0) {
      await new Promise<void>((resolve) => this.partitionIdle.set(partition, resolve));
    }
    await part.settlement.idle();
    this.parts.delete(partition);
    part.reader.release();
    this.stopIdempotent(part);
    // It holds nothing of the partition now: its group forgets it.
    await deregisterConsumer(this.redis, part.keys, this.context.consumerName).catch(this.report);
    this.events.emit('partition.revoked', { queue: this.queue, partition, reason: 'rebalanced' });
  }

  /** Gives deliveries back in place: those never handled uncounted, the others counted. */
  private async giveBack(
    part: PartitionPart,
    deliveries: readonly DeliveryImpl<T>[],
  ): Promise<void> {
    const handled = deliveries.filter((d) => d.settled);
    const unseen = deliveries.filter((d) => !d.settled);
    await part.settlement.giveBack(unseen, false);
    await part.settlement.giveBack(handled, true);
  }

  /**
   * Tidies a partition's group (not partition 0's, which registrations keep): consumers that
   * crashed there, or moved on, hold nothing and are forgotten. Not awaited; a failure only
   * leaves them for the next time.
   */
  private pruneGroup(part: PartitionPart): void {
    pruneGroup(this.redis, part.keys, {
      consumer: this.context.consumerName,
      minIdleMs: REGISTRATION_LEASE_MS,
    }).catch(this.report);
  }

  /** Stops the key-lease renewal of a partition's idempotent settlement, if it has one. */
  private stopIdempotent(part: PartitionPart): void {
    const settlement = part.settlement;
    if (!(settlement instanceof IdempotentSettlement)) return;
    this.idempotents.delete(settlement);
    settlement.stop().catch(this.report);
  }

  /** Stops a partition's reader without waiting for it, and closes its connection after. */
  private stopPart(part: PartitionPart): void {
    part.reader
      .stop(new ReplyBudget(this.redis))
      .catch(this.report)
      .finally(() => part.reader.release());
  }

  /**
   * Ordered: automatic acks that failed (Redis unreachable) are sent again while the partition
   * is owned under the same token: their keys have moved on, so the entries must not stay
   * pending for a takeover to replay after later messages of their keys.
   */
  private ackAgain(partition: number, token: number, deliveries: readonly Delivery[]): void {
    setTimeout(() => {
      const part = this.parts.get(partition);
      if (part?.token !== token || this.shutDown) return;
      for (const delivery of deliveries) void part.settlement.autoAck(delivery);
    }, RETRY_AGAIN_MS).unref();
  }

  /** Counts a delivery of `partition` as held (+1) or no longer (-1). */
  private held(partition: number, change: number): void {
    this.heldIn.set(partition, (this.heldIn.get(partition) ?? 0) + change);
  }

  /**
   * Turns an entry into a delivery, unless admission refuses it: then it goes to the
   * dead-letter outbox, and only then is there something to wait for.
   */
  private receive(
    part: PartitionPart,
    streamId: string,
    fields: Buffer[] | null,
    timesDelivered: number,
    reclaimed: boolean,
  ): Promise<boolean> | undefined {
    const delivery = this.admitted(part, streamId, fields, timesDelivered, reclaimed);
    if (!(delivery instanceof DeliveryImpl)) return delivery;
    this.lanes?.push(delivery);
    this.dispatcher?.push(delivery);
    return undefined;
  }

  /**
   * Admission of an entry: its delivery (held from now on), or its way to the outbox, with
   * `lastError` when a retry in place brought it there.
   */
  private admitted(
    part: PartitionPart,
    streamId: string,
    fields: Buffer[] | null,
    timesDelivered: number,
    reclaimed: boolean,
    lastError?: string,
  ): DeliveryImpl<T> | Promise<boolean> {
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
    let message: Delivered;
    if (admission.deliver) message = admission;
    else if (admission.message !== undefined && this.settings.onPoison === 'halt') {
      message = admission.message;
    } else {
      return this.deadLetter(part, streamId, admission.messageId, admission.reason, lastError);
    }
    const delivery = new DeliveryImpl<T>(
      this.queue,
      part.partition,
      part.token,
      streamId,
      message.envelope,
      message.body as T,
      message.deliveryCount,
      part.settlement,
    );
    delivery.halted = !admission.deliver;
    this.counts.delivered++;
    this.leases.add(delivery);
    this.held(part.partition, 1);
    return delivery;
  }

  /** Moves an owned entry to the outbox; the keeper routes it to the dead-letter exchange. */
  private async deadLetter(
    { keys, token }: Pick<PartitionPart, 'keys' | 'token'>,
    streamId: string,
    messageId: string | undefined,
    reason: DeathReason,
    lastError?: string,
  ): Promise<boolean> {
    const [moved] = await deadLetterOwned(this.redis, keys, {
      consumer: this.context.consumerName,
      reason,
      timeMs: Date.now(),
      lastError,
      token,
      ids: [streamId],
    });
    if (moved !== true) return false;
    if (reason !== 'rejected') this.counts.deadLettered[reason]++;
    if (this.events.has('delivery.deadLettered')) {
      this.events.emit('delivery.deadLettered', {
        queue: this.queue,
        streamId,
        messageId,
        reason,
        dropped: this.rules.deadLetterExchange === undefined,
      });
    }
    this.context.keeper.kick(this.queue);
    return true;
  }

  /**
   * After a handler: settles the delivery unless the handler did (ack on success; on failure
   * requeue, after the retry policy's delay, with the error recorded in the entry for its death
   * record). A failed automatic settlement is counted (stale) or reported, not thrown: the entry
   * stays pending and is reclaimed. An ordered consumer's key then moves on, or, when the
   * delivery was requeued, waits for its retry in place.
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
    const lanes = this.lanes;
    if (lanes !== undefined) {
      if (delivery.outcome !== 'requeue') lanes.advance(delivery);
      else if (!lanes.isHead(delivery)) {
        // Its partition was dropped meanwhile: it is no longer this consumer's to retry.
        this.drop(delivery);
      } else if (!this.closing) {
        // Once the settlement has noted the retry (an idempotent one releases the key first).
        void delivery.whenSettled().then(() => this.retryInPlace(delivery));
      }
      if (lanes.activeIn(delivery.partition) === 0) {
        this.partitionIdle.get(delivery.partition)?.();
        this.partitionIdle.delete(delivery.partition);
      }
    }
    this.checkIdle();
  }

  /**
   * Ordered: delivers `delivery` again after the delay its requeue asked for, in place: the
   * entry's delivery count goes up, and past the queue's limit it is dead-lettered (or halted),
   * and its key moves on. It stays held meanwhile.
   */
  private retryInPlace(delivery: DeliveryImpl<T>): void {
    const { delayMs, lastError } = this.retries.get(delivery) ?? {
      delayMs: 0,
      lastError: undefined,
    };
    this.retries.delete(delivery);
    if (this.closing) return;
    const timer = setTimeout(() => {
      this.retryTimers.delete(delivery);
      this.redeliver(delivery, lastError).catch((error: unknown) => {
        this.report(error);
        // Tried again later: the key keeps its place.
        if (this.lanes?.isHead(delivery) === true && !this.closing) {
          this.retries.set(delivery, { delayMs: RETRY_AGAIN_MS, lastError });
          this.retryInPlace(delivery);
        }
      });
    }, delayMs);
    this.retryTimers.set(delivery, timer);
  }

  private async redeliver(old: DeliveryImpl<T>, lastError: string | undefined): Promise<void> {
    const lanes = this.lanes as KeyLanes<T>;
    // Closing: it stays held, and goes back in place with the rest.
    if (this.closing) return;
    const part = this.parts.get(old.partition);
    if (part === undefined || part.token !== old.fencingToken || !lanes.isHead(old)) {
      this.drop(old);
      return;
    }
    const again = await redeliverOwned(this.redis, part.keys, {
      consumer: this.context.consumerName,
      token: part.token as number,
      id: old.streamId,
      retry: old.deliveryCount < deliveryLimit(this.rules),
    });
    if (!lanes.isHead(old)) {
      this.drop(old);
      return;
    }
    if (again.kind === 'lost') return this.partitionLost(old.partition);
    this.drop(old);
    if (again.kind !== 'ok') {
      // Taken over, or its data gone: nothing of it is this consumer's to handle.
      lanes.advance(old);
      return;
    }
    const fresh = this.admitted(
      part,
      old.streamId,
      again.fields,
      again.timesDelivered,
      false,
      lastError,
    );
    if (fresh instanceof DeliveryImpl) {
      lanes.replace(old, fresh);
      return;
    }
    await fresh;
    lanes.advance(old);
  }

  /** Ordered, `onPoison: 'halt'`: a delivery past the limit holds its key back. */
  private halted(delivery: DeliveryImpl<T>): void {
    this.events.emit('key.halted', {
      queue: this.queue,
      streamId: delivery.streamId,
      messageId: delivery.messageId,
      partition: delivery.partition,
      key: delivery.partitionKey,
      deliveryCount: delivery.deliveryCount,
    });
  }

  /**
   * A delivery this consumer no longer holds without a settlement of its own (its partition
   * was dropped, or it is delivered again as a new delivery): its credit is free again.
   */
  private drop(delivery: DeliveryImpl<T>): void {
    this.cancelRetry(delivery);
    if (!this.leases.delete(delivery)) return;
    this.held(delivery.partition, -1);
    for (const part of this.parts.values()) part.reader.wake();
    this.checkIdle();
  }

  private cancelRetry(delivery: DeliveryImpl<T>): void {
    clearTimeout(this.retryTimers.get(delivery));
    this.retryTimers.delete(delivery);
    this.retries.delete(delivery);
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
    if (!this.leases.delete(delivery as DeliveryImpl<T>)) return;
    this.held(delivery.partition, -1);
    for (const part of this.parts.values()) part.reader.wake();
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.leases.size - this.retryTimers.size <= 0 && this.active() === 0) this.wakeIdle?.();
  }

  private active(): number {
    return this.dispatcher?.active ?? this.lanes?.active ?? 0;
  }

  /**
   * The queue was deleted: say so, and close at once. Handlers still running are not waited
   * for: what they hold can no longer be settled.
   */
  private cancelled(): void {
    if (this.cancelledOnce) return;
    this.cancelledOnce = true;
    this.events.emit('cancelled', { queue: this.queue });
    this.close({ timeoutMs: 0 }).catch((error: unknown) => this.report(error));
  }

  /** Emits `readError` with a SluiceError, until the consumer has closed. */
  private reportError(error: unknown): void {
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
      const dispatcher = this.dispatcher as Dispatcher<T>;
      for (;;) {
        const next = dispatcher.next();
        if (next !== undefined) {
          const idempotent = next.settler;
          if (
            !(idempotent instanceof IdempotentSettlement) ||
            (await this.acquired_(idempotent, next))
          ) {
            yield next;
          }
          continue;
        }
        if (this.closing) return;
        await dispatcher.arrival();
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
  private async acquired_(
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
   * Stops reading and reclaiming (and, ordered, taking partitions), lets running handlers
   * finish (up to `timeoutMs`) while their leases are still renewed, waits for the settlements
   * sent, deregisters, detaches from the keeper and releases the reading connections. Each wait
   * for Redis is bounded, and skipped while Redis is not connected, so that closing never hangs
   * on an outage.
   */
  private async shutdown(timeoutMs: number): Promise<void> {
    this.closing = true;
    const stopping = new ReplyBudget(this.redis);
    if (this.started !== undefined) await stopping.wait(this.started);
    if (this.ownership !== undefined) await stopping.wait(this.ownership.stop());
    this.dispatcher?.wake();
    const parts = [...this.parts.values()];
    const reclaiming = Promise.all(
      parts.map((part) => part.reclaimer?.stop() ?? Promise.resolve()),
    );
    await Promise.all(parts.map((part) => part.reader.stop(stopping)));
    await stopping.wait(reclaiming);
    const partOf = (delivery: Delivery): PartitionPart | undefined =>
      this.parts.get(delivery.partition);
    if (this.handler === undefined) {
      // Deliveries not handed to the caller go back in place, uncounted; those the caller
      // holds can still be settled after close, so there is nothing to wait for.
      const unseen = this.dispatcher?.takeUnseen() ?? [];
      await stopping.wait(
        Promise.all(
          parts.map((part) =>
            part.settlement.giveBack(
              unseen.filter((d) => partOf(d) === part),
              false,
            ),
          ),
        ),
      );
    } else {
      // Ordered: what waits for a retry in place, or did not start, goes back now.
      const waiting = [...this.retryTimers.keys()];
      for (const delivery of waiting) this.cancelRetry(delivery);
      for (const part of parts) {
        const back = this.lanes?.dropPartition(part.partition) ?? [];
        await stopping.wait(this.giveBack(part, back));
      }
      if (this.leases.size > 0 || this.active() > 0) {
        let timer: NodeJS.Timeout | undefined;
        const idle = Promise.race([
          new Promise<void>((resolve) => (this.wakeIdle = resolve)),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
        ]);
        await (this.ownership?.renewWhile(idle) ?? idle);
        clearTimeout(timer);
      }
    }
    const leaving = new ReplyBudget(this.redis);
    await leaving.wait(Promise.all(parts.map((part) => part.settlement.idle())));
    await leaving.wait(
      Promise.all([
        this.leases.stop(),
        this.registration.stop(),
        ...[...this.idempotents].map((idempotent) => idempotent.stop()),
      ]),
    );
    // What no handler settled in time goes back in place, ahead of newer messages, as a closed
    // AMQP channel's unacked messages do.
    if (this.handler !== undefined && leaving.open) {
      const left = this.leases.all();
      await leaving.wait(
        Promise.all(
          parts.map((part) =>
            part.settlement.giveBack(
              left.filter((d) => partOf(d) === part),
              true,
            ),
          ),
        ),
      );
    }
    // Deregistered before leaving the membership, for the same reason as joining comes first.
    if (this.registered && leaving.open) await leaving.wait(this.registration.deregister());
    // The groups of the other partitions read forget this consumer too (it holds nothing now).
    const others = parts.filter((part) => part.partition !== 0);
    if (others.length > 0 && leaving.open) {
      await leaving.wait(
        Promise.all(
          others.map((part) =>
            deregisterConsumer(this.redis, part.keys, this.context.consumerName),
          ),
        ),
      );
    }
    if (this.ownership !== undefined) {
      for (const partition of this.ownership.owned()) {
        this.events.emit('partition.revoked', { queue: this.queue, partition, reason: 'closed' });
      }
      if (leaving.open) await leaving.wait(this.ownership.leave());
    }
    if (this.detachKeeper !== undefined) await leaving.wait(this.detachKeeper());
    for (const part of parts) part.reader.release();
    this.shutDown = true;
    this.context.onClosed();
  }
}
