/**
 * Ownership of partitions under ordered consumption (DESIGN.md section 7): the queue's ordered
 * consumers are its members; the partitions are shared among the live members (all of them to
 * the first one, for a single active consumer); each partition has one owner at a time, held by
 * a lease with a fencing token in the partition's own slot. A consumer takes the partitions
 * assigned to it once they are free, renews them, hands over the ones assigned elsewhere after
 * its handlers of them finished, and drops at once the ones whose lease it lost.
 */
import type { RedisClient } from '../connection/client.js';
import { PreconditionFailedError } from '../errors/index.js';
import type { QueueKeys } from '../keys/index.js';
import { Periodic } from './periodic.js';
import { joinMembers, ownPartition } from './scripts.js';

/** How long a partition's lease and a membership last unrenewed (server time). */
export const OWNERSHIP_LEASE_MS = 6000;
/** How much sooner than its lease a partition counts as lost here: clocks drift. */
const LEASE_MARGIN_MS = 1000;
/** How often a member renews them and looks at the assignment: a quarter of the lease. */
const TICK_MS = OWNERSHIP_LEASE_MS / 4;

/** What ownership needs from its consumer. */
export interface OwnershipContext {
  readonly redis: RedisClient;
  readonly keys: (partition: number) => QueueKeys;
  readonly queue: string;
  readonly consumerName: string;
  readonly partitions: number;
  /** A single active consumer: every partition goes to the member that joined first. */
  readonly single: boolean;
  /** The consumer owns `partition` under `token` now: it takes over what is pending, reads. */
  readonly acquired: (partition: number, token: number) => Promise<void>;
  /** The lease of `partition` was lost: what the consumer holds of it is no longer its. */
  readonly lost: (partition: number) => void;
  /**
   * `partition` goes to another member: the consumer stops reading it, gives back what did not
   * start, and resolves once its running handlers of it finished (the lease is kept till then).
   */
  readonly handOver: (partition: number) => Promise<void>;
  /** Whether handlers of an earlier ownership of `partition` still run: it waits for them. */
  readonly busy: (partition: number) => boolean;
  /** The queue was deleted. */
  readonly gone: () => void;
  readonly report: (error: unknown) => void;
}

/** The partitions `consumer` is assigned among `members` (in join order). */
export function assignedPartitions(
  members: readonly string[],
  consumer: string,
  partitions: number,
  single: boolean,
): Set<number> {
  const mine = new Set<number>();
  const index = members.indexOf(consumer);
  if (index < 0 || (single && index > 0)) return mine;
  for (let p = 0; p < partitions; p++) {
    if (single || p % members.length === index) mine.add(p);
  }
  return mine;
}

/** One ordered consumer's membership and partition leases. */
export class Ownership {
  /** Partitions owned now, with their fencing tokens. */
  private readonly held = new Map<number, number>();
  /**
   * Until when (this host's clock) each owned partition's lease surely lasts: from before the
   * call that took or renewed it, less a margin for the clocks' drift.
   */
  private readonly validUntil = new Map<number, number>();
  /** Owned partitions being handed over: renewed until their handlers finished. */
  private readonly leaving = new Map<number, Promise<void>>();
  private ticks: Periodic | undefined;
  private stopped = false;

  constructor(private readonly context: OwnershipContext) {}

  /** The fencing token under which `partition` is owned, if it is. */
  token(partition: number): number | undefined {
    return this.held.get(partition);
  }

  /**
   * Joins the membership, without taking partitions yet: 'gone' when the queue is; fails with
   * PreconditionFailedError when an unordered consumer reads the queue.
   */
  async join(): Promise<'ok' | 'gone'> {
    const { redis, keys, consumerName: consumer, queue } = this.context;
    const membership = await joinMembers(redis, keys(0), { consumer, leaseMs: OWNERSHIP_LEASE_MS });
    if (membership.kind === 'conflict') {
      throw new PreconditionFailedError(
        `queue '${queue}' has an unordered consumer (${membership.consumer}): ordered and ` +
          'unordered consumers cannot share a queue',
      );
    }
    return membership.kind === 'gone' ? 'gone' : 'ok';
  }

  /**
   * Joins and takes what is assigned and free; fails with PreconditionFailedError when an
   * unordered consumer reads the queue. Then looks again every tick.
   */
  async start(): Promise<void> {
    await this.tick(true);
    if (this.stopped) return;
    this.ticks = new Periodic(() => this.tick(false), TICK_MS, this.context.report, TICK_MS);
  }

  private async tick(first: boolean): Promise<void> {
    const { redis, keys, consumerName: consumer, queue } = this.context;
    // Offline, the calls would only queue up behind the reconnect; leases may lapse meanwhile.
    if (!first && redis.status !== 'ready') return;
    const membership = await joinMembers(redis, keys(0), { consumer, leaseMs: OWNERSHIP_LEASE_MS });
    if (this.stopped) return;
    if (membership.kind === 'gone') return this.context.gone();
    if (membership.kind === 'conflict') {
      const error = new PreconditionFailedError(
        `queue '${queue}' has an unordered consumer (${membership.consumer}): ordered and ` +
          'unordered consumers cannot share a queue',
      );
      if (first) throw error;
      this.context.report(error);
      // What is owned is still renewed: nothing moves until the membership is clear again.
      await Promise.all([...this.held].map(([p, token]) => this.keep(p, token, true)));
      return;
    }
    const mine = assignedPartitions(
      membership.members,
      consumer,
      this.context.partitions,
      this.context.single,
    );
    await Promise.all([...this.held].map(([p, token]) => this.keep(p, token, mine.has(p))));
    const free = [...mine].filter(
      (p) => !this.held.has(p) && !this.leaving.has(p) && !this.context.busy(p),
    );
    await Promise.all(free.map((p) => this.acquire(p)));
  }

  /** Renews an owned partition, or finds it lost; one assigned elsewhere is handed over. */
  private async keep(partition: number, token: number, assigned: boolean): Promise<void> {
    const sentAt = Date.now();
    const renewed = await this.own(partition, 'renew', token);
    if (this.stopped || this.held.get(partition) !== token) return;
    if (renewed !== token) {
      this.forget(partition);
      this.context.lost(partition);
      return;
    }
    this.validUntil.set(partition, sentAt + OWNERSHIP_LEASE_MS - LEASE_MARGIN_MS);
    if (!assigned && !this.leaving.has(partition)) {
      const leaving = this.context
        .handOver(partition)
        .then(() => this.release(partition, token))
        .catch(this.context.report)
        .finally(() => this.leaving.delete(partition));
      this.leaving.set(partition, leaving);
    }
  }

  private async acquire(partition: number): Promise<void> {
    const sentAt = Date.now();
    const token = await this.own(partition, 'acquire', 0);
    if (token === -1) return this.context.gone();
    if (token <= 0) return;
    if (this.stopped) {
      await this.own(partition, 'release', token);
      return;
    }
    this.held.set(partition, token);
    this.validUntil.set(partition, sentAt + OWNERSHIP_LEASE_MS - LEASE_MARGIN_MS);
    // Not awaited by the tick: a long takeover must not hold back the renewal of the others.
    this.context.acquired(partition, token).catch(async (error: unknown) => {
      // A takeover that failed gives the partition up, so that a later tick takes it again.
      this.context.report(error);
      if (this.held.get(partition) !== token) return;
      this.context.lost(partition);
      this.forget(partition);
      await this.own(partition, 'release', token).catch(this.context.report);
    });
  }

  /**
   * Whether `partition` is owned under `token` with a lease that surely has not ended: a
   * consumer starts no handler of a partition otherwise (it was frozen, or cut off from Redis,
   * past its renewals).
   */
  owns(partition: number, token: number | undefined): boolean {
    return this.held.get(partition) === token && Date.now() < (this.validUntil.get(partition) ?? 0);
  }

  /** Stops owning `partition` here (its lease lapsed): the next tick may take it again. */
  forget(partition: number): void {
    this.held.delete(partition);
    this.validUntil.delete(partition);
  }

  private async release(partition: number, token: number): Promise<void> {
    if (this.held.get(partition) !== token) return;
    this.forget(partition);
    await this.own(partition, 'release', token);
  }

  private own(
    partition: number,
    op: 'acquire' | 'renew' | 'release',
    token: number,
  ): Promise<number> {
    const { redis, keys, consumerName: consumer } = this.context;
    return ownPartition(redis, keys(partition), {
      consumer,
      op,
      leaseMs: OWNERSHIP_LEASE_MS,
      token,
    });
  }

  /** Stops looking; leases stay held (and are renewed by {@link renewWhile}) until {@link leave}. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.ticks?.stop();
    await Promise.allSettled(this.leaving.values());
  }

  /** The partitions owned now. */
  owned(): number[] {
    return [...this.held.keys()];
  }

  /**
   * Keeps renewing what is owned until `done` settles (a closing consumer's handlers finish),
   * so that no other member starts on a key while one of this consumer's handlers runs it.
   */
  async renewWhile(done: Promise<unknown>): Promise<void> {
    let finished = false;
    const settled = done.then(
      () => (finished = true),
      () => (finished = true),
    );
    while (!finished) {
      await Promise.race([settled, new Promise((resolve) => setTimeout(resolve, TICK_MS))]);
      if (finished) break;
      await Promise.all(
        [...this.held].map(([p, token]) => this.own(p, 'renew', token).catch(() => 0)),
      );
    }
  }

  /** Gives every owned partition up and leaves the membership. */
  async leave(): Promise<void> {
    const { redis, keys, consumerName: consumer } = this.context;
    const held = [...this.held];
    this.held.clear();
    this.validUntil.clear();
    await Promise.all(held.map(([p, token]) => this.own(p, 'release', token)));
    await joinMembers(redis, keys(0), { consumer, leaseMs: -1 });
  }
}
