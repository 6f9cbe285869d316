/**
 * The dispatcher: hands deliveries on in read order, to the handler with at most
 * `concurrency` running at once, or to the `for await` loop of the iterator form. (Ordered
 * consumption's per-key lanes will live here: one running delivery per key.)
 */
import type { DeliveryImpl } from './delivery.js';
import type { Handler } from './types.js';

/** A handler resolved (`failed` false) or threw `error`; `startedAt` is 0 when untimed. */
export type Finished<T> = (
  delivery: DeliveryImpl<T>,
  failed: boolean,
  error: unknown,
  startedAt: number,
) => void;

/** What the dispatcher tells its consumer. */
export interface DispatchHooks<T> {
  /** Whether handler durations are wanted (someone listens); timing is skipped otherwise. */
  timed(): boolean;
  readonly finished: Finished<T>;
}

/**
 * Runs `handler` for `delivery` and calls `finish` once it resolved (`failed` false) or threw;
 * `startedAt` is 0 unless `timed`. A synchronous handler costs no promise of sluice's own.
 */
export function runHandler<T>(
  handler: Handler<T>,
  delivery: DeliveryImpl<T>,
  timed: boolean,
  finish: Finished<T>,
): void {
  const startedAt = timed ? performance.now() : 0;
  let outcome: Promise<void> | void;
  try {
    outcome = handler(delivery);
  } catch (error) {
    finish(delivery, true, error, startedAt);
    return;
  }
  // Any thenable counts (Bluebird, another realm's Promise), not only this realm's Promise.
  const pending = outcome as PromiseLike<void> | undefined;
  if (typeof pending?.then === 'function') {
    pending.then(
      () => finish(delivery, false, undefined, startedAt),
      (error: unknown) => finish(delivery, true, error, startedAt),
    );
  } else {
    finish(delivery, false, undefined, startedAt);
  }
}

/** The deliveries of one consumer between admission and their handler (or the caller). */
export class Dispatcher<T> {
  private readonly ready: DeliveryImpl<T>[] = [];
  private running = 0;
  private wakeIterator: (() => void) | undefined;

  constructor(
    private readonly handler: Handler<T> | undefined,
    private readonly concurrency: number,
    private readonly hooks: DispatchHooks<T>,
  ) {}

  /** Handlers running now. */
  get active(): number {
    return this.running;
  }

  /** Queues a delivery and runs or offers it at once if there is room. */
  push(delivery: DeliveryImpl<T>): void {
    this.ready.push(delivery);
    if (this.handler === undefined) this.wake();
    else this.dispatch();
  }

  /** Iterator form: the next delivery, if one is ready. */
  next(): DeliveryImpl<T> | undefined {
    return this.ready.shift();
  }

  /** Iterator form: resolves when a delivery arrives or {@link wake} is called. */
  arrival(): Promise<void> {
    return new Promise<void>((resolve) => (this.wakeIterator = resolve));
  }

  /** Lets a waiting iterator look again (a delivery arrived, or the consumer closes). */
  wake(): void {
    this.wakeIterator?.();
    this.wakeIterator = undefined;
  }

  /** Iterator form: takes the deliveries read but never handed out. */
  takeUnseen(): DeliveryImpl<T>[] {
    return this.ready.splice(0);
  }

  private dispatch(): void {
    while (this.running < this.concurrency && this.ready.length > 0) {
      this.running++;
      this.run(this.handler as Handler<T>, this.ready.shift() as DeliveryImpl<T>);
    }
  }

  private run(handler: Handler<T>, delivery: DeliveryImpl<T>): void {
    runHandler(handler, delivery, this.hooks.timed(), this.finish);
  }

  private readonly finish: Finished<T> = (delivery, failed, error, startedAt) => {
    this.running--;
    this.hooks.finished(delivery, failed, error, startedAt);
    this.dispatch();
  };
}
