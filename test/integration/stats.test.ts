import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  NotFoundError,
  QueueFullError,
  type Delivery,
  type MessageStream,
  type QueueStats,
} from '../../src/index.js';
import { waitFor } from '../support/index.js';
import { statsWhen, streamKey, useSluice } from '../support/sluice.js';

const NO_DEATHS = { rejected: 0, expired: 0, maxlen: 0, delivery_limit: 0, poison: 0 };

/**
 * The next `count` deliveries of a stream, left unsettled; the stream stays open (leaving a
 * `for await` loop would close it).
 */
async function take(stream: MessageStream, count: number): Promise<Delivery[]> {
  const iterator = stream[Symbol.asyncIterator]();
  const taken: Delivery[] = [];
  while (taken.length < count) {
    const next = await iterator.next();
    if (next.done === true) break;
    taken.push(next.value);
  }
  return taken;
}

describe('sluice.stats', () => {
  it('counts ready, unacked and delayed messages, and live consumers', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    for (let i = 0; i < 4; i++) await sluice.publish('', 'jobs', { i });
    expect(await sluice.stats('jobs')).toMatchObject({
      name: 'jobs',
      messages: 4,
      unacked: 0,
      delayed: 0,
      deadLetterBacklog: 0,
      consumers: 0,
    });
    // prefetch 2: the stream reads no more than the two it holds.
    const stream = sluice.messages('jobs', { prefetch: 2 });
    const [first, second] = await take(stream, 2);
    await statsWhen(
      sluice,
      'jobs',
      (s) => s.messages === 2 && s.unacked === 2 && s.consumers === 1,
      'two held, one consumer',
    );
    await first?.nack({ delayMs: 600_000 });
    await second?.ack();
    // The stream reads the other two meanwhile: its credit came back.
    const stats = await statsWhen(
      sluice,
      'jobs',
      (s) => s.delayed === 1 && s.messages + s.unacked === 2,
      'one delayed, one acked',
    );
    expect(stats).toMatchObject({ delayed: 1, totals: { published: 4, acked: 1 } });
    await stream.close();
    await statsWhen(sluice, 'jobs', (s) => s.consumers === 0, 'the consumer gone');
  });

  it('counts dead letters that wait to be routed to their dead-letter exchange', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('dead');
    await sluice.bindQueue('dead', 'dlx');
    await sluice.declareQueue('work', { deadLetterExchange: 'dlx' });
    // The dead-letter queue's stream replaced by a string: the copy fails, the letter waits.
    await redis.del(streamKey(namespace, 'dead'));
    await redis.set(streamKey(namespace, 'dead'), 'not a stream');
    await sluice.publish('', 'work', 'doomed');
    const stream = sluice.messages('work');
    const [doomed] = await take(stream, 1);
    await doomed?.reject();
    await stream.close();
    // Counted where it died, before it is routed (and not as dropped: it waits for its route).
    expect(await sluice.stats('work')).toMatchObject({
      messages: 0,
      deadLetterBacklog: 1,
      totals: { deadLettered: { ...NO_DEATHS, rejected: 1 }, dropped: 0 },
    });
  });

  it('counts dead letters by reason where they die, and drops those with nowhere to go', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('dlq');
    await sluice.bindQueue('dlq', 'dlx');
    await sluice.declareQueue('ttl', { messageTtlMs: 50, deadLetterExchange: 'dlx' });
    await sluice.declareQueue('head', { maxLength: 1, overflow: 'drop-head' });
    await sluice.declareQueue('full', {
      maxLength: 1,
      overflow: 'reject-publish-dlx',
      deadLetterExchange: 'dlx',
    });
    await sluice.declareQueue('plain');
    // Expired with no consumer: the publishing client expires it.
    await sluice.publish('', 'ttl', 'stale');
    for (const body of ['a', 'b', 'c']) await sluice.publish('', 'head', body);
    await sluice.publish('', 'full', 'fits');
    await expect(sluice.publish('', 'full', 'refused')).rejects.toBeInstanceOf(QueueFullError);
    // A foreign entry, then a message the consumer rejects; plain has no dead-letter exchange.
    await redis.xadd(streamKey(namespace, 'plain'), '*', 'not', 'sluice');
    await sluice.publish('', 'plain', 'reject me');
    const consumer = await sluice.consume('plain', (msg) => msg.reject());
    const plain = await statsWhen(
      sluice,
      'plain',
      (s) => s.totals.dropped === 2,
      'the poison entry and the rejected message dropped',
    );
    await consumer.close();
    expect(plain.totals).toMatchObject({
      deadLettered: { ...NO_DEATHS, poison: 1, rejected: 1 },
      dropped: 2,
      redelivered: 0,
    });
    const ttl = await statsWhen(
      sluice,
      'ttl',
      (s) => s.totals.deadLettered.expired === 1,
      'expired',
    );
    expect(ttl.totals).toMatchObject({ deadLettered: { ...NO_DEATHS, expired: 1 }, dropped: 0 });
    // drop-head: the two oldest made room, and went nowhere (no dead-letter exchange).
    const head = await statsWhen(sluice, 'head', (s) => s.totals.dropped === 2, 'dropped');
    expect(head).toMatchObject({
      messages: 1,
      totals: { published: 3, deadLettered: { ...NO_DEATHS, maxlen: 2 }, dropped: 2 },
    });
    expect((await sluice.stats('full')).totals).toMatchObject({
      deadLettered: { ...NO_DEATHS, maxlen: 1 },
      dropped: 0,
    });
    await waitFor(async () => (await sluice.stats('dlq')).messages === 2, {
      description: 'the expired and the refused message in the dead-letter queue',
    });
  });

  it('lists the live consumers: the partitions each reads, its unacked and its lease', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q', { partitions: 2 });
    for (let i = 0; i < 3; i++) await sluice.publish('', 'q', i, { partitionKey: `k${i}` });
    const holder = sluice.messages('q', { prefetch: 3 });
    await take(holder, 3);
    // The holder is at its prefetch: the next message goes to the other consumer.
    const idle = await sluice.consume('q', () => undefined);
    await sluice.publish('', 'q', 3);
    await statsWhen(sluice, 'q', (s) => s.totals.acked === 1, 'the fourth message handled');
    const info = await sluice.inspectQueue('q');
    const byName = [holder.name, idle.name].sort();
    expect(info.consumers).toBe(2);
    expect(info.consumerDetails.map((c) => c.name)).toEqual(byName);
    const details = new Map(info.consumerDetails.map((c) => [c.name, c]));
    expect(details.get(holder.name)).toMatchObject({
      ordered: false,
      partitions: [0, 1],
      unacked: 3,
    });
    expect(details.get(idle.name)).toMatchObject({
      ordered: false,
      partitions: [0, 1],
      unacked: 0,
    });
    for (const consumer of info.consumerDetails) {
      // Registration leases run 15 s and are renewed well before they end.
      expect(consumer.leaseRemainingMs).toBeGreaterThan(0);
      expect(consumer.leaseRemainingMs).toBeLessThanOrEqual(15_000);
    }
    await holder.close();
    const left = await sluice.inspectQueue('q');
    expect(left.consumerDetails.map((c) => c.name)).toEqual([idle.name]);
    await idle.close();
    expect((await sluice.inspectQueue('q')).consumerDetails).toEqual([]);
  });

  it('lists an ordered consumer with the partitions it owns', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('o', { partitions: 2, singleActiveConsumer: true });
    const consumer = await sluice.consume('o', () => undefined);
    const info = await waitFor(
      async () => {
        const read = await sluice.inspectQueue('o');
        return read.consumerDetails[0]?.partitions.length === 2 ? read : undefined;
      },
      { description: 'both partitions owned', timeoutMs: 15_000 },
    );
    expect(info.consumerDetails).toHaveLength(1);
    expect(info.consumerDetails[0]).toMatchObject({
      name: consumer.name,
      ordered: true,
      partitions: [0, 1],
      unacked: 0,
    });
    expect(info.partitions.map((p) => p.owner?.consumer)).toEqual([consumer.name, consumer.name]);
    await consumer.close();
  });

  it("reports the oldest message's age: 0 when empty, growing while it waits", async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q', { partitions: 3 });
    expect((await sluice.stats('q')).oldestMessageAgeMs).toBe(0);
    await sluice.publish('', 'q', 'old', { partitionKey: 'a' });
    const aged = await statsWhen(sluice, 'q', (s) => s.oldestMessageAgeMs >= 200, 'aged');
    expect(aged.partitions).toHaveLength(3);
    await sluice.publish('', 'q', 'new', { partitionKey: 'b' });
    // The oldest of every partition counts, not the newest.
    expect((await sluice.stats('q')).oldestMessageAgeMs).toBeGreaterThanOrEqual(200);
    const consumer = await sluice.consume('q', () => undefined);
    await statsWhen(sluice, 'q', (s) => s.messages === 0 && s.unacked === 0, 'consumed');
    expect((await sluice.stats('q')).oldestMessageAgeMs).toBe(0);
    await consumer.close();
  });

  it('totals publishes, deliveries and acks; a requeue or delayed retry is not a publish', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    for (let i = 0; i < 4; i++) await sluice.publish('', 'q', i);
    const failed = new Set<number>();
    const consumer = await sluice.consume<number>(
      'q',
      async (msg) => {
        if (msg.body === 0 && !failed.has(0)) {
          failed.add(0);
          throw new Error('once');
        }
        if (msg.body === 1 && !failed.has(1)) {
          failed.add(1);
          await msg.nack({ delayMs: 50 });
        }
      },
      { retry: false },
    );
    const stats = await statsWhen(sluice, 'q', (s) => s.totals.acked === 4, 'every message acked');
    // Each of the two came back once: six deliveries of four publishes.
    expect(stats.totals).toEqual({
      published: 4,
      delivered: 6,
      acked: 4,
      // The thrown and the nacked delivery, each given another.
      redelivered: 2,
      deadLettered: NO_DEATHS,
      dropped: 0,
    });
    await consumer.close();
  });

  it('counts the duplicates an idempotent consumer acks without its handler', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.publish('', 'q', 'one', { dedupKey: 'order-1', dedupWindowMs: 0 });
    await sluice.publish('', 'q', 'again', { dedupKey: 'order-1', dedupWindowMs: 0 });
    let handled = 0;
    const consumer = await sluice.consume('q', () => void handled++, {
      idempotency: { ttlMs: 60_000 },
    });
    const stats = await statsWhen(sluice, 'q', (s) => s.totals.acked === 2, 'both acked');
    expect(handled).toBe(1);
    expect(stats.totals).toEqual({
      published: 2,
      delivered: 2,
      acked: 2,
      redelivered: 0,
      deadLettered: NO_DEATHS,
      dropped: 0,
    });
    await consumer.close();
  });

  it("gives rates since the client's previous reading of the queue", async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    const first = await sluice.stats('q');
    expect(first.rates).toBeUndefined();
    await sluice.publishBatch(
      Array.from({ length: 20 }, (_, i) => ({
        exchange: '',
        routingKey: 'q',
        body: i,
      })),
    );
    // The server's clock moves on in milliseconds: read again once it has.
    const second = await waitFor(async () => {
      const stats = await sluice.stats('q');
      return stats.sampledAtMs > first.sampledAtMs ? stats : undefined;
    });
    expect(second.rates).toBeDefined();
    const rates = second.rates as NonNullable<QueueStats['rates']>;
    expect(rates.intervalMs).toBe(second.sampledAtMs - first.sampledAtMs);
    expect(rates.publishedPerSecond).toBeCloseTo((20 * 1000) / rates.intervalMs, 6);
    expect(rates.deliveredPerSecond).toBe(0);
    expect(rates.ackedPerSecond).toBe(0);
  });

  it('reads every declared queue, sorted by name, without a name', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('b');
    await sluice.declareQueue('a', { partitions: 2 });
    await sluice.publish('', 'b', 'x');
    const all = await sluice.stats();
    expect(all.map((s) => [s.name, s.messages, s.partitions.length])).toEqual([
      ['a', 0, 2],
      ['b', 1, 1],
    ]);
  });

  it('refuses a queue that is not declared, or a name that is not one', async () => {
    const { sluice } = await useSluice();
    await expect(sluice.stats('ghost')).rejects.toBeInstanceOf(NotFoundError);
    await expect(sluice.stats(42 as unknown as string)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(sluice.stats('a:b')).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('sluice.listTopology', () => {
  it('lists exchanges, queues and bindings at one version, sorted', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('orders', 'topic', { alternateExchange: 'lost' });
    await sluice.declareExchange('by-header', 'headers', { internal: true });
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('work', { deadLetterExchange: 'dlx', partitions: 2 });
    await sluice.declareQueue('audit');
    await sluice.bindQueue('work', 'orders', 'order.*');
    await sluice.bindQueue('audit', 'by-header', { 'x-match': 'any', kind: 'audit' });
    await sluice.bindExchange('by-header', 'orders', '#');
    const listing = await sluice.listTopology();
    expect(listing.version).toBeGreaterThan(0);
    expect(listing.exchanges).toEqual([
      { name: '', type: 'direct', durable: true, internal: false },
      { name: 'amq.direct', type: 'direct', durable: true, internal: false },
      { name: 'amq.fanout', type: 'fanout', durable: true, internal: false },
      { name: 'amq.headers', type: 'headers', durable: true, internal: false },
      { name: 'amq.topic', type: 'topic', durable: true, internal: false },
      { name: 'by-header', type: 'headers', durable: true, internal: true },
      { name: 'dlx', type: 'fanout', durable: true, internal: false },
      {
        name: 'orders',
        type: 'topic',
        durable: true,
        internal: false,
        alternateExchange: 'lost',
      },
    ]);
    expect(listing.queues).toEqual([
      { name: 'audit', durable: true },
      { name: 'work', durable: true, deadLetterExchange: 'dlx', partitions: 2 },
    ]);
    expect(listing.bindings).toEqual([
      {
        source: 'by-header',
        destinationType: 'queue',
        destination: 'audit',
        bindingKey: '',
        arguments: { 'x-match': 'any', kind: 'audit' },
      },
      {
        source: 'orders',
        destinationType: 'exchange',
        destination: 'by-header',
        bindingKey: '#',
        arguments: {},
      },
      {
        source: 'orders',
        destinationType: 'queue',
        destination: 'work',
        bindingKey: 'order.*',
        arguments: {},
      },
    ]);
    await sluice.unbindQueue('work', 'orders', 'order.*');
    const after = await sluice.listTopology();
    expect(after.version).toBeGreaterThan(listing.version);
    expect(after.bindings).toHaveLength(2);
  });
});
