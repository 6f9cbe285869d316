import type { Keyspace } from '../keys/index.js';
import { decodeEnvelope, encodeCopy, type Envelope } from '../message/envelope.js';
import { Field } from '../message/fields.js';
import type { AppendTarget } from '../producer/append.js';
import type { CompiledTopology, TopologyCache } from '../routing/compiled.js';
import { moveOutboxEntry, type MovePlan } from './move.js';
import type { ExpiryPort } from '../producer/producer.js';
import { isDeadLetterCycle, recordDeath } from './death.js';
import { type DeathReason } from '../message/death-history.js';
import { partitionCount, targetPartitions } from '../queue/partitions.js';

/** Content type of the copy made of an entry that was not a readable sluice message. */
export const POISON_CONTENT_TYPE = 'application/vnd.sluice.poison+json';

/** What one drain of an outbox did. */
export interface RelayResult {
  /** Dead letters routed to at least one queue. */
  routed: number;
  /** Dead letters dropped: no dead-letter exchange, no route, or only cycles. */
  dropped: number;
}

/**
 * Where a DLQ replay sends a message (the outbox field `rt`): through `exchange` with
 * `routingKey`, or, when `queue` is set, into that queue alone, the copy carrying `exchange`
 * and `routingKey` as the message did when it died there.
 */
export interface ReplayRoute {
  readonly exchange: string;
  readonly routingKey: string;
  readonly queue?: string;
}

/** An outbox entry, split into the dead-lettering facts and the original entry. */
interface OutboxEntry {
  readonly id: string;
  readonly reason: DeathReason;
  readonly time: number;
  readonly sourceId: string;
  /** Set for a replayed message: routed there, with no death recorded. */
  readonly route: ReplayRoute | undefined;
  readonly original: Buffer[];
}

const DRAIN_BATCH = 100;

function parseOutboxEntry(id: string, fields: Buffer[]): OutboxEntry {
  // src/lua/lib/to_outbox.lua writes reason, time, source id and route first, then the original
  // fields; entries of sluice 0.1 have no route.
  const routed = fields[6]?.toString() === Field.route;
  const route = routed ? (fields[7]?.toString() ?? '') : '';
  return {
    id,
    reason: (fields[1]?.toString() ?? 'poison') as DeathReason,
    time: Number(fields[3]?.toString() ?? 0),
    sourceId: fields[5]?.toString() ?? id,
    route: route === '' ? undefined : (JSON.parse(route) as ReplayRoute),
    original: fields.slice(routed ? 8 : 6),
  };
}

/**
 * A readable stand-in for an entry that was not a sluice message: its raw fields, as
 * text, in a JSON body, so that the dead-letter queue's consumers can inspect it.
 */
function poisonEnvelope(entry: OutboxEntry): Envelope {
  const raw: Record<string, string> = {};
  for (let i = 0; i + 1 < entry.original.length; i += 2) {
    raw[(entry.original[i] as Buffer).toString()] = (entry.original[i + 1] as Buffer).toString();
  }
  return {
    messageId: `poison-${entry.sourceId}`,
    exchange: '',
    routingKey: '',
    publishedAt: entry.time,
    headers: {},
    contentType: POISON_CONTENT_TYPE,
    redeliveries: 0,
    body: Buffer.from(
      JSON.stringify({ streamId: entry.sourceId, fields: entry.original.length > 0 ? raw : null }),
    ),
  };
}

function readEnvelope(entry: OutboxEntry): Envelope {
  if (entry.reason === 'poison' || entry.original.length === 0) return poisonEnvelope(entry);
  try {
    return decodeEnvelope(entry.original);
  } catch {
    return poisonEnvelope(entry);
  }
}

/**
 * Routes dead letters from a queue's outbox to its dead-letter exchange, as RabbitMQ
 * republishes them: body, headers and message id kept, a death record added (with the last
 * handler error the entry carried), the routing key replaced by `deadLetterRoutingKey` when
 * the queue sets one; and sends the messages a DLQ replay took to their route (back into the
 * queue when they route nowhere now). Each move is two single-slot steps (see ./move.ts): a copy into each target, checked
 * against its fence and idempotent under the outbox entry's id, then the entry's deletion, so
 * several processes draining the same outbox never double a message.
 */
export class DeadLetterRelay {
  /** The pass running now, and the one queued after it, per queue. */
  private readonly running = new Map<string, Promise<RelayResult>>();
  private readonly queued = new Map<string, Promise<RelayResult>>();

  constructor(
    private readonly target: AppendTarget,
    private readonly keys: Keyspace,
    private readonly topology: TopologyCache,
    /** Told of every copy into a queue with a TTL, so that it expires with no consumer. */
    private readonly expiry: ExpiryPort,
  ) {}

  /**
   * Routes everything in `queue`'s outbox. A call during a pass joins the pass queued after
   * it (one at most), so every caller waits for at most the current pass and one more, however
   * often others call.
   */
  drain(queue: string): Promise<RelayResult> {
    const queued = this.queued.get(queue);
    if (queued !== undefined) return queued;
    const running = this.running.get(queue);
    if (running === undefined) return this.pass(queue);
    const next = running
      .catch(() => undefined)
      .then(() => {
        this.queued.delete(queue);
        return this.pass(queue);
      });
    this.queued.set(queue, next);
    return next;
  }

  private pass(queue: string): Promise<RelayResult> {
    const run = (async (): Promise<RelayResult> => {
      const result: RelayResult = { routed: 0, dropped: 0 };
      try {
        await this.drainOnce(queue, result);
      } finally {
        this.running.delete(queue);
      }
      return result;
    })();
    this.running.set(queue, run);
    return run;
  }

  /** How many partitions `queue` has, as this client's topology knows. */
  async partitions(queue: string): Promise<number> {
    return partitionCount((await this.topology.get()).snapshot.queues.get(queue));
  }

  private async drainOnce(queue: string, result: RelayResult): Promise<void> {
    const partitions = await this.partitions(queue);
    for (let partition = 0; partition < partitions; partition++) {
      await this.drainPartition(queue, partition, result);
    }
  }

  private async drainPartition(
    queue: string,
    partition: number,
    result: RelayResult,
  ): Promise<void> {
    const outbox = this.keys.queue(queue, partition).deadLetters;
    let start = '-';
    for (;;) {
      const entries = (await this.target.redis.xrangeBuffer(
        outbox,
        start,
        '+',
        'COUNT',
        DRAIN_BATCH,
      )) as [Buffer, Buffer[]][];
      for (const [id, fields] of entries) {
        const entry = parseOutboxEntry(id.toString(), fields);
        const routed = await this.relay(queue, partition, entry);
        if (routed === undefined) continue;
        result[routed ? 'routed' : 'dropped']++;
      }
      if (entries.length < DRAIN_BATCH) return;
      start = `(${(entries[entries.length - 1] as [Buffer, Buffer[]])[0].toString()}`;
    }
  }

  /** Routes one outbox entry; true if routed, false if dropped, undefined if someone else did. */
  private async relay(
    queue: string,
    partition: number,
    entry: OutboxEntry,
  ): Promise<boolean | undefined> {
    const envelope = readEnvelope(entry);
    const keys = this.keys.queue(queue, partition);
    const outcome = await moveOutboxEntry(
      this.target,
      this.topology,
      {
        outbox: keys.deadLetters,
        entryId: entry.id,
        stats: keys.stats,
        ...(entry.route === undefined ? {} : { restoreTo: keys.stream }),
      },
      (compiled) =>
        entry.route === undefined
          ? this.targets(compiled, queue, entry, envelope)
          : replayTargets(compiled, entry.route, envelope),
      (compiled, { queues, partitions }) => {
        const now = Date.now();
        queues.forEach((target, t) => {
          const ttlMs = compiled.snapshot.queues.get(target)?.messageTtlMs;
          const p = partitions[t] as number;
          if (ttlMs !== undefined) this.expiry.expireAt(target, p, now + ttlMs, ttlMs);
        });
      },
    );
    if (outcome === 'gone' || outcome === 'restored') return undefined;
    return outcome === 'routed';
  }

  /**
   * The queues a dead letter goes to and the fields of its copy; none (or undefined) when it is
   * dropped by the current topology (checked by the mover before it drops it).
   */
  private targets(
    compiled: CompiledTopology,
    queue: string,
    entry: OutboxEntry,
    envelope: Envelope,
  ): MovePlan | undefined {
    const record = compiled.snapshot.queues.get(queue);
    const exchange = record?.deadLetterExchange;
    if (record === undefined || exchange === undefined) return undefined;
    if (exchange !== '' && compiled.router.exchange(exchange) === undefined) return undefined;
    const routingKey = record.deadLetterRoutingKey ?? envelope.routingKey;
    const deathHistory = recordDeath(envelope.deathHistory, {
      queue,
      reason: entry.reason,
      time: entry.time,
      exchange: envelope.exchange,
      routingKey: envelope.routingKey,
      ...(envelope.expirationMs === undefined ? {} : { expirationMs: envelope.expirationMs }),
      ...(envelope.lastError === undefined ? {} : { lastError: envelope.lastError }),
    });
    const queues = compiled.router
      .route(exchange, routingKey, envelope.headers)
      .filter((target) => !isDeadLetterCycle(deathHistory, target));
    // The copy does not expire again (RabbitMQ removes the expiration when dead-lettering).
    const fields = encodeCopy(envelope, { exchange, routingKey, deathHistory });
    const key = envelope.partitionKey ?? routingKey;
    return { queues, partitions: targetPartitions(compiled.snapshot.queues, queues, key), fields };
  }
}

/**
 * The queues a replayed message goes to (its route's queue if that still exists, or what its
 * exchange routes it to now) and the fields of its copy, which keeps its death history as a
 * message re-published by a shovel keeps x-death.
 */
export function replayTargets(
  compiled: CompiledTopology,
  route: ReplayRoute,
  envelope: Envelope,
): MovePlan | undefined {
  const { exchange, routingKey, queue } = route;
  const fields = encodeCopy(envelope, {
    exchange,
    routingKey,
    deathHistory: envelope.deathHistory,
  });
  const key = envelope.partitionKey ?? routingKey;
  const plan = (queues: readonly string[]): MovePlan => ({
    queues,
    partitions: targetPartitions(compiled.snapshot.queues, queues, key),
    fields,
  });
  if (queue !== undefined) return plan(compiled.snapshot.queues.has(queue) ? [queue] : []);
  if (exchange !== '' && compiled.router.exchange(exchange) === undefined) return undefined;
  return plan(compiled.router.route(exchange, routingKey, envelope.headers));
}
