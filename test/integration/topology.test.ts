import { describe, expect, it } from 'vitest';
import {
  AccessRefusedError,
  InvalidArgumentError,
  NotFoundError,
  PreconditionFailedError,
} from '../../src/index.js';
import { Keyspace } from '../../src/keys/index.js';
import { useSluice } from '../support/sluice.js';

describe('exchange declaration', () => {
  it('is a no-op when repeated with the same arguments', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareExchange('orders', 'topic', { alternateExchange: 'unrouted' });
    const version = await redis.get(`${namespace}:{${namespace}}:topology:version`);
    await sluice.declareExchange('orders', 'topic', { alternateExchange: 'unrouted' });
    expect(await redis.get(`${namespace}:{${namespace}}:topology:version`)).toBe(version);
  });

  it('fails with PreconditionFailedError and changes nothing when the arguments differ', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareExchange('orders', 'topic');
    const before = await redis.hgetall(`${namespace}:{${namespace}}:topology:exchanges`);
    await expect(sluice.declareExchange('orders', 'direct')).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    await expect(
      sluice.declareExchange('orders', 'topic', { internal: true }),
    ).rejects.toMatchObject({
      code: 'PRECONDITION_FAILED',
    });
    expect(await redis.hgetall(`${namespace}:{${namespace}}:topology:exchanges`)).toEqual(before);
  });

  it('refuses the reserved amq. prefix', async () => {
    const { sluice } = await useSluice();
    await expect(sluice.declareExchange('amq.mine', 'direct')).rejects.toBeInstanceOf(
      AccessRefusedError,
    );
    await expect(sluice.declareQueue('amq.q')).rejects.toBeInstanceOf(AccessRefusedError);
  });

  it('has amq.direct, amq.topic, amq.fanout and amq.headers in every namespace', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.bindQueue('q', 'amq.direct', 'k');
    await sluice.bindQueue('q', 'amq.topic', 'a.#');
    await sluice.bindQueue('q', 'amq.fanout');
    await sluice.bindQueue('q', 'amq.headers', { kind: 'x' });
    const routed = await Promise.all([
      sluice.publish('amq.direct', 'k', 1, { mandatory: true }),
      sluice.publish('amq.topic', 'a.b', 2, { mandatory: true }),
      sluice.publish('amq.fanout', '', 3, { mandatory: true }),
      sluice.publish('amq.headers', '', 4, { mandatory: true, headers: { kind: 'x' } }),
    ]);
    expect(routed.map((c) => c.targets.map((t) => t.queue))).toEqual([['q'], ['q'], ['q'], ['q']]);
    // As they are: nothing changes; otherwise 406; never deleted (403).
    await sluice.declareExchange('amq.topic', 'topic');
    await expect(sluice.declareExchange('amq.topic', 'fanout')).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    await expect(sluice.deleteExchange('amq.fanout')).rejects.toBeInstanceOf(AccessRefusedError);
  });

  it('deletes with ifUnused only when no binding leaves the exchange', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('events', 'fanout');
    await sluice.declareQueue('audit');
    await sluice.bindQueue('audit', 'events');
    await expect(sluice.deleteExchange('events', { ifUnused: true })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    await sluice.unbindQueue('audit', 'events');
    await sluice.deleteExchange('events', { ifUnused: true });
    await expect(sluice.publish('events', '', 'x')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('removes the bindings of a deleted exchange', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('events', 'fanout');
    await sluice.declareQueue('audit');
    await sluice.bindQueue('audit', 'events');
    await sluice.deleteExchange('events');
    await sluice.declareExchange('events', 'fanout');
    const confirm = await sluice.publish('events', '', 'x');
    expect(confirm.targets).toEqual([]);
  });
});

describe('queue declaration', () => {
  it('stores the queue arguments and refuses a different redeclaration', async () => {
    const { sluice } = await useSluice();
    const options = {
      deadLetterExchange: 'dlx',
      deadLetterRoutingKey: 'dead',
      maxDeliveries: 5,
      ackTimeoutMs: 30_000,
      messageTtlMs: 60_000,
      maxLength: 1000,
      overflow: 'reject-publish' as const,
    };
    await expect(sluice.declareQueue('work', options)).rejects.toBeInstanceOf(NotFoundError);
    await sluice.declareExchange('dlx', 'direct');
    await sluice.declareQueue('work', options);
    await sluice.declareQueue('work', options);
    await expect(
      sluice.declareQueue('work', { ...options, maxDeliveries: 6 }),
    ).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(sluice.declareQueue('work')).rejects.toBeInstanceOf(PreconditionFailedError);
  });

  it("stores maxDeliveries 'unlimited' as given, and nothing for a queue that leaves it out", async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('forever', { maxDeliveries: 'unlimited' });
    await sluice.declareQueue('forever', { maxDeliveries: 'unlimited' });
    await expect(sluice.declareQueue('forever')).rejects.toBeInstanceOf(PreconditionFailedError);
    await sluice.declareQueue('limited');
    // The default limit is applied when a message is delivered, not written into the record.
    await expect(sluice.declareQueue('limited', { maxDeliveries: 21 })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    const records = await redis.hgetall(new Keyspace(namespace).topologyQueues);
    expect(JSON.parse(records.forever ?? '{}')).toMatchObject({ maxDeliveries: 'unlimited' });
    expect(JSON.parse(records.limited ?? '{}')).not.toHaveProperty('maxDeliveries');
  });

  it('is bound to the default exchange by its name', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    const confirm = await sluice.publish('', 'jobs', { n: 1 });
    expect(confirm.targets.map((t) => t.queue)).toEqual(['jobs']);
    await expect(sluice.publish('', 'nope', 1, { mandatory: true })).rejects.toMatchObject({
      code: 'UNROUTABLE',
    });
  });

  it('deletes with ifEmpty only when no message is queued', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs');
    await sluice.publish('', 'jobs', 'one');
    await expect(sluice.deleteQueue('jobs', { ifEmpty: true })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    expect(await sluice.purgeQueue('jobs')).toBe(1);
    await sluice.deleteQueue('jobs', { ifEmpty: true });
    expect(await redis.keys(`${namespace}:{${namespace}:q:jobs:0}:*`)).toEqual([]);
    await expect(sluice.publish('', 'jobs', 'x', { mandatory: true })).rejects.toMatchObject({
      code: 'UNROUTABLE',
    });
  });

  it('deletes every key of the queue: messages, delayed retries, dead letters, dedup markers', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs');
    await sluice.publishBatch(
      ['same', 'other'].map((id) => ({
        exchange: '',
        routingKey: 'jobs',
        body: id,
        options: { messageId: id },
      })),
    );
    for await (const msg of sluice.messages('jobs')) {
      await msg.nack({ delayMs: 60_000 });
      break;
    }
    expect((await redis.keys(`${namespace}:{${namespace}:q:jobs:0}:*`)).length).toBeGreaterThan(2);
    await sluice.deleteQueue('jobs');
    expect(await redis.keys(`${namespace}:{${namespace}:q:jobs:0}:*`)).toEqual([]);
    await sluice.declareQueue('jobs');
    const again = await sluice.publish('', 'jobs', 'a', { messageId: 'same' });
    expect(again.duplicate).toBe(false);
  });

  it('deletes with ifUnused only when no consumer is registered', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    const consumer = await sluice.consume('jobs', () => undefined);
    await expect(sluice.deleteQueue('jobs', { ifUnused: true })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    await consumer.close();
    await sluice.deleteQueue('jobs', { ifUnused: true });
  });

  it('purges ready messages but keeps unacked deliveries', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('jobs');
    await sluice.publishBatch(
      ['a', 'b', 'c'].map((body) => ({ exchange: '', routingKey: 'jobs', body })),
    );
    const stream = sluice.messages('jobs', { prefetch: 1 });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    expect(await sluice.purgeQueue('jobs')).toBe(2);
    expect(await redis.xlen(`${namespace}:{${namespace}:q:jobs:0}:stream`)).toBe(1);
    if (!first.done) await first.value.ack();
    await stream.close();
    expect(await redis.xlen(`${namespace}:{${namespace}:q:jobs:0}:stream`)).toBe(0);
  });
});

describe('bindings', () => {
  it('fail with NotFoundError when either end is missing', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('x', 'direct');
    await expect(sluice.bindQueue('missing', 'x', 'k')).rejects.toBeInstanceOf(NotFoundError);
    await sluice.declareQueue('q');
    await expect(sluice.bindQueue('q', 'missing', 'k')).rejects.toBeInstanceOf(NotFoundError);
    await expect(sluice.bindExchange('missing', 'x', 'k')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('refuse the default exchange', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    await expect(sluice.bindQueue('q', '', 'q')).rejects.toBeInstanceOf(AccessRefusedError);
  });

  it('check the key or arguments against the exchange type', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('t', 'topic');
    await sluice.declareExchange('h', 'headers');
    await sluice.declareQueue('q');
    await expect(sluice.bindQueue('q', 't', 'a.b*')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sluice.bindQueue('q', 't', { a: 1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sluice.bindQueue('q', 'h', { 'x-match': 'some' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    for (const notPlain of [new Map([['a', 1]]), Buffer.from('ab'), [1]]) {
      await expect(
        sluice.bindQueue('q', 'h', notPlain as unknown as Record<string, string>),
      ).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    // A key given to a headers exchange is ignored, as RabbitMQ does: an empty `all`.
    await sluice.bindQueue('q', 'h', 'key');
    expect((await sluice.publish('h', '', 1, { headers: { any: 'thing' } })).targets).toHaveLength(
      1,
    );
  });

  it('succeed in unbinding from an exchange that does not exist', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.unbindQueue('q', 'never-declared', 'k');
    await sluice.unbindExchange('e', 'never-declared');
  });

  it('are idempotent to add and to remove', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('d', 'direct');
    await sluice.declareQueue('q');
    await sluice.bindQueue('q', 'd', 'k');
    await sluice.bindQueue('q', 'd', 'k');
    expect((await sluice.publish('d', 'k', 1)).targets).toHaveLength(1);
    await sluice.unbindQueue('q', 'd', 'k');
    await sluice.unbindQueue('q', 'd', 'k');
    expect((await sluice.publish('d', 'k', 1)).targets).toHaveLength(0);
  });
});

describe('input validation', () => {
  it('rejects bad names before anything is written', async () => {
    const { sluice, redis, namespace } = await useSluice();
    const bad = [
      'a:b',
      'a{b}',
      'with space',
      'x'.repeat(256),
      'tab\t',
      'c1\u0085control',
      'lone\ud800',
      'lone\udbff',
      '\udc00trail',
    ];
    for (const name of ['', ...bad]) {
      await expect(sluice.declareQueue(name)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    for (const name of bad) {
      await expect(sluice.declareExchange(name, 'direct')).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    }
    // The default exchange is not a bad name but a refused one (RabbitMQ's 403).
    await expect(sluice.declareExchange('', 'direct')).rejects.toBeInstanceOf(AccessRefusedError);
    await expect(sluice.deleteExchange('')).rejects.toBeInstanceOf(AccessRefusedError);
    await expect(sluice.declareExchange('x', 'round' as 'direct')).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    for (const maxDeliveries of [0, 1.5, -1, Infinity, 'infinite', null]) {
      await expect(
        sluice.declareQueue('q', { maxDeliveries } as unknown as { maxDeliveries: number }),
      ).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    await expect(sluice.declareQueue('q', { ackTimeoutMs: -1 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(sluice.declareQueue('q', { ackTimeoutMs: 1e12 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(
      sluice.declareQueue('q', { overflow: 'drop-tail' as 'drop-head', maxLength: 1 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sluice.declareQueue('q', { deadLetterRoutingKey: 'k' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(await redis.keys(`${namespace}:*`)).toEqual([]);
  });

  it('refuses an unknown option name, naming it, before anything is written', async () => {
    const { sluice, redis, namespace } = await useSluice();
    const misspelt = { maxDelivery: 3 } as unknown as { maxDeliveries: number };
    await expect(sluice.declareQueue('q', misspelt)).rejects.toThrow(
      /unknown option 'maxDelivery'/u,
    );
    await expect(sluice.declareQueue('q', misspelt)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      sluice.declareExchange('x', 'direct', { durabl: true } as unknown as { durable: boolean }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      sluice.publish('', 'q', 1, { mandtory: true } as unknown as { mandatory: boolean }),
    ).rejects.toThrow(/unknown option 'mandtory'/u);
    expect(await redis.keys(`${namespace}:*`)).toEqual([]);
  });

  it('accepts any well-formed Unicode name, a surrogate pair included', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('emoji-\ud83d\ude00');
    expect((await sluice.publish('', 'emoji-\ud83d\ude00', 1)).targets).toHaveLength(1);
  });
});

describe('queue inspection', () => {
  it('counts ready, unacked, delayed messages and consumers', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    await sluice.publishBatch(
      ['a', 'b', 'c', 'd'].map((body) => ({ exchange: '', routingKey: 'jobs', body })),
    );
    const stream = sluice.messages<string>('jobs', { prefetch: 2 });
    const held = [];
    for await (const msg of stream) {
      held.push(msg);
      if (held.length === 2) break;
    }
    await held[0]?.nack({ delayMs: 60_000 });
    expect(await sluice.inspectQueue('jobs')).toEqual({
      name: 'jobs',
      messages: 2,
      unacked: 1,
      delayed: 1,
      deadLetterBacklog: 0,
      // The stream closed when the loop ended: the delivery it handed out keeps no consumer.
      consumers: 0,
      consumerDetails: [],
      partitions: [{ partition: 0, messages: 2, unacked: 1, owner: undefined }],
    });
    await held[1]?.ack();
    const consumer = await sluice.consume('jobs', () => undefined);
    expect(await sluice.inspectQueue('jobs')).toMatchObject({ consumers: 1 });
    await consumer.close();
    await expect(sluice.inspectQueue('ghost')).rejects.toBeInstanceOf(NotFoundError);
  });
});
