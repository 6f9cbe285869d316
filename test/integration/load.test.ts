import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/index.js';
import { useSluice } from '../support/sluice.js';

describe('a topic exchange bound to three queues under load', () => {
  it('handles each of 10,000 messages exactly once per queue and leaves every stream empty', async () => {
    const { sluice, redis, namespace } = await useSluice();
    const queues = ['billing', 'shipping', 'audit'];
    await sluice.declareExchange('orders', 'topic');
    for (const queue of queues) {
      await sluice.declareQueue(queue);
      await sluice.bindQueue(queue, 'orders', queue === 'audit' ? '#' : 'order.*');
    }
    const total = 10_000;
    const counts = new Map(queues.map((queue) => [queue, new Map<number, number>()]));
    const consumers = await Promise.all(
      queues.map((queue) =>
        sluice.consume<{ n: number }>(
          queue,
          async (msg) => {
            const seen = counts.get(queue) as Map<number, number>;
            seen.set(msg.body.n, (seen.get(msg.body.n) ?? 0) + 1);
            await Promise.resolve();
          },
          { prefetch: 200, concurrency: 50 },
        ),
      ),
    );
    const window = 256;
    for (let start = 0; start < total; start += window) {
      await Promise.all(
        Array.from({ length: Math.min(window, total - start) }, (_, i) =>
          sluice.publish('orders', 'order.created', { n: start + i }),
        ),
      );
    }
    await waitFor(() => consumers.every((c) => c.stats.acked === total), { timeoutMs: 60_000 });
    await Promise.all(consumers.map((c) => c.close()));
    for (const queue of queues) {
      const seen = counts.get(queue) as Map<number, number>;
      expect(seen.size).toBe(total);
      expect([...seen.values()].every((count) => count === 1)).toBe(true);
      const stream = `${namespace}:{${namespace}:q:${queue}:0}:stream`;
      expect(await redis.xlen(stream)).toBe(0);
      const [pending] = (await redis.xpending(stream, 'sluice')) as [number];
      expect(pending).toBe(0);
    }
  });
});
