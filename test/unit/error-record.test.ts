import { describe, expect, it } from 'vitest';
import {
  MAX_ERROR_RECORD_BYTES,
  encodeErrorRecord,
  parseErrorRecord,
  recordError,
  type ErrorRecord,
} from '../../src/message/error-record.js';

/** A surrogate without its pair: what a cut through a pair would leave. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/u;

/** The bytes the stored form of a record takes. */
const storedBytes = (record: ErrorRecord): number =>
  Buffer.byteLength(encodeErrorRecord(record), 'utf8');

/** An error with a stack of `frames` frames of `width` characters each. */
function deepError(message: string, frames: number, width = 60): Error {
  const error = new Error(message);
  const lines = Array.from({ length: frames }, (_, i) => `    at f${i} (${'x'.repeat(width)})`);
  error.stack = [`Error: ${message}`, ...lines].join('\n');
  return error;
}

describe('error record', () => {
  it("keeps an error's message and stack", () => {
    const error = new TypeError('card declined');
    const record = recordError(error);
    expect(record.message).toBe('card declined');
    expect(record.stack).toBe(error.stack);
    expect(record.stack).toMatch(/^TypeError: card declined\n {4}at /u);
    expect(parseErrorRecord(encodeErrorRecord(record))).toEqual(record);
  });

  it('keeps the first whole lines of a long stack, within 2 KiB in all', () => {
    const error = deepError('timeout', 200);
    const record = recordError(error);
    expect(storedBytes(record)).toBeLessThanOrEqual(MAX_ERROR_RECORD_BYTES);
    expect(storedBytes(record)).toBeGreaterThan(MAX_ERROR_RECORD_BYTES - 100);
    expect(error.stack?.startsWith(`${record.stack ?? '-'}\n`)).toBe(true);
    expect(record.stack?.split('\n').at(-1)).toMatch(/^ {4}at f\d+ \(x+\)$/u);
  });

  it('cuts a long message, marked with an ellipsis, and still bounds the whole', () => {
    const record = recordError(deepError('é'.repeat(5000), 50));
    expect(record.message.endsWith('…')).toBe(true);
    expect(Buffer.byteLength(record.message)).toBeLessThanOrEqual(512);
    expect(record.message.slice(0, -1)).toBe('é'.repeat(record.message.length - 1));
    expect(storedBytes(record)).toBeLessThanOrEqual(MAX_ERROR_RECORD_BYTES);
  });

  it('counts escapes and multi-byte characters, and never splits a surrogate pair', () => {
    for (const unit of ['"', '\u0001', '😀', 'a😀']) {
      const text = unit.repeat(3000);
      const record = recordError(Object.assign(new Error(text), { stack: text }));
      expect(storedBytes(record)).toBeLessThanOrEqual(MAX_ERROR_RECORD_BYTES);
      for (const part of [record.message, record.stack ?? '']) {
        expect(part.length).toBeGreaterThan(0);
        expect(part).not.toMatch(LONE_SURROGATE);
      }
    }
  });

  it('shows a thrown value that is not an error, whatever it is', () => {
    const circular: Record<string, unknown> = { code: 42 };
    circular.self = circular;
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const hostile = {
      get message(): string {
        throw new Error('no');
      },
    };
    const cases: [unknown, RegExp][] = [
      ['plain text', /^plain text$/u],
      [42, /^42$/u],
      [10n, /^10n$/u],
      [null, /^null$/u],
      [undefined, /^undefined$/u],
      [Symbol('why'), /^Symbol\(why\)$/u],
      [{ message: 'error-like' }, /^error-like$/u],
      [{ message: 7 }, /message: 7/u],
      [circular, /<ref \*1> \{ code: 42, self: \[Circular \*1\] \}/u],
      [proxy, /^a thrown object that cannot be shown$/u],
      [hostile, /^a thrown object that cannot be shown$/u],
      ['x'.repeat(10_000), /^x+…$/u],
    ];
    for (const [thrown, shown] of cases) {
      const record = recordError(thrown);
      expect(record.message).toMatch(shown);
      expect(record.stack).toBeUndefined();
      expect(storedBytes(record)).toBeLessThanOrEqual(MAX_ERROR_RECORD_BYTES);
    }
  });

  it('reads back only what has the shape of a record', () => {
    expect(parseErrorRecord('{"message":"m"}')).toEqual({ message: 'm' });
    for (const text of ['', '{', 'null', '"m"', '{"stack":"s"}', '{"message":"m","stack":1}']) {
      expect(parseErrorRecord(text)).toBeUndefined();
    }
  });
});
