/**
 * The queue keeper: one per client, doing each queue's chores (delayed retries, dead-letter
 * routing) once however many consumers the queue has in the process, and reporting a routing
 * failure as an event instead of an unhandled rejection; and dead-lettering the messages this
 * client published as they expire at their queue's head, with no consumer.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { ServerError, Sluice, type Delivery, type SluiceError } from '../../src/index.js';
import { commandCalls } from '../support/faults.js';
import { connectRedis, startExtraRedis, testNamespace, waitFor } from '../support/index.js';
import { streamKey, useSluice } from '../support/sluice.js';

/** How long the chores are watched; a round runs every 250 ms. */
const WATCH_MS = 1000;

describe('the queue keeper', () => {
  it('routes the outbox of a queue once per round, however many consumers it has here', async () => {
    // A server of its own: command counts of other tests would blur the figure.
    const server = await startExtraRedis();
    const redis = connectRedis({}, server.url);
    const sluice = await Sluice.connect({ url: server.url, namespace: testNamespace() });
    onTestFinished(() => sluice.close());
    await sluice.declareQueue('jobs');
    const consumers = await Promise.all(
      [1, 2, 3, 4].map(() => sluice.consume('jobs', () => undefined)),
    );
    // Each round of the keeper reads the outbox once (XRANGE); nothing else does here.
    const before = await commandCalls(redis, 'xrange');
    const until = Date.now() + WATCH_MS;
    await waitFor(() => Date.now() >= until);
    const rounds = (await commandCalls(redis, 'xrange')) - before;
    // One keeper: about WATCH_MS / 250 rounds; one per consumer would be four times that.
    expect(rounds).toBeGreaterThan(0);
    expect(rounds).toBeLessThanOrEqual(WATCH_MS / 250 + 2);
    await Promise.all(consumers.map((consumer) => consumer.close()));
  });

  it('keeps promoting delayed retries while one of several consumers of the queue remains', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    const retryOnce = async (msg: Delivery): Promise<void> => {
      if (!msg.redelivered) await msg.nack({ delayMs: 50 });
    };
    const first = await sluice.consume('jobs', retryOnce);
    const second = await sluice.consume('jobs', retryOnce);
    await first.close();
    await sluice.publish('', 'jobs', 'later');
    await waitFor(() => second.stats.delayed === 1 && second.stats.acked === 1);
    await second.close();
  });

  it('reports a routing failure of the dead-letter relay as a readError, never unhandled', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('dead');
    await sluice.bindQueue('dead', 'dlx');
    await sluice.declareQueue('jobs', { deadLetterExchange: 'dlx' });
    // The dead-letter queue's stream replaced by a string: every copy into it fails.
    const deadStream = streamKey(namespace, 'dead');
    await redis.del(deadStream);
    await redis.set(deadStream, 'not a stream');
    await sluice.publish('', 'jobs', 'doomed');
    const errors: SluiceError[] = [];
    const consumer = await sluice.consume('jobs', (msg) => msg.reject());
    consumer.on('readError', (error) => errors.push(error));
    await waitFor(() => consumer.stats.rejected === 1);
    await waitFor(() => errors.some((error) => error instanceof ServerError));
    // The rejected message waits in the outbox for the next attempt; nothing is lost.
    expect(await sluice.inspectQueue('jobs')).toMatchObject({ deadLetterBacklog: 1 });
    await redis.del(deadStream);
    await sluice.declareQueue('dead');
    await waitFor(async () => (await sluice.inspectQueue('dead')).messages === 1);
    await consumer.close();
  });
});

describe('expiry without a consumer', () => {
  /** Resolves once the dead-letter queue `dead` holds `count` messages. */
  const deadLetters = async (sluice: Sluice, dead: string, count: number): Promise<void> => {
    await waitFor(async () => (await sluice.inspectQueue(dead)).messages === count);
  };

  it('dead-letters an expired head, and leaves what waits behind an unexpired one', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('dead');
    await sluice.bindQueue('dead', 'dlx');
    await sluice.declareQueue('jobs', { deadLetterExchange: 'dlx' });
    await sluice.declareQueue('probe', { deadLetterExchange: 'dlx' });
    await sluice.publish('', 'jobs', 'first', { expirationMs: 50 });
    await sluice.publish('', 'jobs', 'long', { expirationMs: 600_000 });
    await sluice.publish('', 'jobs', 'behind', { expirationMs: 50 });
    await deadLetters(sluice, 'dead', 1);
    // A later expiry in another queue proves the sweeps of 'jobs' are past 'behind''s due time:
    // it stays, behind the head that has not expired (RabbitMQ expires at the head only).
    await sluice.publish('', 'probe', 'probe', { expirationMs: 100 });
    await deadLetters(sluice, 'dead', 2);
    expect(await sluice.inspectQueue('jobs')).toMatchObject({ messages: 2 });
  });

  it('never expires a delivery a consumer holds; it can still be acked', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('dead');
    await sluice.bindQueue('dead', 'dlx');
    await sluice.declareQueue('jobs', { deadLetterExchange: 'dlx', messageTtlMs: 100 });
    await sluice.publish('', 'jobs', 'held');
    const stream = sluice.messages('jobs', { prefetch: 1 });
    const iterator = stream[Symbol.asyncIterator]();
    const held = await iterator.next();
    if (held.done === true) throw new Error('no delivery');
    // The next message expires while the first is held: only it is dead-lettered.
    await sluice.publish('', 'jobs', 'waiting');
    await deadLetters(sluice, 'dead', 1);
    await held.value.ack();
    expect(await sluice.inspectQueue('jobs')).toMatchObject({ messages: 0, unacked: 0 });
    await stream.close();
  });

  it('expires what dead-lettering moved into a TTL queue: the delayed-retry idiom', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('to-wait', 'fanout');
    await sluice.declareExchange('to-work', 'fanout');
    await sluice.declareQueue('work', { deadLetterExchange: 'to-wait' });
    await sluice.bindQueue('work', 'to-work');
    await sluice.declareQueue('wait', { messageTtlMs: 100, deadLetterExchange: 'to-work' });
    await sluice.bindQueue('wait', 'to-wait');
    await sluice.publish('', 'work', 'job');
    const reasons: string[][] = [];
    const consumer = await sluice.consume('work', async (msg) => {
      reasons.push((msg.deathHistory?.deaths ?? []).map((death) => death.reason));
      if (reasons.length === 1) await msg.reject();
    });
    // Rejected into 'wait', which nobody consumes; back in 'work' once its TTL passed.
    await waitFor(() => consumer.stats.acked === 1);
    expect(reasons).toEqual([[], ['expired', 'rejected']]);
    await consumer.close();
  });

  it('looks at a queue whose TTL is past a timer range only when it is due', async () => {
    const server = await startExtraRedis();
    const redis = connectRedis({}, server.url);
    const sluice = await Sluice.connect({ url: server.url, namespace: testNamespace() });
    onTestFinished(() => sluice.close());
    await sluice.declareQueue('archive', { messageTtlMs: 30 * 86_400_000 });
    const before = await commandCalls(redis, 'evalsha');
    await sluice.publish('', 'archive', 'kept for 30 days');
    const until = Date.now() + WATCH_MS;
    await waitFor(() => Date.now() >= until);
    // The publish itself; no sweep (a timer past 2^31 ms would fire at once, again and again).
    expect((await commandCalls(redis, 'evalsha')) - before).toBeLessThanOrEqual(1);
  });

  it('reports a failed sweep as an expiry.failed event, never unhandled', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs', { messageTtlMs: 50 });
    await sluice.publish('', 'jobs', 'doomed');
    // The queue's stream replaced by a string: every sweep of it fails.
    const stream = streamKey(namespace, 'jobs');
    await redis.del(stream);
    await redis.set(stream, 'not a stream');
    const errors: SluiceError[] = [];
    sluice.on('expiry.failed', ({ queue, error }) => {
      if (queue === 'jobs') errors.push(error);
    });
    await waitFor(() => errors.length >= 1, { timeoutMs: 5000 });
    expect(errors[0]).toBeInstanceOf(ServerError);
    await redis.del(stream);
  });
});
