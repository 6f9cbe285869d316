/**
 * The last error a handler threw, as it travels with a message: written into the entry when the
 * failed delivery is requeued (src/lua/requeue.lua, field `le`), copied into the death record
 * when the message is dead-lettered. Bounded, because it is stored with every such entry and
 * read with it.
 */
import { inspect } from 'node:util';

/**
 * What a handler threw, as sluice keeps it with the message and its death record: the error's
 * message and the first lines of its stack, at most 2 KiB together (as JSON). A sluice
 * addition: RabbitMQ's `x-death` has no such field.
 */
export interface ErrorRecord {
  /** The error's `message`; for a thrown value that is not an error, the value as text. */
  readonly message: string;
  /** The first lines of the error's `stack` (its first line names the error); absent without one. */
  readonly stack?: string | undefined;
}

/** Most bytes the stored form of an {@link ErrorRecord} takes (its JSON, UTF-8). */
export const MAX_ERROR_RECORD_BYTES = 2048;
/** Most bytes of the message; the stack has what is left. */
const MAX_MESSAGE_BYTES = 512;
/** What the JSON of a record adds around its two strings: `{"message":"","stack":""}`. */
const RECORD_OVERHEAD_BYTES = 25;
/** Marks a message that was cut short. */
const ELLIPSIS = '…';

/** How many bytes `text` takes inside a JSON string (escapes included), in UTF-8. */
function jsonBytes(text: string): number {
  return Buffer.byteLength(JSON.stringify(text), 'utf8') - 2;
}

/**
 * The longest start of `text` that takes at most `maxBytes` as JSON string content, never
 * splitting a surrogate pair. Every character takes at least a byte, so no more than `maxBytes`
 * characters can fit: the search runs over those only, however long `text` is.
 */
function fit(text: string, maxBytes: number): string {
  if (text.length <= maxBytes && jsonBytes(text) <= maxBytes) return text;
  let low = 0;
  let high = Math.min(text.length, maxBytes);
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (jsonBytes(text.slice(0, middle)) <= maxBytes) low = middle;
    else high = middle - 1;
  }
  const last = text.charCodeAt(low - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? low - 1 : low);
}

/** The message, or as much of it as fits followed by `…`. */
function trimMessage(message: string): string {
  if (fit(message, MAX_MESSAGE_BYTES) === message) return message;
  return fit(message, MAX_MESSAGE_BYTES - jsonBytes(ELLIPSIS)) + ELLIPSIS;
}

/** The stack's first lines that fit in `maxBytes` (whole lines, unless the first does not fit). */
function trimStack(stack: string, maxBytes: number): string {
  const kept = fit(stack, maxBytes);
  if (kept.length === stack.length) return stack;
  const lastLine = kept.lastIndexOf('\n');
  return lastLine > 0 ? kept.slice(0, lastLine) : kept;
}

/** The message and stack of a thrown value; never throws, whatever was thrown. */
function describeThrown(thrown: unknown): { message: string; stack: string | undefined } {
  try {
    if (typeof thrown === 'string') return { message: thrown, stack: undefined };
    // An Error of this realm or another (a vm context, a worker's structured clone).
    if (typeof thrown === 'object' && thrown !== null && 'message' in thrown) {
      const { message, stack } = thrown as { message: unknown; stack?: unknown };
      if (typeof message === 'string') {
        return { message, stack: typeof stack === 'string' ? stack : undefined };
      }
    }
    const text = inspect(thrown, { depth: 2, breakLength: Infinity, maxStringLength: 512 });
    return { message: text, stack: undefined };
  } catch {
    // A revoked proxy, a getter or a custom inspect that throws.
    return { message: `a thrown ${typeof thrown} that cannot be shown`, stack: undefined };
  }
}

/**
 * The record of what a handler threw: an error's message and the first lines of its stack, any
 * other value as text (`inspect`ed, so that circular objects, symbols and bigints are safe).
 * Its stored form takes at most {@link MAX_ERROR_RECORD_BYTES}: a longer message is cut and
 * ends with `…`, a longer stack loses its last lines.
 */
export function recordError(thrown: unknown): ErrorRecord {
  const described = describeThrown(thrown);
  const message = trimMessage(described.message);
  if (described.stack === undefined) return { message };
  const room = MAX_ERROR_RECORD_BYTES - RECORD_OVERHEAD_BYTES - jsonBytes(message);
  return { message, stack: trimStack(described.stack, room) };
}

/** The stored form of a record (the entry field `le`). */
export function encodeErrorRecord(record: ErrorRecord): string {
  return JSON.stringify(record);
}

/** Whether `value` has the shape of an {@link ErrorRecord}. */
export function isErrorRecord(value: unknown): value is ErrorRecord {
  if (typeof value !== 'object' || value === null) return false;
  const { message, stack } = value as Record<string, unknown>;
  return typeof message === 'string' && (stack === undefined || typeof stack === 'string');
}

/**
 * Reads the stored form back; undefined when it is not one. A diagnostic that another program
 * garbled is ignored rather than making its message unreadable.
 */
export function parseErrorRecord(text: string): ErrorRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isErrorRecord(value) ? value : undefined;
}
