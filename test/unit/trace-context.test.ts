import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors/index.js';
import { formatTraceparent, parseTraceparent } from '../../src/tracing/trace-context.js';
import { validateTraceContext } from '../../src/validation/index.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

describe('W3C trace context', () => {
  it('parses a traceparent into its trace id, span id and flags', () => {
    expect(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-01`)).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: 1,
    });
  });

  it('accepts fields after the flags in a later version only', () => {
    expect(parseTraceparent(`01-${TRACE_ID}-${SPAN_ID}-00-later`)).toMatchObject({
      traceFlags: 0,
    });
    expect(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-00-later`)).toBeUndefined();
  });

  it.each([
    ['version ff', `ff-${TRACE_ID}-${SPAN_ID}-01`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${SPAN_ID}-01`],
    ['an all-zero span id', `00-${TRACE_ID}-${'0'.repeat(16)}-01`],
    ['upper-case hex', `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`],
    ['a short trace id', `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01`],
    ['no flags', `00-${TRACE_ID}-${SPAN_ID}`],
    ['an empty string', ''],
  ])('refuses %s', (_, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it('formats a version 00 traceparent that parses back', () => {
    const text = formatTraceparent({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 3 });
    expect(text).toBe(`00-${TRACE_ID}-${SPAN_ID}-03`);
    expect(parseTraceparent(text)).toEqual({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 3 });
  });

  it('validates the publish options traceparent and tracestate', () => {
    const traceparent = `00-${TRACE_ID}-${SPAN_ID}-01`;
    expect(() => validateTraceContext(undefined, undefined)).not.toThrow();
    expect(() => validateTraceContext(traceparent, 'a=1,b=2')).not.toThrow();
    for (const [parent, state] of [
      ['nope', undefined],
      [42, undefined],
      [traceparent, 'x'.repeat(513)],
      [traceparent, 'é=1'],
      [traceparent, 7],
      [undefined, 'a=1'],
    ] as const) {
      expect(() => validateTraceContext(parent, state)).toThrow(InvalidArgumentError);
    }
  });
});
