/** Connects sluice clients for integration tests, each in its own namespace. */
import { onTestFinished } from 'vitest';
import { Sluice, type ConnectOptions, type QueueStats } from '../../src/index.js';
import { Keyspace } from '../../src/keys/index.js';
import { decodeEnvelope } from '../../src/message/envelope.js';
import { redisUrl, useNamespace, waitFor } from './index.js';

type ExtraOptions = Omit<ConnectOptions, 'url' | 'redis' | 'namespace'>;

/**
 * How much later than its due time a delayed retry may be delivered in a test: the queue keeper
 * promotes due retries every 250 ms, and the test machine may be busy.
 */
export const PROMOTION_SLACK_MS = 1000;

/** A sluice client on a fresh namespace, plus a raw client to inspect keys; both closed after the test. */
export async function useSluice(
  options: ExtraOptions = {},
): Promise<ReturnType<typeof useNamespace> & { sluice: Sluice }> {
  const scope = useNamespace();
  const sluice = await connectSluice(scope.namespace, options);
  return { ...scope, sluice };
}

/** Another client on an existing namespace (a second process, as far as sluice can tell). */
export async function connectSluice(
  namespace: string,
  options: ExtraOptions = {},
): Promise<Sluice> {
  const sluice = await Sluice.connect({ url: redisUrl(), namespace, ...options });
  onTestFinished(() => sluice.close());
  return sluice;
}

/** The stream of a queue, for tests that look at Redis directly. */
export function streamKey(namespace: string, queue: string): string {
  return new Keyspace(namespace).queue(queue).stream;
}

/** The message id of a stream entry as XRANGE returns it (fields as strings). */
export function entryMessageId(fields: readonly string[]): string {
  return decodeEnvelope(fields.map((field) => Buffer.from(field))).messageId;
}

/**
 * Topic `orders` routes `order.*` to `work`, which dead-letters through fanout `dlx` into
 * `work.dlq`: the dead-letter setup of the DLQ, CLI and dashboard tests.
 */
export async function declareWorkWithDeadLetters(sluice: Sluice): Promise<void> {
  await sluice.declareExchange('orders', 'topic');
  await sluice.declareExchange('dlx', 'fanout');
  await sluice.declareQueue('work.dlq');
  await sluice.bindQueue('work.dlq', 'dlx');
  await sluice.declareQueue('work', { deadLetterExchange: 'dlx' });
  await sluice.bindQueue('work', 'orders', 'order.*');
}

/** Polls `stats(queue)` until `done` holds for it (15 s at most); resolves with that reading. */
export function statsWhen(
  sluice: Sluice,
  queue: string,
  done: (stats: QueueStats) => boolean,
  description: string,
): Promise<QueueStats> {
  return waitFor(
    async () => {
      const stats = await sluice.stats(queue);
      return done(stats) ? stats : undefined;
    },
    { description, timeoutMs: 15_000 },
  );
}
