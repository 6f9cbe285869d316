import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_DELIVERIES } from '../../src/consumer/admission.js';
import type { Delivery, Sluice } from '../../src/index.js';
import { waitFor } from '../support/index.js';
import { PROMOTION_SLACK_MS, connectSluice, streamKey, useSluice } from '../support/sluice.js';

/** `work` dead-letters into the fanout `dlx`, which feeds `work.dlq`. */
async function withDeadLetterQueue(
  sluice: Sluice,
  options: Parameters<Sluice['declareQueue']>[1] = {},
) {
  await sluice.declareExchange('orders', 'topic');
  await sluice.declareExchange('dlx', 'fanout');
  await sluice.declareQueue('work.dlq');
  await sluice.bindQueue('work.dlq', 'dlx');
  await sluice.declareQueue('work', { deadLetterExchange: 'dlx', ...options });
  await sluice.bindQueue('work', 'orders', 'order.#');
}

/** Waits for the first message of a queue, acks it and returns it. */
async function takeOne(sluice: Sluice, queue: string): Promise<Delivery> {
  for await (const msg of sluice.messages(queue)) {
    await msg.ack();
    return msg;
  }
  throw new Error(`no message in ${queue}`);
}

describe('dead-letter exchanges', () => {
  it('dead-letters a rejected message with a RabbitMQ-shaped death record', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await withDeadLetterQueue(sluice);
    const confirm = await sluice.publish(
      'orders',
      'order.created',
      { id: 1 },
      {
        headers: { tenant: 'acme' },
        correlationId: 'c-9',
      },
    );
    const consumer = await sluice.consume('work', (msg) => msg.reject());
    await waitFor(() => consumer.stats.rejected === 1);
    await consumer.close();
    expect(await redis.xlen(streamKey(namespace, 'work'))).toBe(0);
    const dead = await takeOne(sluice, 'work.dlq');
    expect(dead).toMatchObject({
      messageId: confirm.messageId,
      body: { id: 1 },
      headers: { tenant: 'acme' },
      correlationId: 'c-9',
      exchange: 'dlx',
      routingKey: 'order.created',
      deliveryCount: 1,
    });
    expect(dead.deathHistory).toEqual({
      deaths: [
        {
          queue: 'work',
          reason: 'rejected',
          count: 1,
          time: expect.any(Number) as number,
          exchange: 'orders',
          routingKeys: ['order.created'],
        },
      ],
      first: { queue: 'work', reason: 'rejected', exchange: 'orders' },
      last: { queue: 'work', reason: 'rejected', exchange: 'orders' },
    });
  });

  it('uses deadLetterRoutingKey when the queue sets one', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('dlx', 'direct');
    await sluice.declareQueue('parking');
    await sluice.bindQueue('parking', 'dlx', 'parked');
    await sluice.declareQueue('work', {
      deadLetterExchange: 'dlx',
      deadLetterRoutingKey: 'parked',
    });
    await sluice.publish('', 'work', 'x');
    for await (const msg of sluice.messages('work')) {
      await msg.nack({ requeue: false });
      break;
    }
    const dead = await takeOne(sluice, 'parking');
    expect(dead.routingKey).toBe('parked');
    expect(dead.deathHistory?.deaths[0]?.routingKeys).toEqual(['work']);
  });

  it('dead-letters after exactly maxDeliveries attempts with reason delivery_limit', async () => {
    const { sluice } = await useSluice();
    await withDeadLetterQueue(sluice, { maxDeliveries: 3 });
    await sluice.publish('orders', 'order.poison', 'boom');
    let attempts = 0;
    // Requeued at once: this test counts attempts, the backoff between them is tested elsewhere.
    const consumer = await sluice.consume(
      'work',
      () => {
        attempts++;
        throw new Error('always fails');
      },
      { retry: false },
    );
    await waitFor(() => consumer.stats.deadLettered.delivery_limit === 1);
    await consumer.close();
    expect(attempts).toBe(3);
    const dead = await takeOne(sluice, 'work.dlq');
    expect(dead.deathHistory?.deaths[0]).toMatchObject({
      queue: 'work',
      reason: 'delivery_limit',
      count: 1,
    });
  });

  it('dead-letters an always-failing message after the default 21 deliveries, each after its backoff, with the last error', async () => {
    const { sluice } = await useSluice();
    await withDeadLetterQueue(sluice); // no maxDeliveries
    const { messageId } = await sluice.publish('orders', 'order.paid', { orderId: 7 });
    // A small policy keeps the test short; the default values are unit-tested (retry.test.ts).
    const retry = { initialDelayMs: 20, multiplier: 2, maxDelayMs: 80, jitter: 0.25 };
    const seenAt: number[] = [];
    const thrown: Error[] = [];
    const consumer = await sluice.consume(
      'work',
      () => {
        seenAt.push(Date.now());
        const error = new Error(`payment gateway refused, attempt ${seenAt.length}`);
        // A deep stack, to be trimmed.
        const frames = Array.from(
          { length: 100 },
          (_, i) => `    at step${i} (/srv/pay.js:${i}:1)`,
        );
        error.stack = [error.stack, ...frames].join('\n');
        thrown.push(error);
        throw error;
      },
      { retry },
    );
    const failed: unknown[] = [];
    consumer.on('delivery.failed', ({ error }) => failed.push(error));
    await waitFor(() => consumer.stats.deadLettered.delivery_limit === 1, { timeoutMs: 30_000 });
    await consumer.close();

    expect(seenAt).toHaveLength(DEFAULT_MAX_DELIVERIES);
    for (let n = 1; n < seenAt.length; n++) {
      const delayMs = Math.min(
        retry.initialDelayMs * retry.multiplier ** (n - 1),
        retry.maxDelayMs,
      );
      const gap = (seenAt[n] ?? 0) - (seenAt[n - 1] ?? 0);
      expect(gap, `after failure ${n}`).toBeGreaterThanOrEqual(delayMs * (1 - retry.jitter));
      expect(gap, `after failure ${n}`).toBeLessThanOrEqual(
        delayMs * (1 + retry.jitter) + PROMOTION_SLACK_MS,
      );
    }
    // Every failure is reported, with what the handler threw.
    expect(failed).toEqual(thrown);
    expect(consumer.stats.handlerErrors).toBe(DEFAULT_MAX_DELIVERIES);

    await waitFor(async () => (await sluice.inspectQueue('work.dlq')).messages === 1);
    const dead = await sluice.dlq.show('work.dlq', messageId);
    const death = 'deathHistory' in dead ? dead.deathHistory?.deaths[0] : undefined;
    expect(death).toMatchObject({ queue: 'work', reason: 'delivery_limit', count: 1 });
    const last = thrown.at(-1) as Error;
    expect(death?.lastError?.message).toBe(last.message);
    const stack = death?.lastError?.stack ?? '';
    expect(stack).toMatch(/^Error: payment gateway refused, attempt 21\n {4}at /u);
    // The first whole lines of the stack, within 2 KiB with the message.
    expect(last.stack?.startsWith(`${stack}\n`)).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(death?.lastError))).toBeLessThanOrEqual(2048);
    const { messages } = await sluice.dlq.list('work.dlq');
    expect(messages).toEqual([dead]);
  });

  it("redelivers past the default limit a message of a queue with maxDeliveries 'unlimited'", async () => {
    const { sluice } = await useSluice();
    await withDeadLetterQueue(sluice, { maxDeliveries: 'unlimited' });
    await sluice.publish('orders', 'order.paid', { orderId: 8 });
    const succeedsOn = DEFAULT_MAX_DELIVERIES + 5;
    const consumer = await sluice.consume(
      'work',
      (msg) => {
        if (msg.deliveryCount < succeedsOn) throw new Error('not yet');
      },
      { retry: false },
    );
    await waitFor(() => consumer.stats.acked === 1, { timeoutMs: 20_000 });
    await consumer.close();
    expect(consumer.stats).toMatchObject({ handlerErrors: succeedsOn - 1, delivered: succeedsOn });
    expect(consumer.stats.deadLettered.delivery_limit).toBe(0);
  });

  it('dead-letters expired messages with reason expired instead of delivering them', async () => {
    const { sluice, namespace } = await useSluice();
    await withDeadLetterQueue(sluice, { messageTtlMs: 60_000 });
    await sluice.declareQueue('short', { deadLetterExchange: 'dlx', messageTtlMs: 50 });
    // Published by a client that is gone before they expire: the consumer meets them expired.
    const producer = await connectSluice(namespace);
    const perMessage = await producer.publish('orders', 'order.old', 'per-message', {
      expirationMs: 50,
    });
    const perQueue = await producer.publish('', 'short', 'per-queue');
    const fresh = await producer.publish('orders', 'order.new', 'fresh');
    await producer.close();
    const due = Date.now() + 60;
    await waitFor(() => Date.now() >= due);
    const handled: string[] = [];
    const work = await sluice.consume<string>('work', (msg) => void handled.push(msg.body));
    const short = await sluice.consume<string>('short', (msg) => void handled.push(msg.body));
    await waitFor(() => work.stats.acked === 1 && work.stats.deadLettered.expired === 1);
    await waitFor(() => short.stats.deadLettered.expired === 1);
    expect(handled).toEqual(['fresh']);
    expect(fresh.targets).toHaveLength(1);
    const dead = [await takeOne(sluice, 'work.dlq'), await takeOne(sluice, 'work.dlq')];
    const byId = new Map(dead.map((d) => [d.messageId, d]));
    expect(byId.get(perMessage.messageId)?.deathHistory?.deaths[0]).toMatchObject({
      queue: 'work',
      reason: 'expired',
      originalExpirationMs: 50,
    });
    // The dead-lettered copy does not expire again.
    expect(byId.get(perMessage.messageId)?.expirationMs).toBeUndefined();
    expect(byId.get(perQueue.messageId)?.deathHistory?.deaths[0]).toMatchObject({
      queue: 'short',
      reason: 'expired',
    });
  });

  it('drops a dead letter when there is no dead-letter exchange, and counts it', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('plain');
    await sluice.publish('', 'plain', 'x');
    const consumer = await sluice.consume('plain', (msg) => msg.reject());
    await waitFor(() => consumer.stats.rejected === 1);
    expect(await redis.xlen(streamKey(namespace, 'plain'))).toBe(0);
    // reject() resolved with the message in the outbox; the client's keeper drops it from there.
    const outbox = `${namespace}:{${namespace}:q:plain:0}:dead-letters`;
    await waitFor(async () => (await redis.xlen(outbox)) === 0);
    await consumer.close();
  });

  it('follows RabbitMQ cycle rule: a queue dead-lettering into itself drops automatic deaths', async () => {
    const { sluice, redis, namespace } = await useSluice();
    // The default exchange routes the dead letter straight back to `loop`.
    await sluice.declareQueue('loop', {
      deadLetterExchange: '',
      deadLetterRoutingKey: 'loop',
      maxDeliveries: 1,
    });
    await sluice.publish('', 'loop', 'round and round');
    const deaths: number[] = [];
    const consumer = await sluice.consume('loop', (msg) => {
      deaths.push(msg.deathHistory?.deaths[0]?.count ?? 0);
      // Rejections go round (a client decides each time); the third time, fail instead.
      if (deaths.length < 3) return msg.reject();
      throw new Error('give up');
    });
    await waitFor(() => consumer.stats.deadLettered.delivery_limit === 1);
    await consumer.close();
    expect(deaths).toEqual([0, 1, 2]);
    // The delivery-limit death would route `loop` into itself without a rejection: dropped.
    expect(await redis.xlen(streamKey(namespace, 'loop'))).toBe(0);
  });
});

describe('poison and foreign entries', () => {
  it('dead-letters an entry another program wrote, keeping its raw fields', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await withDeadLetterQueue(sluice);
    const foreignId = await redis.xadd(streamKey(namespace, 'work'), '*', 'foo', 'bar', 'n', '1');
    await sluice.publish('orders', 'order.ok', 'fine');
    const handled: unknown[] = [];
    const consumer = await sluice.consume('work', (msg) => void handled.push(msg.body));
    await waitFor(() => consumer.stats.acked === 1 && consumer.stats.deadLettered.poison === 1);
    expect(handled).toEqual(['fine']);
    const dead = await takeOne(sluice, 'work.dlq');
    expect(dead.contentType).toBe('application/vnd.sluice.poison+json');
    expect(dead.body).toEqual({ streamId: foreignId, fields: { foo: 'bar', n: '1' } });
    expect(dead.deathHistory?.deaths[0]).toMatchObject({ queue: 'work', reason: 'poison' });
  });

  it('acks and counts a foreign entry when no dead-letter exchange is set', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('plain');
    await redis.xadd(streamKey(namespace, 'plain'), '*', 'garbage', '\u0000');
    const consumer = await sluice.consume('plain', () => undefined);
    await waitFor(() => consumer.stats.deadLettered.poison === 1);
    await waitFor(async () => (await redis.xlen(streamKey(namespace, 'plain'))) === 0);
  });

  it('dead-letters a pending entry whose data was deleted, when it is reclaimed', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await withDeadLetterQueue(sluice, { ackTimeoutMs: 100 });
    const confirm = await sluice.publish('orders', 'order.gone', 'soon deleted');
    const stream = streamKey(namespace, 'work');
    // A consumer that died holding the entry, whose data was then trimmed away.
    await redis.xreadgroup('GROUP', 'sluice', 'dead-consumer', 'COUNT', 1, 'STREAMS', stream, '>');
    await redis.xdel(stream, confirm.targets[0]?.streamId ?? '');
    const consumer = await sluice.consume('work', () => undefined);
    const dead = await takeOne(sluice, 'work.dlq');
    expect(dead.body).toEqual({ streamId: confirm.targets[0]?.streamId, fields: null });
    expect(dead.deathHistory?.deaths[0]?.reason).toBe('poison');
    const [pending] = (await redis.xpending(stream, 'sluice')) as [number];
    expect(pending).toBe(0);
    await consumer.close();
  });
});
