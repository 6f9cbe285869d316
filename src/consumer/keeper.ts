/**
 * The queue keeper: queue-level chores, run once per process for each queue that has
 * consumers in it (not by every consumer): promoting due delayed retries into the stream, and
 * routing the dead-letter outbox to the dead-letter exchange; and, for each queue this process
 * put messages into that can expire, dead-lettering them as they expire at the queue's head,
 * with or without a consumer. Each is a single script that any number of processes may run at
 * once without doubling a message.
 */
import type { RedisClient } from '../connection/client.js';
import { toSluiceError, withDeadline } from '../connection/connection.js';
import type { DeadLetterRelay } from '../dead-letter/relay.js';
import type { SluiceError } from '../errors/index.js';
import type { Keyspace } from '../keys/index.js';
import { ReplyBudget, SETTLEMENT_TIMEOUT_MS, deadlineError } from './deadline.js';
import { Periodic } from './periodic.js';
import { expireHead, promoteDue } from './scripts.js';

/** How often each kept queue's chores run. */
const KEEPER_INTERVAL_MS = 250;
/** Most delayed retries one promotion call moves (a round calls again while it is full). */
const PROMOTE_BATCH = 500;
/** Most entries one expiry call looks at (a sweep calls again while it is full). */
const EXPIRE_BATCH = 500;
/** After a failed expiry sweep (or with Redis offline), the wait before the next one. */
const EXPIRE_RETRY_MS = 1000;
/** The longest timer Node runs as asked (setTimeout's limit). */
const MAX_TIMER_MS = 2_147_483_647;

/** Where a kept queue's failures go: its consumers' `readError`. */
type FailureListener = (error: SluiceError) => void;

interface KeptQueue {
  readonly listeners: Set<FailureListener>;
  readonly rounds: Periodic;
}

/** A queue whose head may expire: when to look next, and the sweep in progress. */
interface ExpiryWatch {
  readonly queue: string;
  readonly partition: number;
  ttlMs: number | undefined;
  dueAtMs: number;
  /** The last sweep failed: what it moved to the outbox may not have been routed. */
  failed: boolean;
  timer: NodeJS.Timeout | undefined;
  sweeping: Promise<void> | undefined;
}

/** Where an expiry sweep's failure goes (no consumer of the queue may be here to hear it). */
export type ExpiryFailureListener = (queue: string, error: SluiceError) => void;

/** Detaches a consumer from the keeper; resolves once the queue's last chores are done. */
export type Detach = () => Promise<void>;

/** One per client; consumers attach to it for their queue's chores. */
export class QueueKeeper {
  private readonly kept = new Map<string, KeptQueue>();
  private readonly expiring = new Map<string, ExpiryWatch>();
  private closed = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keyspace,
    private readonly relay: DeadLetterRelay,
    private readonly onExpiryFailure: ExpiryFailureListener,
  ) {}

  /**
   * A message that may expire at `dueAtMs` went into `queue` (whose `messageTtlMs` is `ttlMs`):
   * its head is swept then, and again whenever the message that is then at the head expires,
   * until nothing ready there can expire. Without a consumer this is what dead-letters expired
   * messages; with one it keeps them from waiting for a consumer with room to read them.
   */
  expireAt(queue: string, partition: number, dueAtMs: number, ttlMs: number | undefined): void {
    if (this.closed) return;
    const name = `${partition} ${queue}`;
    let watch = this.expiring.get(name);
    if (watch === undefined) {
      watch = {
        queue,
        partition,
        ttlMs,
        dueAtMs: Infinity,
        failed: false,
        timer: undefined,
        sweeping: undefined,
      };
      this.expiring.set(name, watch);
    }
    watch.ttlMs = ttlMs;
    if (dueAtMs >= watch.dueAtMs) return;
    watch.dueAtMs = dueAtMs;
    if (watch.sweeping === undefined) this.arm(watch);
  }

  private arm(watch: ExpiryWatch): void {
    clearTimeout(watch.timer);
    // Node runs a longer timer at once: a far due time is looked at again when the timer ends.
    const delayMs = Math.min(Math.max(0, watch.dueAtMs - Date.now()), MAX_TIMER_MS);
    watch.timer = setTimeout(() => this.sweep(watch), delayMs).unref();
  }

  /** Sweeps `queue`'s head until nothing there has expired, then waits for the next due time. */
  private sweep(watch: ExpiryWatch): void {
    const { queue, partition } = watch;
    watch.timer = undefined;
    watch.dueAtMs = Infinity;
    const sweeping = this.sweepOnce(queue, partition, watch.ttlMs, watch.failed).then(
      (nextDueAtMs) => {
        watch.failed = false;
        return nextDueAtMs;
      },
      (error: unknown) => {
        watch.failed = true;
        this.onExpiryFailure(queue, toSluiceError(error, this.redis, `expiring queue '${queue}'`));
        return Date.now() + EXPIRE_RETRY_MS;
      },
    );
    watch.sweeping = sweeping.then((nextDueAtMs) => {
      watch.sweeping = undefined;
      // A message noted during the sweep may be due earlier than the new head.
      if (nextDueAtMs !== undefined && nextDueAtMs < watch.dueAtMs) watch.dueAtMs = nextDueAtMs;
      if (this.closed) return;
      if (watch.dueAtMs === Infinity) this.expiring.delete(`${partition} ${queue}`);
      else this.arm(watch);
    });
  }

  /**
   * One sweep: expired heads dead-lettered and routed (the outbox is routed too after a failed
   * sweep, which may have moved entries without routing them); when the head expires next.
   */
  private async sweepOnce(
    queue: string,
    partition: number,
    ttlMs: number | undefined,
    afterFailure: boolean,
  ): Promise<number | undefined> {
    // Offline, the call would only queue up behind the reconnect.
    if (this.redis.status !== 'ready') return Date.now() + EXPIRE_RETRY_MS;
    if (afterFailure) await this.drain(queue);
    const keys = this.keys.queue(queue, partition);
    for (;;) {
      const nowMs = Date.now();
      // Bounded by the settlement deadline, as every consumer script call is.
      const { expired, nextDueAtMs } = await expireHead(this.redis, keys, {
        nowMs,
        ttlMs,
        limit: EXPIRE_BATCH,
      });
      if (expired > 0) await this.drain(queue);
      if (nextDueAtMs === undefined || nextDueAtMs > nowMs) return nextDueAtMs;
    }
  }

  /**
   * Keeps `queue` while at least one consumer is attached; its failures go to `onFailure`.
   * When the last consumer detaches, the chores stop after one more routing of the outbox, so
   * that what that consumer dead-lettered does not wait for another process.
   */
  attach(queue: string, onFailure: FailureListener): Detach {
    let kept = this.kept.get(queue);
    if (kept === undefined) {
      const rounds = new Periodic(
        () => this.round(queue),
        KEEPER_INTERVAL_MS,
        (error: unknown) => this.report(queue, error),
      );
      kept = { listeners: new Set(), rounds };
      this.kept.set(queue, kept);
    }
    const queueKept = kept;
    // A wrapper per attachment: one consumer may attach twice, each detach is its own.
    const listener: FailureListener = (error) => onFailure(error);
    queueKept.listeners.add(listener);
    let detached = false;
    return async () => {
      if (detached) return;
      detached = true;
      queueKept.listeners.delete(listener);
      if (queueKept.listeners.size > 0 || this.kept.get(queue) !== queueKept) return;
      this.kept.delete(queue);
      await queueKept.rounds.stop();
      await this.drain(queue).catch((error: unknown) => onFailure(this.failure(queue, error)));
    };
  }

  /** Routes `queue`'s outbox now (a delivery was just dead-lettered), not at the next round. */
  kick(queue: string): void {
    this.drain(queue).catch((error: unknown) => this.report(queue, error));
  }

  private async round(queue: string): Promise<void> {
    // Offline, the calls would only queue up behind the reconnect; the next round comes soon.
    if (this.redis.status !== 'ready') return;
    const partitions = await this.relay.partitions(queue);
    for (let partition = 0; partition < partitions; partition++) {
      const keys = this.keys.queue(queue, partition);
      for (;;) {
        const { moved } = await promoteDue(this.redis, keys, {
          nowMs: Date.now(),
          limit: PROMOTE_BATCH,
        });
        if (moved < PROMOTE_BATCH) break;
      }
    }
    await this.drain(queue);
  }

  private async drain(queue: string): Promise<void> {
    const what = `routing the dead letters of queue '${queue}'`;
    await withDeadline(this.relay.drain(queue), SETTLEMENT_TIMEOUT_MS, () =>
      deadlineError(this.redis, what, SETTLEMENT_TIMEOUT_MS),
    );
  }

  private failure(queue: string, error: unknown): SluiceError {
    return toSluiceError(error, this.redis, `chores of queue '${queue}'`);
  }

  private report(queue: string, error: unknown): void {
    const listeners = this.kept.get(queue)?.listeners;
    if (listeners === undefined || listeners.size === 0) return;
    const failure = this.failure(queue, error);
    for (const listener of listeners) listener(failure);
  }

  /** Stops every queue's chores (consumers detach first, as the client closes them). */
  async close(): Promise<void> {
    this.closed = true;
    const kept = [...this.kept.values()];
    this.kept.clear();
    const sweeps: Promise<void>[] = [];
    for (const watch of this.expiring.values()) {
      clearTimeout(watch.timer);
      if (watch.sweeping !== undefined) sweeps.push(watch.sweeping);
    }
    this.expiring.clear();
    await new ReplyBudget(this.redis).wait(
      Promise.all([...kept.map((queue) => queue.rounds.stop()), ...sweeps]),
    );
  }
}
