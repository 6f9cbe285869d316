/**
 * Deadlines of the consumer's Redis calls. ioredis keeps a command that was in flight at a
 * connection loss until it reconnects (and forever when it does not resend such commands),
 * and queues new ones while it is offline; nothing the consumer awaits may hang with them.
 */
import type { Redis } from 'ioredis';
import { withDeadline } from '../connection/connection.js';
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
export function deadlineError(redis: Redis, what: string, timeoutMs: number): SluiceError {
  const message = `${what} got no reply within ${timeoutMs} ms`;
  return redis.status === 'ready'
    ? new TimeoutError(message)
    : new ConnectionError(`${message}: Redis is not connected (${redis.status})`);
}

/** A call watched by a {@link DeadlineQueue}, in the order the calls were made. */
interface Watched {
  readonly dueAt: number;
  /** Set once the call has been answered or has timed out. */
  done: boolean;
  readonly reject: (error: Error) => void;
  readonly timedOut: () => Error;
  next: Watched | undefined;
}

/**
 * Deadlines of one length for many calls, on one timer: with a fixed `timeoutMs`, the calls
 * fall due in the order they were made, so a queue in call order and one timer armed for its
 * oldest unanswered call cover them all, rather than a timer (and a race of promises) per call.
 * The timer stays armed while it waits for a due time and does not keep the process alive.
 */
export class DeadlineQueue {
  private head: Watched | undefined;
  private tail: Watched | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly timeoutMs: number) {}

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
      const entry: Watched = {
        dueAt: Date.now() + this.timeoutMs,
        done: false,
        reject,
        timedOut,
        next: undefined,
      };
      if (this.tail === undefined) this.head = entry;
      else this.tail.next = entry;
      this.tail = entry;
      this.timer ??= setTimeout(this.expireDue, this.timeoutMs).unref();
      promise.then(
        (value) => {
          entry.done = true;
          this.dropAnswered();
          resolve(value);
        },
        (error: unknown) => {
          entry.done = true;
          this.dropAnswered();
          reject(failed(error));
        },
      );
    });
  }

  /** Drops answered calls from the front (replies mostly come in call order). */
  private dropAnswered(): void {
    let head = this.head;
    while (head?.done === true) head = head.next;
    this.head = head;
    if (head === undefined) this.tail = undefined;
  }

  /** The timer: times out every call now due, and waits for the next one. */
  private readonly expireDue = (): void => {
    this.timer = undefined;
    const now = Date.now();
    let head = this.head;
    while (head !== undefined && (head.done || head.dueAt <= now)) {
      if (!head.done) {
        head.done = true;
        head.reject(head.timedOut());
      }
      head = head.next;
    }
    this.head = head;
    if (head === undefined) this.tail = undefined;
    else this.timer = setTimeout(this.expireDue, head.dueAt - now).unref();
  };
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

  constructor(private readonly redis: Redis) {}

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
