/**
 * Leases: the deliveries a consumer holds unsettled, and their renewal. An entry pending
 * for longer than the queue's ack timeout without renewal is reclaimed by other consumers;
 * renewing every quarter of it keeps a running handler's delivery with its consumer.
 */
import type { RedisClient } from '../connection/client.js';
import type { QueueKeys } from '../keys/index.js';
import { Periodic } from './periodic.js';
import { extendOwned } from './scripts.js';
import type { Delivery } from './types.js';

/** What leases need to renew themselves. */
export interface LeaseContext {
  readonly redis: RedisClient;
  /** The keys of each partition of the queue. */
  readonly keys: (partition: number) => QueueKeys;
  readonly consumerName: string;
  readonly report: (error: unknown) => void;
}

/** The unsettled deliveries of one consumer. */
export class Leases<T> {
  private readonly held = new Set<Delivery<T>>();
  private renewal: Periodic | undefined;

  constructor(private readonly context: LeaseContext) {}

  get size(): number {
    return this.held.size;
  }

  add(delivery: Delivery<T>): void {
    this.held.add(delivery);
  }

  /** The deliveries held now (of one partition, if given). */
  all(partition?: number): Delivery<T>[] {
    const all = [...this.held];
    return partition === undefined ? all : all.filter((d) => d.partition === partition);
  }

  /** Drops a delivery's lease; false when it held none (settled before). */
  delete(delivery: Delivery<T>): boolean {
    return this.held.delete(delivery);
  }

  /**
   * Renews every lease every quarter of `ackTimeoutMs`: a lease is then never idle for more
   * than half the ack timeout while the consumer lives.
   */
  start(ackTimeoutMs: number): void {
    this.renewal = new Periodic(() => this.renew(), ackTimeoutMs / 4, this.context.report);
  }

  private async renew(): Promise<void> {
    const { redis, keys, consumerName: consumer } = this.context;
    // Offline, the call would only queue up behind the reconnect; the next round comes soon.
    if (this.held.size === 0 || redis.status !== 'ready') return;
    const byPartition = new Map<number, string[]>();
    for (const { partition, streamId } of this.held) {
      const ids = byPartition.get(partition);
      if (ids === undefined) byPartition.set(partition, [streamId]);
      else ids.push(streamId);
    }
    await Promise.all(
      [...byPartition].map(([partition, ids]) =>
        extendOwned(redis, keys(partition), { consumer, ids }),
      ),
    );
  }

  /** Stops renewing; resolves once a renewal in progress is answered. */
  stop(): Promise<void> {
    return this.renewal?.stop() ?? Promise.resolve();
  }
}
