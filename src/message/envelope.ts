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
  const map = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) {
    map.set((fields[i] as Buffer).toString('utf8'), fields[i + 1] as Buffer);
  }
  const text = (name: string): string | undefined => map.get(name)?.toString('utf8');
  const required = (name: string): string => {
    const value = text(name);
    if (value === undefined) throw new MalformedEntryError(`entry lacks field '${name}'`);
    return value;
  };
  const integer = (name: string): number | undefined => {
    const value = text(name);
    if (value === undefined) return undefined;
    const parsed = Number(value);
    if (!Number.isSafeInteger(parsed) || parsed < 0) {
      throw new MalformedEntryError(`field '${name}' is not a non-negative integer`);
    }
    return parsed;
  };

  if (required(Field.version) !== ENVELOPE_VERSION) {
    throw new MalformedEntryError(`unknown envelope version '${text(Field.version)}'`);
  }
  const body = map.get(Field.body);
  if (body === undefined) throw new MalformedEntryError('entry has no body');
  const expirationMs = integer(Field.expirationMs);
  const correlationId = text(Field.correlationId);
  const deathHistory = decodeDeathHistory(text(Field.deaths));
  return {
    messageId: required(Field.messageId),
    exchange: required(Field.exchange),
    routingKey: required(Field.routingKey),
    publishedAt: integer(Field.publishedAt) ?? 0,
    headers: decodeHeaders(text(Field.headers)),
    contentType: required(Field.contentType),
    redeliveries: integer(Field.redeliveries) ?? 0,
    ...(expirationMs === undefined ? {} : { expirationMs }),
    ...(correlationId === undefined ? {} : { correlationId }),
    ...(deathHistory === undefined ? {} : { deathHistory }),
    body,
  };
}

function decodeDeathHistory(json: string | undefined): DeathHistory | undefined {
  if (json === undefined) return undefined;
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

function decodeHeaders(json: string | undefined): Headers {
  if (json === undefined) return {};
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
