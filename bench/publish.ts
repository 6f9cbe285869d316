/**
 * The publish scenarios: N messages published in one of three ways ({@link PublishMode}),
 * with bodies of 256 bytes, or 100 B or 1 KiB in the scenarios of their own.
 *
 * - sluice: `publish` (or `publishBatch`) to the topic exchange with one queue bound; each
 *   publish resolves with its confirm. Rows of the windowed scenario: the defaults (dedup on,
 *   durability `written`); dedup off (`dedupWindowMs: 0`); the topic exchange with 10, 1,000
 *   and 10,000 bindings, of which the routing key matches only the queue's; a fanout exchange
 *   to 1 and to 10 queues; and the defaults with `durability: 'replicated'` (needs a replica).
 * - raw: `XADD <stream> * body <json>` on one ioredis client (a batch: one pipeline of them).
 * - bullmq: `Queue.add` (a batch: `Queue.addBulk`).
 *
 * Every row of a scenario is compared with the same raw and BullMQ runs: neither waits for a
 * replica. The timed part is the publishing alone; connecting and declaring come before, the
 * count check after.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Sluice, type ConnectOptions } from '../src/index.js';
import {
  AGAINST_BULLMQ,
  BATCH_SIZE,
  BODY_BYTES,
  ONE_QUEUE,
  PUBLISH_WINDOW,
  QUEUE,
  ROUTING_KEY,
  declareTopology,
  exchangeOf,
  expectCount,
  inChunks,
  indexes,
  makeBody,
  slidingWindow,
  targetQueues,
  throughput,
  timed,
  xaddPipelined,
  type Contender,
  type Measurement,
  type RunContext,
  type Scenario,
  type ScenarioRow,
  type Topology,
} from './support.js';

/**
 * How a contender publishes: `window`, with {@link PUBLISH_WINDOW} publishes in flight;
 * `sequential`, each one awaited before the next; `batch`, {@link BATCH_SIZE} messages per
 * call, each batch awaited before the next.
 */
export type PublishMode = 'window' | 'sequential' | 'batch';

/** What the contenders of a publish scenario do. */
export interface PublishWorkload {
  readonly mode: PublishMode;
  readonly bodyBytes: number;
}

/** A contender's two ways of publishing: message `index` alone, or messages `ids` at once. */
interface Publisher {
  one(index: number): Promise<unknown>;
  batch(ids: readonly number[]): Promise<unknown>;
}

/** Milliseconds that publishing N messages takes as `mode` says. */
function timedPublishing(
  mode: PublishMode,
  messages: number,
  publisher: Publisher,
): Promise<number> {
  return timed(() => {
    switch (mode) {
      case 'window':
        return slidingWindow(messages, PUBLISH_WINDOW, (i) => publisher.one(i));
      case 'sequential':
        return slidingWindow(messages, 1, (i) => publisher.one(i));
      case 'batch':
        return inChunks(messages, BATCH_SIZE, (first, count) =>
          publisher.batch(indexes(first, count)),
        );
    }
  });
}

/** What a sluice row changes: connect options (the rest are sluice's defaults), topology. */
interface SluiceSetup {
  readonly connect?: Pick<ConnectOptions, 'dedupWindowMs' | 'durability'>;
  readonly topology?: Topology;
}

/** A sluice contender publishing as `workload` says, with `setup`. */
function sluicePublish(
  name: string,
  { mode, bodyBytes }: PublishWorkload,
  setup: SluiceSetup = {},
): Contender {
  const topology = setup.topology ?? ONE_QUEUE;
  const exchange = exchangeOf(topology);
  return {
    name,
    async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
      const client = await Sluice.connect({ url, namespace: prefix, ...setup.connect });
      try {
        await declareTopology(client, topology);
        const elapsedMs = await timedPublishing(mode, messages, {
          one: (i) => client.publish(exchange, ROUTING_KEY, makeBody(i, bodyBytes)),
          batch: (ids) =>
            client.publishBatch(
              ids.map((i) => ({ exchange, routingKey: ROUTING_KEY, body: makeBody(i, bodyBytes) })),
            ),
        });
        for (const queue of targetQueues(topology)) {
          const { messages: found } = await client.inspectQueue(queue);
          expectCount(`${name}: messages in ${queue}`, found, messages);
        }
        return throughput(messages, elapsedMs);
      } finally {
        await client.close();
      }
    },
  };
}

function rawPublish({ mode, bodyBytes }: PublishWorkload): Contender {
  return {
    name: 'raw',
    async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
      const redis = new Redis(url);
      const stream = `${prefix}:stream`;
      try {
        const elapsedMs = await timedPublishing(mode, messages, {
          one: (i) => redis.xadd(stream, '*', 'body', JSON.stringify(makeBody(i, bodyBytes))),
          batch: (ids) => xaddPipelined(redis, stream, ids, bodyBytes),
        });
        expectCount('raw: stream length', await redis.xlen(stream), messages);
        return throughput(messages, elapsedMs);
      } finally {
        await redis.quit();
      }
    },
  };
}

function bullmqPublish({ mode, bodyBytes }: PublishWorkload): Contender {
  return {
    name: 'bullmq',
    async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
      const queue = new Queue(QUEUE, { connection: { url }, prefix });
      try {
        await queue.waitUntilReady();
        const elapsedMs = await timedPublishing(mode, messages, {
          one: (i) => queue.add(ROUTING_KEY, makeBody(i, bodyBytes)),
          batch: (ids) =>
            queue.addBulk(ids.map((i) => ({ name: ROUTING_KEY, data: makeBody(i, bodyBytes) }))),
        });
        expectCount('bullmq: waiting jobs', await queue.count(), messages);
        return throughput(messages, elapsedMs);
      } finally {
        await queue.close();
      }
    },
  };
}

/** A publish scenario whose baselines do as `workload` says. */
function publishScenarioOf(
  id: string,
  workload: PublishWorkload,
  rows: readonly ScenarioRow[],
  messages?: (n: number) => number,
): Scenario {
  const baselines = { raw: rawPublish(workload), bullmq: bullmqPublish(workload) };
  return messages === undefined ? { id, rows, baselines } : { id, rows, baselines, messages };
}

/** A row of sluice's defaults (the headline configuration), `raw` its target against raw. */
function headlineRow(label: string, workload: PublishWorkload, raw: number): ScenarioRow {
  return { label, sluice: sluicePublish('sluice', workload), targets: { ...AGAINST_BULLMQ, raw } };
}

const WINDOW: PublishWorkload = { mode: 'window', bodyBytes: BODY_BYTES };
const windowLabel = (what: string): string => `publish, window ${PUBLISH_WINDOW}${what}`;

/**
 * The windowed publish rows of the 256-byte body. The `replicated` row only when the server
 * has a replica that acknowledges writes: without one, each of its confirms would time out.
 */
export function windowScenario(options: { readonly replicated: boolean }): Scenario {
  const bindings = (count: number): Contender =>
    sluicePublish(`sluice-bindings-${count}`, WINDOW, {
      topology: { kind: 'topic', bindings: count },
    });
  const fanout = (queues: number): Contender =>
    sluicePublish(`sluice-fanout-${queues}`, WINDOW, { topology: { kind: 'fanout', queues } });
  const [bindings10, bindings1000, bindings10000] = [
    bindings(10),
    bindings(1000),
    bindings(10_000),
  ];
  const [fanout1, fanout10] = [fanout(1), fanout(10)];
  const row = (label: string, sluice: Contender): ScenarioRow => ({
    label: windowLabel(label),
    sluice,
    targets: AGAINST_BULLMQ,
  });
  const rows: ScenarioRow[] = [
    headlineRow(windowLabel(''), WINDOW, 1),
    row(
      ', dedup off',
      sluicePublish('sluice-dedup-off', WINDOW, { connect: { dedupWindowMs: 0 } }),
    ),
    row(', 10 bindings', bindings10),
    row(', 1,000 bindings', bindings1000),
    row(', 10,000 bindings', bindings10000),
    row(', fanout to 1 queue', fanout1),
    row(', fanout to 10 queues', fanout10),
  ];
  if (options.replicated) {
    // Not among the rows: no target.
    rows.push({
      label: windowLabel(', replicated'),
      sluice: sluicePublish('sluice-replicated', WINDOW, { connect: { durability: 'replicated' } }),
    });
  }
  return {
    ...publishScenarioOf('publish', WINDOW, rows),
    comparisons: [
      {
        label: '10,000 bindings / 10 bindings',
        numerator: bindings10000,
        denominator: bindings10,
        target: 0.9,
      },
      { label: '1,000 bindings / 10 bindings', numerator: bindings1000, denominator: bindings10 },
      {
        label: 'fanout to 10 queues / to 1',
        numerator: fanout10,
        denominator: fanout1,
        target: 0.5,
      },
    ],
  };
}

/** Windowed publishes of `bytes`-byte bodies (100 B, 1 KiB), sluice with its defaults. */
export function bodySizeScenario(id: string, size: string, bytes: number): Scenario {
  const workload = { ...WINDOW, bodyBytes: bytes };
  return publishScenarioOf(id, workload, [headlineRow(windowLabel(`, body ${size}`), workload, 1)]);
}

const SEQUENTIAL: PublishWorkload = { mode: 'sequential', bodyBytes: BODY_BYTES };
/** Each publish awaited before the next; a tenth of N, as each costs a round trip or more. */
export const sequentialScenario = publishScenarioOf(
  'sequential',
  SEQUENTIAL,
  [headlineRow('publish, sequential', SEQUENTIAL, 0.9)],
  (n) => Math.ceil(n / 10),
);

const BATCH: PublishWorkload = { mode: 'batch', bodyBytes: BODY_BYTES };
/** Batches of {@link BATCH_SIZE} messages, each awaited before the next. */
export const batchScenario = publishScenarioOf('batch', BATCH, [
  headlineRow(`publish, batch ${BATCH_SIZE}`, BATCH, 0.8),
]);
