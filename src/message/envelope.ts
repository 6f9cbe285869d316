import { parseDeathHistory, type DeathHistory } from '../dead-letter/death.js';
import type { Headers } from '../topology/types.js';

/** Version of the envelope layout written by this release. */
export const ENVELOPE_VERSION = '1';

/**
 * Stream field names. Short, because every entry repeats them; the body is always
 * the last field so that a human reading XRANGE output sees the metadata first.
 */
export const Field = {
  version: 'v',
  messageId: 'id',
  exchange: 'x',
  routingKey: 'rk',
  publishedAt: 'ts',
  headers: 'h',
  contentType: 'ct',
  expirationMs: 'exp',
  correlationId: 'cid',
  redeliveries: 'rc',
  deaths: 'dh',
  body: 'b',
} as const;

/** Everything a message carries besides its body. */
export interface EnvelopeMeta {
  readonly messageId: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly publishedAt: number;
  readonly headers: Headers;
  readonly contentType: string;
  readonly expirationMs?: number;
  readonly correlationId?: string;
  /** Deliveries before the current copy of the entry was written (carried across requeues). */
  readonly redeliveries: number;
  /** Set once the message has been dead-lettered. */
  readonly deathHistory?: DeathHistory;
}

/** A decoded stream entry. */
export interface Envelope extends EnvelopeMeta {
  readonly body: Buffer;
}

/** Flattens an envelope into XADD field/value arguments, body last. */
export function encodeEnvelope(meta: EnvelopeMeta, body: Buffer): (string | Buffer)[] {
  const fields: (string | Buffer)[] = [
    Field.version,
    ENVELOPE_VERSION,
    Field.messageId,
    meta.messageId,
    Field.exchange,
    meta.exchange,
    Field.routingKey,
    meta.routingKey,
    Field.publishedAt,
    String(meta.publishedAt),
    Field.contentType,
    meta.contentType,
  ];
  if (Object.keys(meta.headers).length > 0)
    fields.push(Field.headers, JSON.stringify(meta.headers));
  if (meta.expirationMs !== undefined) fields.push(Field.expirationMs, String(meta.expirationMs));
  if (meta.correlationId !== undefined) fields.push(Field.correlationId, meta.correlationId);
  if (meta.redeliveries > 0) fields.push(Field.redeliveries, String(meta.redeliveries));
  if (meta.deathHistory !== undefined) fields.push(Field.deaths, JSON.stringify(meta.deathHistory));
  fields.push(Field.body, body);
  return fields;
}

/**
 * The fields of a copy of a message sent on through another exchange (dead-lettering, DLQ
 * replay): same id, body, headers, content type and correlation id; a new exchange, routing
 * key and death history; a fresh delivery count; no expiration.
 */
export function encodeCopy(
  envelope: Envelope,
  route: { exchange: string; routingKey: string; deathHistory: DeathHistory | undefined },
): (string | Buffer)[] {
  return encodeEnvelope(
    {
      messageId: envelope.messageId,
      exchange: route.exchange,
      routingKey: route.routingKey,
      publishedAt: envelope.publishedAt,
      headers: envelope.headers,
      contentType: envelope.contentType,
      redeliveries: 0,
      ...(route.deathHistory === undefined ? {} : { deathHistory: route.deathHistory }),
      ...(envelope.correlationId === undefined ? {} : { correlationId: envelope.correlationId }),
    },
    envelope.body,
  );
}

/** Why an entry could not be read as a sluice message. */
export class MalformedEntryError extends Error {}

/**
 * Reads a stream entry's flat field list. Throws {@link MalformedEntryError} for an
 * entry that another program wrote or that lacks required fields; callers treat such
 * entries as poison instead of crashing.
 */
export function decodeEnvelope(fields: readonly Buffer[]): Envelope {
  // One pass, no intermediate map: this runs for every delivered message.
  let version: string | undefined;
  let messageId: string | undefined;
  let exchange: string | undefined;
  let routingKey: string | undefined;
  let contentType: string | undefined;
  let publishedAt = 0;
  let redeliveries = 0;
  let headers: Headers = {};
  let expirationMs: number | undefined;
  let correlationId: string | undefined;
  let deathHistory: DeathHistory | undefined;
  let body: Buffer | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1] as Buffer;
    switch ((fields[i] as Buffer).toString('latin1')) {
      case Field.version:
        version = value.toString('utf8');
        break;
      case Field.messageId:
        messageId = value.toString('utf8');
        break;
      case Field.exchange:
        exchange = value.toString('utf8');
        break;
      case Field.routingKey:
        routingKey = value.toString('utf8');
        break;
      case Field.contentType:
        contentType = value.toString('utf8');
        break;
      case Field.publishedAt:
        publishedAt = integerField(Field.publishedAt, value);
        break;
      case Field.redeliveries:
        redeliveries = integerField(Field.redeliveries, value);
        break;
      case Field.expirationMs:
        expirationMs = integerField(Field.expirationMs, value);
        break;
      case Field.headers:
        headers = decodeHeaders(value.toString('utf8'));
        break;
      case Field.correlationId:
        correlationId = value.toString('utf8');
        break;
      case Field.deaths:
        deathHistory = decodeDeathHistory(value.toString('utf8'));
        break;
      case Field.body:
        body = value;
        break;
    }
  }
  if (version !== ENVELOPE_VERSION)
    throw new MalformedEntryError(`unknown envelope version '${version}'`);
  if (messageId === undefined || exchange === undefined || routingKey === undefined) {
    throw new MalformedEntryError('entry lacks its message id, exchange or routing key');
  }
  if (contentType === undefined) throw new MalformedEntryError('entry lacks its content type');
  if (body === undefined) throw new MalformedEntryError('entry has no body');
  return {
    messageId,
    exchange,
    routingKey,
    publishedAt,
    headers,
    contentType,
    redeliveries,
    ...(expirationMs === undefined ? {} : { expirationMs }),
    ...(correlationId === undefined ? {} : { correlationId }),
    ...(deathHistory === undefined ? {} : { deathHistory }),
    body,
  };
}

function integerField(name: string, value: Buffer): number {
  const parsed = Number(value.toString('latin1'));
  if (!Number.isSafeInteger(parsed) || parsed < 0) {
    throw new MalformedEntryError(`field '${name}' is not a non-negative integer`);
  }
  return parsed;
}

function decodeDeathHistory(json: string): DeathHistory {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new MalformedEntryError('death history is not JSON');
  }
  const history = parseDeathHistory(parsed);
  if (history === undefined) throw new MalformedEntryError('death history has the wrong shape');
  return history;
}

function decodeHeaders(json: string): Headers {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new MalformedEntryError('headers are not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new MalformedEntryError('headers are not an object');
  }
  return parsed as Headers;
}
