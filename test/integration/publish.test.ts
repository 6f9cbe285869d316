import { describe, expect, it } from 'vitest';
import {
  AccessRefusedError,
  InvalidArgumentError,
  MessageTooLargeError,
  NotFoundError,
  SluiceError,
  UnroutableError,
  type Codec,
} from '../../src/index.js';
import { Keyspace } from '../../src/keys/index.js';
import { defaultCodec } from '../../src/message/codec.js';
import { decodeEnvelope } from '../../src/message/envelope.js';
import { queueMessageIds } from '../support/faults.js';
import { connectSluice, entryMessageId, streamKey, useSluice } from '../support/sluice.js';

describe('publish with confirm', () => {
  it('resolves with the message id and the stream id in every target queue', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareExchange('orders', 'topic');
    for (const queue of ['billing', 'shipping']) await sluice.declareQueue(queue);
    await sluice.bindQueue('billing', 'orders', 'order.*');
    await sluice.bindQueue('shipping', 'orders', 'order.created');
    const confirm = await sluice.publish('orders', 'order.created', { id: 7 });
    expect(confirm.duplicate).toBe(false);
    expect(confirm.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(confirm.targets.map((t) => t.queue)).toEqual(['billing', 'shipping']);
    for (const { queue, streamId } of confirm.targets) {
      const entries = await redis.xrange(streamKey(namespace, queue), streamId, streamId);
      expect(entries).toHaveLength(1);
      const fields = entries[0]?.[1] ?? [];
      expect(fields[fields.length - 2]).toBe('b');
      expect(fields[fields.length - 1]).toBe('{"id":7}');
      expect(entryMessageId(fields)).toBe(confirm.messageId);
    }
  });

  it('rejects a mandatory publish that matches no queue with UnroutableError', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('orders', 'direct');
    await expect(
      sluice.publish('orders', 'nowhere', 'x', { mandatory: true }),
    ).rejects.toBeInstanceOf(UnroutableError);
    const confirm = await sluice.publish('orders', 'nowhere', 'x');
    expect(confirm.targets).toEqual([]);
  });

  it('sends unroutable messages to the alternate exchange', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('unrouted', 'fanout');
    await sluice.declareQueue('lost-and-found');
    await sluice.bindQueue('lost-and-found', 'unrouted');
    await sluice.declareExchange('orders', 'direct', { alternateExchange: 'unrouted' });
    const confirm = await sluice.publish('orders', 'nowhere', 'x', { mandatory: true });
    expect(confirm.targets.map((t) => t.queue)).toEqual(['lost-and-found']);
  });

  it('refuses direct publishes to an internal exchange but routes through it', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('front', 'fanout');
    await sluice.declareExchange('inner', 'direct', { internal: true });
    await sluice.declareQueue('q');
    await sluice.bindExchange('inner', 'front');
    await sluice.bindQueue('q', 'inner', 'k');
    await expect(sluice.publish('inner', 'k', 'x')).rejects.toBeInstanceOf(AccessRefusedError);
    expect((await sluice.publish('front', 'k', 'x')).targets.map((t) => t.queue)).toEqual(['q']);
  });

  it('delivers once per queue through several exchange paths and terminates cycles', async () => {
    const { sluice } = await useSluice();
    for (const name of ['a', 'b', 'c']) await sluice.declareExchange(name, 'fanout');
    await sluice.declareQueue('q');
    await sluice.bindExchange('b', 'a');
    await sluice.bindExchange('c', 'a');
    await sluice.bindExchange('a', 'c');
    await sluice.bindQueue('q', 'b');
    await sluice.bindQueue('q', 'c');
    expect((await sluice.publish('a', '', 'x')).targets.map((t) => t.queue)).toEqual(['q']);
  });

  it('routes by headers with x-match all and any', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('h', 'headers');
    await sluice.declareQueue('eu-json');
    await sluice.declareQueue('eu-or-json');
    await sluice.bindQueue('eu-json', 'h', { 'x-match': 'all', region: 'eu', format: 'json' });
    await sluice.bindQueue('eu-or-json', 'h', { 'x-match': 'any', region: 'eu', format: 'json' });
    const both = await sluice.publish('h', '', 1, { headers: { region: 'eu', format: 'json' } });
    expect(both.targets.map((t) => t.queue)).toEqual(['eu-json', 'eu-or-json']);
    const one = await sluice.publish('h', '', 1, { headers: { region: 'eu', format: 'xml' } });
    expect(one.targets.map((t) => t.queue)).toEqual(['eu-or-json']);
  });

  it('never reaches a queue that another client has just unbound', async () => {
    const { sluice, namespace, redis } = await useSluice();
    const other = await connectSluice(namespace);
    await sluice.declareExchange('events', 'fanout');
    await sluice.declareQueue('old');
    await sluice.declareQueue('new');
    await sluice.bindQueue('old', 'events');
    // The producer caches a router that still binds 'old'.
    expect((await sluice.publish('events', '', 1)).targets.map((t) => t.queue)).toEqual(['old']);
    await other.unbindQueue('old', 'events');
    await other.bindQueue('new', 'events');
    expect((await sluice.publish('events', '', 2)).targets.map((t) => t.queue)).toEqual(['new']);
    expect(await redis.xlen(streamKey(namespace, 'old'))).toBe(1);
  });

  it('routes with a binding made after its router was cached, once the bind resolved', async () => {
    const { sluice, namespace } = await useSluice();
    const other = await connectSluice(namespace);
    await sluice.declareExchange('events', 'fanout');
    await sluice.declareQueue('a');
    await sluice.declareQueue('b');
    await sluice.bindQueue('a', 'events');
    // The producer caches a router in which only 'a' is bound.
    expect((await sluice.publish('events', '', 1)).targets.map((t) => t.queue)).toEqual(['a']);
    await other.bindQueue('b', 'events');
    const confirm = await sluice.publish('events', '', 2);
    expect(confirm.targets.map((t) => t.queue).sort()).toEqual(['a', 'b']);
  });

  it('writes nothing into a queue that another client deleted, and leaves no key of it', async () => {
    const { sluice, namespace, redis } = await useSluice();
    const other = await connectSluice(namespace);
    await sluice.declareExchange('events', 'fanout');
    await sluice.declareQueue('doomed');
    await sluice.declareQueue('kept');
    await sluice.bindQueue('doomed', 'events');
    await sluice.bindQueue('kept', 'events');
    expect((await sluice.publish('events', '', 1)).targets).toHaveLength(2);
    await other.deleteQueue('doomed');
    const confirm = await sluice.publish('events', '', 2);
    expect(confirm.targets.map((t) => t.queue)).toEqual(['kept']);
    expect(await redis.keys(`${namespace}:{${namespace}:q:doomed:0}:*`)).toEqual([]);
  });

  it('repairs, on the next topology change, a fence that a crashed change left behind', async () => {
    const { sluice, namespace, redis } = await useSluice();
    const other = await connectSluice(namespace);
    const keys = new Keyspace(namespace);
    await sluice.declareExchange('events', 'fanout');
    await sluice.declareQueue('old');
    await sluice.declareQueue('new');
    await sluice.bindQueue('old', 'events');
    expect((await sluice.publish('events', '', 1)).targets.map((t) => t.queue)).toEqual(['old']);
    // A change that crashed after writing the topology, before raising the fences: the binding
    // is gone and the version raised, as unbind.lua leaves them, and no fence moved.
    const [binding] = await redis.hkeys(keys.topologyBindings);
    await redis.hdel(keys.topologyBindings, binding as string);
    await redis.incr(keys.topologyVersion);
    // The next change, of anything, raises every fence: the stale router is refused and
    // routes again, with neither binding.
    await other.declareExchange('unrelated', 'direct');
    expect((await sluice.publish('events', '', 2)).targets).toEqual([]);
    expect(await redis.xlen(streamKey(namespace, 'old'))).toBe(1);
  });

  it('refuses a queue whose keys were deleted by hand until it is declared again', async () => {
    const { sluice, namespace, redis } = await useSluice();
    await sluice.declareQueue('jobs');
    await redis.del(new Keyspace(namespace).queue('jobs').fence);
    await expect(sluice.publish('', 'jobs', 1)).rejects.toBeInstanceOf(NotFoundError);
    await sluice.declareQueue('jobs');
    const confirm = await sluice.publish('', 'jobs', 2, { mandatory: true });
    expect(confirm.targets.map((t) => t.queue)).toEqual(['jobs']);
  });

  it('raises the fences even when the change finds nothing to do (a repeated unbind)', async () => {
    const { sluice, namespace, redis } = await useSluice();
    const keys = new Keyspace(namespace);
    await sluice.declareExchange('events', 'fanout');
    await sluice.declareQueue('q');
    await sluice.bindQueue('q', 'events');
    // The unbind of another client whose fences are not raised yet: the binding is gone and the
    // version up, as unbind.lua leaves them.
    const [binding] = await redis.hkeys(keys.topologyBindings);
    await redis.hdel(keys.topologyBindings, binding as string);
    const version = await redis.incr(keys.topologyVersion);
    // The same unbind again: nothing to remove, but it resolves only once the fences are up.
    await sluice.unbindQueue('q', 'events');
    expect(Number(await redis.get(keys.queue('q').fence))).toBe(version);
  });

  it('sees exchanges and queues that another client declared after it cached the topology', async () => {
    const { sluice, namespace } = await useSluice();
    const other = await connectSluice(namespace);
    await sluice.declareQueue('first');
    await sluice.publish('', 'first', 1);
    await other.declareExchange('late', 'fanout');
    await other.declareQueue('late-q');
    await other.bindQueue('late-q', 'late');
    expect((await sluice.publish('late', '', 1, { mandatory: true })).targets).toHaveLength(1);
    expect((await sluice.publish('', 'late-q', 1, { mandatory: true })).targets).toHaveLength(1);
  });

  it('publishes a batch in one call with one confirm per message', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    const confirms = await sluice.publishBatch(
      Array.from({ length: 1200 }, (_, i) => ({ exchange: '', routingKey: 'q', body: { i } })),
    );
    expect(confirms).toHaveLength(1200);
    expect(new Set(confirms.map((c) => c.messageId)).size).toBe(1200);
    expect(await redis.xlen(streamKey(namespace, 'q'))).toBe(1200);
    // Stream ids grow in publish order: `<ms>-<seq>`, compared numerically.
    const ids = confirms.map((c) => (c.targets[0]?.streamId ?? '').split('-').map(BigInt));
    for (let i = 1; i < ids.length; i++) {
      const [ms = 0n, seq = 0n] = ids[i] ?? [];
      const [prevMs = 0n, prevSeq = 0n] = ids[i - 1] ?? [];
      expect(ms > prevMs || (ms === prevMs && seq > prevSeq)).toBe(true);
    }
  });

  it('stores many publishes issued in one tick in the order they were issued', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    // More than one call's worth (128 and more go out before the tick ends), on one key.
    const confirms = await Promise.all(
      Array.from({ length: 700 }, (_, i) =>
        sluice.publish('', 'q', { i }, { messageId: `m${i}`, partitionKey: 'one' }),
      ),
    );
    expect(confirms.map((confirm) => confirm.messageId)).toEqual(
      Array.from({ length: 700 }, (_, i) => `m${i}`),
    );
    expect(await queueMessageIds(redis, namespace, 'q')).toEqual(
      Array.from({ length: 700 }, (_, i) => `m${i}`),
    );
  });

  it('fails with NotFoundError for an unknown exchange', async () => {
    const { sluice } = await useSluice();
    await expect(sluice.publish('ghost', 'k', 1)).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('bodies and codecs', () => {
  it('round-trips Buffer, string and JSON bodies with their content types', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    const bodies: unknown[] = [Buffer.from([0, 255, 1]), 'héllo', { a: [1, 2] }, 42, null];
    for (const body of bodies) await sluice.publish('', 'q', body);
    const received: unknown[] = [];
    for await (const delivery of sluice.messages('q')) {
      received.push(delivery.body);
      await delivery.ack();
      if (received.length === bodies.length) break;
    }
    expect(received).toEqual(bodies);
  });

  it('uses a pluggable codec', async () => {
    const upper: Codec = {
      encode: (body) => ({
        data: Buffer.from(String(body).toUpperCase()),
        contentType: 'text/x-upper',
      }),
      decode: (data, contentType) => `${contentType}:${data.toString()}`,
    };
    const { sluice } = await useSluice({ codec: upper });
    await sluice.declareQueue('q');
    await sluice.publish('', 'q', 'shout');
    for await (const delivery of sluice.messages('q')) {
      expect(delivery.body).toBe('text/x-upper:SHOUT');
      await delivery.ack();
      break;
    }
  });

  it('stores every kind of body byte for byte, one call mixing bytes and text', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    const bodies: unknown[] = [
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
      Buffer.alloc(70_000, 0xfe), // larger than 64 KiB
      'text: déjà vu, 日本, 🎉, a lone \ud800 surrogate',
      'x'.repeat(70_000),
      { unicode: '日本 🎉', quote: '"\\', nested: [1, { a: null }] },
      '',
    ];
    // One tick: the publishes go out as one script call, Buffers and strings together.
    const confirms = await Promise.all(bodies.map((body) => sluice.publish('', 'q', body)));
    const entries = await redis.xrangeBuffer(streamKey(namespace, 'q'), '-', '+');
    expect(entries).toHaveLength(bodies.length);
    entries.forEach(([, fields], i) => {
      const envelope = decodeEnvelope(fields);
      expect(envelope.messageId).toBe(confirms[i]?.messageId);
      const body = bodies[i];
      const expected = typeof body === 'string' ? body.replace('\ud800', '\ufffd') : body;
      expect(defaultCodec.decode(envelope.body, envelope.contentType)).toEqual(expected);
    });
  });

  it('counts a text body in UTF-8 bytes against maxBodyBytes', async () => {
    const { sluice, redis, namespace } = await useSluice({ maxBodyBytes: 1024 });
    await sluice.declareQueue('q');
    // 513 characters, 1,026 bytes; the JSON text of the object, 1,028.
    await expect(sluice.publish('', 'q', 'é'.repeat(513))).rejects.toBeInstanceOf(
      MessageTooLargeError,
    );
    await expect(sluice.publish('', 'q', { t: 'é'.repeat(510) })).rejects.toBeInstanceOf(
      MessageTooLargeError,
    );
    expect(await redis.xlen(streamKey(namespace, 'q'))).toBe(0);
    await sluice.publish('', 'q', 'é'.repeat(512));
    expect(await redis.xlen(streamKey(namespace, 'q'))).toBe(1);
  });

  it('refuses a body over maxBodyBytes before sending anything', async () => {
    const { sluice, redis, namespace } = await useSluice({ maxBodyBytes: 1024 });
    await sluice.declareQueue('q');
    await expect(sluice.publish('', 'q', Buffer.alloc(1025))).rejects.toBeInstanceOf(
      MessageTooLargeError,
    );
    expect(await redis.xlen(streamKey(namespace, 'q'))).toBe(0);
  });

  it('validates every publish option before sending anything', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    const bad: [string, string, unknown, object][] = [
      ['', 'k'.repeat(256), 1, {}],
      ['bad:name', 'q', 1, {}],
      ['', 'q', 1, { headers: { nested: { a: 1 } } }],
      ['', 'q', 1, { headers: { n: null } }],
      ['', 'q', 1, { headers: { n: Number.NaN } }],
      ['', 'q', 1, { expirationMs: -5 }],
      ['', 'q', 1, { mandatory: 'yes' }],
      ['', 'q', 1, { messageId: '' }],
      ['', 'q', undefined, {}],
    ];
    for (const [exchange, routingKey, body, options] of bad) {
      const error: unknown = await sluice
        .publish(exchange, routingKey, body, options)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SluiceError);
      expect(['INVALID_ARGUMENT', 'CODEC']).toContain((error as SluiceError).code);
    }
    await expect(
      sluice.publishBatch([
        { exchange: '', routingKey: 'q', body: 1 },
        { exchange: '', routingKey: 'q', body: 1, options: { headers: { h: [] } } as object },
      ]),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await redis.xlen(streamKey(namespace, 'q'))).toBe(0);
  });
});
