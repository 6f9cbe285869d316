/**
 * Scenario 1: publish N messages with {@link PUBLISH_WINDOW} operations in flight.
 *
 * - sluice: `publish` to a direct exchange with one queue bound; each publish resolves with
 *   its confirm.
 * - raw: `XADD <stream> * body <json>` on one ioredis client.
 * - bullmq: `Queue.add`.
 *
 * The timed part is the window alone; connecting and declaring come before, the count check after.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Sluice } from '../src/index.js';
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
} from './support.js';

/** Milliseconds that publishing N messages takes with {@link PUBLISH_WINDOW} in flight. */
function timedWindow(
  messages: number,
  publish: (index: number) => Promise<unknown>,
): Promise<number> {
  return timed(() => slidingWindow(messages, PUBLISH_WINDOW, publish));
}

const sluicePublish: Contender = {
  name: 'sluice',
  async run({ url, prefix, messages }: RunContext): Promise<number> {
    const sluice = await Sluice.connect({ url, namespace: prefix });
    try {
      await declareTopology(sluice);
      const elapsedMs = await timedWindow(messages, (i) =>
        sluice.publish(EXCHANGE, ROUTING_KEY, makeBody(i)),
      );
      expectCount(
        'sluice: messages in the queue',
        (await sluice.inspectQueue(QUEUE)).messages,
        messages,
      );
      return elapsedMs;
    } finally {
      await sluice.close();
    }
  },
};

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

/** The contenders of the publish scenario (the runner rotates who goes first per round). */
export const publishContenders: readonly Contender[] = [sluicePublish, rawPublish, bullmqPublish];
