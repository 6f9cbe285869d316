import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, Sluice, type PublishConfirm } from '../../src/index.js';
import { Keyspace } from '../../src/keys/index.js';
import { countEach, queueMessageIds } from '../support/faults.js';
import { redisUrl, waitFor } from '../support/index.js';
import { useSluice } from '../support/sluice.js';

const FANOUT_QUEUES = ['q1', 'q2', 'q3', 'q4', 'q5'];

async function declareFanout(sluice: Sluice): Promise<void> {
  await sluice.declareExchange('events', 'fanout');
  for (const queue of FANOUT_QUEUES) {
    await sluice.declareQueue(queue);
    await sluice.bindQueue(queue, 'events');
  }
}

function streamIds(confirm: PublishConfirm): string[] {
  return confirm.targets.map((target) => target.streamId);
}

describe('idempotent publish', () => {
  it('answers a repeated message id with the first stream ids of all 5 fanout queues', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await declareFanout(sluice);
    const first = await sluice.publish('events', '', { n: 1 }, { messageId: 'order-1' });
    const again = await sluice.publish('events', '', { n: 1 }, { messageId: 'order-1' });
    expect(first.duplicate).toBe(false);
    expect(again).toEqual({ ...first, duplicate: true });
    expect(again.targets.map((t) => t.queue)).toEqual(FANOUT_QUEUES);
    for (const queue of FANOUT_QUEUES) {
      expect(await queueMessageIds(redis, namespace, queue)).toEqual(['order-1']);
    }
  });

  it('deduplicates by dedupKey and answers with the message id of the first publish', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await declareFanout(sluice);
    const first = await sluice.publish('events', '', 1, { messageId: 'a', dedupKey: 'charge-7' });
    const again = await sluice.publish('events', '', 2, { messageId: 'b', dedupKey: 'charge-7' });
    expect(again).toEqual({ messageId: 'a', targets: first.targets, duplicate: true });
    expect(await queueMessageIds(redis, namespace, 'q1')).toEqual(['a']);
  });

  it('uses the message id as the dedup key when there is none', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    const first = await sluice.publish('', 'q', 1, { messageId: 'k', dedupKey: 'k' });
    const again = await sluice.publish('', 'q', 1, { messageId: 'k' });
    expect(again).toEqual({ ...first, duplicate: true });
  });

  it('stores a message once when the same id is published twice in one tick', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await declareFanout(sluice);
    const confirms = await Promise.all([
      sluice.publish('events', '', 1, { messageId: 'same' }),
      sluice.publish('events', '', 1, { messageId: 'same' }),
      sluice.publish('events', '', 1, { messageId: 'other' }),
    ]);
    expect(confirms.map((c) => c.duplicate)).toEqual([false, true, false]);
    expect(streamIds(confirms[1])).toEqual(streamIds(confirms[0]));
    expect(await queueMessageIds(redis, namespace, 'q3')).toEqual(['same', 'other']);
  });

  it('fills in only the queues that lack the message when a publish is repeated', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await declareFanout(sluice);
    const first = await sluice.publish('events', '', 1, { messageId: 'm' });
    // As after a partial failure (on Cluster, one slot's call failed): q2 and q4 lack it.
    const keys = new Keyspace(namespace);
    for (const [index, queue] of [
      [1, 'q2'],
      [3, 'q4'],
    ] as const) {
      await redis.xdel(keys.queue(queue).stream, first.targets[index]?.streamId ?? '');
      for (const slot of keys.dedupSlots(queue, 120_000)) await redis.hdel(slot, 'm');
    }
    const again = await sluice.publish('events', '', 1, { messageId: 'm' });
    expect(again.duplicate).toBe(true);
    // q1, q3 and q5 keep their first copies; q2 and q4 got new ones.
    const before = streamIds(first);
    const after = streamIds(again);
    expect([after[0], after[2], after[4]]).toEqual([before[0], before[2], before[4]]);
    expect(after[1]).not.toBe(before[1]);
    expect(after[3]).not.toBe(before[3]);
    for (const queue of FANOUT_QUEUES) {
      expect(await queueMessageIds(redis, namespace, queue)).toEqual(['m']);
    }
  });

  it('stores the message again once the dedup window has passed', async () => {
    const { sluice, redis, namespace } = await useSluice({
      dedupWindowMs: 100,
      confirmTimeoutMs: 100,
    });
    await sluice.declareQueue('q');
    const first = await sluice.publish('', 'q', 1, { messageId: 'late' });
    const later = await waitFor(
      async () => {
        const confirm = await sluice.publish('', 'q', 1, { messageId: 'late' });
        return !confirm.duplicate && confirm;
      },
      { timeoutMs: 2000, description: 'a publish after the window that is not a duplicate' },
    );
    expect(later.targets[0]?.streamId).not.toBe(first.targets[0]?.streamId);
    expect(await queueMessageIds(redis, namespace, 'q')).toEqual(['late', 'late']);
  });

  it('publishes every copy when dedup is off (dedupWindowMs 0), per client or per publish', async () => {
    const { sluice, redis, namespace } = await useSluice({ dedupWindowMs: 0 });
    await sluice.declareQueue('q');
    const confirms = [
      await sluice.publish('', 'q', 1, { messageId: 'x' }),
      await sluice.publish('', 'q', 1, { messageId: 'x' }),
      await sluice.publish('', 'q', 1, { messageId: 'y', dedupWindowMs: 60_000 }),
      await sluice.publish('', 'q', 1, { messageId: 'y', dedupWindowMs: 60_000 }),
      await sluice.publish('', 'q', 1, { messageId: 'y', dedupWindowMs: 0 }),
    ];
    expect(confirms.map((c) => c.duplicate)).toEqual([false, false, false, true, false]);
    expect(countEach(await queueMessageIds(redis, namespace, 'q'))).toEqual(
      new Map([
        ['x', 2],
        ['y', 2],
      ]),
    );
  });

  it('keeps the markers in the hash tag of each queue', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await declareFanout(sluice);
    await sluice.publish('events', '', 1);
    for (const queue of FANOUT_QUEUES) {
      const slots = new Keyspace(namespace).dedupSlots(queue, 120_000);
      for (const slot of slots) {
        expect(slot.startsWith(`${namespace}:{${namespace}:q:${queue}:0}:`)).toBe(true);
      }
      // One slot (the current time bucket's) expires within two windows; the other is absent.
      const ttls = await Promise.all(slots.map((slot) => redis.pttl(slot)));
      expect(ttls.filter((ttl) => ttl > 0 && ttl <= 240_000)).toHaveLength(1);
      expect(ttls.filter((ttl) => ttl === -2)).toHaveLength(1);
    }
  });

  it('refuses bad dedup options before anything is sent', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    for (const options of [
      { dedupKey: '' },
      { dedupKey: 'k'.repeat(256) },
      { dedupKey: 7 },
      { dedupWindowMs: -1 },
      { dedupWindowMs: 1.5 },
      { dedupWindowMs: 5000 }, // below confirmTimeoutMs: sluice's own retries could miss it
      { dedupWindowMs: 8 * 86_400_000 },
    ]) {
      await expect(sluice.publish('', 'q', 1, options as object)).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    }
    for (const dedupWindowMs of [-1, 8 * 86_400_000, Number.NaN]) {
      await expect(Sluice.connect({ url: redisUrl(), namespace, dedupWindowMs })).rejects.toThrow(
        InvalidArgumentError,
      );
    }
    expect(await queueMessageIds(redis, namespace, 'q')).toEqual([]);
  });
});
