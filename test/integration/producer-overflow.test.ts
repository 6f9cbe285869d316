import { describe, expect, it } from 'vitest';
import { QueueFullError, SluiceError } from '../../src/index.js';
import { queueMessageIds } from '../support/faults.js';
import { waitFor } from '../support/index.js';
import { useSluice } from '../support/sluice.js';

describe('queue maxLength with overflow reject-publish', () => {
  it('rejects with QueueFullError; stored in no target (standalone) or the others (cluster)', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareExchange('events', 'fanout');
    await sluice.declareQueue('bounded', { maxLength: 2, overflow: 'reject-publish' });
    await sluice.declareQueue('unbounded');
    for (const queue of ['bounded', 'unbounded']) await sluice.bindQueue(queue, 'events');
    await sluice.publish('events', '', 1, { messageId: 'm1' });
    await sluice.publish('events', '', 2, { messageId: 'm2' });
    const error: unknown = await sluice
      .publish('events', '', 3, { messageId: 'm3' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueFullError);
    expect(error).toMatchObject({ code: 'QUEUE_FULL', queue: 'bounded', maxLength: 2 });
    expect((error as SluiceError).retriable).toBe(false);
    expect(await queueMessageIds(redis, namespace, 'bounded')).toEqual(['m1', 'm2']);
    // On a cluster-mode server each target is its own call, as RabbitMQ stores the message in
    // the queues that have room and nacks the publish (docs/producer.md).
    expect(await queueMessageIds(redis, namespace, 'unbounded')).toEqual(
      sluice.server.cluster ? ['m1', 'm2', 'm3'] : ['m1', 'm2'],
    );
  });

  it('is the policy of a queue that sets maxLength without overflow', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q', { maxLength: 1 });
    await sluice.publish('', 'q', 1);
    await expect(sluice.publish('', 'q', 2)).rejects.toBeInstanceOf(QueueFullError);
  });

  it('admits exactly maxLength of many publishes in the same tick', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q', { maxLength: 3 });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => sluice.publish('', 'q', i, { messageId: `m${i}` })),
    );
    expect(outcomes.map((o) => o.status)).toEqual([
      ...Array<string>(3).fill('fulfilled'),
      ...Array<string>(7).fill('rejected'),
    ]);
    expect(await queueMessageIds(redis, namespace, 'q')).toEqual(['m0', 'm1', 'm2']);
  });

  it('counts ready messages only: a delivered, unacked message makes room (as RabbitMQ)', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q', { maxLength: 2 });
    await sluice.publish('', 'q', 1);
    await sluice.publish('', 'q', 2);
    await expect(sluice.publish('', 'q', 3)).rejects.toBeInstanceOf(QueueFullError);
    const stream = sluice.messages('q', { prefetch: 1 });
    for await (const delivery of stream) {
      expect(delivery.body).toBe(1);
      // Held unacked: one ready message left, so one publish fits, the next does not.
      await sluice.publish('', 'q', 3);
      await expect(sluice.publish('', 'q', 4)).rejects.toBeInstanceOf(QueueFullError);
      await delivery.ack();
      break;
    }
    await expect(sluice.publish('', 'q', 4)).rejects.toBeInstanceOf(QueueFullError);
  });

  it('answers a duplicate of a stored message even when the queue is full', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q', { maxLength: 1 });
    const first = await sluice.publish('', 'q', 1, { messageId: 'only' });
    expect(await sluice.publish('', 'q', 1, { messageId: 'only' })).toEqual({
      ...first,
      duplicate: true,
    });
  });
});

describe('queue maxLength with overflow drop-head', () => {
  it('dead-letters the oldest ready messages with reason maxlen to make room', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('dead');
    await sluice.bindQueue('dead', 'dlx');
    await sluice.declareQueue('q', {
      maxLength: 2,
      overflow: 'drop-head',
      deadLetterExchange: 'dlx',
    });
    for (let i = 1; i <= 5; i++) await sluice.publish('', 'q', i, { messageId: `m${i}` });
    expect(await queueMessageIds(redis, namespace, 'q')).toEqual(['m4', 'm5']);
    await waitFor(async () => (await queueMessageIds(redis, namespace, 'dead')).length === 3);
    expect(await queueMessageIds(redis, namespace, 'dead')).toEqual(['m1', 'm2', 'm3']);
    const page = await sluice.dlq.list('dead');
    expect(page.messages[0]).toMatchObject({
      messageId: 'm1',
      body: 1,
      deathHistory: {
        deaths: [{ queue: 'q', reason: 'maxlen', count: 1, exchange: '', routingKeys: ['q'] }],
      },
    });
  });

  it('never drops a delivered, unacked message', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q', { maxLength: 1, overflow: 'drop-head' });
    await sluice.publish('', 'q', 'held', { messageId: 'held' });
    const stream = sluice.messages('q', { prefetch: 1 });
    for await (const msg of stream) {
      await sluice.publish('', 'q', 'a', { messageId: 'a' });
      await sluice.publish('', 'q', 'b', { messageId: 'b' });
      // `held` is unacked: it does not count, and it is not dropped; `a` made room for `b`.
      expect(await queueMessageIds(redis, namespace, 'q')).toEqual(['held', 'b']);
      await msg.ack();
      break;
    }
  });

  it('keeps the newest messages of one call', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q', { maxLength: 2, overflow: 'drop-head' });
    await sluice.publishBatch(
      ['a', 'b', 'c', 'd'].map((id) => ({
        exchange: '',
        routingKey: 'q',
        body: id,
        options: { messageId: id },
      })),
    );
    expect(await queueMessageIds(redis, namespace, 'q')).toEqual(['c', 'd']);
  });

  it('of max length 0 dead-letters every copy at once, whole, next to a queue that keeps it', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('dead');
    await sluice.bindQueue('dead', 'dlx');
    await sluice.declareExchange('events', 'fanout');
    await sluice.declareQueue('keeps');
    await sluice.declareQueue('empty', {
      maxLength: 0,
      overflow: 'drop-head',
      deadLetterExchange: 'dlx',
    });
    for (const queue of ['keeps', 'empty']) await sluice.bindQueue(queue, 'events');
    await sluice.publish('events', 'k', { n: 1 }, { messageId: 'm1', headers: { h: 'v' } });
    expect(await queueMessageIds(redis, namespace, 'keeps')).toEqual(['m1']);
    expect(await queueMessageIds(redis, namespace, 'empty')).toEqual([]);
    await waitFor(async () => (await queueMessageIds(redis, namespace, 'dead')).length === 1);
    // The dead letter carries the entry's fields as written to the other queue: body, headers.
    expect((await sluice.dlq.list('dead')).messages[0]).toMatchObject({
      messageId: 'm1',
      body: { n: 1 },
      headers: { h: 'v' },
      deathHistory: { deaths: [{ queue: 'empty', reason: 'maxlen', count: 1 }] },
    });
  });
});

describe('queue maxLength with overflow reject-publish-dlx', () => {
  it('rejects the publish and dead-letters the refused message with reason maxlen', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('dead');
    await sluice.bindQueue('dead', 'dlx');
    await sluice.declareQueue('q', {
      maxLength: 1,
      overflow: 'reject-publish-dlx',
      deadLetterExchange: 'dlx',
    });
    await sluice.publish('', 'q', 1, { messageId: 'kept' });
    await expect(sluice.publish('', 'q', 2, { messageId: 'refused' })).rejects.toBeInstanceOf(
      QueueFullError,
    );
    expect(await queueMessageIds(redis, namespace, 'q')).toEqual(['kept']);
    await waitFor(async () => (await queueMessageIds(redis, namespace, 'dead')).length === 1);
    const refused = await sluice.dlq.show('dead', 'refused');
    expect(refused).toMatchObject({
      body: 2,
      deathHistory: { last: { queue: 'q', reason: 'maxlen' } },
    });
  });
});
