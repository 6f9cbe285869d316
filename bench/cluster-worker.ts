/**
 * One run of the Cluster scale-out bench in a process of its own, started by
 * bench/cluster-scale.ts: `node bench-results/build/bench/cluster-worker.js <ClusterTask as
 * JSON>` (compiled first). It warms up on a few messages under a prefix of its own (keys
 * deleted before the measured run), runs the measured workload, prints one line
 * `bench-result <ClusterMeasurement as JSON>` and exits.
 *
 * The workload: a topic exchange bound to one queue of `partitions` partitions (each its own
 * hash slot, so spread over the masters), {@link CLUSTER_CONSUMERS} unordered
 * consumers reading every partition, and the publishes of N messages with partition keys,
 * {@link PUBLISH_WINDOW} in flight, while the consumers run. Two clocks from the first
 * publish: to the last confirm (publish rate) and to the last ack (publish + consume rate).
 */
import { performance } from 'node:perf_hooks';
import { Sluice, type Consumer, type Delivery, type ServerAddress } from '../src/index.js';
import {
  EXCHANGE,
  PREFETCH,
  PUBLISH_WINDOW,
  QUEUE,
  RESULT_PREFIX,
  ROUTING_KEY,
  allAcked,
  declareTopology,
  deleteClusterNamespace,
  expectCount,
  handleMessage,
  makeBody,
  slidingWindow,
  type BenchBody,
} from './support.js';
import { warmupPrefix } from './scenarios.js';

/** Unordered consumers of the queue, on one client. */
const CLUSTER_CONSUMERS = 2;
/** Handlers running at once per consumer. */
const CONCURRENCY = 64;
/** Distinct partition keys: message `i` has key `key-<i mod PARTITION_KEYS>`. */
const PARTITION_KEYS = 1000;
/** The most messages of a warm-up run. */
const MAX_WARMUP_MESSAGES = 2000;

/** What the runner hands a worker. */
export interface ClusterTask {
  readonly seeds: readonly ServerAddress[];
  readonly prefix: string;
  /** Partitions of the queue. */
  readonly partitions: number;
  readonly messages: number;
}

/** What one run measured. */
export interface ClusterMeasurement {
  /** Messages over the time from the first publish to the last confirm. */
  readonly publishPerSecond: number;
  /** Messages over the time from the first publish to the last ack. */
  readonly endToEndPerSecond: number;
}

async function run(
  task: ClusterTask,
  prefix: string,
  messages: number,
): Promise<ClusterMeasurement> {
  const sluice = await Sluice.connect({ cluster: task.seeds, namespace: prefix });
  const consumers: Consumer<BenchBody>[] = [];
  try {
    await declareTopology(sluice, undefined, { partitions: task.partitions });
    const handler = (delivery: Delivery<BenchBody>): Promise<void> => handleMessage(delivery.body);
    for (let i = 0; i < CLUSTER_CONSUMERS; i++) {
      consumers.push(
        await sluice.consume<BenchBody>(QUEUE, handler, {
          prefetch: PREFETCH,
          concurrency: CONCURRENCY,
        }),
      );
    }
    const startedAt = performance.now();
    await slidingWindow(messages, PUBLISH_WINDOW, (i) =>
      sluice.publish(EXCHANGE, ROUTING_KEY, makeBody(i), {
        partitionKey: `key-${i % PARTITION_KEYS}`,
      }),
    );
    const publishMs = performance.now() - startedAt;
    await allAcked(consumers, messages, 'cluster scale-out');
    const endToEndMs = performance.now() - startedAt;
    const acked = consumers.reduce((sum, consumer) => sum + consumer.stats.acked, 0);
    expectCount('cluster scale-out: acked', acked, messages);
    return {
      publishPerSecond: (messages * 1000) / publishMs,
      endToEndPerSecond: (messages * 1000) / endToEndMs,
    };
  } finally {
    await Promise.all(consumers.map((consumer) => consumer.close()));
    await sluice.close();
  }
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? '') as ClusterTask;
  const warmup = warmupPrefix(task.prefix);
  try {
    await run(task, warmup, Math.min(MAX_WARMUP_MESSAGES, Math.ceil(task.messages / 5)));
  } finally {
    await deleteClusterNamespace(task.seeds, warmup);
  }
  const measurement = await run(task, task.prefix, task.messages);
  console.log(`${RESULT_PREFIX}${JSON.stringify(measurement)}`);
}

try {
  await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
}
