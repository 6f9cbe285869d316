/**
 * A consumer in its own process, for crash tests: it handles `queue` of `namespace`,
 * records each handled message id in the set `<namespace>:handled` (and counts handler
 * runs in `<namespace>:runs`), then acks. Usage: consumer-process.ts <url> <namespace> <queue>
 */
import { Redis } from 'ioredis';
import { Sluice } from '../../src/index.js';

const [url, namespace, queue] = process.argv.slice(2);
if (url === undefined || namespace === undefined || queue === undefined) {
  throw new Error('usage: consumer-process.ts <url> <namespace> <queue>');
}
const redis = new Redis(url);
const sluice = await Sluice.connect({ url, namespace });
await sluice.consume(
  queue,
  async (msg) => {
    // Two commands, not one MULTI: the keys lie in two slots (a cluster-mode server refuses).
    await redis.sadd(`${namespace}:handled`, msg.messageId);
    await redis.incr(`${namespace}:runs`);
  },
  { prefetch: 200, concurrency: 20 },
);
process.stdout.write('ready\n');
