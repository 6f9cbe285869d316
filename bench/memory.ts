/**
 * The memory scenario: Redis memory per message of a queue holding min(N, 10,000) messages,
 * the sum of `MEMORY USAGE <key> SAMPLES 0` (every element counted, not a sample) over the
 * keys, divided by the messages. Not timed, so no warm-up.
 *
 * - sluice: the messages published with its defaults (dedup on) to the topic exchange with one
 *   queue bound, {@link PUBLISH_WINDOW} in flight. Two values: the queue's stream alone, and
 *   every key of the queue (those with its hash tag: the stream, the dedup marker hashes of
 *   the window, the fence).
 * - raw: as many `XADD <stream> * body <json>` of the same bodies; the stream is its only key.
 * - bullmq: as many `Queue.add`, waiting; every key of the queue (job hashes, the wait list,
 *   the events stream, meta).
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Keyspace, escapeGlob } from '../src/keys/index.js';
import { Sluice } from '../src/index.js';
import {
  EXCHANGE,
  PREFILL_CHUNK,
  PUBLISH_WINDOW,
  QUEUE,
  ROUTING_KEY,
  declareTopology,
  expectCount,
  inChunks,
  indexes,
  makeBody,
  slidingWindow,
  xaddPipelined,
  type Contender,
  type Measurement,
  type RunContext,
  type Scenario,
} from './support.js';

/** The most messages the queues hold. */
const MEMORY_MESSAGES = 10_000;

/** Bytes that `key` takes, every element of it counted. */
async function memoryUsage(redis: Redis, key: string): Promise<number> {
  const reply = await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
  if (typeof reply !== 'number') throw new Error(`no MEMORY USAGE of ${key}`);
  return reply;
}

/** Bytes that the keys matching `pattern` take together. */
async function memoryOfKeys(redis: Redis, pattern: string): Promise<number> {
  let total = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) total += await memoryUsage(redis, key);
  } while (cursor !== '0');
  return total;
}

const sluiceMemory: Contender = {
  name: 'sluice',
  async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
    const client = await Sluice.connect({ url, namespace: prefix });
    const redis = new Redis(url);
    try {
      await declareTopology(client);
      await slidingWindow(messages, PUBLISH_WINDOW, (i) =>
        client.publish(EXCHANGE, ROUTING_KEY, makeBody(i)),
      );
      expectCount(
        'sluice: messages in the queue',
        (await client.inspectQueue(QUEUE)).messages,
        messages,
      );
      const keyspace = new Keyspace(prefix);
      const stream = await memoryUsage(redis, keyspace.queue(QUEUE).stream);
      const queueKeys = await memoryOfKeys(redis, `*${escapeGlob(keyspace.queueHashTag(QUEUE))}*`);
      return { streamBytesPerMessage: stream / messages, bytesPerMessage: queueKeys / messages };
    } finally {
      await redis.quit();
      await client.close();
    }
  },
};

const rawMemory: Contender = {
  name: 'raw',
  async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
    const redis = new Redis(url);
    const stream = `${prefix}:stream`;
    try {
      await inChunks(messages, PREFILL_CHUNK, (first, count) =>
        xaddPipelined(redis, stream, indexes(first, count)),
      );
      expectCount('raw: stream length', await redis.xlen(stream), messages);
      const perMessage = (await memoryUsage(redis, stream)) / messages;
      return { streamBytesPerMessage: perMessage, bytesPerMessage: perMessage };
    } finally {
      await redis.quit();
    }
  },
};

const bullmqMemory: Contender = {
  name: 'bullmq',
  async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
    const queue = new Queue(QUEUE, { connection: { url }, prefix });
    const redis = new Redis(url);
    try {
      await slidingWindow(messages, PUBLISH_WINDOW, (i) => queue.add(ROUTING_KEY, makeBody(i)));
      expectCount('bullmq: waiting jobs', await queue.count(), messages);
      const keys = await memoryOfKeys(redis, `${escapeGlob(`${prefix}:${QUEUE}`)}:*`);
      return { bytesPerMessage: keys / messages };
    } finally {
      await redis.quit();
      await queue.close();
    }
  },
};

/** The memory scenario: the stream alone, and every key of the queue. */
export const memoryScenario: Scenario = {
  id: 'memory',
  messages: (n) => Math.min(n, MEMORY_MESSAGES),
  warmup: false,
  rows: [
    {
      label: 'Redis memory per message, the stream alone',
      sluice: sluiceMemory,
      metric: 'streamBytesPerMessage',
    },
    {
      label: 'Redis memory per message, every key of the queue',
      sluice: sluiceMemory,
      metric: 'bytesPerMessage',
      targets: { raw: 1.5 },
    },
  ],
  baselines: { raw: rawMemory, bullmq: bullmqMemory },
};
