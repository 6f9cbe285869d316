import { describe, expect, it } from 'vitest';
import { recordDeath } from '../../src/dead-letter/death.js';
import { decodeEnvelope, encodeEnvelope, MalformedEntryError } from '../../src/message/envelope.js';
import { defaultCodec } from '../../src/message/codec.js';

const asBuffers = (fields: (string | Buffer)[]): Buffer[] =>
  fields.map((f) => (Buffer.isBuffer(f) ? f : Buffer.from(f)));

describe('envelope', () => {
  const meta = {
    messageId: 'm-1',
    exchange: 'orders',
    routingKey: 'order.created',
    publishedAt: 1700000000000,
    headers: { tenant: 'acme', n: 2, ok: true },
    contentType: 'application/json',
    redeliveries: 3,
    expirationMs: 5000,
    correlationId: 'c-1',
    deathHistory: recordDeath(undefined, {
      queue: 'q',
      reason: 'rejected',
      time: 1,
      exchange: 'x',
      routingKey: 'k',
    }),
  };

  it('round-trips every field, body last', () => {
    const body = Buffer.from([0, 1, 2, 255]);
    const fields = encodeEnvelope(meta, body);
    expect(fields.at(-2)).toBe('b');
    expect(decodeEnvelope(asBuffers(fields))).toEqual({ ...meta, body });
  });

  it('omits optional fields that are not set', () => {
    const fields = encodeEnvelope(
      {
        ...meta,
        headers: {},
        redeliveries: 0,
        expirationMs: undefined,
        correlationId: undefined,
        deathHistory: undefined,
      } as never,
      Buffer.alloc(0),
    );
    expect(fields.filter((_, i) => i % 2 === 0)).toEqual(['v', 'id', 'x', 'rk', 'ts', 'ct', 'b']);
  });

  it('refuses foreign and damaged entries with MalformedEntryError', () => {
    const good = asBuffers(encodeEnvelope(meta, Buffer.from('x')));
    const bad = [
      asBuffers(['foo', 'bar']),
      good.map((f, i) => (i === 1 ? Buffer.from('9') : f)),
      good.slice(0, -2),
      good.map((f, i) => (good[i - 1]?.toString() === 'h' ? Buffer.from('{nope') : f)),
      good.map((f, i) => (good[i - 1]?.toString() === 'rc' ? Buffer.from('-1') : f)),
    ];
    for (const fields of bad) expect(() => decodeEnvelope(fields)).toThrow(MalformedEntryError);
  });
});

describe('default codec', () => {
  it('keeps Buffers, strings and JSON values apart by content type', () => {
    for (const body of [Buffer.from('raw'), 'text', { a: 1 }, [1, 2], 0, false, null]) {
      const { data, contentType } = defaultCodec.encode(body);
      expect(defaultCodec.decode(data, contentType)).toEqual(body);
    }
  });

  it('refuses bodies without a JSON form', () => {
    expect(() => defaultCodec.encode(undefined)).toThrow();
    expect(() => defaultCodec.encode(() => 1)).toThrow();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => defaultCodec.encode(cyclic)).toThrow();
  });
});
