import { v7 as uuidv7 } from 'uuid';
import { classifyFailure, isReplyError, type Connection } from '../connection/connection.js';
import {
  AccessRefusedError,
  ClosedError,
  ConnectionError,
  ConfirmTimeoutError,
  InvalidArgumentError,
  MessageTooLargeError,
  NotFoundError,
  QueueFullError,
  ServerError,
  SluiceError,
  UnroutableError,
} from '../errors/index.js';
import type { Keyspace } from '../keys/index.js';
import type { Codec } from '../message/codec.js';
import { encodeEnvelope } from '../message/envelope.js';
import type { CompiledTopology, TopologyCache } from '../topology/cache.js';
import { Fences } from '../topology/fences.js';
import type { Headers, OverflowPolicy, TopologySnapshot } from '../topology/types.js';
import {
  validateBooleanOption,
  validateEnumOption,
  validateExchangeReference,
  validateHeaders,
  validateIntegerOption,
  validateOptionsObject,
  validateRoutingKey,
  validateStringOption,
} from '../validation/index.js';
import { append, type AppendResult, type ItemResult } from './append.js';
import type { ClientEvents, Events } from '../events.js';
import { groupCommits, type GroupCommit } from './group-commit.js';
import { packFields } from './pack.js';
import { CallState, Retrier, untilAborted, type RetryPolicy } from './retry.js';
import {
  assertDurabilitySupported,
  DURABILITIES,
  validateDedupWindow,
  type Durability,
  type ProducerSettings,
} from './settings.js';

/** Options of one publish, named as in amqplib where they exist there. */
export interface PublishOptions {
  /** Reject with UnroutableError when no queue matches (instead of resolving with no targets). */
  readonly mandatory?: boolean;
  readonly headers?: Headers;
  /** Defaults to a UUID v7. */
  readonly messageId?: string;
  /** Overrides the codec's content type. */
  readonly contentType?: string;
  readonly correlationId?: string;
  /** Time to live of this message, from publish. */
  readonly expirationMs?: number;
  /**
   * Publishes with the same dedup key within the dedup window store the message once; the
   * later ones resolve with the first one's stream ids and `duplicate: true`. Default: the
   * message id.
   */
  readonly dedupKey?: string;
  /** Dedup window of this publish; 0 turns dedup off for it. Default: the connect option. */
  readonly dedupWindowMs?: number;
  /** Confirm level of this publish. Default: the connect option `durability`. */
  readonly durability?: Durability;
}

/** One message of {@link Producer.publishBatch}. */
export interface BatchMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: unknown;
  readonly options?: PublishOptions;
}

/** Options of {@link Producer.publishBatch}. */
export interface PublishBatchOptions {
  /**
   * All or nothing: either every message is stored in every target queue, or none is (one
   * script call on one node; on Redis Cluster all targets must share a slot). Default false.
   */
  readonly atomic?: boolean;
}

/** Where one copy of a message was stored. */
export interface ConfirmTarget {
  readonly queue: string;
  readonly streamId: string;
}

/** The confirm of a publish: the message is stored in every target queue. */
export interface PublishConfirm {
  readonly messageId: string;
  readonly targets: readonly ConfirmTarget[];
  /** True when the message was already published earlier (idempotent publish). */
  readonly duplicate: boolean;
}

/** A validated, encoded message. */
interface Message {
  readonly exchange: string;
  readonly routingKey: string;
  readonly headers: Headers;
  readonly mandatory: boolean;
  readonly messageId: string;
  readonly dedupKey: string;
  readonly dedupWindowMs: number;
  readonly durability: Durability;
  /** The envelope's XADD field/value items, packed (see {@link packFields}). */
  readonly fields: Buffer;
}

/** A message on its way to its confirm, which settles once. */
class Publication {
  settled = false;
  /** Redis confirmed the write; a wait for replicas or fsync may still be pending. */
  written = false;
  readonly confirmed: Promise<PublishConfirm>;
  private settle: { resolve(c: PublishConfirm): void; reject(e: unknown): void } | undefined;
  /** When the publish was called, for `publish.confirmed`; 0 when nobody listened then. */
  private readonly startedAt: number;

  constructor(
    readonly message: Message,
    private readonly events: Events<ClientEvents>,
  ) {
    this.confirmed = new Promise<PublishConfirm>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.startedAt = events.listening('publish.confirmed') ? performance.now() : 0;
  }

  resolve(confirm: PublishConfirm): void {
    if (this.settled) return;
    this.settled = true;
    this.settle?.resolve(confirm);
    if (this.startedAt > 0 && this.events.listening('publish.confirmed')) {
      const { exchange, routingKey } = this.message;
      this.events.emit('publish.confirmed', {
        ...confirm,
        exchange,
        routingKey,
        durationMs: performance.now() - this.startedAt,
      });
    }
  }

  reject(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.settle?.reject(error);
    if (this.events.listening('publish.failed')) {
      const { messageId, exchange, routingKey } = this.message;
      this.events.emit('publish.failed', { messageId, exchange, routingKey, error });
    }
  }
}

interface Routed {
  readonly publication: Publication;
  readonly queues: readonly string[];
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
  readonly events: Events<ClientEvents>;
}

/** What the producer needs of the dead-letter relay. */
export interface DeadLetterPort {
  drain(queue: string): Promise<unknown>;
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
  private readonly commits: Record<Exclude<Durability, 'written'>, GroupCommit>;
  private readonly fences: Fences;

  constructor(private readonly options: ProducerOptions) {
    const { connection, settings } = options;
    this.fences = new Fences(connection.redis, options.keys);
    this.retrier = new Retrier(connection);
    this.commits = groupCommits(connection, settings.replicas, settings.durabilityTimeoutMs);
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
      this.prepare({ exchange, routingKey, body, options }),
      this.options.events,
    );
    this.enqueue(publication);
    return publication.confirmed;
  }

  /** Publishes many messages in one round trip; one confirm per message, in order. */
  async publishBatch(
    messages: readonly BatchMessage[],
    options: PublishBatchOptions = {},
  ): Promise<PublishConfirm[]> {
    if (!Array.isArray(messages)) throw new InvalidArgumentError('publishBatch takes an array');
    validateOptionsObject('batch options', options);
    validateBooleanOption('atomic', options.atomic);
    const atomic = options.atomic ?? false;
    if (atomic && messages.length > MAX_ATOMIC_MESSAGES) {
      throw new InvalidArgumentError(
        `an atomic batch holds at most ${MAX_ATOMIC_MESSAGES} messages`,
      );
    }
    const publications = (messages as readonly BatchMessage[]).map(
      (message) => new Publication(this.prepare(message), this.options.events),
    );
    if (publications.length === 0) return [];
    if (atomic) this.enqueue(publications);
    else for (const publication of publications) this.enqueue(publication);
    return Promise.all(publications.map((publication) => publication.confirmed));
  }

  /** Validates and encodes a message; nothing is sent until it is enqueued. */
  private prepare(message: BatchMessage): Message {
    const { exchange, routingKey, body } = message;
    const options = message.options ?? {};
    const { settings, connection } = this.options;
    validateExchangeReference(exchange);
    validateRoutingKey(routingKey);
    validateOptionsObject('publish options', options);
    validateBooleanOption('mandatory', options.mandatory);
    if (options.headers !== undefined) validateHeaders(options.headers);
    validateStringOption('messageId', options.messageId);
    validateStringOption('contentType', options.contentType);
    validateStringOption('correlationId', options.correlationId);
    validateIntegerOption('expirationMs', options.expirationMs, 1, 2 ** 31 - 1);
    validateStringOption('dedupKey', options.dedupKey);
    validateDedupWindow(options.dedupWindowMs, settings.confirmTimeoutMs);
    validateEnumOption('durability', options.durability, DURABILITIES);
    const durability = options.durability ?? settings.durability;
    assertDurabilitySupported(connection, durability);
    const encoded = this.options.codec.encode(body);
    if (encoded.data.length > settings.maxBodyBytes) {
      throw new MessageTooLargeError(encoded.data.length, settings.maxBodyBytes);
    }
    const messageId = options.messageId ?? uuidv7();
    const headers = options.headers ?? {};
    const fields = packFields(
      encodeEnvelope(
        {
          messageId,
          exchange,
          routingKey,
          publishedAt: Date.now(),
          headers,
          contentType: options.contentType ?? encoded.contentType,
          redeliveries: 0,
          ...(options.expirationMs === undefined ? {} : { expirationMs: options.expirationMs }),
          ...(options.correlationId === undefined ? {} : { correlationId: options.correlationId }),
        },
        encoded.data,
      ),
    );
    return {
      exchange,
      routingKey,
      headers,
      mandatory: options.mandatory ?? false,
      messageId,
      dedupKey: options.dedupKey ?? messageId,
      dedupWindowMs: options.dedupWindowMs ?? settings.dedupWindowMs,
      durability,
      fields,
    };
  }

  /** Queues a publication, or an atomic batch as one unit; flushed at the end of the tick. */
  private enqueue(unit: Publication | readonly Publication[]): void {
    this.queue.push(unit);
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
    const deadline = new AbortController();
    const { events } = this.options;
    const state = new CallState(deadline.signal, (attempt, error) => {
      if (!events.listening('publish.retried')) return;
      const messageIds = batch.map((publication) => publication.message.messageId);
      events.emit('publish.retried', { messageIds, attempt, error });
    });
    const timer = setTimeout(() => {
      deadline.abort();
      for (const publication of batch) {
        publication.reject(
          this.timeout(publication, state, `no confirm within ${confirmTimeoutMs} ms`),
        );
      }
    }, confirmTimeoutMs);
    try {
      await this.deliver(batch, atomic, state);
    } catch (error) {
      for (const publication of batch) publication.reject(this.failure(error, publication, state));
    } finally {
      clearTimeout(timer);
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
        if (result.missingFence !== undefined) await this.repairFence(result.missingFence, state);
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
          publication.reject(this.timeout(publication, state, 'the connection kept failing'));
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
   * A queue without a fence refuses every publish: it was deleted, or its keys were deleted by
   * hand (or were written by a sluice without fences). If a topology loaded now still has the
   * queue, its fence is made again (see ../topology/fences.ts); else routing again skips it.
   */
  private async repairFence(queue: string, state: CallState): Promise<void> {
    const compiled = await this.retrier.run(() => this.options.topology.get(), state, READ);
    if (!compiled.snapshot.queues.has(queue)) return;
    await this.retrier.run(() => this.fences.ensure(queue, compiled.router.version), state, READ);
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
      else if (queues.length > 0) routing.routed.push({ publication, queues });
      else routing.unroutable.push(publication);
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
      routed.map(({ publication, queues }) => {
        const { dedupWindowMs, dedupKey, messageId, fields } = publication.message;
        return {
          queues,
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
            maxLength: record?.maxLength ?? 0,
            overflow: record?.overflow ?? DEFAULT_OVERFLOW,
          };
        },
        atomic,
        touch: routed.some((r) => r.publication.message.durability !== 'written'),
      },
    );
    this.drainOverflow(snapshot, new Set(routed.flatMap((r) => r.queues)));
    return result;
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
    routed.forEach(({ publication, queues }, i) => {
      const result = results[i] as ItemResult;
      if (result.status === 'full') {
        publication.reject(this.queueFull(snapshot, queues[result.target] as string));
        return;
      }
      publication.written = true;
      const confirm = toConfirm(
        publication.message,
        queues,
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
      const outcome = await untilAborted(this.commits[level].wait(), state.signal);
      for (const { publication, confirm } of group) {
        if ('error' in outcome) {
          const kind = classifyFailure(outcome.error, this.options.connection.redis);
          if (kind === 'fatal' || kind === 'closed') {
            publication.reject(this.failure(outcome.error, publication, state));
            continue;
          }
        } else if (outcome.epoch === epoch) {
          if (outcome.reached) publication.resolve(confirm);
          else publication.reject(this.timeout(publication, state, outcome.detail));
          continue;
        }
        // Writing again is safe only when the write is deduplicated.
        if (publication.message.dedupWindowMs > 0) again.push(publication);
        else publication.reject(this.timeout(publication, state, 'connection lost before WAIT'));
      }
    });
    await Promise.all(levels);
    return again;
  }

  private queueFull(snapshot: TopologySnapshot, queue: string): QueueFullError {
    return new QueueFullError(queue, snapshot.queues.get(queue)?.maxLength ?? 0);
  }

  private timeout(publication: Publication, state: CallState, reason: string): ConfirmTimeoutError {
    const { messageId } = publication.message;
    return new ConfirmTimeoutError(`publish of message ${messageId}: ${reason}`, {
      messageId,
      mayBeApplied: state.writeMayBeApplied,
      applied: publication.written,
      cause: state.lastError,
    });
  }

  /** The typed error a publication rejects with when its call failed with `error`. */
  private failure(error: unknown, publication: Publication, state: CallState): unknown {
    // A ConnectionError here is a lost connection with the write in flight: a timeout that
    // may have been applied, like any other uncertain failure.
    if (error instanceof SluiceError && !(error instanceof ConnectionError)) return error;
    switch (classifyFailure(error, this.options.connection.redis)) {
      case 'closed':
        return new ClosedError('the Redis client was closed before the publish was confirmed');
      case 'fatal':
        return isReplyError(error)
          ? new ServerError(`Redis refused the publish: ${error.message}`, error)
          : error;
      default:
        // Out of retries, or not retriable without dedup (it may have been applied).
        return this.timeout(publication, state, `no confirm after ${String(error)}`);
    }
  }
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

/**
 * The confirm of a stored message. A duplicate's targets carry the first publish's stream ids;
 * its message id is the first publish's (kept in the marker when it was not the dedup key).
 */
function toConfirm(
  message: Message,
  queues: readonly string[],
  duplicate: boolean,
  values: readonly string[],
): PublishConfirm {
  let messageId = duplicate ? message.dedupKey : message.messageId;
  const targets = queues.map((queue, t) => {
    const value = values[t] as string;
    const space = value.indexOf(' ');
    if (space < 0) return { queue, streamId: value };
    messageId = value.slice(space + 1);
    return { queue, streamId: value.slice(0, space) };
  });
  return { messageId, targets, duplicate };
}
