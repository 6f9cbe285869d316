/**
 * Deadlines of the consumer's Redis calls. ioredis keeps a command that was in flight at a
 * connection loss until it reconnects (and forever when it does not resend such commands),
 * and queues new ones while it is offline; nothing the consumer awaits may hang with them.
 */
import type { RedisClient } from '../connection/client.js';
import { withDeadline } from '../connection/connection.js';
import { FifoDeadlines } from '../connection/deadlines.js';
import { ConnectionError, TimeoutError, type SluiceError } from '../errors/index.js';

/**
 * How long a settlement (`ack`, `nack`, `reject`, `extend`), and any other script call of a
 * consumer, may take before it rejects: 10 s, the default confirm deadline of a publish. A
 * settlement that timed out may still be applied once Redis answers; one that was not is
 * redelivered after the queue's `ackTimeoutMs`, so nothing is lost either way.
 */
export const SETTLEMENT_TIMEOUT_MS = 10_000;

/**
 * How long a closing consumer waits for each group of Redis replies it would like to have
 * (the end of its blocking read, acks in flight, deregistration) before it lets go.
 */
const CLOSE_REPLY_TIMEOUT_MS = 2000;

/**
 * The error of a call to `redis` that missed its deadline: ConnectionError when the client is
 * not connected now (the likely reason), else TimeoutError. Both are retriable.
 */
export function deadlineError(redis: RedisClient, what: string, timeoutMs: number): SluiceError {
  const message = `${what} got no reply within ${timeoutMs} ms`;
  return redis.status === 'ready'
    ? new TimeoutError(message)
    : new ConnectionError(`${message}: Redis is not connected (${redis.status})`);
}

/**
 * Deadlines of one length for many calls (see {@link FifoDeadlines}): each watched call rejects
 * at its deadline unless answered first.
 */
export class DeadlineQueue {
  private readonly deadlines: FifoDeadlines;

  constructor(timeoutMs: number) {
    this.deadlines = new FifoDeadlines(timeoutMs);
  }

  /**
   * `promise`, its rejection mapped by `failed`, or a rejection with `timedOut()` once
   * `timeoutMs` has passed, whichever comes first.
   */
  watch<T>(
    promise: Promise<T>,
    failed: (error: unknown) => Error,
    timedOut: () => Error,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = this.deadlines.start(() => reject(timedOut()));
      promise.then(
        (value) => {
          done();
          resolve(value);
        },
        (error: unknown) => {
          done();
          reject(failed(error));
        },
      );
    });
  }
}

/** Resolves true once `promise` settles, or false after `timeoutMs`; never rejects. */
function settlesWithin(promise: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  // Handled at once, so that a rejection after the deadline is never unhandled.
  const settled = promise.then(
    () => true,
    () => true,
  );
  if (timeoutMs <= 0) return Promise.resolve(false);
  return withDeadline(settled, timeoutMs, () => new Error('deadline')).catch(() => false);
}

/**
 * The replies a closing component waits for, all within one {@link CLOSE_REPLY_TIMEOUT_MS}
 * from its creation; none at all while `redis` is not connected, as none would come.
 */
export class ReplyBudget {
  private readonly deadline = Date.now() + CLOSE_REPLY_TIMEOUT_MS;

  constructor(private readonly redis: RedisClient) {}

  /** True while `redis` is connected and the budget lasts: a reply may still come. */
  get open(): boolean {
    return this.redis.status === 'ready' && Date.now() < this.deadline;
  }

  /** Waits for `promise` while the budget lasts; true if it settled. */
  wait(promise: Promise<unknown>): Promise<boolean> {
    const remainingMs = this.redis.status === 'ready' ? this.deadline - Date.now() : 0;
    return settlesWithin(promise, remainingMs);
  }
}
