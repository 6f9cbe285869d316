/**
 * An idempotent consumer in its own process, for crash and pause tests. Each handled job adds
 * one to the hash `<tag>:effects` at its key, through `ctx.tx` (so the write commits with the
 * done marker and the ack), and counts handler runs in `<namespace>:runs`. With `hold`, the
 * handler first records `<namespace>:started` and waits until `<namespace>:go` exists; a commit
 * refused as stale (the process was deposed) is recorded in `<namespace>:stale`.
 * Usage: idempotent-process.ts <url> <namespace> <queue> <leaseMs> [hold]
 */
import { Redis } from 'ioredis';
import { Sluice } from '../../src/index.js';

const [url, namespace, queue, leaseMs, hold] = process.argv.slice(2);
if (url === undefined || namespace === undefined || queue === undefined || leaseMs === undefined) {
  throw new Error('usage: idempotent-process.ts <url> <namespace> <queue> <leaseMs> [hold]');
}
const redis = new Redis(url);
const sluice = await Sluice.connect({ url, namespace });
const consumer = await sluice.consume<{ job: number }>(
  queue,
  async (msg, { tx }) => {
    await redis.incr(`${namespace}:runs`);
    if (hold === 'hold') {
      await redis.set(`${namespace}:started`, String(process.pid));
      while ((await redis.exists(`${namespace}:go`)) === 0) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    tx.hincrby(`${tx.hashTag}:effects`, msg.dedupKey, 1);
  },
  {
    prefetch: 200,
    concurrency: 50,
    retry: { initialDelayMs: 50 },
    idempotency: { leaseMs: Number(leaseMs) },
  },
);
// A deposed commit is counted as stale: say so, for the test that pauses this process.
consumer.on('delivery.handled', () => {
  if (consumer.stats.stale > 0) void redis.set(`${namespace}:stale`, String(consumer.stats.stale));
});
process.stdout.write('ready\n');
