/**
 * A client in its own process, for tests that read what it prints during an outage: it declares
 * queue `q` of `namespace`, consumes it (so that it has a reader connection as well) and prints
 * `ready`. At a line on stdin it calls declareQueue, inspectQueue and dlq.list, prints the
 * `code` each one rejected with (or `resolved`) as one JSON array, and exits.
 * Usage: outage-process.ts <url> <namespace> <operationTimeoutMs>
 */
import { createInterface } from 'node:readline';
import { Sluice, SluiceError } from '../../src/index.js';

const [url, namespace, timeout] = process.argv.slice(2);
if (url === undefined || namespace === undefined || timeout === undefined) {
  throw new Error('usage: outage-process.ts <url> <namespace> <operationTimeoutMs>');
}
const sluice = await Sluice.connect({ url, namespace, operationTimeoutMs: Number(timeout) });
await sluice.declareQueue('q');
await sluice.consume('q', () => undefined);
process.stdout.write('ready\n');

const lines = createInterface({ input: process.stdin });
await new Promise((resolve) => lines.once('line', resolve));
const outcomes = await Promise.allSettled([
  sluice.declareQueue('q2'),
  sluice.inspectQueue('q'),
  sluice.dlq.list('q'),
]);
const codes = outcomes.map((outcome) => {
  if (outcome.status === 'fulfilled') return 'resolved';
  const reason: unknown = outcome.reason;
  return reason instanceof SluiceError ? reason.code : `untyped: ${String(reason)}`;
});
process.stdout.write(`${JSON.stringify(codes)}\n`);
// Not sluice.close(): how a consumer shuts down without Redis is not what this process shows.
process.exit(0);
