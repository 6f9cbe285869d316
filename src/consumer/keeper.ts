/**
 * The queue keeper: queue-level chores, run once per process for each queue that has
 * consumers in it (not by every consumer): promoting due delayed retries into the stream, and
 * routing the dead-letter outbox to the dead-letter exchange. Both are single scripts that
 * any number of processes may run at once without doubling a message.
 */
import type { Redis } from 'ioredis';
import { toSluiceError } from '../connection/connection.js';
import type { DeadLetterRelay } from '../dead-letter/relay.js';
import type { SluiceError } from '../errors/index.js';
import type { Keyspace } from '../keys/index.js';
import { withDeadline } from '../connection/connection.js';
import { ReplyBudget, SETTLEMENT_TIMEOUT_MS, deadlineError } from './deadline.js';
import { Periodic } from './periodic.js';
import { promoteDue } from './scripts.js';

/** How often each kept queue's chores run. */
const KEEPER_INTERVAL_MS = 250;
/** Most delayed retries one promotion call moves (a round calls again while it is full). */
const PROMOTE_BATCH = 500;

/** Where a kept queue's failures go: its consumers' `readError`. */
type FailureListener = (error: SluiceError) => void;

interface KeptQueue {
  readonly listeners: Set<FailureListener>;
  readonly rounds: Periodic;
}

/** Detaches a consumer from the keeper; resolves once the queue's last chores are done. */
export type Detach = () => Promise<void>;

/** One per client; consumers attach to it for their queue's chores. */
export class QueueKeeper {
  private readonly kept = new Map<string, KeptQueue>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    private readonly relay: DeadLetterRelay,
  ) {}

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
    const keys = this.keys.queue(queue);
    for (;;) {
      const { moved } = await promoteDue(this.redis, keys, {
        nowMs: Date.now(),
        limit: PROMOTE_BATCH,
      });
      if (moved < PROMOTE_BATCH) break;
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
    const kept = [...this.kept.values()];
    this.kept.clear();
    await new ReplyBudget(this.redis).wait(Promise.all(kept.map((queue) => queue.rounds.stop())));
  }
}
