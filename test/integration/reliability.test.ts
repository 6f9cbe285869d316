import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, PreconditionFailedError, type Delivery } from '../../src/index.js';
import { redisUrl, waitFor } from '../support/index.js';
import { startProcess } from '../support/processes.js';
import { PROMOTION_SLACK_MS, connectSluice, streamKey, useSluice } from '../support/sluice.js';

describe('crash recovery', () => {
  it('stops counting a SIGKILLed consumer once its registration lease ends', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs');
    const child = startProcess('consumer-process.ts', redisUrl(), namespace, 'jobs');
    await waitFor(async () => (await sluice.inspectQueue('jobs')).consumers === 1, {
      timeoutMs: 20_000,
    });
    await expect(sluice.deleteQueue('jobs', { ifUnused: true })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    child.kill('SIGKILL');
    // Within the 15 s lease (renewed every 5 s) of its last renewal.
    const killedAt = Date.now();
    await waitFor(async () => (await sluice.inspectQueue('jobs')).consumers === 0, {
      timeoutMs: 25_000,
    });
    expect(Date.now() - killedAt).toBeLessThan(16_000);
    // The next consumer to register removes the dead one from the group (it held nothing).
    const consumer = await sluice.consume('jobs', () => undefined);
    const group = (await redis.xinfo('CONSUMERS', streamKey(namespace, 'jobs'), 'sluice')) as [
      string,
      string,
    ][];
    expect(group).toHaveLength(1);
    await consumer.close();
    await sluice.deleteQueue('jobs', { ifUnused: true });
    expect(await redis.keys(`${namespace}:{${namespace}:q:jobs:*`)).toEqual([]);
  });

  it('loses nothing when a consumer process is SIGKILLed mid-batch', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs', { ackTimeoutMs: 1000 });
    const total = 10_000;
    const ids = new Set<string>();
    for (let start = 0; start < total; start += 1000) {
      const confirms = await sluice.publishBatch(
        Array.from({ length: 1000 }, (_, i) => ({
          exchange: '',
          routingKey: 'jobs',
          body: { n: start + i },
        })),
      );
      for (const confirm of confirms) ids.add(confirm.messageId);
    }
    const child = startProcess('consumer-process.ts', redisUrl(), namespace, 'jobs');
    await waitFor(async () => Number(await redis.get(`${namespace}:runs`)) >= 2000, {
      timeoutMs: 30_000,
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const [pendingAtKill] = (await redis.xpending(streamKey(namespace, 'jobs'), 'sluice')) as [
      number,
    ];
    expect(pendingAtKill).toBeGreaterThan(0);

    const consumer = await sluice.consume(
      'jobs',
      async (msg) => {
        await redis.sadd(`${namespace}:handled`, msg.messageId);
      },
      { prefetch: 200, concurrency: 20 },
    );
    await waitFor(async () => (await redis.scard(`${namespace}:handled`)) === total, {
      timeoutMs: 60_000,
    });
    await waitFor(async () => (await redis.xlen(streamKey(namespace, 'jobs'))) === 0, {
      timeoutMs: 10_000,
    });
    await consumer.close();
    expect(consumer.stats.reclaimed).toBeGreaterThan(0);
    const handled = new Set(await redis.smembers(`${namespace}:handled`));
    expect([...ids].every((id) => handled.has(id))).toBe(true);
    const [pending] = (await redis.xpending(streamKey(namespace, 'jobs'), 'sluice')) as [number];
    expect(pending).toBe(0);
  });

  it('redelivers what a dead consumer held after ackTimeoutMs, marked redelivered', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs', { ackTimeoutMs: 200 });
    const confirm = await sluice.publish('', 'jobs', 'orphan');
    await redis.xreadgroup(
      'GROUP',
      'sluice',
      'dead-consumer',
      'COUNT',
      1,
      'STREAMS',
      streamKey(namespace, 'jobs'),
      '>',
    );
    const seen: Delivery[] = [];
    const consumer = await sluice.consume('jobs', (msg) => void seen.push(msg));
    await waitFor(() => consumer.stats.acked === 1);
    expect(seen[0]).toMatchObject({
      messageId: confirm.messageId,
      redelivered: true,
      deliveryCount: 2,
    });
    await consumer.close();
  });

  it('does not redeliver a slow handler whose lease is extended', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs', { ackTimeoutMs: 200 });
    await sluice.publish('', 'jobs', 'slow');
    const runs: number[] = [];
    const handler = async (msg: Delivery): Promise<void> => {
      runs.push(msg.deliveryCount);
      const until = Date.now() + 1200;
      await waitFor(() => Date.now() >= until, { timeoutMs: 5000 });
    };
    const first = await sluice.consume('jobs', handler);
    const second = await sluice.consume('jobs', handler);
    await waitFor(() => first.stats.acked + second.stats.acked === 1, { timeoutMs: 10_000 });
    expect(runs).toEqual([1]);
    expect(first.stats.stale + second.stats.stale).toBe(0);
    expect(first.stats.reclaimed + second.stats.reclaimed).toBe(0);
  });

  it('leaves unfinished deliveries unacked when close times out, for another consumer to reclaim', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs', { ackTimeoutMs: 200 });
    await sluice.publish('', 'jobs', 'stuck');
    let started = false;
    const stuck = await sluice.consume('jobs', async () => {
      started = true;
      await new Promise(() => undefined);
    });
    await waitFor(() => started);
    await stuck.close({ timeoutMs: 50 });
    expect(stuck.stats.acked).toBe(0);
    const seen: Delivery[] = [];
    const rescuer = await sluice.consume('jobs', (msg) => void seen.push(msg));
    await waitFor(() => rescuer.stats.acked === 1);
    expect(seen[0]?.redelivered).toBe(true);
  });
});

describe('credit', () => {
  it('keeps reading when a whole read is dead-lettered before reaching the handler', async () => {
    const { sluice, namespace } = await useSluice();
    await sluice.declareQueue('jobs', { messageTtlMs: 50 });
    // Published by a client that is gone before it expires: the consumer meets it expired.
    const producer = await connectSluice(namespace);
    await producer.publish('', 'jobs', 'stale');
    await producer.close();
    const due = Date.now() + 60;
    await waitFor(() => Date.now() >= due);
    const handled: unknown[] = [];
    const consumer = await sluice.consume('jobs', (msg) => void handled.push(msg.body), {
      prefetch: 1,
    });
    await waitFor(() => consumer.stats.deadLettered.expired === 1);
    await sluice.publish('', 'jobs', 'fresh');
    await waitFor(() => handled.length === 1);
    expect(handled).toEqual(['fresh']);
    await consumer.close();
  });

  it('gives back prefetched messages that an iterator never handed out without counting them', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs', { maxDeliveries: 2 });
    await sluice.publishBatch(
      [1, 2, 3, 4, 5].map((n) => ({ exchange: '', routingKey: 'jobs', body: n })),
    );
    const counts: number[] = [];
    for (let round = 0; round < 5; round++) {
      for await (const msg of sluice.messages('jobs', { prefetch: 5 })) {
        counts.push(msg.deliveryCount);
        await msg.ack();
        break;
      }
    }
    expect(counts).toEqual([1, 1, 1, 1, 1]);
  });
});

describe('missing stream or group', () => {
  it('ends a consumer of a deleted queue with a cancelled event, and leaves no key of it', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs');
    await sluice.publish('', 'jobs', 'held');
    const consumer = await sluice.consume('jobs', () => new Promise<void>(() => undefined));
    const stream = sluice.messages('jobs');
    const iterated = (async () => {
      for await (const msg of stream) await msg.ack();
      return 'ended';
    })();
    const cancelled: string[] = [];
    consumer.on('cancelled', ({ queue }) => cancelled.push(queue));
    stream.on('cancelled', ({ queue }) => cancelled.push(queue));
    await waitFor(() => consumer.stats.delivered === 1);
    await sluice.deleteQueue('jobs');
    await waitFor(() => cancelled.length === 2);
    expect(cancelled).toEqual(['jobs', 'jobs']);
    // The iterator's loop ends, as amqplib's consumer gets null on basic.cancel.
    await expect(iterated).resolves.toBe('ended');
    await consumer.close({ timeoutMs: 0 });
    const left = await redis.keys(`${namespace}:{${namespace}:q:jobs:*`);
    expect(left).toEqual([]);
    // A queue declared again under the name is the new queue's, not the old consumers'.
    await sluice.declareQueue('jobs');
    await sluice.publish('', 'jobs', 'new');
    expect(await sluice.inspectQueue('jobs')).toMatchObject({ messages: 1, consumers: 0 });
  });

  it('recreates a deleted group and carries on', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs');
    const handled: unknown[] = [];
    const consumer = await sluice.consume('jobs', (msg) => void handled.push(msg.body));
    let recreated = 0;
    consumer.on('groupRecreated', () => recreated++);
    await sluice.publish('', 'jobs', 'before');
    await waitFor(() => handled.length === 1);
    await redis.del(streamKey(namespace, 'jobs'));
    await waitFor(() => recreated === 1, { timeoutMs: 10_000 });
    await sluice.publish('', 'jobs', 'after');
    await waitFor(() => handled.length === 2);
    expect(handled).toEqual(['before', 'after']);
    await consumer.close();
  });
});

describe('delayed retry', () => {
  it('nack({ delayMs }) redelivers no earlier than the delay', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs');
    await sluice.publish('', 'jobs', 'later');
    const seenAt: number[] = [];
    const consumer = await sluice.consume('jobs', async (msg) => {
      seenAt.push(Date.now());
      if (!msg.redelivered) await msg.nack({ delayMs: 400 });
    });
    await waitFor(() => consumer.stats.delayed === 1);
    expect(await redis.zcard(`${namespace}:{${namespace}:q:jobs:0}:delayed`)).toBe(1);
    await waitFor(() => consumer.stats.acked === 1, { timeoutMs: 5000 });
    expect((seenAt[1] ?? 0) - (seenAt[0] ?? 0)).toBeGreaterThanOrEqual(400);
    expect(await redis.zcard(`${namespace}:{${namespace}:q:jobs:0}:delayed`)).toBe(0);
    await consumer.close();
  });

  it('applies a retry policy with growing delays to a failing handler', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    await sluice.publish('', 'jobs', 'flaky');
    const seenAt: number[] = [];
    const consumer = await sluice.consume(
      'jobs',
      () => {
        seenAt.push(Date.now());
        if (seenAt.length < 3) throw new Error('not yet');
      },
      { retry: { initialDelayMs: 100, multiplier: 3, jitter: 0 } },
    );
    await waitFor(() => consumer.stats.acked === 1, { timeoutMs: 5000 });
    const [a = 0, b = 0, c = 0] = seenAt;
    expect(b - a).toBeGreaterThanOrEqual(100);
    expect(c - b).toBeGreaterThanOrEqual(300);
    await consumer.close();
  });

  it('spaces the retries of a failing handler by the default backoff: 1 s, then 2 s, ± 20 %', async () => {
    const { sluice } = await useSluice();
    // Three deliveries: the third failure is the last one the queue allows.
    await sluice.declareQueue('jobs', { maxDeliveries: 3 });
    await sluice.publish('', 'jobs', 'always fails');
    const seenAt: number[] = [];
    const consumer = await sluice.consume('jobs', () => {
      seenAt.push(Date.now());
      throw new Error('downstream unavailable');
    });
    await waitFor(() => consumer.stats.deadLettered.delivery_limit === 1, { timeoutMs: 10_000 });
    const deadLetteredAt = Date.now();
    await consumer.close();
    const [first = 0, second = 0, third = 0] = seenAt;
    expect(seenAt).toHaveLength(3);
    // No earlier than the jittered delay; no later than it plus a promotion round and slack.
    expect(second - first).toBeGreaterThanOrEqual(800);
    expect(second - first).toBeLessThanOrEqual(1200 + PROMOTION_SLACK_MS);
    expect(third - second).toBeGreaterThanOrEqual(1600);
    expect(third - second).toBeLessThanOrEqual(2400 + PROMOTION_SLACK_MS);
    // After the last delivery the message is dead-lettered at once, not after another 4 s.
    expect(deadLetteredAt - third).toBeLessThan(2000);
    expect(consumer.stats).toMatchObject({ handlerErrors: 3, delayed: 2, requeued: 1 });
  });

  it('promotes each delayed message exactly once with several consumers', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    const total = 300;
    await sluice.publishBatch(
      Array.from({ length: total }, (_, n) => ({ exchange: '', routingKey: 'jobs', body: n })),
    );
    const runs = new Map<number, number>();
    const handler = async (msg: Delivery<number>): Promise<void> => {
      runs.set(msg.body, (runs.get(msg.body) ?? 0) + 1);
      if (!msg.redelivered) await msg.nack({ delayMs: 100 });
    };
    const consumers = await Promise.all(
      [1, 2, 3].map(() => sluice.consume<number>('jobs', handler, { concurrency: 10 })),
    );
    await waitFor(() => consumers.reduce((sum, c) => sum + c.stats.acked, 0) === total, {
      timeoutMs: 20_000,
    });
    expect([...runs.values()].every((count) => count === 2)).toBe(true);
    expect(runs.size).toBe(total);
  });
});

describe('reliability options', () => {
  it('validate their input before anything is sent', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    const bad = [
      { retry: { initialDelayMs: -1 } },
      { retry: { initialDelayMs: 10, jitter: 2 } },
      { retry: { initialDelayMs: 10, maxDelayMs: 1e15 } },
      { retry: { initialDelay: 10 } },
      { retry: true },
      { retry: null },
    ];
    for (const options of bad) {
      await expect(
        sluice.consume('jobs', () => undefined, options as object),
      ).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    await sluice.publish('', 'jobs', 'x');
    for await (const msg of sluice.messages('jobs')) {
      await expect(msg.nack({ delayMs: -5 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(msg.nack({ delayMs: 10, requeue: false })).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
      expect(msg.settled).toBe(false);
      await msg.ack();
      break;
    }
  });
});
