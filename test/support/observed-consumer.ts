/**
 * A consumer in its own process that reports what happens to it on stdout, one JSON line each,
 * for fault tests: `{"event":"ready"}` once it consumes, `{"event":"handled","body":...}` per
 * message, `{"event":"<consumer event>","code":...}` for `connection.lost`,
 * `connection.restored` and `readError`, and `{"event":"closed","ms":<how long close took>}`
 * after a line `close` on stdin, before it exits. Whatever ioredis prints goes to stderr.
 * Usage: observed-consumer.ts <url> <namespace> <queue>
 */
import { createInterface } from 'node:readline';
import { Sluice, type SluiceError } from '../../src/index.js';

const [url, namespace, queue] = process.argv.slice(2);
if (url === undefined || namespace === undefined || queue === undefined) {
  throw new Error('usage: observed-consumer.ts <url> <namespace> <queue>');
}

function report(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, at: Date.now(), ...fields })}\n`);
}

const sluice = await Sluice.connect({ url, namespace });
const consumer = await sluice.consume(queue, (msg) => report('handled', { body: msg.body }));
consumer
  .on('connection.lost', ({ error }) => report('connection.lost', { code: error.code }))
  .on('connection.restored', ({ downtimeMs }) => report('connection.restored', { downtimeMs }))
  .on('readError', (error: SluiceError) => report('readError', { code: error.code }));
report('ready');

for await (const line of createInterface({ input: process.stdin })) {
  if (line !== 'close') continue;
  const startedAt = Date.now();
  await sluice.close();
  report('closed', { ms: Date.now() - startedAt });
  break;
}
// The test's pipe would keep this process alive; sluice itself must leave nothing behind.
process.stdin.destroy();
