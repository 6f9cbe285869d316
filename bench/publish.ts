/**
 * Scenario 1: publish N messages with {@link PUBLISH_WINDOW} operations in flight.
 *
 * - sluice: `publish` to a direct exchange with one queue bound; each publish resolves with
 *   its confirm. Three rows: dedup off (`dedupWindowMs: 0`), the defaults (dedup on,
 *   durability `written`), and the defaults with `durability: 'replicated'` (needs a replica).
 * - raw: `XADD <stream> * body <json>` on one ioredis client.
 * - bullmq: `Queue.add`.
 *
 * Every row is compared with the same raw and BullMQ runs: neither waits for a replica.
 * The timed part is the window alone; connecting and declaring come before, the count check after.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Sluice, type ConnectOptions } from '../src/index.js';
import {
  EXCHANGE,
  PUBLISH_WINDOW,
  QUEUE,
  ROUTING_KEY,
  declareTopology,
  expectCount,
  makeBody,
  slidingWindow,
  timed,
  type Contender,
  type RunContext,
  type Scenario,
  type ScenarioRow,
} from './support.js';

/** Milliseconds that publishing N messages takes with {@link PUBLISH_WINDOW} in flight. */
function timedWindow(
  messages: number,
  publish: (index: number) => Promise<unknown>,
): Promise<number> {
  return timed(() => slidingWindow(messages, PUBLISH_WINDOW, publish));
}

/** The connect options a sluice row changes; the rest are sluice's defaults. */
type PublishOptions = Pick<ConnectOptions, 'dedupWindowMs' | 'durability'>;

/** A row whose sluice contender connects with `options`. */
function sluiceRow(name: string, label: string, options: PublishOptions): ScenarioRow {
  const sluice: Contender = {
    name,
    async run({ url, prefix, messages }: RunContext): Promise<number> {
      const client = await Sluice.connect({ url, namespace: prefix, ...options });
      try {
        await declareTopology(client);
        const elapsedMs = await timedWindow(messages, (i) =>
          client.publish(EXCHANGE, ROUTING_KEY, makeBody(i)),
        );
        expectCount(
          `${name}: messages in the queue`,
          (await client.inspectQueue(QUEUE)).messages,
          messages,
        );
        return elapsedMs;
      } finally {
        await client.close();
      }
    },
  };
  return { label: `publish, window ${PUBLISH_WINDOW}, ${label}`, sluice };
}

const rawPublish: Contender = {
  name: 'raw',
  async run({ url, prefix, messages }: RunContext): Promise<number> {
    const redis = new Redis(url);
    const stream = `${prefix}:stream`;
    try {
      const elapsedMs = await timedWindow(messages, (i) =>
        redis.xadd(stream, '*', 'body', JSON.stringify(makeBody(i))),
      );
      expectCount('raw: stream length', await redis.xlen(stream), messages);
      return elapsedMs;
    } finally {
      await redis.quit();
    }
  },
};

const bullmqPublish: Contender = {
  name: 'bullmq',
  async run({ url, prefix, messages }: RunContext): Promise<number> {
    const queue = new Queue(QUEUE, { connection: { url }, prefix });
    try {
      await queue.waitUntilReady();
      const elapsedMs = await timedWindow(messages, (i) => queue.add(ROUTING_KEY, makeBody(i)));
      expectCount('bullmq: waiting jobs', await queue.count(), messages);
      return elapsedMs;
    } finally {
      await queue.close();
    }
  },
};

/**
 * The publish scenario. The `replicated` row only when the server has a replica that
 * acknowledges writes: without one, each of its confirms would time out.
 */
export function publishScenario(options: { readonly replicated: boolean }): Scenario {
  const rows = [
    sluiceRow('sluice-dedup-off', 'dedup off', { dedupWindowMs: 0 }),
    sluiceRow('sluice', 'dedup on', {}),
  ];
  if (options.replicated) {
    rows.push(sluiceRow('sluice-replicated', 'dedup on, replicated', { durability: 'replicated' }));
  }
  return { id: 'publish', rows, baselines: { raw: rawPublish, bullmq: bullmqPublish } };
}
