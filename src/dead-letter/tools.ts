import type { RedisClient } from '../connection/client.js';
import { InvalidArgumentError, NotFoundError, UnsupportedError } from '../errors/index.js';
import { partitionCount } from '../queue/partitions.js';
import { CONSUMER_GROUP, type Keyspace, type QueueKeys } from '../keys/index.js';
import type { Codec } from '../message/codec.js';
import { callScript } from '../connection/scripts.js';
import { TAKE } from '../connection/script-catalog.js';
import { decodeEnvelope, type Envelope } from '../message/envelope.js';
import type { CompiledTopology, TopologyCache } from '../routing/compiled.js';
import type { QueueData } from '../queue/data.js';
import {
  optionNames,
  validateBooleanOption,
  validateIntegerOption,
  validateName,
  validateOptionsObject,
} from '../validation/index.js';
import type { DeathHistory, DeathSummary } from '../message/death-history.js';
import type { MessageProperties } from '../message/properties.js';
import { replayTargets, type DeadLetterRelay, type ReplayRoute } from './relay.js';

/** One message of a dead-letter queue, as the tools show it. */
export interface DeadLetter extends MessageProperties {
  /** The body, decoded by the client's codec. */
  readonly body: unknown;
}

/** An entry of the queue that is not a sluice message. */
export interface ForeignEntry {
  readonly streamId: string;
  readonly fields: Readonly<Record<string, string>>;
}

/** Options of {@link DeadLetterTools.list}. */
export interface ListOptions {
  /** Start after this stream id (the `next` of the previous page). */
  readonly after?: string | undefined;
  /** Page size, default 20. */
  readonly count?: number | undefined;
}

/** A page of {@link DeadLetterTools.list}. */
export interface DeadLetterPage {
  readonly messages: readonly (DeadLetter | ForeignEntry)[];
  /** Pass as `after` to read the next page; undefined on the last page. */
  readonly next: string | undefined;
}

/**
 * Options of {@link DeadLetterTools.replay}. By default each message goes back to the queue it
 * died in (the `queue` of its last death), and to no other queue.
 */
export interface ReplayOptions {
  /**
   * Publish each message to the exchange it was first published to, with its routing key (those
   * of its first death), instead: it reaches every queue bound there now, not only the one it
   * died in. Default false.
   */
  readonly viaExchange?: boolean | undefined;
  /** Send every message to this queue instead (through the default exchange). */
  readonly toQueue?: string | undefined;
  /** Replay at most this many messages. */
  readonly limit?: number | undefined;
  /** Called after each message with how many are done out of how many. */
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
}

/** Messages a replay left in place because the queue they died in does not exist. */
export interface ReplayFailure {
  /** The queue they died in. */
  readonly queue: string;
  /** How many of them stayed. */
  readonly messages: number;
  /** A NotFoundError naming the queue. */
  readonly error: NotFoundError;
}

/** What a replay did. */
export interface ReplayResult {
  /** Messages moved back to a queue. */
  replayed: number;
  /**
   * Messages left in place: no death history to replay from, held by a consumer, or (with
   * `viaExchange` or `toQueue`) no route now.
   */
  skipped: number;
  /** Messages left in place because the queue they died in is gone; see `failures`. */
  failed: number;
  /** Why the failed ones stayed: one entry per missing queue, in the order met. */
  failures: readonly ReplayFailure[];
}

/** What a replay did with one message: moved it, left it, or left it for its missing queue. */
type EntryOutcome = 'replayed' | 'skipped' | { readonly missingQueue: string };

const LIST_OPTIONS = optionNames<ListOptions>({ after: true, count: true });
const REPLAY_OPTIONS = optionNames<ReplayOptions>({
  viaExchange: true,
  toQueue: true,
  limit: true,
  onProgress: true,
});
const STREAM_ID = /^\d+-\d+$/u;
/** Each part of a stream id (`<ms>-<seq>`) is an unsigned 64-bit integer. */
const MAX_STREAM_ID_PART = 2n ** 64n - 1n;
const SCAN_BATCH = 500;

/**
 * Checks a stream id given by the caller before it is sent: Redis would refuse one whose parts
 * exceed 64 bits with an error reply. Returns whether it is the largest id there is.
 */
function validateStreamId(name: string, id: string): { last: boolean } {
  const parts = id.split('-').map(BigInt);
  if (parts.some((part) => part > MAX_STREAM_ID_PART)) {
    throw new InvalidArgumentError(
      `${name} '${id}' is not a stream id: each part must be at most ${MAX_STREAM_ID_PART}`,
    );
  }
  return { last: parts.every((part) => part === MAX_STREAM_ID_PART) };
}

/** The exchange and routing key a message had when it died `death` (one of its history's). */
function deathRoute(history: DeathHistory, death: DeathSummary): ReplayRoute | undefined {
  const record = history.deaths.find((d) => d.queue === death.queue && d.reason === death.reason);
  const routingKey = record?.routingKeys[0];
  return record === undefined || routingKey === undefined
    ? undefined
    : { exchange: record.exchange, routingKey };
}

/**
 * Where a replay sends a message: to `toQueue`; through its original exchange (`viaExchange`);
 * or into the queue of its last death, as it was there. Undefined without a history to tell.
 */
function replayRoute(envelope: Envelope, options: ReplayOptions): ReplayRoute | undefined {
  if (options.toQueue !== undefined) return { exchange: '', routingKey: options.toQueue };
  const history = envelope.deathHistory;
  if (history === undefined) return undefined;
  if (options.viaExchange === true) return deathRoute(history, history.first);
  const route = deathRoute(history, history.last);
  return route === undefined ? undefined : { ...route, queue: history.last.queue };
}

/**
 * Tools for dead-letter queues: list, inspect, replay, purge. A dead-letter queue is an
 * ordinary queue bound to a dead-letter exchange; these work on any queue.
 */
export class DeadLetterTools {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keyspace,
    private readonly queues: QueueData,
    private readonly cache: TopologyCache,
    private readonly relay: DeadLetterRelay,
    private readonly codec: Codec,
  ) {}

  /**
   * The queue's record, which must be of one partition: the tools page through one stream by
   * its ids. A dead-letter queue that needs no order needs no partitions either.
   */
  private async requireDeadLetterQueue(queue: string): Promise<void> {
    if (partitionCount(await this.queues.require(queue)) > 1) {
      throw new UnsupportedError(
        `queue '${queue}' has partitions: the dead-letter tools work on queues of one partition`,
      );
    }
  }

  /** A page of the queue's messages, oldest first. */
  async list(queue: string, options: ListOptions = {}): Promise<DeadLetterPage> {
    validateName('queue', queue);
    validateOptionsObject('list options', options, LIST_OPTIONS);
    validateIntegerOption('count', options.count, 1, 10_000);
    const after: unknown = options.after;
    if (after !== undefined && (typeof after !== 'string' || !STREAM_ID.test(after))) {
      throw new InvalidArgumentError('after must be a stream id such as 1700000000000-0');
    }
    const afterLast = after !== undefined && validateStreamId('after', after).last;
    await this.requireDeadLetterQueue(queue);
    // Nothing comes after the largest id, and Redis refuses a range that starts past it.
    if (afterLast) return { messages: [], next: undefined };
    const count = options.count ?? 20;
    const start = options.after === undefined ? '-' : `(${options.after}`;
    const entries = await this.range(queue, start, count + 1);
    const page = entries
      .slice(0, count)
      .map(([id, fields]) => describeEntry(this.codec, id, fields));
    return {
      messages: page,
      next: entries.length > count ? page[page.length - 1]?.streamId : undefined,
    };
  }

  /** One message by stream id or message id, with its death history. */
  async show(queue: string, id: string): Promise<DeadLetter | ForeignEntry> {
    validateName('queue', queue);
    if (typeof id !== 'string' || id.length === 0)
      throw new InvalidArgumentError('id must be a non-empty string');
    const isStreamId = STREAM_ID.test(id);
    if (isStreamId) validateStreamId('id', id);
    await this.requireDeadLetterQueue(queue);
    if (isStreamId) {
      const [entry] = await this.range(queue, id, 1, id);
      if (entry !== undefined) return describeEntry(this.codec, ...entry);
    } else {
      for (let start = '-'; ;) {
        const entries = await this.range(queue, start, SCAN_BATCH);
        for (const [entryId, fields] of entries) {
          const described = describeEntry(this.codec, entryId, fields);
          if ('messageId' in described && described.messageId === id) return described;
        }
        if (entries.length < SCAN_BATCH) break;
        start = `(${(entries[entries.length - 1] as [string, Buffer[]])[0]}`;
      }
    }
    throw new NotFoundError(`no message '${id}' in queue '${queue}'`);
  }

  /**
   * Sends dead letters back, oldest first: each to the queue it died in and only there (by
   * default), through its original exchange (`viaExchange`), or to `toQueue`. One whose queue
   * is gone stays, counted in `failed` with a NotFoundError in `failures`. Each message is first
   * moved, in one script, from the queue into the queue's outbox with its route (unless a
   * consumer holds it), then copied to its targets and deleted there in idempotent steps: a
   * replay that is interrupted and run again never doubles a message; one interrupted between
   * the steps is finished by the next replay of the queue (or by the queue keeper of a process
   * consuming it). A taken message that routes nowhere by the time it is routed (its queue
   * deleted meanwhile) goes back into the queue.
   */
  async replay(queue: string, options: ReplayOptions = {}): Promise<ReplayResult> {
    validateName('queue', queue);
    validateOptionsObject('replay options', options, REPLAY_OPTIONS);
    validateBooleanOption('viaExchange', options.viaExchange);
    validateIntegerOption('limit', options.limit, 1, Number.MAX_SAFE_INTEGER);
    if (options.toQueue !== undefined) validateName('queue', options.toQueue);
    if (options.viaExchange === true && options.toQueue !== undefined) {
      throw new InvalidArgumentError('viaExchange and toQueue name two targets: give one');
    }
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new InvalidArgumentError('onProgress must be a function');
    }
    await this.requireDeadLetterQueue(queue);
    if (options.toQueue !== undefined) await this.queues.require(options.toQueue);
    const keys = this.keys.queue(queue);
    const counts = { replayed: 0, skipped: 0, failed: 0 };
    const missing = new Map<string, number>();
    const done = (): number => counts.replayed + counts.skipped + counts.failed;
    // What an interrupted replay took and did not route yet goes first (a dead-letter queue
    // often has no consumer whose queue keeper would route it).
    await this.relay.drain(queue);
    // Routes are checked with the topology as it is now, not as this client last loaded it.
    await this.currentTopology();
    const total = Math.min(
      await this.redis.xlen(keys.stream),
      options.limit ?? Number.MAX_SAFE_INTEGER,
    );
    let start = '-';
    while (done() < total) {
      const entries = await this.range(queue, start, Math.min(SCAN_BATCH, total - done()));
      if (entries.length === 0) break;
      for (const [entryId, fields] of entries) {
        const outcome = await this.replayEntry(keys, entryId, fields, options);
        if (typeof outcome === 'string') counts[outcome]++;
        else {
          counts.failed++;
          missing.set(outcome.missingQueue, (missing.get(outcome.missingQueue) ?? 0) + 1);
        }
        options.onProgress?.(done(), total);
      }
      await this.relay.drain(queue);
      start = `(${(entries[entries.length - 1] as [string, Buffer[]])[0]}`;
    }
    const failures = [...missing].map(([missingQueue, messages]) => ({
      queue: missingQueue,
      messages,
      error: new NotFoundError(`queue '${missingQueue}' does not exist`),
    }));
    return { ...counts, failures };
  }

  /** Removes the queue's ready messages; resolves with how many. */
  purge(queue: string): Promise<number> {
    return this.queues.purge(queue);
  }

  /**
   * Takes one entry into the outbox with its route, for the relay to move. An entry that is not
   * a sluice message, has no route, routes nowhere or is held by a consumer stays.
   */
  private async replayEntry(
    keys: QueueKeys,
    entryId: string,
    fields: Buffer[],
    options: ReplayOptions,
  ): Promise<EntryOutcome> {
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(fields);
    } catch {
      return 'skipped';
    }
    const route = replayRoute(envelope, options);
    if (route === undefined) return 'skipped';
    if (!(await this.reaches(route, envelope)))
      return route.queue === undefined ? 'skipped' : { missingQueue: route.queue };
    const taken = await callScript(
      this.redis,
      TAKE,
      { stream: keys.stream, outbox: keys.deadLetters },
      { group: CONSUMER_GROUP, entryId, route: JSON.stringify(route), timeMs: Date.now() },
    );
    return taken === 'ok' ? 'replayed' : 'skipped';
  }

  /**
   * Whether `route` reaches a queue: with the cached topology, or, when that says no, with the
   * current one (another process may have declared or bound since the cache was loaded).
   */
  private async reaches(route: ReplayRoute, envelope: Envelope): Promise<boolean> {
    const reach = (compiled: CompiledTopology): boolean =>
      (replayTargets(compiled, route, envelope)?.queues.length ?? 0) > 0;
    return reach(await this.cache.get()) || reach(await this.currentTopology());
  }

  /** The topology as it is now: the cached one, loaded again if its version is behind. */
  private async currentTopology(): Promise<CompiledTopology> {
    const cached = await this.cache.get();
    if ((await this.cache.currentVersion()) === cached.router.version) return cached;
    this.cache.invalidate(cached);
    return this.cache.get();
  }

  private async range(
    queue: string,
    start: string,
    count: number,
    end = '+',
  ): Promise<[string, Buffer[]][]> {
    const entries = (await this.redis.xrangeBuffer(
      this.keys.queue(queue).stream,
      start,
      end,
      'COUNT',
      count,
    )) as [Buffer, Buffer[]][];
    return entries.map(([id, fields]) => [id.toString(), fields]);
  }
}

/**
 * A stream entry as the tools show it: a sluice message with its body decoded by `codec`, or,
 * for an entry that is not one, its raw fields as text.
 */
export function describeEntry(
  codec: Codec,
  streamId: string,
  fields: Buffer[],
): DeadLetter | ForeignEntry {
  try {
    const envelope = decodeEnvelope(fields);
    return {
      streamId,
      messageId: envelope.messageId,
      dedupKey: envelope.dedupKey ?? envelope.messageId,
      exchange: envelope.exchange,
      routingKey: envelope.routingKey,
      headers: envelope.headers,
      contentType: envelope.contentType,
      publishedAt: envelope.publishedAt,
      body: codec.decode(envelope.body, envelope.contentType),
      deathHistory: envelope.deathHistory,
      traceparent: envelope.traceparent,
      tracestate: envelope.tracestate,
    };
  } catch {
    const raw: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) {
      raw[(fields[i] as Buffer).toString()] = (fields[i + 1] as Buffer).toString();
    }
    return { streamId, fields: raw };
  }
}
