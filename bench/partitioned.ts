/**
 * The partitioned rows of the consume scenario: one queue of {@link PARTITIONS} partitions,
 * messages published with a `partitionKey` spread over {@link PARTITION_KEYS} keys, consumed by
 * {@link PARTITIONED_CONSUMERS} consumers on one client in this process, each with prefetch
 * {@link PREFETCH} and concurrency {@link PARTITIONED_CONCURRENCY}: ordered (each partition
 * owned by one of them, one handler per key at a time, different keys in parallel) or
 * unordered (each of them reads every partition).
 *
 * Ordered consumers first settle who owns which partition: the first one to join takes all of
 * them and hands most over once the others are members, a tick (1.5 s) or more later, and a
 * handover waits for the partition's running handlers. Pre-filled messages would be handled by
 * the first consumer alone meanwhile. So both contenders go through the same steps, none of
 * them timed: start the consumers on the empty queue (one after the other); ordered, wait
 * until every partition is owned and each consumer owns its share (`inspectQueue`); publish
 * the N messages, while the handlers wait at a gate (the consumers read their prefetch, at
 * most 4 x 100 messages, and stop); wait until every partition has deliveries held (each
 * partition's reader runs). The clock starts when the gate opens and stops once every message
 * has been handled and acked.
 */
import { waitFor } from '../scripts/local-redis.js';
import { Sluice, type Consumer, type Delivery } from '../src/index.js';
import {
  EXCHANGE,
  ONE_QUEUE,
  PREFETCH,
  PREFILL_CHUNK,
  QUEUE,
  ROUTING_KEY,
  allAcked,
  declareTopology,
  expectCount,
  handleMessage,
  inChunks,
  indexes,
  makeBody,
  throughput,
  timed,
  type BenchBody,
  type Contender,
  type Measurement,
  type RunContext,
} from './support.js';

/** Partitions of the queue. */
export const PARTITIONS = 16;
/** Consumers of the queue, all in this process (on one client). */
export const PARTITIONED_CONSUMERS = 4;
/** Handlers running at once per consumer (its prefetch is {@link PREFETCH}). */
export const PARTITIONED_CONCURRENCY = 64;
/** Distinct partition keys: message `i` has key `key-<i mod PARTITION_KEYS>`. */
export const PARTITION_KEYS = 1000;

/** Polling the ownership and the partitions' reads. */
const SETTLE = { intervalMs: 25, timeoutMs: 60_000 };

function partitionKey(index: number): string {
  return `key-${index % PARTITION_KEYS}`;
}

/**
 * Whether the ownership of the queue is final: every partition owned, by
 * {@link PARTITIONED_CONSUMERS} consumers that own an equal share each (what the assignment
 * gives them once all of them are members).
 */
async function ownershipSettled(sluice: Sluice): Promise<boolean> {
  const { partitions } = await sluice.inspectQueue(QUEUE);
  const perOwner = new Map<string, number>();
  for (const { owner } of partitions) {
    if (owner === undefined) return false;
    perOwner.set(owner.consumer, (perOwner.get(owner.consumer) ?? 0) + 1);
  }
  const share = PARTITIONS / PARTITIONED_CONSUMERS;
  return (
    perOwner.size === PARTITIONED_CONSUMERS &&
    [...perOwner.values()].every((count) => count === share)
  );
}

/** The ordered or the unordered contender. */
export function sluicePartitioned(ordered: boolean): Contender {
  const name = ordered ? 'sluice-ordered' : 'sluice-unordered';
  return { name, run: (context) => runPartitioned(name, ordered, context) };
}

async function runPartitioned(
  name: string,
  ordered: boolean,
  { url, prefix, messages }: RunContext,
): Promise<Measurement> {
  const sluice = await Sluice.connect({ url, namespace: prefix });
  const consumers: Consumer<BenchBody>[] = [];
  try {
    await declareTopology(sluice, ONE_QUEUE, { partitions: PARTITIONS });

    let gateOpen = false;
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let handled = 0;
    let allHandled: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allHandled = resolve));
    // Per key, the last orderId handled: an ordered consumer must see each key's messages in
    // publish order (both contenders do this bookkeeping, only the ordered one is held to it).
    const lastOfKey = new Map<string, number>();
    let outOfOrder = 0;
    const handler = (delivery: Delivery<BenchBody>): Promise<void> => {
      const { orderId } = delivery.body;
      const key = delivery.partitionKey;
      if ((lastOfKey.get(key) ?? -1) >= orderId) outOfOrder++;
      lastOfKey.set(key, orderId);
      if (++handled === messages) allHandled();
      if (!gateOpen) return gate.then(() => handleMessage(delivery.body));
      return handleMessage(delivery.body);
    };

    // One after the other: an ordered consumer that has registered but not yet joined the
    // membership counts as an unordered one in the membership script of the others, and one
    // of them starting meanwhile fails with PreconditionFailedError.
    for (let i = 0; i < PARTITIONED_CONSUMERS; i++) {
      consumers.push(
        await sluice.consume<BenchBody>(QUEUE, handler, {
          ordered,
          prefetch: PREFETCH,
          concurrency: PARTITIONED_CONCURRENCY,
        }),
      );
    }
    if (ordered) {
      await waitFor(() => ownershipSettled(sluice), {
        ...SETTLE,
        description: `${name}: every partition owned, each consumer its share`,
      });
    }

    await inChunks(messages, PREFILL_CHUNK, (first, count) =>
      sluice.publishBatch(
        indexes(first, count).map((i) => ({
          exchange: EXCHANGE,
          routingKey: ROUTING_KEY,
          body: makeBody(i),
          options: { partitionKey: partitionKey(i) },
        })),
      ),
    );

    // Every partition has deliveries held behind the gate: each one's reader is running.
    await waitFor(
      async () => (await sluice.inspectQueue(QUEUE)).partitions.every((p) => p.unacked > 0),
      { ...SETTLE, description: `${name}: every partition read` },
    );
    const elapsedMs = await timed(async () => {
      gateOpen = true;
      openGate();
      await done;
      await allAcked(consumers, messages, name);
    });
    const sum = (field: 'acked' | 'handlerErrors' | 'stale'): number =>
      consumers.reduce((total, c) => total + c.stats[field], 0);
    expectCount(`${name}: handler errors`, sum('handlerErrors'), 0);
    expectCount(`${name}: stale settlements`, sum('stale'), 0);
    expectCount(`${name}: acked`, sum('acked'), messages);
    expectCount(`${name}: handled`, handled, messages);
    if (ordered) expectCount(`${name}: keys handled out of order`, outOfOrder, 0);
    const left = await sluice.inspectQueue(QUEUE);
    expectCount(`${name}: messages left in the queue`, left.messages + left.unacked, 0);
    return throughput(messages, elapsedMs);
  } finally {
    await Promise.all(consumers.map((consumer) => consumer.close()));
    await sluice.close();
  }
}
