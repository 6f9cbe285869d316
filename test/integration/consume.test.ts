import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  NotFoundError,
  PreconditionFailedError,
  Sluice,
  SluiceError,
  StaleDeliveryError,
  type ConsumerEvents,
  type Delivery,
} from '../../src/index.js';
import { connectRedis, startExtraRedis, testNamespace, waitFor } from '../support/index.js';
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

  it('with retry: false, requeues a message whose handler throws at once, then delivers it again as redelivered', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs');
    await sluice.publish('', 'jobs', 'flaky');
    const attempts: Delivery[] = [];
    const consumer = await sluice.consume(
      'jobs',
      (msg) => {
        attempts.push(msg);
        if (attempts.length < 3) throw new Error('not yet');
      },
      { retry: false },
    );
    await waitFor(() => consumer.stats.acked === 1);
    expect(attempts.map((m) => [m.deliveryCount, m.redelivered])).toEqual([
      [1, false],
      [2, true],
      [3, true],
    ]);
    expect(new Set(attempts.map((m) => m.messageId)).size).toBe(1);
    expect(consumer.stats).toMatchObject({ handlerErrors: 2, requeued: 2, delayed: 0 });
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
    const iterate = async (): Promise<void> => {
      for await (const msg of sluice.messages('ghost')) void msg;
    };
    await expect(iterate()).rejects.toBeInstanceOf(NotFoundError);
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

  it('resolves the late ack of a delivery that another consumer reclaimed and settled', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q', { ackTimeoutMs: 200 });
    await sluice.publish('', 'q', 'slow');
    let held: Delivery | undefined;
    for await (const msg of sluice.messages('q')) {
      held = msg;
      break;
    }
    // Leaving the loop closed the first consumer: nobody renews the lease of `held` any more.
    const rescuer = await sluice.consume('q', () => undefined);
    await waitFor(() => rescuer.stats.acked === 1);
    // Pending for nobody: settled, whoever acked it (StaleDeliveryError is for an entry that
    // another consumer holds now, see below).
    await expect(held?.ack()).resolves.toBeUndefined();
    expect(await redis.xlen(streamKey(namespace, 'q'))).toBe(0);
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

describe('consumer events', () => {
  it('reports each handled delivery with its duration, and a failure with its error', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    await sluice.publishBatch(
      ['ok', 'boom'].map((body) => ({ exchange: '', routingKey: 'jobs', body })),
    );
    const handled: ConsumerEvents['delivery.handled'][] = [];
    const failed: ConsumerEvents['delivery.failed'][] = [];
    const failure = new Error('boom');
    // Requeued at once: what this test looks at is the events, not the backoff.
    const consumer = await sluice.consume<string>(
      'jobs',
      (msg) => {
        if (msg.body === 'boom' && !msg.redelivered) throw failure;
      },
      { retry: false },
    );
    consumer.on('delivery.handled', (event) => handled.push(event));
    consumer.on('delivery.failed', (event) => failed.push(event));
    await waitFor(() => consumer.stats.acked === 2);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ queue: 'jobs', error: failure });
    expect(failed[0]?.delivery.body).toBe('boom');
    expect(handled.map((event) => event.delivery.body).sort()).toEqual(['boom', 'ok']);
    for (const event of [...handled, ...failed]) {
      expect(event.messageId).toBe(event.delivery.messageId);
      expect(event.streamId).toBe(event.delivery.streamId);
      expect(event.durationMs).toBeGreaterThanOrEqual(0);
    }
    await consumer.close();
  });

  it('reports an entry dead-lettered before reaching a handler, with its reason', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs');
    const foreignId = await redis.xadd(streamKey(namespace, 'jobs'), '*', 'not', 'sluice');
    const consumer = sluice.messages('jobs');
    const deadLettered: ConsumerEvents['delivery.deadLettered'][] = [];
    consumer.on('delivery.deadLettered', (event) => deadLettered.push(event));
    await waitFor(() => deadLettered.length === 1);
    expect(deadLettered).toEqual([
      // jobs has no dead-letter exchange: the poison entry is dropped.
      { queue: 'jobs', streamId: foreignId, messageId: undefined, reason: 'poison', dropped: true },
    ]);
    expect(consumer.stats.deadLettered.poison).toBe(1);
    await consumer.close();
  });

  it('reports a takeover of a delivery another consumer left behind', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs', { ackTimeoutMs: 100 });
    const { messageId, targets } = await sluice.publish('', 'jobs', 'orphan');
    const stream = streamKey(namespace, 'jobs');
    await redis.xreadgroup('GROUP', 'sluice', 'dead-consumer', 'COUNT', 1, 'STREAMS', stream, '>');
    const reclaimed: ConsumerEvents['delivery.reclaimed'][] = [];
    const consumer = await sluice.consume('jobs', () => undefined);
    consumer.on('delivery.reclaimed', (event) => reclaimed.push(event));
    await waitFor(() => consumer.stats.acked === 1);
    expect(reclaimed).toEqual([
      { queue: 'jobs', streamId: targets[0]?.streamId, messageId, timesDelivered: 2 },
    ]);
    await consumer.close();
  });

  it('keeps consuming and calls the other listeners when a listener throws', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    const consumer = await sluice.consume('jobs', () => undefined);
    let calls = 0;
    consumer.on('delivery.handled', () => {
      throw new Error('a broken listener');
    });
    const rejecting = (): Promise<void> => Promise.reject(new Error('an async broken listener'));
    // eslint-disable-next-line @typescript-eslint/no-misused-promises -- what this test checks: an async listener's rejection is absorbed too
    consumer.on('delivery.handled', rejecting);
    consumer.on('delivery.handled', () => void calls++);
    await sluice.publishBatch(
      [1, 2, 3].map((body) => ({ exchange: '', routingKey: 'jobs', body })),
    );
    await waitFor(() => consumer.stats.acked === 3);
    expect(calls).toBe(3);
    await consumer.close();
  });

  it('stops calling a listener removed with off', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    const consumer = await sluice.consume('jobs', () => undefined);
    let calls = 0;
    const listener = (): void => void calls++;
    consumer.on('delivery.handled', listener).off('delivery.handled', listener);
    await sluice.publish('', 'jobs', 'x');
    await waitFor(() => consumer.stats.acked === 1);
    expect(calls).toBe(0);
    await consumer.close();
  });
});

describe('consumer stats', () => {
  it('are a snapshot: later counts do not change it, and changing it changes nothing', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    const consumer = await sluice.consume('jobs', () => undefined);
    const before = consumer.stats;
    await sluice.publish('', 'jobs', 'x');
    await waitFor(() => consumer.stats.acked === 1);
    expect(before.acked).toBe(0);
    (before as { acked: number }).acked = 42;
    (before.deadLettered as Record<string, number>).poison = 42;
    expect(consumer.stats).toMatchObject({ acked: 1, deadLettered: { poison: 0 } });
    await consumer.close();
  });
});

describe('settling a delivery', () => {
  it("once: the same settlement again has the first one's outcome, another is refused", async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.publishBatch(['a', 'b'].map((body) => ({ exchange: '', routingKey: 'q', body })));
    const held: Delivery[] = [];
    for await (const msg of sluice.messages('q')) {
      held.push(msg);
      if (held.length === 2) break;
    }
    const [rejected, acked] = held as [Delivery, Delivery];
    await rejected.reject();
    await expect(rejected.reject()).resolves.toBeUndefined();
    await expect(rejected.nack({ requeue: false })).resolves.toBeUndefined();
    const refused = rejected.ack();
    await expect(refused).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(refused).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    await expect(rejected.nack()).rejects.toBeInstanceOf(PreconditionFailedError);
    await acked.ack();
    await expect(acked.ack()).resolves.toBeUndefined();
    await expect(acked.reject()).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(await sluice.inspectQueue('q')).toMatchObject({ messages: 0, unacked: 0 });
  });

  it('refuses a requeue option that is not a boolean, settling nothing', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.publish('', 'q', 'x');
    for await (const msg of sluice.messages('q')) {
      for (const requeue of [0, 'false', null]) {
        await expect(msg.nack({ requeue } as never)).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      expect(msg.settled).toBe(false);
      await msg.ack();
      break;
    }
  });

  it('rejects: resolved once the message is in the outbox, then routed by the client', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('dead');
    await sluice.bindQueue('dead', 'dlx');
    await sluice.declareQueue('q', { deadLetterExchange: 'dlx' });
    await sluice.publish('', 'q', 'x');
    const stream = sluice.messages('q');
    for await (const msg of stream) {
      await msg.reject();
      expect(await redis.xlen(streamKey(namespace, 'q'))).toBe(0);
      break;
    }
    await waitFor(async () => (await sluice.inspectQueue('dead')).messages === 1);
    expect(await sluice.inspectQueue('q')).toMatchObject({ deadLetterBacklog: 0 });
  });
});

describe('closing a consumer', () => {
  it('validates timeoutMs and stays usable and closable after a refused close', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    const consumer = await sluice.consume('jobs', () => undefined);
    for (const timeoutMs of [10n, Number.NaN, -1, '100', 1.5, 2 ** 31]) {
      await expect(consumer.close({ timeoutMs } as never)).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    }
    await expect(consumer.close('soon' as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await sluice.publish('', 'jobs', 'still consumed');
    await waitFor(() => consumer.stats.acked === 1);
    await consumer.close({ timeoutMs: 0 });
  });

  it('leaves no reading connection and no registered consumer when a stream closes before its first read', async () => {
    const server = await startExtraRedis();
    const redis = connectRedis({}, server.url);
    const sluice = await Sluice.connect({ url: server.url, namespace: testNamespace() });
    await sluice.declareQueue('q');
    const clients = async (): Promise<number> =>
      ((await redis.client('LIST')) as string).trim().split('\n').length;
    const before = await clients();
    const unread = sluice.messages('q');
    await unread.close();
    const stream = streamKey(sluice.namespace, 'q');
    expect(await redis.xinfo('CONSUMERS', stream, 'sluice')).toEqual([]);
    await waitFor(async () => (await clients()) === before);
    const yielded: unknown[] = [];
    for await (const msg of unread) yielded.push(msg);
    expect(yielded).toEqual([]);
    await sluice.close();
    await waitFor(async () => (await clients()) === 1);
  });
});
