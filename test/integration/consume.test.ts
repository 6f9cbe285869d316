import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  NotFoundError,
  SluiceError,
  StaleDeliveryError,
  type Delivery,
} from '../../src/index.js';
import { waitFor } from '../support/index.js';
import { streamKey, useSluice } from '../support/sluice.js';

describe('consume with automatic acks', () => {
  it('acks a message when the handler resolves and deletes it from the stream', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareExchange('orders', 'topic');
    await sluice.declareQueue('billing');
    await sluice.bindQueue('billing', 'orders', 'order.#');
    const confirm = await sluice.publish(
      'orders',
      'order.created.eu',
      { total: 10 },
      {
        headers: { tenant: 'acme' },
        correlationId: 'c-1',
      },
    );
    const seen: Delivery[] = [];
    const consumer = await sluice.consume('billing', (msg) => {
      seen.push(msg);
    });
    await waitFor(() => consumer.stats.acked === 1);
    const [msg] = seen;
    expect(msg).toMatchObject({
      body: { total: 10 },
      headers: { tenant: 'acme' },
      routingKey: 'order.created.eu',
      exchange: 'orders',
      messageId: confirm.messageId,
      correlationId: 'c-1',
      deliveryCount: 1,
      redelivered: false,
      queue: 'billing',
    });
    expect(await redis.xlen(streamKey(namespace, 'billing'))).toBe(0);
    await consumer.close();
  });

  it('requeues a message whose handler throws, then delivers it again as redelivered', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs');
    await sluice.publish('', 'jobs', 'flaky');
    const attempts: Delivery[] = [];
    const consumer = await sluice.consume('jobs', (msg) => {
      attempts.push(msg);
      if (attempts.length < 3) throw new Error('not yet');
    });
    await waitFor(() => consumer.stats.acked === 1);
    expect(attempts.map((m) => [m.deliveryCount, m.redelivered])).toEqual([
      [1, false],
      [2, true],
      [3, true],
    ]);
    expect(new Set(attempts.map((m) => m.messageId)).size).toBe(1);
    expect(consumer.stats.handlerErrors).toBe(2);
    expect(await redis.xlen(streamKey(namespace, 'jobs'))).toBe(0);
    await consumer.close();
  });

  it('lets the handler settle the delivery itself', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs');
    await sluice.publish('', 'jobs', 'drop me');
    const consumer = await sluice.consume('jobs', async (msg) => {
      await msg.reject();
    });
    await waitFor(() => consumer.stats.rejected === 1);
    expect(consumer.stats.acked).toBe(0);
    expect(await redis.xlen(streamKey(namespace, 'jobs'))).toBe(0);
    await consumer.close();
  });

  it('runs at most `concurrency` handlers at once', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    await sluice.publishBatch(
      Array.from({ length: 40 }, (_, i) => ({ exchange: '', routingKey: 'jobs', body: i })),
    );
    let running = 0;
    let peak = 0;
    const consumer = await sluice.consume(
      'jobs',
      async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setImmediate(resolve));
        running--;
      },
      { prefetch: 20, concurrency: 4 },
    );
    await waitFor(() => consumer.stats.acked === 40);
    expect(peak).toBe(4);
    await consumer.close();
  });

  it('finishes in-flight handlers on close and acks them', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs');
    await sluice.publish('', 'jobs', 'slow');
    let release: () => void = () => undefined;
    let started = false;
    const consumer = await sluice.consume('jobs', async () => {
      started = true;
      await new Promise<void>((resolve) => (release = resolve));
    });
    await waitFor(() => started);
    const closing = consumer.close();
    release();
    await closing;
    expect(consumer.stats.acked).toBe(1);
    expect(await redis.xlen(streamKey(namespace, 'jobs'))).toBe(0);
    expect(await redis.xinfo('CONSUMERS', streamKey(namespace, 'jobs'), 'sluice')).toEqual([]);
  });

  it('fails with NotFoundError for an undeclared queue and validates its options', async () => {
    const { sluice } = await useSluice();
    await expect(sluice.consume('ghost', () => undefined)).rejects.toBeInstanceOf(NotFoundError);
    await sluice.declareQueue('q');
    await expect(sluice.consume('q', () => undefined, { prefetch: 0 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(sluice.consume('q', () => undefined, { concurrency: 1.5 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});

describe('messages() iterator with manual acks', () => {
  it('yields deliveries that the caller acks, nacks or rejects', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.publishBatch(
      ['ack', 'nack', 'reject'].map((body) => ({ exchange: '', routingKey: 'q', body })),
    );
    const outcomes: string[] = [];
    for await (const msg of sluice.messages<string>('q')) {
      outcomes.push(`${msg.body}:${msg.deliveryCount}`);
      if (msg.body === 'ack') await msg.ack();
      else if (msg.body === 'reject') await msg.reject();
      else if (msg.redelivered) await msg.ack();
      else await msg.nack();
      if (outcomes.length === 4) break;
    }
    expect(outcomes).toEqual(['ack:1', 'nack:1', 'reject:1', 'nack:2']);
    expect(await redis.xlen(streamKey(namespace, 'q'))).toBe(0);
  });

  it('holds at most `prefetch` unsettled deliveries', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.publishBatch(
      Array.from({ length: 10 }, (_, i) => ({ exchange: '', routingKey: 'q', body: i })),
    );
    const held: Delivery[] = [];
    const stream = sluice.messages('q', { prefetch: 3 });
    for await (const msg of stream) {
      held.push(msg);
      if (held.length === 3) break;
    }
    const pending = (await redis.xpending(streamKey(namespace, 'q'), 'sluice')) as [
      number,
      ...unknown[],
    ];
    expect(pending[0]).toBe(3);
    await Promise.all(held.map((m) => m.ack()));
  });

  it('acks in one batch only the deliveries this consumer still owns', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.publishBatch(
      ['a', 'b', 'c'].map((body) => ({ exchange: '', routingKey: 'q', body })),
    );
    const held: Delivery[] = [];
    for await (const msg of sluice.messages('q')) {
      held.push(msg);
      if (held.length === 3) break;
    }
    const [first, second, third] = held as [Delivery, Delivery, Delivery];
    await redis.xclaim(streamKey(namespace, 'q'), 'sluice', 'someone-else', 0, second.streamId);
    const outcomes = await Promise.allSettled([first.ack(), second.ack(), third.ack()]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(StaleDeliveryError);
    const left = await redis.xrange(streamKey(namespace, 'q'), '-', '+');
    expect(left.map(([id]) => id)).toEqual([second.streamId]);
  });

  it('refuses the ack of a delivery reclaimed by another sluice consumer after its lease lapsed', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q', { ackTimeoutMs: 200 });
    await sluice.publish('', 'q', 'slow');
    const stream = sluice.messages('q');
    let held: Delivery | undefined;
    for await (const msg of stream) {
      held = msg;
      break;
    }
    // Leaving the loop closed the first consumer: nobody renews the lease of `held` any more.
    const rescuer = await sluice.consume('q', () => undefined);
    await waitFor(() => rescuer.stats.acked === 1);
    await expect(held?.ack()).rejects.toBeInstanceOf(StaleDeliveryError);
    await rescuer.close();
  });

  it('rejects a settlement with a typed error once the client is closed', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.publish('', 'q', 'late');
    let held: Delivery | undefined;
    for await (const msg of sluice.messages('q')) {
      held = msg;
      break;
    }
    await sluice.close();
    await expect(held?.ack()).rejects.toBeInstanceOf(SluiceError);
  });

  it('refuses an ack for a delivery that another consumer has reclaimed', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.publish('', 'q', 'contested');
    const stream = sluice.messages('q');
    for await (const msg of stream) {
      await redis.xclaim(streamKey(namespace, 'q'), 'sluice', 'someone-else', 0, msg.streamId);
      await expect(msg.ack()).rejects.toBeInstanceOf(StaleDeliveryError);
      break;
    }
    expect(await redis.xlen(streamKey(namespace, 'q'))).toBe(1);
  });
});
