import { describe, expect, it } from 'vitest';
import { QueueFullError, SluiceError } from '../../src/index.js';
import { queueMessageIds } from '../support/faults.js';
import { useSluice } from '../support/sluice.js';

describe('queue maxLength with overflow reject-publish', () => {
  it('rejects with QueueFullError and writes to no target of that message', async () => {
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
    for (const queue of ['bounded', 'unbounded']) {
      expect(await queueMessageIds(redis, namespace, queue)).toEqual(['m1', 'm2']);
    }
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
