/**
 * Key lanes: the dispatcher of an ordered consumer (DESIGN.md section 7). Deliveries of one
 * partition key form a lane, handled one at a time in read order; different keys run in
 * parallel up to `concurrency`, as Confluent's parallel consumer does on Kafka. A lane moves on
 * only when its head is done (acked or dead-lettered); a head that is retried in place keeps
 * the lane, and others go on meanwhile.
 */
import { runHandler, type DispatchHooks, type Finished } from './dispatcher.js';
import type { DeliveryImpl } from './delivery.js';
import type { Handler } from './types.js';

/** The deliveries of one key, head first; `busy` while the head runs or waits for a retry. */
interface Lane<T> {
  readonly items: DeliveryImpl<T>[];
  busy: boolean;
}

/** The lane of a delivery: its partition and its key. */
function laneOf(delivery: DeliveryImpl<unknown>): string {
  return `${delivery.partition} ${delivery.partitionKey}`;
}

/** Key-level parallelism: one running delivery per key, up to `concurrency` keys at once. */
export class KeyLanes<T> {
  private readonly lanes = new Map<string, Lane<T>>();
  /** Lanes whose head may run, in the order they became ready. */
  private readonly runnable: string[] = [];
  private running = 0;
  /** Handlers running now, by partition, and the deliveries they run. */
  private readonly runningIn = new Map<number, number>();
  private readonly runningNow = new Set<DeliveryImpl<T>>();

  constructor(
    private readonly handler: Handler<T>,
    private readonly concurrency: number,
    private readonly hooks: DispatchHooks<T> & {
      /** A halted head reached the front of its lane: it stays there, not run. */
      halted(delivery: DeliveryImpl<T>): void;
      /**
       * Whether the consumer still surely owns the partition of `delivery`; when it does not,
       * it drops the partition ({@link dropPartition}) and the delivery is not run.
       */
      owned(delivery: DeliveryImpl<T>): boolean;
      /** A delivery not run, its partition no longer owned: it is no longer held. */
      discarded(delivery: DeliveryImpl<T>): void;
    },
  ) {}

  /** Handlers running now. */
  get active(): number {
    return this.running;
  }

  /** Handlers of `partition` running now. */
  activeIn(partition: number): number {
    return this.runningIn.get(partition) ?? 0;
  }

  /** Queues a delivery behind the others of its key. */
  push(delivery: DeliveryImpl<T>): void {
    const key = laneOf(delivery);
    let lane = this.lanes.get(key);
    if (lane === undefined) {
      lane = { items: [], busy: false };
      this.lanes.set(key, lane);
    }
    lane.items.push(delivery);
    if (lane.items.length === 1 && !lane.busy) {
      this.runnable.push(key);
      this.dispatch();
    }
  }

  /** `delivery`, the head of its lane, is done: the next of its key may run. */
  advance(delivery: DeliveryImpl<T>): void {
    const key = laneOf(delivery);
    const lane = this.lanes.get(key);
    if (lane?.items[0] !== delivery) return;
    lane.items.shift();
    lane.busy = false;
    if (lane.items.length > 0) this.runnable.push(key);
    else this.lanes.delete(key);
    this.dispatch();
  }

  /** A retry in place: `fresh` (the entry delivered again) takes `old`'s place and runs next. */
  replace(old: DeliveryImpl<T>, fresh: DeliveryImpl<T>): boolean {
    const key = laneOf(old);
    const lane = this.lanes.get(key);
    if (lane?.items[0] !== old) return false;
    lane.items[0] = fresh;
    lane.busy = false;
    this.runnable.push(key);
    this.dispatch();
    return true;
  }

  /** Whether `delivery` is still the head of its lane (its partition was not dropped). */
  isHead(delivery: DeliveryImpl<T>): boolean {
    return this.lanes.get(laneOf(delivery))?.items[0] === delivery;
  }

  /**
   * Drops a partition's lanes (the partition moves to another owner, or was lost): returns
   * what is not running now (not started, or waiting for a retry); running heads finish by
   * themselves, their lanes gone.
   */
  dropPartition(partition: number): DeliveryImpl<T>[] {
    const running = this.runningNow;
    const dropped: DeliveryImpl<T>[] = [];
    for (const [key, lane] of this.lanes) {
      const head = lane.items[0] as DeliveryImpl<T>;
      if (head.partition !== partition) continue;
      dropped.push(...lane.items.filter((delivery) => !running.has(delivery)));
      this.lanes.delete(key);
    }
    return dropped;
  }

  private dispatch(): void {
    while (this.running < this.concurrency && this.runnable.length > 0) {
      const key = this.runnable.shift() as string;
      const lane = this.lanes.get(key);
      const head = lane?.items[0];
      if (lane === undefined || head === undefined || lane.busy) continue;
      if (!this.hooks.owned(head)) {
        lane.items.shift();
        this.hooks.discarded(head);
        if (lane.items.length > 0) this.runnable.push(key);
        else if (this.lanes.get(key) === lane) this.lanes.delete(key);
        continue;
      }
      lane.busy = true;
      if (head.halted) {
        this.hooks.halted(head);
        continue;
      }
      this.running++;
      this.runningIn.set(head.partition, this.activeIn(head.partition) + 1);
      this.runningNow.add(head);
      this.run(head);
    }
  }

  /** Runs the handler; the lane stays busy until {@link advance} or {@link replace}. */
  private run(delivery: DeliveryImpl<T>): void {
    runHandler(this.handler, delivery, this.hooks.timed(), this.finish);
  }

  private readonly finish: Finished<T> = (delivery, failed, error, startedAt) => {
    this.running--;
    this.runningIn.set(delivery.partition, this.activeIn(delivery.partition) - 1);
    this.runningNow.delete(delivery);
    this.hooks.finished(delivery, failed, error, startedAt);
    this.dispatch();
  };
}
