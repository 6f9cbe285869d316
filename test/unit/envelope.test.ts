import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { recordDeath } from '../../src/dead-letter/death.js';
import {
  decodeEnvelope,
  encodeCopy,
  encodeEnvelope,
  MalformedEntryError,
} from '../../src/message/envelope.js';
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

  it('round-trips the W3C trace context, and a copy (dead letter, replay) keeps it', () => {
    const traced = {
      ...meta,
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      tracestate: 'vendor=value',
    };
    const body = Buffer.from('x');
    const decoded = decodeEnvelope(asBuffers(encodeEnvelope(traced, body)));
    expect(decoded).toEqual({ ...traced, body });
    const copy = decodeEnvelope(
      asBuffers(encodeCopy(decoded, { exchange: 'dlx', routingKey: 'k', deathHistory: undefined })),
    );
    expect(copy).toMatchObject({ traceparent: traced.traceparent, tracestate: 'vendor=value' });
  });

  it('stores the metadata in one field, requeue count apart, body last', () => {
    const fields = encodeEnvelope(
      {
        ...meta,
        headers: {},
        redeliveries: 0,
        expirationMs: undefined,
        correlationId: undefined,
        deathHistory: undefined,
      } as never,
      Buffer.from('x'),
    );
    expect(fields.filter((_, i) => i % 2 === 0)).toEqual(['m', 'b']);
    expect(JSON.parse(fields[1] as string)).toEqual([
      2,
      'm-1',
      'orders',
      'order.created',
      1700000000000,
      'application/json',
    ]);
    expect(encodeEnvelope(meta, Buffer.from('x')).filter((_, i) => i % 2 === 0)).toEqual([
      'm',
      'rc',
      'b',
    ]);
  });

  it('writes its metadata as JSON.stringify would write its array, for any text and any optional field', () => {
    // The metadata is written as text, not through JSON.stringify of an array: quotes,
    // backslashes, control characters and lone surrogates (JSON escapes them) must come out as
    // JSON.stringify writes them, and every field back as it went in. Any UTF-16 code unit:
    const text = fc.string({ unit: fc.nat(0xffff).map((unit) => String.fromCharCode(unit)) });
    const optional = <T>(value: fc.Arbitrary<T>) => fc.option(value, { nil: undefined });
    fc.assert(
      fc.property(
        fc.record({
          messageId: text,
          exchange: text,
          routingKey: text,
          contentType: text,
          publishedAt: fc.nat(),
          headers: fc.dictionary(text, fc.oneof(text, fc.integer(), fc.boolean()), {
            maxKeys: 3,
          }),
          expirationMs: optional(fc.nat()),
          correlationId: optional(text),
          dedupKey: optional(text),
          partitionKey: optional(text),
          traceparent: optional(text),
          tracestate: optional(text),
        }),
        (drawn) => {
          const written = {
            ...Object.fromEntries(Object.entries(drawn).filter(([, v]) => v !== undefined)),
            redeliveries: 0,
          } as unknown as Parameters<typeof encodeEnvelope>[0];
          const fields = encodeEnvelope(written, 'body');
          // The form before: the array, trailing absent elements left out, JSON.stringify.
          const array: unknown[] = [
            2,
            drawn.messageId,
            drawn.exchange,
            drawn.routingKey,
            drawn.publishedAt,
            drawn.contentType,
            Object.keys(drawn.headers).length > 0 ? drawn.headers : null,
            drawn.expirationMs ?? null,
            drawn.correlationId ?? null,
            null,
            drawn.dedupKey === undefined || drawn.dedupKey === drawn.messageId
              ? null
              : drawn.dedupKey,
            drawn.partitionKey ?? null,
            drawn.traceparent ?? null,
            drawn.tracestate ?? null,
          ];
          while (array[array.length - 1] === null) array.pop();
          expect(fields[1]).toBe(JSON.stringify(array));
          const read = decodeEnvelope(asBuffers(fields));
          expect(read).toMatchObject({
            messageId: drawn.messageId,
            exchange: drawn.exchange,
            routingKey: drawn.routingKey,
            contentType: drawn.contentType,
            publishedAt: drawn.publishedAt,
            headers: drawn.headers,
          });
          expect(read.expirationMs).toBe(drawn.expirationMs);
          expect(read.correlationId).toBe(drawn.correlationId);
          expect(read.partitionKey).toBe(drawn.partitionKey);
          expect(read.traceparent).toBe(drawn.traceparent);
          expect(read.tracestate).toBe(drawn.tracestate);
        },
      ),
    );
  });

  it('refuses foreign and damaged entries with MalformedEntryError', () => {
    const good = asBuffers(encodeEnvelope(meta, Buffer.from('x')));
    const withMeta = (value: unknown): Buffer[] =>
      good.map((f, i) => (i === 1 ? Buffer.from(JSON.stringify(value)) : f));
    const packed = JSON.parse(good[1]?.toString() ?? '') as unknown[];
    const bad = [
      asBuffers(['foo', 'bar']),
      good.slice(0, -2),
      good.map((f, i) => (i === 1 ? Buffer.from('{nope') : f)),
      withMeta({ v: 2 }),
      withMeta([1, ...packed.slice(1)]),
      withMeta(packed.map((v, i) => (i === 1 ? 7 : v))),
      withMeta(packed.map((v, i) => (i === 4 ? -1 : v))),
      withMeta(packed.map((v, i) => (i === 6 ? [] : v))),
      withMeta(packed.map((v, i) => (i === 9 ? { deaths: 'x' } : v))),
      good.map((f, i) => (good[i - 1]?.toString() === 'rc' ? Buffer.from('-1') : f)),
    ];
    for (const fields of bad) expect(() => decodeEnvelope(fields)).toThrow(MalformedEntryError);
  });

  it("reads the last handler error a requeue wrote (field 'le'), and ignores a garbled one", () => {
    const fields = encodeEnvelope(meta, Buffer.from('x'));
    const withError = (value: string): Buffer[] =>
      asBuffers([...fields.slice(0, -2), 'le', value, ...fields.slice(-2)]);
    const record = { message: 'boom', stack: 'Error: boom\n    at handler (jobs.ts:1:1)' };
    expect(decodeEnvelope(withError(JSON.stringify(record))).lastError).toEqual(record);
    for (const garbled of ['{nope', '"boom"', '{"message":1}', '{"message":"m","stack":2}']) {
      const envelope = decodeEnvelope(withError(garbled));
      expect(envelope.lastError).toBeUndefined();
      expect(envelope.messageId).toBe('m-1');
    }
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
