import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  NotFoundError,
  QueueFullError,
  UnsupportedError,
  type BatchMessage,
} from '../../src/index.js';
import { Keyspace } from '../../src/keys/index.js';
import { queueMessageIds } from '../support/faults.js';
import { useSluice } from '../support/sluice.js';

function toQueue(queue: string, messageId: string): BatchMessage {
  return { exchange: '', routingKey: queue, body: { messageId }, options: { messageId } };
}

describe('publishBatch input', () => {
  it('validates every element, the holes of a sparse array included, before sending', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    const good = toQueue('q', 'm1');
    // eslint-disable-next-line no-sparse-arrays
    const sparse = [, good] as unknown as BatchMessage[];
    for (const batch of [sparse, [null], [good, 42], [{ ...good, extra: 1 }]]) {
      await expect(sluice.publishBatch(batch as unknown as BatchMessage[])).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    }
    expect(await queueMessageIds(redis, namespace, 'q')).toEqual([]);
  });
});

describe('publishBatch with atomic: true', () => {
  it('stores the largest atomic batch, 10,000 messages, in every target', async () => {
    const { sluice, redis, namespace } = await useSluice();
    // One call: ~10 script arguments per message and target, ~180,000 here, more than a
    // function call spreading them could take. On a cluster-mode server one queue (one slot).
    const queues = sluice.server.cluster ? ['a'] : ['a', 'b', 'c', 'd'];
    await sluice.declareExchange('events', 'fanout');
    for (const queue of queues) {
      await sluice.declareQueue(queue);
      await sluice.bindQueue(queue, 'events');
    }
    const batch = Array.from({ length: 10_000 }, (_, i) => ({
      exchange: 'events',
      routingKey: '',
      body: { i },
    }));
    const confirms = await sluice.publishBatch(batch, { atomic: true });
    expect(confirms).toHaveLength(10_000);
    expect(confirms.every((c) => c.targets.length === queues.length && !c.duplicate)).toBe(true);
    for (const queue of queues) {
      expect(await redis.xlen(new Keyspace(namespace).queue(queue).stream)).toBe(10_000);
    }
  });

  it('stores every message in every target and confirms each (standalone server)', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareExchange('events', 'fanout');
    for (const queue of ['a', 'b']) {
      await sluice.declareQueue(queue);
      await sluice.bindQueue(queue, 'events');
    }
    const batch = [
      { exchange: 'events', routingKey: '', body: 1, options: { messageId: 'e1' } },
      toQueue('a', 'a1'),
      { exchange: 'events', routingKey: '', body: 2, options: { messageId: 'e2' } },
    ];
    if (sluice.server.cluster) {
      // One script call, so one slot: queues 'a' and 'b' are two (docs/producer.md).
      await expect(sluice.publishBatch(batch, { atomic: true })).rejects.toBeInstanceOf(
        UnsupportedError,
      );
      expect(await queueMessageIds(redis, namespace, 'a')).toEqual([]);
      expect(await queueMessageIds(redis, namespace, 'b')).toEqual([]);
      return;
    }
    const confirms = await sluice.publishBatch(batch, { atomic: true });
    expect(confirms.map((c) => [c.messageId, c.targets.length, c.duplicate])).toEqual([
      ['e1', 2, false],
      ['a1', 1, false],
      ['e2', 2, false],
    ]);
    expect(await queueMessageIds(redis, namespace, 'a')).toEqual(['e1', 'a1', 'e2']);
    expect(await queueMessageIds(redis, namespace, 'b')).toEqual(['e1', 'e2']);
  });

  it('writes nothing when one message meets a full queue; every confirm rejects', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('bounded', { maxLength: 2 });
    await sluice.publish('', 'bounded', 0, { messageId: 'b0' });
    const batch = [toQueue('bounded', 'b1'), toQueue('bounded', 'b2')];
    await expect(sluice.publishBatch(batch, { atomic: true })).rejects.toBeInstanceOf(
      QueueFullError,
    );
    expect(await queueMessageIds(redis, namespace, 'bounded')).toEqual(['b0']);
    // Without atomic, the messages that fit are stored.
    const outcomes = await Promise.allSettled(
      batch.map((message) =>
        sluice.publish(message.exchange, message.routingKey, message.body, message.options),
      ),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected']);
    expect(await queueMessageIds(redis, namespace, 'bounded')).toEqual(['b0', 'b1']);
  });

  it('writes nothing in any queue when one meets a full one (standalone server)', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('open');
    await sluice.declareQueue('bounded', { maxLength: 1 });
    const batch = [toQueue('open', 'o1'), toQueue('bounded', 'b1'), toQueue('bounded', 'b2')];
    await expect(sluice.publishBatch(batch, { atomic: true })).rejects.toBeInstanceOf(
      sluice.server.cluster ? UnsupportedError : QueueFullError,
    );
    expect(await queueMessageIds(redis, namespace, 'open')).toEqual([]);
    expect(await queueMessageIds(redis, namespace, 'bounded')).toEqual([]);
    // Without atomic, the messages that fit are stored.
    const outcomes = await Promise.allSettled(
      batch.map((message) =>
        sluice.publish(message.exchange, message.routingKey, message.body, message.options),
      ),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(await queueMessageIds(redis, namespace, 'bounded')).toEqual(['b1']);
  });

  it('writes nothing when one message names an unknown exchange', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    const batch = [toQueue('q', 'm1'), { exchange: 'ghost', routingKey: 'k', body: 1 }];
    await expect(sluice.publishBatch(batch, { atomic: true })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    expect(await queueMessageIds(redis, namespace, 'q')).toEqual([]);
  });

  it('stores a batch larger than one coalesced call in one call, in order', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    const ids = Array.from({ length: 2000 }, (_, i) => `m${i}`);
    const confirms = await sluice.publishBatch(
      ids.map((id) => toQueue('q', id)),
      { atomic: true },
    );
    expect(confirms.map((c) => c.messageId)).toEqual(ids);
    expect(await queueMessageIds(redis, namespace, 'q')).toEqual(ids);
  });

  it('answers a repeated batch with the first stream ids and writes nothing new', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    const batch = ['m1', 'm2', 'm3'].map((id) => toQueue('q', id));
    const first = await sluice.publishBatch(batch, { atomic: true });
    const again = await sluice.publishBatch(batch, { atomic: true });
    expect(again).toEqual(first.map((confirm) => ({ ...confirm, duplicate: true })));
    expect(await queueMessageIds(redis, namespace, 'q')).toEqual(['m1', 'm2', 'm3']);
  });

  it('keeps the order of publishes issued before it in the same tick', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    await Promise.all([
      sluice.publish('', 'q', 0, { messageId: 'before' }),
      sluice.publishBatch([toQueue('q', 'batch')], { atomic: true }),
      sluice.publish('', 'q', 0, { messageId: 'after' }),
    ]);
    expect(await queueMessageIds(redis, namespace, 'q')).toEqual(['before', 'batch', 'after']);
  });

  it('refuses bad batch options and oversized atomic batches before sending anything', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    await expect(sluice.publishBatch([], { atomic: 'yes' } as object)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    const huge = Array.from({ length: 10_001 }, (_, i) => toQueue('q', `m${i}`));
    await expect(sluice.publishBatch(huge, { atomic: true })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(await sluice.publishBatch([], { atomic: true })).toEqual([]);
  });
});
