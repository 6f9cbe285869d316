/**
 * W3C Trace Context (the `traceparent` and `tracestate` headers) as a message carries it: pure
 * parsing and formatting, shared by publish validation and the OpenTelemetry spans.
 */

/** A trace context as a message carries it: `traceparent`, and `tracestate` when there is one. */
export interface TraceContext {
  readonly traceparent: string;
  readonly tracestate?: string | undefined;
}

/** The parts of a `traceparent`. */
export interface TraceParent {
  readonly traceId: string;
  readonly spanId: string;
  /** The trace flags byte (bit 0: sampled). */
  readonly traceFlags: number;
}

/** The longest `tracestate` the W3C specification has a member list for: 32 members. */
export const MAX_TRACESTATE_LENGTH = 512;

// version-traceid-parentid-flags, lower-case hex; a later version may append fields after '-'.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/u;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/**
 * The parts of a `traceparent` header, or undefined when it is not a valid one: version `ff`,
 * an all-zero trace or span id, or fields after the flags in version `00` are invalid.
 */
export function parseTraceparent(value: string): TraceParent | undefined {
  const match = TRACEPARENT.exec(value);
  if (match === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string | undefined,
  ];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE_ID || spanId === ZERO_SPAN_ID) return undefined;
  return { traceId, spanId, traceFlags: parseInt(flags, 16) };
}

/** A version `00` `traceparent` header of `parent`. */
export function formatTraceparent(parent: TraceParent): string {
  const flags = (parent.traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${parent.traceId}-${parent.spanId}-${flags}`;
}
