/**
 * Deadlines of one length for many calls, on one timer (a producer's confirm deadlines, a
 * consumer's settlement deadlines). With a fixed timeout the calls fall due in the order they
 * were made: a queue in call order and one timer armed for its oldest open call cover them
 * all, rather than a timer (and a race of promises) per call. The timer does not keep the
 * process alive.
 */

/** One call's deadline, until it is done or due. */
interface Deadline {
  readonly dueAt: number;
  done: boolean;
  /** Dropped once done, so that what it holds (a call's messages) is not kept behind an open one. */
  expire: () => void;
  next: Deadline | undefined;
}

function nothing(): void {
  // The expiry of a deadline that is done.
}

/** Deadlines of `timeoutMs` for many calls. */
export class FifoDeadlines {
  private head: Deadline | undefined;
  private tail: Deadline | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly timeoutMs: number) {}

  /** Calls `expire` once `timeoutMs` has passed, unless the returned `done` is called first. */
  start(expire: () => void): () => void {
    const deadline: Deadline = {
      dueAt: performance.now() + this.timeoutMs,
      done: false,
      expire,
      next: undefined,
    };
    if (this.tail === undefined) this.head = deadline;
    else this.tail.next = deadline;
    this.tail = deadline;
    this.timer ??= setTimeout(this.expireDue, this.timeoutMs).unref();
    return () => {
      deadline.done = true;
      deadline.expire = nothing;
      // Calls mostly finish in send order: drop the finished ones from the front.
      let head = this.head;
      while (head?.done === true) head = head.next;
      this.head = head;
      // The timer stays: when it fires with nothing due it re-arms for what is open then, if
      // anything (sequential publishes would otherwise make and clear a timer each).
      if (head === undefined) this.tail = undefined;
    };
  }

  /** The timer: expires every call now due, then waits for the next one. */
  private readonly expireDue = (): void => {
    this.timer = undefined;
    const now = performance.now();
    let head = this.head;
    try {
      while (head !== undefined && (head.done || head.dueAt <= now)) {
        const due = head;
        head = head.next;
        if (!due.done) {
          due.done = true;
          due.expire();
        }
      }
    } finally {
      this.head = head;
      if (head === undefined) this.tail = undefined;
      else this.timer = setTimeout(this.expireDue, Math.max(0, head.dueAt - now)).unref();
    }
  };
}
