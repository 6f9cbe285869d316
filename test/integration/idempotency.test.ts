/**
 * Idempotent consumers with the Redis store: a handler runs once per idempotency key, its
 * recorded writes commit with the done marker and the ack, a deposed consumer commits nothing,
 * and crashes never double an effect.
 */
import type { ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  ServerError,
  UnsupportedError,
  type Delivery,
  type IdempotencyStore,
  type Sluice,
  type SluiceError,
} from '../../src/index.js';
import { redisUrl, waitFor } from '../support/index.js';
import { drainWithRestarts, publishEachTwice, startProcess } from '../support/processes.js';
import { useSluice } from '../support/sluice.js';

/** The hash the handlers of these tests write their effects to, in the queue's slot. */
const effectsKey = (namespace: string, queue: string): string =>
  `{${namespace}:q:${queue}:0}:effects`;

/** An idempotent consumer process (test/support/idempotent-process.ts) on `queue`. */
function startConsumer(
  namespace: string,
  queue: string,
  leaseMs: number,
  hold = false,
): ChildProcess {
  return startProcess(
    'idempotent-process.ts',
    redisUrl(),
    namespace,
    queue,
    String(leaseMs),
    ...(hold ? ['hold'] : []),
  );
}

describe('idempotent consumer', () => {
  it('runs the handler once for two publishes with one dedup key, and acks the duplicate', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('charges');
    const first = await sluice.publish('', 'charges', { job: 1 }, { dedupKey: 'job-1' });
    // Another publish of the same job, past the publish dedup (another window, another id).
    const second = await sluice.publish(
      '',
      'charges',
      { job: 1 },
      {
        dedupKey: 'job-1',
        dedupWindowMs: 0,
      },
    );
    expect(second.duplicate).toBe(false);
    expect(second.messageId).not.toBe(first.messageId);
    const handled: string[] = [];
    const duplicates: string[] = [];
    const consumer = await sluice.consume(
      'charges',
      (msg: Delivery) => {
        handled.push(msg.messageId);
      },
      { idempotency: {} },
    );
    consumer.on('delivery.duplicate', ({ messageId }) => duplicates.push(messageId));
    await waitFor(() => consumer.stats.acked === 2);
    expect(handled).toEqual([first.messageId]);
    expect(duplicates).toEqual([second.messageId]);
    expect(consumer.stats.duplicates).toBe(1);
    expect(await sluice.inspectQueue('charges')).toMatchObject({ messages: 0, unacked: 0 });
    await consumer.close();
  });

  it('runs one handler at a time for a key whose deliveries are taken in one call', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('charges');
    // Three copies of one job past the publish dedup, then another job: one read, one call
    // taking the leases of all four, with handlers free to run in parallel.
    const copies = [];
    for (let i = 0; i < 3; i++) {
      copies.push(
        await sluice.publish('', 'charges', { job: 1 }, { dedupKey: 'job-1', dedupWindowMs: 0 }),
      );
    }
    const other = await sluice.publish('', 'charges', { job: 2 }, { dedupKey: 'job-2' });
    const handled: string[] = [];
    const running = new Map<string, number>();
    let mostAtOnce = 0;
    const consumer = await sluice.consume(
      'charges',
      async (msg: Delivery) => {
        const now = (running.get(msg.dedupKey) ?? 0) + 1;
        running.set(msg.dedupKey, now);
        mostAtOnce = Math.max(mostAtOnce, now);
        handled.push(msg.messageId);
        // Long enough for the other copies' lease takings to meet this one's lease.
        await new Promise((resolve) => setTimeout(resolve, 50));
        running.set(msg.dedupKey, now - 1);
      },
      { idempotency: { leaseMs: 1000 }, concurrency: 10 },
    );
    const duplicates: string[] = [];
    consumer.on('delivery.duplicate', ({ messageId }) => duplicates.push(messageId));
    await waitFor(() => consumer.stats.acked === 4);
    // The first copy ran; the others found its lease, waited for it, then its done marker.
    expect(handled.sort()).toEqual([copies[0]?.messageId, other.messageId].sort());
    expect(mostAtOnce).toBe(1);
    expect(duplicates.sort()).toEqual([copies[1]?.messageId, copies[2]?.messageId].sort());
    await consumer.close();
  });

  it('carries the dedup key on the delivery and on a dead-lettered copy', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('dead');
    await sluice.bindQueue('dead', 'dlx');
    await sluice.declareQueue('jobs', { deadLetterExchange: 'dlx' });
    await sluice.publish('', 'jobs', 'a', { dedupKey: 'order-7' });
    const plain = await sluice.publish('', 'jobs', 'b');
    const keys: string[] = [];
    for await (const msg of sluice.messages('jobs')) {
      keys.push(msg.dedupKey);
      await msg.reject();
      if (keys.length === 2) break;
    }
    expect(keys).toEqual(['order-7', plain.messageId]);
    const dead: string[] = [];
    for await (const msg of sluice.messages('dead')) {
      dead.push(msg.dedupKey);
      await msg.ack();
      if (dead.length === 2) break;
    }
    expect(dead.sort()).toEqual(['order-7', plain.messageId].sort());
  });

  it('applies the recorded writes with the ack, once per key', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('charges');
    for (const job of [1, 2, 3, 1, 2, 1]) {
      await sluice.publish('', 'charges', { job }, { dedupKey: `job-${job}`, dedupWindowMs: 0 });
    }
    const consumer = await sluice.consume<{ job: number }>(
      'charges',
      (msg, { tx }) => {
        tx.hincrby(`${tx.hashTag}:effects`, `job-${msg.body.job}`, 1).sadd(
          `${tx.hashTag}:seen`,
          msg.messageId,
        );
      },
      { idempotency: {}, concurrency: 3 },
    );
    await waitFor(() => consumer.stats.acked === 6);
    expect(await redis.hgetall(effectsKey(namespace, 'charges'))).toEqual({
      'job-1': '1',
      'job-2': '1',
      'job-3': '1',
    });
    expect(await redis.scard(`{${namespace}:q:charges:0}:seen`)).toBe(3);
    expect(consumer.stats.duplicates).toBe(3);
    await consumer.close();
  });

  it('releases the key of a failed handler for the retry, and writes nothing of the failure', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('charges');
    await sluice.publish('', 'charges', 'flaky', { dedupKey: 'job-1' });
    let runs = 0;
    const consumer = await sluice.consume(
      'charges',
      (_msg, { tx }) => {
        runs++;
        tx.hincrby(`${tx.hashTag}:effects`, 'job-1', 1);
        if (runs === 1) throw new Error('card declined');
      },
      { idempotency: {}, retry: { initialDelayMs: 20 } },
    );
    await waitFor(() => consumer.stats.acked === 1);
    expect(runs).toBe(2);
    expect(await redis.hgetall(effectsKey(namespace, 'charges'))).toEqual({ 'job-1': '1' });
    await consumer.close();
  });

  it("keeps a failed handler's last error for the death record, as a plain consumer does", async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('charges.dlq');
    await sluice.bindQueue('charges.dlq', 'dlx');
    await sluice.declareQueue('charges', { deadLetterExchange: 'dlx', maxDeliveries: 2 });
    const { messageId } = await sluice.publish('', 'charges', 'doomed', { dedupKey: 'job-1' });
    const consumer = await sluice.consume(
      'charges',
      (msg) => {
        throw new Error(`card declined on attempt ${msg.deliveryCount}`);
      },
      { idempotency: {}, retry: false },
    );
    await waitFor(() => consumer.stats.deadLettered.delivery_limit === 1);
    await consumer.close();
    await waitFor(async () => (await sluice.inspectQueue('charges.dlq')).messages === 1);
    const dead = await sluice.dlq.show('charges.dlq', messageId);
    const death = 'deathHistory' in dead ? dead.deathHistory?.deaths[0] : undefined;
    expect(death?.lastError?.message).toBe('card declined on attempt 2');
  });

  it('leaves no marker for a rejected message: a later copy runs the handler', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('charges');
    await sluice.publish('', 'charges', 'first', { dedupKey: 'job-1' });
    const bodies: unknown[] = [];
    const consumer = await sluice.consume(
      'charges',
      async (msg: Delivery) => {
        bodies.push(msg.body);
        if (msg.body === 'first') await msg.reject();
      },
      { idempotency: {} },
    );
    await waitFor(() => consumer.stats.rejected === 1);
    await sluice.publish('', 'charges', 'second', { dedupKey: 'job-1', dedupWindowMs: 0 });
    await waitFor(() => consumer.stats.acked === 1);
    expect(bodies).toEqual(['first', 'second']);
    expect(consumer.stats.duplicates).toBe(0);
    await consumer.close();
  });

  it('does not apply a replayed dead letter whose key was done', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('charges.dlq');
    await sluice.bindQueue('charges.dlq', 'dlx');
    await sluice.declareQueue('charges', { deadLetterExchange: 'dlx' });
    let runs = 0;
    const consume = () =>
      sluice.consume(
        'charges',
        (_msg, { tx }) => {
          runs++;
          tx.hincrby(`${tx.hashTag}:effects`, 'job-1', 1);
        },
        { idempotency: {} },
      );
    let consumer = await consume();
    await sluice.publish('', 'charges', 'charge', { dedupKey: 'job-1' });
    await waitFor(() => consumer.stats.acked === 1);
    await consumer.close();
    // A second copy of the job expires in the queue and is dead-lettered, then replayed.
    await sluice.publish('', 'charges', 'charge', {
      dedupKey: 'job-1',
      dedupWindowMs: 0,
      expirationMs: 1,
    });
    await waitFor(async () => (await sluice.inspectQueue('charges.dlq')).messages === 1);
    const replay = await sluice.dlq.replay('charges.dlq');
    expect(replay.replayed).toBe(1);
    consumer = await consume();
    await waitFor(() => consumer.stats.duplicates === 1);
    expect(runs).toBe(1);
    expect(await redis.hgetall(effectsKey(namespace, 'charges'))).toEqual({ 'job-1': '1' });
    await consumer.close();
  });

  it('fails typed on a bad key function, and keeps the message', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('charges', { maxDeliveries: 2 });
    await sluice.publish('', 'charges', 'job');
    const errors: unknown[] = [];
    let runs = 0;
    const consumer = await sluice.consume(
      'charges',
      () => {
        runs++;
      },
      {
        retry: { initialDelayMs: 10 },
        idempotency: { key: () => 42 as unknown as string },
      },
    );
    consumer.on('delivery.failed', ({ error }) => errors.push(error));
    await waitFor(() => errors.length === 2);
    expect(errors[0]).toBeInstanceOf(InvalidArgumentError);
    expect(runs).toBe(0);
    await waitFor(() => consumer.stats.deadLettered.delivery_limit === 1);
    await consumer.close();
  });

  it('refuses bad idempotency options before anything is sent', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('charges');
    const refuse = (idempotency: unknown): Promise<unknown> =>
      sluice.consume('charges', () => undefined, {
        idempotency: idempotency as { ttlMs: number },
      });
    for (const bad of [
      null,
      [],
      { ttlMs: 10 },
      { leaseMs: -1 },
      { key: 'dedupKey' },
      { store: {} },
      { leaseMs: 1000, typo: true },
    ]) {
      await expect(refuse(bad)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    const store = { execute: () => Promise.resolve('done' as const) };
    expect(() => sluice.messages('charges', { idempotency: { store } } as object)).toThrow(
      UnsupportedError,
    );
  });

  it('offers the same to the iterator form: msg.tx commits with msg.ack()', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('charges');
    for (const body of ['a', 'a', 'b']) {
      await sluice.publish('', 'charges', body, { dedupKey: `job-${body}`, dedupWindowMs: 0 });
    }
    const stream = sluice.messages<string>('charges', { idempotency: {} });
    const yielded: string[] = [];
    for await (const msg of stream) {
      yielded.push(msg.body);
      msg.tx.hincrby(`${msg.tx.hashTag}:effects`, msg.dedupKey, 1);
      if (msg.body === 'a') await msg.ack();
      else await msg.reject();
      if (yielded.length === 2) break;
    }
    // The second (a duplicate of 'a') was acked without being yielded.
    expect(await sluice.inspectQueue('charges')).toMatchObject({ messages: 0, unacked: 0 });
    expect(yielded).toEqual(['a', 'b']);
    // The rejected one's writes were dropped, and it left no marker.
    expect(await redis.hgetall(effectsKey(namespace, 'charges'))).toEqual({ 'job-a': '1' });
    expect(stream.stats).toMatchObject({ acked: 2, rejected: 1, duplicates: 1 });
  });

  it.for(['a shorthand', 'tx.call'])(
    'refuses a write outside the queue slot on a cluster-mode server, and applies it on a standalone one (%s)',
    async (form) => {
      const { sluice, redis, namespace } = await useSluice();
      await sluice.declareQueue('charges', { maxDeliveries: 1 });
      await sluice.publish('', 'charges', 'job');
      const errors: SluiceError[] = [];
      const consumer = await sluice.consume(
        'charges',
        (_msg, { tx }) => {
          if (form === 'tx.call') tx.call('SET', `${namespace}:elsewhere`, 'x');
          else tx.set(`${namespace}:elsewhere`, 'x');
        },
        { idempotency: {} },
      );
      consumer.on('delivery.failed', ({ error }) => errors.push(error as SluiceError));
      if (sluice.server.cluster) {
        await waitFor(() => consumer.stats.deadLettered.delivery_limit === 1);
        expect(errors[0]).toBeInstanceOf(InvalidArgumentError);
        expect(await redis.exists(`${namespace}:elsewhere`)).toBe(0);
      } else {
        await waitFor(() => consumer.stats.acked === 1);
        expect(await redis.get(`${namespace}:elsewhere`)).toBe('x');
        expect(errors).toEqual([]);
      }
      await redis.del(`${namespace}:elsewhere`);
      await consumer.close();
    },
  );
});

/**
 * Declares `charges`, dead-lettering through `dlx` into `charges.dlq`; resolves with the hash
 * tag of its slot, where the handlers' writes go.
 */
async function declareCharges(sluice: Sluice, namespace: string): Promise<string> {
  await sluice.declareExchange('dlx', 'fanout');
  await sluice.declareQueue('charges.dlq');
  await sluice.bindQueue('charges.dlq', 'dlx');
  await sluice.declareQueue('charges', { deadLetterExchange: 'dlx' });
  return `{${namespace}:q:charges:0}`;
}

describe('a write Redis refuses at the commit', () => {
  it('applies the writes before it once, marks the key done and dead-letters the message', async () => {
    const { sluice, redis, namespace } = await useSluice();
    const tag = await declareCharges(sluice, namespace);
    await redis.set(`${tag}:a-string`, 'not a hash');
    await sluice.publish('', 'charges', 'job', { dedupKey: 'job-1' });
    const errors: unknown[] = [];
    let runs = 0;
    const consumer = await sluice.consume(
      'charges',
      (_msg, { tx }) => {
        runs++;
        tx.incrby(`${tag}:count`, 1).hset(`${tag}:a-string`, 'field', 'value');
      },
      { idempotency: {} },
    );
    consumer.on('delivery.failed', ({ error }) => errors.push(error));
    await waitFor(async () => (await sluice.inspectQueue('charges.dlq')).messages === 1);
    expect(errors[0]).toBeInstanceOf(ServerError);
    expect(runs).toBe(1);
    expect(await redis.get(`${tag}:count`)).toBe('1');
    // The dead letter replayed is a duplicate: the writes that ran are never run again.
    await sluice.dlq.replay('charges.dlq');
    await waitFor(() => consumer.stats.duplicates === 1);
    expect(runs).toBe(1);
    expect(await redis.get(`${tag}:count`)).toBe('1');
    await consumer.close();
  });
});

describe('commits of one tick in one call', () => {
  it('refuses a write too large to call, and commits the other deliveries of the call', async () => {
    const { sluice, redis, namespace } = await useSluice();
    const tag = await declareCharges(sluice, namespace);
    for (let n = 0; n < 10; n++) {
      await sluice.publish('', 'charges', n, { dedupKey: `job-${n}` });
    }
    const consumer = await sluice.consume<number>(
      'charges',
      async (msg, { tx }) => {
        // All ten finish in one tick: their commits go in one call.
        await new Promise((resolve) => setImmediate(resolve));
        if (msg.body === 4) tx.rpush(`${tag}:huge`, ...Array.from({ length: 20_000 }, (_, i) => i));
        else tx.sadd(`${tag}:done`, msg.body);
      },
      { idempotency: {}, prefetch: 10, concurrency: 10, retry: false },
    );
    await waitFor(async () => (await sluice.inspectQueue('charges.dlq')).messages === 1, {
      description: 'the job with the huge write dead-lettered',
    });
    await waitFor(async () => (await redis.scard(`${tag}:done`)) === 9, {
      description: 'the other nine committed',
    });
    expect(consumer.stats.deadLettered.rejected).toBe(1);
    expect((await sluice.inspectQueue('charges')).messages).toBe(0);
    await consumer.close();
  });
});

describe('a store of your own', () => {
  /** A store keeping its markers in a Map (as an application's own database table would). */
  class MapStore implements IdempotencyStore<{ readonly rows: string[] }> {
    readonly done = new Set<string>();
    readonly rows: string[] = [];
    failures = 0;
    async execute(
      key: string,
      _options: { readonly ttlMs: number; readonly leaseMs: number },
      work: (context: { readonly rows: string[] }) => Promise<void>,
    ): Promise<'done' | 'duplicate'> {
      if (this.failures > 0) {
        this.failures--;
        throw new Error('store unavailable');
      }
      if (this.done.has(key)) return 'duplicate';
      const rows: string[] = [];
      await work({ rows });
      this.rows.push(...rows);
      this.done.add(key);
      return 'done';
    }
  }

  it('runs the handler in the store, acks duplicates, and retries when the store fails', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('charges');
    const store = new MapStore();
    store.failures = 1;
    for (let i = 0; i < 2; i++) {
      await sluice.publish('', 'charges', 'job', { dedupKey: 'job-1', dedupWindowMs: 0 });
    }
    const errors: unknown[] = [];
    const consumer = await sluice.consume(
      'charges',
      (msg, { rows }) => {
        rows.push(msg.messageId);
      },
      { retry: { initialDelayMs: 10 }, idempotency: { store } },
    );
    consumer.on('delivery.failed', ({ error }) => errors.push(error));
    await waitFor(() => consumer.stats.acked === 2);
    expect(store.rows).toHaveLength(1);
    expect(consumer.stats.duplicates).toBe(1);
    expect(errors).toHaveLength(1);
    expect(await sluice.inspectQueue('charges')).toMatchObject({ messages: 0, unacked: 0 });
    await consumer.close();
  });
});

describe('idempotent consumers across processes', () => {
  it('a consumer paused past its lease commits nothing once it resumes', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('charges', { ackTimeoutMs: 1000 });
    await sluice.publish('', 'charges', { job: 1 }, { dedupKey: 'job-1' });
    const paused = startConsumer(namespace, 'charges', 1000, true);
    await waitFor(async () => (await redis.exists(`${namespace}:started`)) === 1, {
      timeoutMs: 20_000,
    });
    paused.kill('SIGSTOP');
    // Another consumer takes the delivery over once its lease and the key's have run out.
    const consumer = await sluice.consume<{ job: number }>(
      'charges',
      (msg, { tx }) => {
        tx.hincrby(`${tx.hashTag}:effects`, msg.dedupKey, 1);
      },
      { idempotency: { leaseMs: 1000 } },
    );
    await waitFor(() => consumer.stats.acked === 1, { timeoutMs: 20_000 });
    await redis.set(`${namespace}:go`, '1');
    paused.kill('SIGCONT');
    // The resumed handler finishes: its commit is refused as stale.
    await waitFor(async () => (await redis.get(`${namespace}:stale`)) === '1', {
      timeoutMs: 10_000,
    });
    expect(await redis.get(`${namespace}:runs`)).toBe('1');
    await consumer.close();
    expect(await redis.hgetall(effectsKey(namespace, 'charges'))).toEqual({ 'job-1': '1' });
    expect(await sluice.inspectQueue('charges')).toMatchObject({ messages: 0, unacked: 0 });
  });

  it('applies every job exactly once: each published twice, one of three consumers killed and restarted', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('charges', { ackTimeoutMs: 1000 });
    const jobs = 10_000;
    await publishEachTwice(sluice, 'charges', jobs);
    await drainWithRestarts(
      sluice,
      redis,
      namespace,
      'charges',
      () => startConsumer(namespace, 'charges', 1000),
      { milestoneMs: 60_000, drainMs: 90_000 },
    );
    const effects = await redis.hgetall(effectsKey(namespace, 'charges'));
    expect(Object.keys(effects)).toHaveLength(jobs);
    expect(Object.values(effects).every((count) => count === '1')).toBe(true);
  }, 180_000);
});
