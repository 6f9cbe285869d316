/**
 * The publish scenario: N messages published with {@link PUBLISH_WINDOW} operations in flight
 * (a sliding window).
 *
 * - sluice: `publish` to the topic exchange with one queue bound; each publish resolves with
 *   its confirm. Rows: the defaults (dedup on, durability `written`), dedup off
 *   (`dedupWindowMs: 0`), and the defaults with `durability: 'replicated'` (needs a replica).
 * - raw: `XADD <stream> * body <json>` on one ioredis client.
 * - bullmq: `Queue.add`.
 *
 * Every row is compared with the same raw and BullMQ runs: neither waits for a replica.
 * The timed part is the publishing alone; connecting and declaring come before, the count
 * check after.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Sluice, type ConnectOptions } from '../src/index.js';
import {
  PUBLISH_WINDOW,
  QUEUE,
  ROUTING_KEY,
  declareTopology,
  exchangeOf,
  expectCount,
  makeBody,
  slidingWindow,
  targetQueues,
  throughput,
  timed,
  type Contender,
  type Measurement,
  type RunContext,
  type Scenario,
  type ScenarioRow,
  type Targets,
  type Topology,
  ONE_QUEUE,
} from './support.js';

/** Milliseconds that publishing N messages takes with {@link PUBLISH_WINDOW} in flight. */
function timedWindow(
  messages: number,
  publish: (index: number) => Promise<unknown>,
): Promise<number> {
  return timed(() => slidingWindow(messages, PUBLISH_WINDOW, publish));
}

/** What a sluice row changes: connect options (the rest are sluice's defaults), topology. */
interface SluiceSetup {
  readonly connect?: Pick<ConnectOptions, 'dedupWindowMs' | 'durability'>;
  readonly topology?: Topology;
}

/** A sluice contender publishing with `setup`. */
export function sluicePublish(name: string, setup: SluiceSetup = {}): Contender {
  const topology = setup.topology ?? ONE_QUEUE;
  const exchange = exchangeOf(topology);
  return {
    name,
    async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
      const client = await Sluice.connect({ url, namespace: prefix, ...setup.connect });
      try {
        await declareTopology(client, topology);
        const elapsedMs = await timedWindow(messages, (i) =>
          client.publish(exchange, ROUTING_KEY, makeBody(i)),
        );
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

export const rawPublish: Contender = {
  name: 'raw',
  async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
    const redis = new Redis(url);
    const stream = `${prefix}:stream`;
    try {
      const elapsedMs = await timedWindow(messages, (i) =>
        redis.xadd(stream, '*', 'body', JSON.stringify(makeBody(i))),
      );
      expectCount('raw: stream length', await redis.xlen(stream), messages);
      return throughput(messages, elapsedMs);
    } finally {
      await redis.quit();
    }
  },
};

export const bullmqPublish: Contender = {
  name: 'bullmq',
  async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
    const queue = new Queue(QUEUE, { connection: { url }, prefix });
    try {
      await queue.waitUntilReady();
      const elapsedMs = await timedWindow(messages, (i) => queue.add(ROUTING_KEY, makeBody(i)));
      expectCount('bullmq: waiting jobs', await queue.count(), messages);
      return throughput(messages, elapsedMs);
    } finally {
      await queue.close();
    }
  },
};

/** The targets of a row in the list: the headline configuration has one for raw too. */
const HEADLINE: Targets = { raw: 1, bullmq: 2 };
const AGAINST_BULLMQ: Targets = { bullmq: 2 };

/**
 * The publish scenario. The `replicated` row only when the server has a replica that
 * acknowledges writes: without one, each of its confirms would time out.
 */
export function publishScenario(options: { readonly replicated: boolean }): Scenario {
  const label = (what: string): string => `publish, window ${PUBLISH_WINDOW}${what}`;
  const rows: ScenarioRow[] = [
    { label: label(''), sluice: sluicePublish('sluice'), targets: HEADLINE },
    {
      label: label(', dedup off'),
      sluice: sluicePublish('sluice-dedup-off', { connect: { dedupWindowMs: 0 } }),
      targets: AGAINST_BULLMQ,
    },
  ];
  if (options.replicated) {
    // Not among the rows: no target.
    rows.push({
      label: label(', replicated'),
      sluice: sluicePublish('sluice-replicated', { connect: { durability: 'replicated' } }),
    });
  }
  return { id: 'publish', rows, baselines: { raw: rawPublish, bullmq: bullmqPublish } };
}
