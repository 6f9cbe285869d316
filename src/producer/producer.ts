import { classifyFailure, type Connection } from '../connection/connection.js';
import {
  AccessRefusedError,
  InvalidArgumentError,
  NotFoundError,
  QueueFullError,
  SluiceError,
  UnroutableError,
} from '../errors/index.js';
import type { ClientEvents, Events } from '../events.js';
import type { Keyspace } from '../keys/index.js';
import type { Codec } from '../message/codec.js';
import type { CompiledTopology, TopologyCache } from '../routing/compiled.js';
import type { OverflowPolicy, TopologySnapshot } from '../topology/types.js';
import {
  optionNames,
  validateArray,
  validateBooleanOption,
  validateOptionsObject,
} from '../validation/index.js';
import { append, type AppendResult, type ItemResult } from './append.js';
import {
  GroupCommits,
  type CommitLevel,
  type CommitOutcome,
  type GroupCommit,
} from './group-commit.js';
import { prepare, type BatchMessage, type Message, type PublishOptions } from './prepare.js';
import { confirmTimeout, publishFailure } from './failures.js';
import { targetPartitions } from '../queue/partitions.js';
import { Publication, toConfirm, type PublishConfirm } from './publication.js';
import type { ProducerSettings } from './settings.js';
import { FifoDeadlines } from '../connection/deadlines.js';
import { CallState, Retrier, untilAborted, type RetryPolicy } from './retry.js';
import type { PublishTracing } from '../tracing/publish-tracing.js';

const BATCH_OPTIONS = optionNames<PublishBatchOptions>({ atomic: true });

/** Options of {@link Sluice.publishBatch}. */
export interface PublishBatchOptions {
  /**
   * All or nothing: either every message is stored in every target queue, or none is (one
   * script call; on a cluster-mode server all its messages must go to one queue).
   */
  readonly atomic?: boolean | undefined;
}

interface Routed {
  readonly publication: Publication;
  readonly queues: readonly string[];
  /** The partition of each queue that the message goes to. */
  readonly partitions: readonly number[];
}

interface Routing {
  readonly routed: Routed[];
  /** Messages refused before any write (see {@link targets}). */
  readonly failed: { publication: Publication; error: SluiceError }[];
  /** Messages that route nowhere and resolve with no targets. */
  readonly unroutable: Publication[];
}

interface Written {
  readonly publication: Publication;
  readonly confirm: PublishConfirm;
}

/** Options of the producer, set once at connect. */
export interface ProducerOptions {
  readonly connection: Connection;
  readonly keys: Keyspace;
  readonly topology: TopologyCache;
  readonly codec: Codec;
  readonly settings: ProducerSettings;
  /** Routes a queue's dead letters (overflow `drop-head` and `reject-publish-dlx` make some). */
  readonly relay: DeadLetterPort;
  /** Dead-letters the messages it appended as they expire (see QueueKeeper.expireAt). */
  readonly expiry: ExpiryPort;
  readonly events: Events<ClientEvents>;
  /** Publish spans, when the application has `@opentelemetry/api`. */
  readonly tracing: PublishTracing | undefined;
}

/** What the producer needs of the dead-letter relay. */
export interface DeadLetterPort {
  drain(queue: string): Promise<unknown>;
}

/** What the producer needs of the queue keeper: to be told of messages that may expire. */
export interface ExpiryPort {
  expireAt(queue: string, partition: number, dueAtMs: number, ttlMs: number | undefined): void;
}

/**
 * Overflow policy of a queue with `maxLength` and no `overflow`: reject-publish, so that no
 * message is ever dropped unless the queue asks for it (RabbitMQ's default is drop-head).
 */
const DEFAULT_OVERFLOW: OverflowPolicy = 'reject-publish';
/** Overflow policies that dead-letter messages (reason `maxlen`). */
const DEAD_LETTERING_OVERFLOW: ReadonlySet<OverflowPolicy> = new Set([
  'drop-head',
  'reject-publish-dlx',
]);
/** Queued publications sent at once, without waiting for the tick's end. */
const EARLY_FLUSH_UNITS = 128;
/** Messages per script call: bounds one call's latency and Lua stack use. */
const MAX_CALL_MESSAGES = 512;
/** Largest atomic batch: it is one script call, which blocks Redis while it runs. */
const MAX_ATOMIC_MESSAGES = 10_000;
/** Topology changes racing one publish before it gives up. */
const MAX_STALE_RETRIES = 8;
/** Rounds of write + WAIT after a connection loss made a WAIT prove nothing. */
const MAX_DURABILITY_ROUNDS = 4;
const READ: RetryPolicy = { write: false, idempotent: true };

/**
 * Publishes with confirms. Publishes issued in the same tick are coalesced into one
 * script call (as Kafka producers linger), each keeping its own confirm; dedup markers are
 * checked and written in that call, so retrying a publish never stores it twice.
 */
export class Producer {
  private queue: (Publication | readonly Publication[])[] = [];
  private flushScheduled = false;
  private readonly retrier: Retrier;
  /** The confirm deadlines of the calls sent, on one timer. */
  private readonly deadlines: FifoDeadlines;
  private readonly commits: GroupCommits;

  constructor(private readonly options: ProducerOptions) {
    const { connection, settings } = options;
    this.retrier = new Retrier(connection);
    this.deadlines = new FifoDeadlines(options.settings.confirmTimeoutMs);
    this.commits = new GroupCommits(connection, settings.replicas, settings.durabilityTimeoutMs);
  }

  /** Publishes one message; resolves once it is stored at the requested durability. */
  // async so that a validation error rejects; the body up to the Promise runs synchronously,
  // which keeps publishes of one tick in one batch.
  async publish(
    exchange: string,
    routingKey: string,
    body: unknown,
    options: PublishOptions = {},
  ): Promise<PublishConfirm> {
    const publication = new Publication(
      this.prepareMessage({ exchange, routingKey, body, options }),
      this.options.events,
    );
    this.enqueue([publication]);
    return publication.confirmed;
  }

  /** Publishes many messages in one round trip; one confirm per message, in order. */
  async publishBatch(
    messages: readonly BatchMessage[],
    options: PublishBatchOptions = {},
  ): Promise<PublishConfirm[]> {
    validateArray('publishBatch messages', messages);
    validateOptionsObject('batch options', options, BATCH_OPTIONS);
    validateBooleanOption('atomic', options.atomic);
    const atomic = options.atomic ?? false;
    if (atomic && messages.length > MAX_ATOMIC_MESSAGES) {
      throw new InvalidArgumentError(
        `an atomic batch holds at most ${MAX_ATOMIC_MESSAGES} messages`,
      );
    }
    // Every element is validated, holes of a sparse array included (map would skip them).
    const prepared: Message[] = [];
    try {
      for (let i = 0; i < messages.length; i++) {
        prepared.push(this.prepareMessage(messages[i] as BatchMessage, `message ${i}`));
      }
    } catch (error) {
      // The batch is refused: the spans of the messages before the refused one end with it.
      for (const message of prepared) message.span?.end(true, error);
      throw error;
    }
    const publications = prepared.map((message) => new Publication(message, this.options.events));
    if (publications.length === 0) return [];
    // A batch goes in whole, so that it is not split across calls below 512 messages.
    this.enqueue(atomic ? [publications] : publications);
    return Promise.all(publications.map((publication) => publication.confirmed));
  }

  /** Validates and encodes a message; nothing is sent until it is enqueued. */
  private prepareMessage(message: BatchMessage, what?: string): Message {
    const { settings, connection, codec, tracing } = this.options;
    return prepare(message, settings, connection, codec, tracing, what);
  }

  /**
   * Queues publications (an atomic batch as one unit), flushed at the end of the tick, or at
   * once when the tick has queued {@link EARLY_FLUSH_UNITS}: Redis then runs that call while
   * the rest of the tick's publishes are prepared, instead of the two taking turns.
   */
  private enqueue(units: readonly (Publication | readonly Publication[])[]): void {
    for (const unit of units) this.queue.push(unit);
    if (this.queue.length >= EARLY_FLUSH_UNITS) {
      this.flush();
      return;
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => this.flush());
  }

  /** Sends the tick's publications in order: up to 512 per call, an atomic batch alone. */
  private flush(): void {
    this.flushScheduled = false;
    const units = this.queue;
    this.queue = [];
    let chunk: Publication[] = [];
    const sendChunk = (): void => {
      if (chunk.length > 0) void this.send(chunk, false);
      chunk = [];
    };
    for (const unit of units) {
      if (unit instanceof Publication) {
        chunk.push(unit);
        if (chunk.length === MAX_CALL_MESSAGES) sendChunk();
      } else {
        sendChunk();
        void this.send(unit, true);
      }
    }
    sendChunk();
  }

  /**
   * Delivers one call's publications and settles every one of them by the confirm deadline:
   * what is still open then rejects with ConfirmTimeoutError. Never throws.
   */
  private async send(batch: readonly Publication[], atomic: boolean): Promise<void> {
    const { confirmTimeoutMs } = this.options.settings;
    const { events } = this.options;
    const state = new CallState((attempt, error) => {
      if (!events.has('publish.retried')) return;
      const messageIds = batch.map((publication) => publication.message.messageId);
      events.emit('publish.retried', { messageIds, attempt, error });
    });
    const done = this.deadlines.start(() => {
      state.expire();
      for (const publication of batch) {
        publication.reject(
          confirmTimeout(publication, state, `no confirm within ${confirmTimeoutMs} ms`),
        );
      }
    });
    try {
      await this.deliver(batch, atomic, state);
    } catch (error) {
      for (const publication of batch)
        publication.reject(
          publishFailure(error, publication, state, this.options.connection.redis),
        );
    } finally {
      done();
    }
  }

  /** Routes, writes and waits for durability, retrying what may be retried; may throw. */
  private async deliver(
    batch: readonly Publication[],
    atomic: boolean,
    state: CallState,
  ): Promise<void> {
    let remaining = batch;
    let staleRounds = 0;
    let durabilityRounds = 0;
    for (;;) {
      const compiled = await this.retrier.run(() => this.options.topology.get(), state, READ);
      const { routed, failed, unroutable } = this.route(compiled, remaining);
      // Messages refused before the script never meet its version check: confirm the version.
      if (failed.length + unroutable.length > 0 && !(await this.isCurrent(compiled, state))) {
        staleRounds = this.stale(compiled, staleRounds);
        continue;
      }
      const [refusal] = failed;
      if (atomic && refusal !== undefined) {
        for (const publication of remaining) publication.reject(refusal.error);
        return;
      }
      for (const { publication, error } of failed) publication.reject(error);
      if (routed.length === 0) return this.resolveUnroutable(unroutable);
      let epoch = 0;
      const result = await this.retrier.run(
        () => {
          epoch = this.options.connection.epoch;
          return this.append(compiled, routed, atomic);
        },
        state,
        { write: true, idempotent: routed.every((r) => r.publication.message.dedupWindowMs > 0) },
      );
      if (result.kind === 'stale') {
        staleRounds = this.stale(compiled, staleRounds);
        if (result.missingFence !== undefined) await this.checkGone(result.missingFence, state);
        continue;
      }
      if (result.kind === 'full') {
        const { queues } = routed[result.item] as Routed;
        const error = this.queueFull(compiled.snapshot, queues[result.target] as string);
        for (const publication of remaining) publication.reject(error);
        return;
      }
      this.resolveUnroutable(unroutable);
      const durable = this.confirm(compiled.snapshot, routed, result.results);
      remaining = await this.awaitDurability(durable, epoch, state);
      if (remaining.length === 0) return;
      // A connection loss came between the write and its WAIT, which then proved nothing.
      // Publish again: the call finds the copies and makes a write, which the next WAIT covers.
      if (++durabilityRounds >= MAX_DURABILITY_ROUNDS) {
        for (const publication of remaining) {
          publication.reject(confirmTimeout(publication, state, 'the connection kept failing'));
        }
        return;
      }
    }
  }

  private async isCurrent(compiled: CompiledTopology, state: CallState): Promise<boolean> {
    const { topology } = this.options;
    return (
      (await this.retrier.run(() => topology.currentVersion(), state, READ)) ===
      compiled.router.version
    );
  }

  /** Drops a stale topology; returns the rounds so far, or throws after too many. */
  private stale(compiled: CompiledTopology, rounds: number): number {
    this.options.topology.invalidate(compiled);
    if (rounds >= MAX_STALE_RETRIES) {
      throw new SluiceError('PRECONDITION_FAILED', 'topology kept changing while publishing', {
        retriable: true,
      });
    }
    return rounds + 1;
  }

  /**
   * A queue without a fence refuses every publish: it was deleted (routing again skips it), or
   * its keys were deleted by hand while its record stayed. A producer does not make the fence
   * again (it cannot tell that from a deletion in progress, see ../topology/fences.ts): the
   * publish fails with NotFoundError, and declaring the queue again repairs it.
   */
  private async checkGone(queue: string, state: CallState): Promise<void> {
    const compiled = await this.retrier.run(() => this.options.topology.get(), state, READ);
    if (compiled.snapshot.queues.has(queue)) {
      throw new NotFoundError(
        `queue '${queue}' has lost its keys (its fence is missing): declare it again`,
      );
    }
  }

  private resolveUnroutable(unroutable: readonly Publication[]): void {
    for (const publication of unroutable) {
      publication.resolve({
        messageId: publication.message.messageId,
        targets: [],
        duplicate: false,
      });
    }
  }

  /**
   * Resolves the target queues of each message with the compiled router; messages refused
   * before any write (unknown or internal exchange, mandatory without a route) are set apart.
   */
  private route(compiled: CompiledTopology, batch: readonly Publication[]): Routing {
    const routing: Routing = { routed: [], failed: [], unroutable: [] };
    for (const publication of batch) {
      if (publication.settled) continue;
      const queues = targets(compiled, publication.message);
      if (queues instanceof SluiceError) routing.failed.push({ publication, error: queues });
      else if (queues.length > 0) {
        const partitions = targetPartitions(
          compiled.snapshot.queues,
          queues,
          publication.message.partitionKey,
        );
        routing.routed.push({ publication, queues, partitions });
      } else routing.unroutable.push(publication);
    }
    return routing;
  }

  /** The script calls of one append: dedup, overflow check and appends of every routed message. */
  private async append(
    compiled: CompiledTopology,
    routed: readonly Routed[],
    atomic: boolean,
  ): Promise<AppendResult> {
    const { connection, keys } = this.options;
    const { snapshot } = compiled;
    const result = await append(
      { redis: connection.redis, keys, cluster: connection.server.cluster },
      routed.map(({ publication, queues, partitions }) => {
        const { dedupWindowMs, dedupKey, messageId, fields } = publication.message;
        return {
          queues,
          partitions,
          fields,
          dedupKey,
          keptId: messageId === dedupKey ? '' : messageId,
          dedupWindowMs,
        };
      }),
      {
        version: compiled.router.version,
        limits: (queue) => {
          const record = snapshot.queues.get(queue);
          return {
            maxLength: record?.maxLength ?? -1,
            overflow: record?.overflow ?? DEFAULT_OVERFLOW,
          };
        },
        atomic,
        touch: routed.some((r) => r.publication.message.durability !== 'written'),
      },
    );
    this.drainOverflow(snapshot, new Set(routed.flatMap((r) => r.queues)));
    this.watchExpiry(snapshot, routed);
    return result;
  }

  /**
   * Tells the keeper of every copy just appended that can expire (its queue has a
   * `messageTtlMs`, or the message an expiration), so that it is dead-lettered when it does,
   * whether or not a consumer meets it.
   */
  private watchExpiry(snapshot: TopologySnapshot, routed: readonly Routed[]): void {
    const now = Date.now();
    for (const { publication, queues, partitions } of routed) {
      const { expiresAt } = publication.message;
      queues.forEach((queue, t) => {
        const ttlMs = snapshot.queues.get(queue)?.messageTtlMs;
        if (ttlMs === undefined && expiresAt === undefined) return;
        const dueAt = Math.min(ttlMs === undefined ? Infinity : now + ttlMs, expiresAt ?? Infinity);
        this.options.expiry.expireAt(queue, partitions[t] as number, dueAt, ttlMs);
      });
    }
  }

  /**
   * Routes what the overflow of bounded queues may have dead-lettered in the call just made.
   * Not awaited: the confirm does not depend on it, and a dead letter left in an outbox by a
   * crash is routed by the queue's consumers.
   */
  private drainOverflow(snapshot: TopologySnapshot, queues: ReadonlySet<string>): void {
    for (const queue of queues) {
      const record = snapshot.queues.get(queue);
      if (
        record?.maxLength !== undefined &&
        DEAD_LETTERING_OVERFLOW.has(record.overflow ?? DEFAULT_OVERFLOW)
      ) {
        this.options.relay.drain(queue).catch(() => undefined);
      }
    }
  }

  /** Settles what the script refused or stored; returns the stored ones that await durability. */
  private confirm(
    snapshot: TopologySnapshot,
    routed: readonly Routed[],
    results: readonly ItemResult[],
  ): Written[] {
    const durable: Written[] = [];
    routed.forEach(({ publication, queues, partitions }, i) => {
      const result = results[i] as ItemResult;
      if (result.status === 'full') {
        publication.reject(this.queueFull(snapshot, queues[result.target] as string));
        return;
      }
      publication.written = true;
      const confirm = toConfirm(
        publication.message,
        queues,
        partitions,
        result.status === 'dup',
        result.values,
      );
      if (publication.message.durability === 'written') publication.resolve(confirm);
      else durable.push({ publication, confirm });
    });
    return durable;
  }

  /**
   * Waits for the group commits of the durable levels; settles what they decide and returns
   * the publications whose WAIT proved nothing (a connection loss came between), to write again.
   */
  private async awaitDurability(
    durable: readonly Written[],
    epoch: number,
    state: CallState,
  ): Promise<Publication[]> {
    if (durable.length === 0) return [];
    const again: Publication[] = [];
    const levels = (['replicated', 'fsynced'] as const).map(async (level) => {
      const group = durable.filter((w) => w.publication.message.durability === level);
      if (group.length === 0) return;
      const outcomes = await this.commitOutcomes(level, group, state);
      group.forEach(({ publication, confirm }, i) => {
        const failed = (outcomes[i] as CommitOutcome[]).find((o) => 'error' in o);
        if (failed !== undefined && 'error' in failed) {
          const kind = classifyFailure(failed.error, this.options.connection.redis);
          if (kind === 'fatal' || kind === 'closed') {
            publication.reject(
              publishFailure(failed.error, publication, state, this.options.connection.redis),
            );
            return;
          }
        } else if ((outcomes[i] as CommitOutcome[]).every((o) => o.epoch === epoch)) {
          const short = (outcomes[i] as CommitOutcome[]).find((o) => 'reached' in o && !o.reached);
          if (short === undefined) publication.resolve(confirm);
          else publication.reject(confirmTimeout(publication, state, detailOf(short)));
          return;
        }
        // Writing again is safe only when the write is deduplicated.
        if (publication.message.dedupWindowMs > 0) again.push(publication);
        else publication.reject(confirmTimeout(publication, state, 'connection lost before WAIT'));
      });
    });
    await Promise.all(levels);
    return again;
  }

  /**
   * The outcomes of the group commits that cover each of `group`'s writes: one per master
   * that stored a copy (one in all on a single server), each master's commit shared by every
   * write it took in this tick.
   */
  private async commitOutcomes(
    level: CommitLevel,
    group: readonly Written[],
    state: CallState,
  ): Promise<CommitOutcome[][]> {
    const { keys } = this.options;
    const covering = group.map(({ confirm }) => [
      ...new Set(
        confirm.targets.map((t) => this.commits.of(level, keys.queue(t.queue, t.partition).stream)),
      ),
    ]);
    const waits = new Map<GroupCommit, Promise<CommitOutcome>>();
    for (const commit of covering.flat()) {
      if (!waits.has(commit)) waits.set(commit, untilAborted(commit.wait(), state.signal));
    }
    const outcomes = new Map<GroupCommit, CommitOutcome>();
    await Promise.all([...waits].map(async ([commit, wait]) => outcomes.set(commit, await wait)));
    return covering.map((commits) =>
      commits.map((commit) => outcomes.get(commit) as CommitOutcome),
    );
  }

  private queueFull(snapshot: TopologySnapshot, queue: string): QueueFullError {
    return new QueueFullError(queue, snapshot.queues.get(queue)?.maxLength ?? 0);
  }
}

/** What a group commit that fell short said. */
function detailOf(outcome: CommitOutcome): string {
  return 'detail' in outcome ? outcome.detail : '';
}

/**
 * The target queues of a message, or why it is refused before any write: unknown or internal
 * exchange, mandatory without a route.
 */
function targets(compiled: CompiledTopology, message: Message): readonly string[] | SluiceError {
  const { router } = compiled;
  if (message.exchange !== '') {
    const exchange = router.exchange(message.exchange);
    if (exchange === undefined) {
      return new NotFoundError(`exchange '${message.exchange}' does not exist`);
    }
    if (exchange.internal)
      return new AccessRefusedError(`exchange '${message.exchange}' is internal`);
  }
  const queues = router.route(message.exchange, message.routingKey, message.headers);
  if (queues.length === 0 && message.mandatory) {
    return new UnroutableError(message.exchange, message.routingKey);
  }
  return queues;
}
