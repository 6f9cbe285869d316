/**
 * The reply of a publish is lost after Redis applied it (the proxy resets the connection between
 * the two): the retried publish must find its own first copy instead of making a second one.
 */
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Sluice, type PublishConfirm } from '../../src/index.js';
import { countEach, queueEntries, queueMessageIds } from '../support/faults.js';
import { connectRedis, startExtraRedis, testNamespace } from '../support/index.js';
import { startProxy, type FaultProxy } from '../support/proxy.js';

const QUEUES = ['billing', 'shipping', 'audit'];
const LANES = 4;
const TRIALS_PER_LANE = 250;

/** A publish script call (EVAL, or EVALSHA once the script is loaded on the connection). */
function isPublishCall(request: Buffer): boolean {
  return /^\*\d+\r\n\$\d+\r\neval/iu.test(request.toString('latin1', 0, 32));
}

async function declareFanout(sluice: Sluice): Promise<void> {
  await sluice.declareExchange('orders', 'fanout');
  for (const queue of QUEUES) {
    await sluice.declareQueue(queue);
    await sluice.bindQueue(queue, 'orders');
  }
}

/** Publishes `trials` messages one at a time, each losing its reply after the write. */
async function runTrials(
  sluice: Sluice,
  proxy: FaultProxy,
  lane: number,
  trials: number,
): Promise<PublishConfirm[]> {
  const confirms: PublishConfirm[] = [];
  for (let trial = 0; trial < trials; trial++) {
    const reset = proxy.resetAfterRequest({ match: isPublishCall });
    const confirm = sluice.publish(
      'orders',
      '',
      { lane, trial },
      { messageId: `${lane}-${trial}` },
    );
    await reset;
    confirms.push(await confirm);
  }
  return confirms;
}

describe('publish when the connection resets after the write, before the reply', () => {
  it(
    `stores each of ${LANES * TRIALS_PER_LANE} messages exactly once in every target queue`,
    { timeout: 120_000 },
    async () => {
      const server = await startExtraRedis();
      const namespace = testNamespace();
      const lanes = await Promise.all(
        Array.from({ length: LANES }, async () => {
          const proxy = await startProxy(server.port);
          const sluice = await Sluice.connect({ url: proxy.url, namespace });
          onTestFinished(() => sluice.close());
          return { proxy, sluice };
        }),
      );
      await declareFanout((lanes[0] as (typeof lanes)[0]).sluice);

      const results = await Promise.all(
        lanes.map(({ sluice, proxy }, lane) => runTrials(sluice, proxy, lane, TRIALS_PER_LANE)),
      );

      const redis = connectRedis({}, server.url);
      const confirms = results.flat();
      expect(confirms).toHaveLength(LANES * TRIALS_PER_LANE);
      // Every reply was lost after the write, so every confirm came from the retry.
      expect(confirms.every((confirm) => confirm.duplicate)).toBe(true);
      for (const queue of QUEUES) {
        const counts = countEach(await queueMessageIds(redis, namespace, queue));
        expect(counts.size).toBe(LANES * TRIALS_PER_LANE);
        expect([...counts.values()].every((count) => count === 1)).toBe(true);
      }
      await expectConfirmsMatchEntries(redis, namespace, confirms);
    },
  );

  it('settles every confirm of a client that drops in-flight commands (no auto-resend)', async () => {
    const server = await startExtraRedis();
    const proxy = await startProxy(server.port);
    const namespace = testNamespace();
    const client = new Redis(proxy.url, {
      autoResendUnfulfilledCommands: false,
      retryStrategy: () => 10,
    });
    client.on('error', () => undefined);
    onTestFinished(() => client.disconnect());
    const sluice = await Sluice.connect({ redis: client, namespace });
    onTestFinished(() => sluice.close());
    await declareFanout(sluice);

    const confirms = await runTrials(sluice, proxy, 0, 50);

    const redis = connectRedis({}, server.url);
    expect(confirms.every((confirm) => confirm.duplicate)).toBe(true);
    for (const queue of QUEUES) {
      const ids = await queueMessageIds(redis, namespace, queue);
      expect(ids).toHaveLength(50);
      expect(new Set(ids).size).toBe(50);
    }
    await expectConfirmsMatchEntries(redis, namespace, confirms);
  });
});

/** Each confirm's stream ids point at entries of that message in its queues. */
async function expectConfirmsMatchEntries(
  redis: Redis,
  namespace: string,
  confirms: readonly PublishConfirm[],
): Promise<void> {
  const byQueue = new Map<string, Map<string, string>>();
  for (const queue of QUEUES)
    byQueue.set(queue, new Map(await queueEntries(redis, namespace, queue)));
  for (const { messageId, targets } of confirms) {
    expect(targets.map((t) => t.queue).sort()).toEqual([...QUEUES].sort());
    for (const { queue, streamId } of targets) {
      expect(byQueue.get(queue)?.get(streamId)).toBe(messageId);
    }
  }
}
