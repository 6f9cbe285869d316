/**
 * Reclaim: taking over entries that other consumers of the queue left pending past the ack
 * timeout (crashed or hung), as many as this consumer's prefetch allows, scanning the PEL
 * round-robin with XAUTOCLAIM's cursor.
 */
import type { RedisClient } from '../connection/client.js';
import type { QueueKeys } from '../keys/index.js';
import { Periodic } from './periodic.js';
import { reclaimIdle, type ReclaimedEntry } from './scripts.js';

/** Most entries one reclaim round takes. */
const RECLAIM_BATCH = 100;
/** How often a consumer looks for idle entries, at most (a quarter ack timeout if shorter). */
const RECLAIM_INTERVAL_MS = 250;

/** What reclaiming needs from its consumer. */
export interface ReclaimContext {
  readonly redis: RedisClient;
  readonly keys: QueueKeys;
  readonly consumerName: string;
  /** Deliveries the consumer may still take. */
  readonly credit: () => number;
  /** Hands a taken-over entry on, as the reader does with read ones; a promise when it must wait. */
  readonly receive: (entry: ReclaimedEntry) => Promise<unknown> | undefined;
  readonly report: (error: unknown) => void;
}

/** The reclaim rounds of one consumer. */
export class Reclaimer {
  private cursor = '0-0';
  private rounds: Periodic | undefined;
  private stopped = false;

  constructor(private readonly context: ReclaimContext) {}

  /**
   * Takes over entries idle for `ackTimeoutMs`: one round now (resolved once its entries are
   * handed on, so that they come before the first read), then every interval.
   */
  async start(ackTimeoutMs: number): Promise<void> {
    const intervalMs = Math.min(RECLAIM_INTERVAL_MS, ackTimeoutMs / 4);
    await this.round(ackTimeoutMs).catch(this.context.report);
    if (this.stopped) return;
    this.rounds = new Periodic(
      () => this.round(ackTimeoutMs),
      intervalMs,
      this.context.report,
      intervalMs,
    );
  }

  private async round(minIdleMs: number): Promise<void> {
    const { redis, keys, consumerName: consumer, credit } = this.context;
    const count = Math.min(credit(), RECLAIM_BATCH);
    // Offline, the call would only queue up behind the reconnect; the next round comes soon.
    if (count <= 0 || redis.status !== 'ready') return;
    const reclaimed = await reclaimIdle(redis, keys, {
      consumer,
      minIdleMs,
      startId: this.cursor,
      count,
      timeMs: Date.now(),
    });
    // Only an owner's takeover (with a token) is ever refused.
    if (reclaimed === 'lost') return;
    const { cursor, entries } = reclaimed;
    this.cursor = cursor;
    for (const entry of entries) await this.context.receive(entry);
  }

  /** Stops; resolves once a round in progress has finished. */
  stop(): Promise<void> {
    this.stopped = true;
    return this.rounds?.stop() ?? Promise.resolve();
  }
}
