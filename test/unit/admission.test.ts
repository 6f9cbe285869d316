import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_DELIVERIES,
  admit,
  type AdmissionRules,
} from '../../src/consumer/admission.js';
import { defaultCodec, type Codec } from '../../src/message/codec.js';
import { encodeEnvelope, type EnvelopeMeta } from '../../src/message/envelope.js';

const PUBLISHED_AT = 1_700_000_000_000;
/** An entry id that entered the queue 10 ms after publish. */
const STREAM_ID = `${PUBLISHED_AT + 10}-0`;

const meta: EnvelopeMeta = {
  messageId: 'm-1',
  exchange: 'orders',
  routingKey: 'order.created',
  publishedAt: PUBLISHED_AT,
  headers: {},
  contentType: 'application/json',
  redeliveries: 0,
};

function fields(overrides: Partial<EnvelopeMeta> = {}, body = '{"n":1}'): Buffer[] {
  return encodeEnvelope({ ...meta, ...overrides }, Buffer.from(body)).map((field) =>
    Buffer.isBuffer(field) ? field : Buffer.from(field),
  );
}

interface DecideOptions {
  readonly timesDelivered?: number;
  readonly rules?: AdmissionRules;
  readonly nowMs?: number;
  readonly codec?: Codec;
}

function decide(
  entry: Buffer[] | null,
  {
    timesDelivered = 1,
    rules = {},
    nowMs = PUBLISHED_AT + 20,
    codec = defaultCodec,
  }: DecideOptions = {},
): ReturnType<typeof admit> {
  return admit(STREAM_ID, entry, timesDelivered, rules, nowMs, codec);
}

describe('admission', () => {
  it('delivers a readable message with its decoded body', () => {
    const admission = decide(fields());
    expect(admission).toMatchObject({ deliver: true, body: { n: 1 }, deliveryCount: 1 });
    expect(admission.deliver && admission.envelope.messageId).toBe('m-1');
  });

  it('counts deliveries across requeues: the envelope count plus the PEL count', () => {
    expect(decide(fields({ redeliveries: 2 }), { timesDelivered: 3 })).toMatchObject({
      deliver: true,
      deliveryCount: 5,
    });
  });

  describe('poison', () => {
    it('refuses an entry without data (trimmed while pending)', () => {
      expect(decide(null)).toEqual({ deliver: false, reason: 'poison', messageId: undefined });
    });

    it('refuses an entry another program wrote', () => {
      const foreign = ['foo', 'bar'].map((field) => Buffer.from(field));
      expect(decide(foreign)).toEqual({ deliver: false, reason: 'poison', messageId: undefined });
    });

    it('refuses a body the codec cannot decode', () => {
      expect(decide(fields({}, '{not json'))).toMatchObject({ deliver: false, reason: 'poison' });
      const refusing: Codec = {
        encode: (body) => defaultCodec.encode(body),
        decode: () => {
          throw new Error('no');
        },
      };
      expect(decide(fields(), { codec: refusing })).toMatchObject({ reason: 'poison' });
    });
  });

  describe('delivery limit', () => {
    it('delivers up to maxDeliveries and refuses the next one', () => {
      const rules = { maxDeliveries: 3 };
      expect(decide(fields({ redeliveries: 2 }), { rules })).toMatchObject({
        deliver: true,
        deliveryCount: 3,
      });
      expect(decide(fields({ redeliveries: 3 }), { rules })).toMatchObject({
        deliver: false,
        reason: 'delivery_limit',
        messageId: 'm-1',
      });
    });

    it('gives a queue declared without maxDeliveries 21 deliveries, as RabbitMQ 4.0 does', () => {
      expect(DEFAULT_MAX_DELIVERIES).toBe(21);
      expect(decide(fields({ redeliveries: 20 }))).toMatchObject({
        deliver: true,
        deliveryCount: 21,
      });
      expect(decide(fields({ redeliveries: 21 }))).toMatchObject({
        deliver: false,
        reason: 'delivery_limit',
      });
    });

    it("delivers without limit when maxDeliveries is 'unlimited'", () => {
      const rules = { maxDeliveries: 'unlimited' } as const;
      expect(decide(fields({ redeliveries: 1_000_000 }), { rules })).toMatchObject({
        deliver: true,
        deliveryCount: 1_000_001,
      });
    });
  });

  describe('expiry', () => {
    it('refuses a message past its own expiration, counted from publish', () => {
      const entry = fields({ expirationMs: 50 });
      expect(decide(entry, { nowMs: PUBLISHED_AT + 49 })).toMatchObject({ deliver: true });
      expect(decide(entry, { nowMs: PUBLISHED_AT + 50 })).toEqual({
        deliver: false,
        reason: 'expired',
        messageId: 'm-1',
      });
    });

    it("refuses a message past the queue's TTL, counted from entering the queue", () => {
      const rules = { messageTtlMs: 50 };
      expect(decide(fields(), { rules, nowMs: PUBLISHED_AT + 59 })).toMatchObject({
        deliver: true,
      });
      expect(decide(fields(), { rules, nowMs: PUBLISHED_AT + 60 })).toMatchObject({
        deliver: false,
        reason: 'expired',
      });
    });
  });

  it('checks poison first, then the delivery limit, then expiry', () => {
    const rules = { maxDeliveries: 1, messageTtlMs: 1 };
    const late = PUBLISHED_AT + 1000;
    expect(decide(null, { rules, nowMs: late, timesDelivered: 5 })).toMatchObject({
      reason: 'poison',
    });
    expect(decide(fields(), { rules, nowMs: late, timesDelivered: 2 })).toMatchObject({
      reason: 'delivery_limit',
    });
    expect(decide(fields(), { rules, nowMs: late, timesDelivered: 1 })).toMatchObject({
      reason: 'expired',
    });
  });

  it('answers the same for the same input (no clock or state of its own)', () => {
    const entry = fields({ expirationMs: 50 });
    const once = decide(entry, { nowMs: PUBLISHED_AT + 50 });
    expect(decide(entry, { nowMs: PUBLISHED_AT + 50 })).toEqual(once);
  });
});
