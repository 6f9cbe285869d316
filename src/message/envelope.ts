import { parseDeathHistory, type DeathHistory } from './death-history.js';
import { parseErrorRecord, type ErrorRecord } from './error-record.js';
import type { Headers } from './headers.js';
import { Field } from './fields.js';

/** Version of the envelope layout written by this release: the first element of `m`. */
export const ENVELOPE_VERSION = 2;

/** The bytes of the field names, as decodeEnvelope compares them. */
const M = 0x6d; // 'm'
const B = 0x62; // 'b'
const R = 0x72; // 'r'
const C = 0x63; // 'c'
const E = 0x65; // 'e'
const Q = 0x71; // 'q'
const L = 0x6c; // 'l'

/**
 * Positions in the `m` array: version, message id, exchange, routing key, publish time,
 * content type, then the optional headers, expiration, correlation id, death history, dedup
 * key, partition key and W3C trace context (`traceparent`, `tracestate`) (null when absent, the
 * dedup key also when it is the message id; trailing absent ones left out). A reader of an
 * earlier release ignores the positions it does not know.
 */
const enum Meta {
  Version,
  MessageId,
  Exchange,
  RoutingKey,
  PublishedAt,
  ContentType,
  Headers,
  ExpirationMs,
  CorrelationId,
  DeathHistory,
  DedupKey,
  PartitionKey,
  TraceParent,
  TraceState,
}

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
  /** The key the producer deduplicated on, when it is not the message id. */
  readonly dedupKey?: string;
  /** The partition key the producer gave, when it gave one (else the routing key is it). */
  readonly partitionKey?: string;
  /** W3C trace context of the publish (the `traceparent` header's format), when it had one. */
  readonly traceparent?: string;
  /** W3C `tracestate` that goes with {@link traceparent}. */
  readonly tracestate?: string;
}

/** A decoded stream entry. */
export interface Envelope extends EnvelopeMeta {
  readonly body: Buffer;
  /**
   * When the message first entered its queue, if it was requeued since (ms since the epoch);
   * otherwise its stream id tells. Written by the requeue script only.
   */
  readonly enqueuedAt?: number;
  /**
   * The last error a handler threw for the message, recorded by the requeue after it; a copy
   * (dead-lettering, replay) carries it in its death record instead.
   */
  readonly lastError?: ErrorRecord;
}

/** JSON texts of the strings that repeat from message to message (exchanges, routing keys, content types). */
const quoted = new Map<string, string>();
/** Bounds {@link quoted}: an application with many distinct routing keys starts it over. */
const MAX_QUOTED = 1024;

function quote(text: string): string {
  let json = quoted.get(text);
  if (json === undefined) {
    if (quoted.size >= MAX_QUOTED) quoted.clear();
    json = JSON.stringify(text);
    quoted.set(text, json);
  }
  return json;
}

/** Flattens an envelope into XADD field/value arguments, body last. */
export function encodeEnvelope(meta: EnvelopeMeta, body: Buffer | string): (string | Buffer)[] {
  // The `m` array written as text: the same JSON as JSON.stringify of it, at half the cost on
  // the publish path (the repeated strings' JSON comes from a cache).
  let json = `[${ENVELOPE_VERSION},${JSON.stringify(meta.messageId)},${quote(meta.exchange)},${quote(meta.routingKey)},${meta.publishedAt},${quote(meta.contentType)}`;
  const optional: unknown[] = [
    Object.keys(meta.headers).length > 0 ? meta.headers : null,
    meta.expirationMs ?? null,
    meta.correlationId ?? null,
    meta.deathHistory ?? null,
    meta.dedupKey === undefined || meta.dedupKey === meta.messageId ? null : meta.dedupKey,
    meta.partitionKey ?? null,
    meta.traceparent ?? null,
    meta.tracestate ?? null,
  ];
  while (optional.length > 0 && optional[optional.length - 1] === null) optional.pop();
  if (optional.length > 0) json += `,${JSON.stringify(optional).slice(1, -1)}`;
  const fields: (string | Buffer)[] = [Field.meta, `${json}]`];
  if (meta.redeliveries > 0) fields.push(Field.redeliveries, String(meta.redeliveries));
  fields.push(Field.body, body);
  return fields;
}

/**
 * The fields of a copy of a message sent on through another exchange (dead-lettering, DLQ
 * replay): same id, dedup key, body, headers, content type, correlation id and trace context (a
 * dead letter stays in its publish's trace); a new exchange,
 * routing key and death history; a fresh delivery count; no expiration.
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
      ...(envelope.dedupKey === undefined ? {} : { dedupKey: envelope.dedupKey }),
      ...(envelope.partitionKey === undefined ? {} : { partitionKey: envelope.partitionKey }),
      ...(envelope.traceparent === undefined ? {} : { traceparent: envelope.traceparent }),
      ...(envelope.tracestate === undefined ? {} : { tracestate: envelope.tracestate }),
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
  let meta: string | undefined;
  let redeliveries = 0;
  let enqueuedAt: number | undefined;
  let lastError: ErrorRecord | undefined;
  let body: Buffer | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1] as Buffer;
    // Field names compared as bytes: no string per field of every message read.
    const name = fields[i] as Buffer;
    if (name.length === 1 && name[0] === M) meta = value.toString('utf8');
    else if (name.length === 1 && name[0] === B) body = value;
    else if (name.length === 2 && name[0] === R && name[1] === C) {
      redeliveries = integerField(Field.redeliveries, value);
    } else if (name.length === 2 && name[0] === E && name[1] === Q) {
      enqueuedAt = integerField(Field.enqueuedAt, value);
    } else if (name.length === 2 && name[0] === L && name[1] === E) {
      lastError = parseErrorRecord(value.toString('utf8'));
    }
  }
  if (meta === undefined) throw new MalformedEntryError('entry has no metadata');
  if (body === undefined) throw new MalformedEntryError('entry has no body');
  let packed: unknown;
  try {
    packed = JSON.parse(meta);
  } catch {
    throw new MalformedEntryError('metadata is not JSON');
  }
  if (!Array.isArray(packed) || packed[Meta.Version] !== ENVELOPE_VERSION) {
    throw new MalformedEntryError('unknown envelope version');
  }
  // JSON.parse gives `any[]`; read it as unknowns.
  const envelope: { -readonly [K in keyof Envelope]: Envelope[K] } = {
    messageId: metaText(packed, Meta.MessageId),
    exchange: metaText(packed, Meta.Exchange),
    routingKey: metaText(packed, Meta.RoutingKey),
    publishedAt: metaInteger(packed, Meta.PublishedAt) ?? 0,
    contentType: metaText(packed, Meta.ContentType),
    headers: decodeHeaders(packed[Meta.Headers] ?? undefined),
    redeliveries,
    body,
  };
  // Optional fields are set only when present (no spread objects: this runs per message).
  const expirationMs = metaInteger(packed, Meta.ExpirationMs);
  if (expirationMs !== undefined) envelope.expirationMs = expirationMs;
  if (enqueuedAt !== undefined) envelope.enqueuedAt = enqueuedAt;
  if (lastError !== undefined) envelope.lastError = lastError;
  const correlationId: unknown = packed[Meta.CorrelationId] ?? undefined;
  if (correlationId !== undefined) {
    if (typeof correlationId !== 'string') {
      throw new MalformedEntryError('metadata correlation id is not a string');
    }
    envelope.correlationId = correlationId;
  }
  const deathHistory = decodeDeathHistory(packed[Meta.DeathHistory] ?? undefined);
  if (deathHistory !== undefined) envelope.deathHistory = deathHistory;
  const dedupKey: unknown = packed[Meta.DedupKey] ?? undefined;
  if (dedupKey !== undefined) {
    if (typeof dedupKey !== 'string')
      throw new MalformedEntryError('metadata dedup key is not a string');
    envelope.dedupKey = dedupKey;
  }
  const partitionKey = metaOptionalText(packed, Meta.PartitionKey);
  if (partitionKey !== undefined) envelope.partitionKey = partitionKey;
  const traceparent = metaOptionalText(packed, Meta.TraceParent);
  if (traceparent !== undefined) envelope.traceparent = traceparent;
  const tracestate = metaOptionalText(packed, Meta.TraceState);
  if (tracestate !== undefined) envelope.tracestate = tracestate;
  return envelope;
}

/** An optional text element: undefined when absent (null or past the end). */
function metaOptionalText(packed: readonly unknown[], index: Meta): string | undefined {
  const value = packed[index] ?? undefined;
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    throw new MalformedEntryError(`metadata element ${index} is not a string`);
  }
  return value;
}

function metaText(packed: readonly unknown[], index: Meta): string {
  const value = packed[index];
  if (typeof value !== 'string') {
    throw new MalformedEntryError(`metadata element ${index} is not a string`);
  }
  return value;
}

function metaInteger(packed: readonly unknown[], index: Meta): number | undefined {
  const value = packed[index] ?? undefined;
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new MalformedEntryError(`metadata element ${index} is not a non-negative integer`);
  }
  return value;
}

function integerField(name: string, value: Buffer): number {
  const parsed = Number(value.toString('latin1'));
  if (!Number.isSafeInteger(parsed) || parsed < 0) {
    throw new MalformedEntryError(`field '${name}' is not a non-negative integer`);
  }
  return parsed;
}

function decodeHeaders(value: unknown): Headers {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MalformedEntryError('headers are not an object');
  }
  return value as Headers;
}

function decodeDeathHistory(value: unknown): DeathHistory | undefined {
  if (value === undefined) return undefined;
  const history = parseDeathHistory(value);
  if (history === undefined) throw new MalformedEntryError('death history has the wrong shape');
  return history;
}
