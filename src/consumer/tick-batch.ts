/**
 * Requests made in one tick, sent as one call (at most {@link MAX_BATCH} per call), each
 * request getting its own result: how an idempotent consumer's lease takings and commits of
 * one read batch cost one script call rather than one each.
 */

/** Most requests one call carries (its arguments stay well within Lua's limits). */
const MAX_BATCH = 256;

interface Waiter<R> {
  readonly resolve: (result: R) => void;
  readonly reject: (error: unknown) => void;
}

/** The requests of one tick, and the call that answers them. */
export class TickBatch<I, R> {
  private items: I[] = [];
  private waiters: Waiter<R>[] = [];
  private scheduled = false;

  /** `send` answers the requests of one call, one result each, in order. */
  constructor(private readonly send: (items: readonly I[]) => Promise<readonly R[]>) {}

  /** Queues a request for this tick's call; resolves with its result. */
  add(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.items.push(item);
      this.waiters.push({ resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        process.nextTick(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    const { items, waiters } = this;
    this.items = [];
    this.waiters = [];
    this.scheduled = false;
    for (let start = 0; start < items.length; start += MAX_BATCH) {
      const chunk = waiters.slice(start, start + MAX_BATCH);
      const part = items.slice(start, start + MAX_BATCH);
      // Whatever goes wrong, thrown or rejected, settles every request of the call.
      Promise.resolve()
        .then(() => this.send(part))
        .then((results) => {
          for (const [i, waiter] of chunk.entries()) waiter.resolve(results[i] as R);
        })
        .catch((error: unknown) => {
          for (const waiter of chunk) waiter.reject(error);
        });
    }
  };
}
