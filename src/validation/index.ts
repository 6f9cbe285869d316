import { types } from 'node:util';
import { AccessRefusedError, InvalidArgumentError } from '../errors/index.js';
import type { Codec } from '../message/codec.js';
import type { Headers, HeaderValue } from '../message/headers.js';
import type { BindingArguments } from '../routing/headers.js';
import { MAX_TRACESTATE_LENGTH, parseTraceparent } from '../tracing/trace-context.js';

/** AMQP short strings (names, routing keys) are at most 255 bytes; sluice keeps that limit. */
export const MAX_NAME_BYTES = 255;

// The key schema uses ':' as separator and '{}' as hash tags; names must not forge either.
// C0 and C1 control characters are refused too.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_NAME_CHARS = /[:{}\s\u0000-\u001f\u007f-\u009f]/u;
/** A surrogate without its pair: Redis would store it as U+FFFD, so two such names would meet. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/u;

/** What a W3C `tracestate` is made of (its member list is the application's business). */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/u;

function byteLength(value: string): number {
  return Buffer.byteLength(value, 'utf8');
}

/** Checks an exchange, queue or namespace name. */
export function validateName(kind: string, name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new InvalidArgumentError(`${kind} name must be a string`);
  if (name.length === 0) throw new InvalidArgumentError(`${kind} name must not be empty`);
  if (byteLength(name) > MAX_NAME_BYTES) {
    throw new InvalidArgumentError(
      `${kind} name '${name.slice(0, 40)}…' exceeds ${MAX_NAME_BYTES} bytes`,
    );
  }
  if (FORBIDDEN_NAME_CHARS.test(name)) {
    throw new InvalidArgumentError(
      `${kind} name '${name}' contains a forbidden character (':', '{', '}', white space or control characters)`,
    );
  }
  validateWellFormed(`${kind} name`, name);
}

/** Refuses a string with a lone surrogate: it has no UTF-8 form, and Redis would change it. */
export function validateWellFormed(what: string, value: string): void {
  if (LONE_SURROGATE.test(value)) {
    throw new InvalidArgumentError(`${what} contains a lone surrogate (not valid Unicode)`);
  }
}

/** Checks a name that a user is about to declare: `amq.` is reserved, as in RabbitMQ. */
export function validateDeclaredName(kind: string, name: unknown): asserts name is string {
  validateName(kind, name);
  if (name.startsWith('amq.')) {
    throw new AccessRefusedError(`${kind} name '${name}' uses the reserved prefix 'amq.'`);
  }
}

/** Checks the exchange named in a publish: a declared name, or `""` for the default exchange. */
export function validateExchangeReference(name: unknown): asserts name is string {
  if (name === '') return;
  validateName('exchange', name);
}

/** Checks a routing key: any string of at most 255 bytes. */
export function validateRoutingKey(routingKey: unknown): asserts routingKey is string {
  if (typeof routingKey !== 'string')
    throw new InvalidArgumentError('routing key must be a string');
  if (byteLength(routingKey) > MAX_NAME_BYTES) {
    throw new InvalidArgumentError(`routing key exceeds ${MAX_NAME_BYTES} bytes`);
  }
  validateWellFormed('routing key', routingKey);
}

/**
 * Checks a topic binding key. RabbitMQ would accept `a*` or `#b` as literal words, which
 * is never what the user meant: sluice refuses a word that mixes a wildcard with text.
 */
export function validateTopicPattern(pattern: unknown): asserts pattern is string {
  validateRoutingKey(pattern);
  for (const word of pattern.split('.')) {
    if (word.length > 1 && (word.includes('*') || word.includes('#'))) {
      throw new InvalidArgumentError(
        `topic pattern '${pattern}' has the word '${word}': '*' and '#' must stand alone between dots`,
      );
    }
  }
}

function validateHeaderValue(
  where: string,
  key: string,
  value: unknown,
): asserts value is HeaderValue {
  const ok =
    typeof value === 'string' ||
    typeof value === 'boolean' ||
    (typeof value === 'number' && Number.isFinite(value));
  if (!ok) {
    throw new InvalidArgumentError(
      `${where} '${key}' must be a string, a finite number or a boolean, not ${value === null ? 'null' : typeof value}`,
    );
  }
}

/**
 * A plain object (`{}` or `Object.create(null)`): not a Map, an array, a Buffer, a class
 * instance or a Proxy (whose every read runs code of its own).
 */
function isPlainObject(value: unknown): value is Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || types.isProxy(value)) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

/** The own property of `value` that is a getter or a setter, if any. */
function accessorOf(value: object): string | undefined {
  // One descriptor per own string key, and no array of them: this runs for every publish.
  for (const key of Object.getOwnPropertyNames(value)) {
    const descriptor = Object.getOwnPropertyDescriptor(value, key) as PropertyDescriptor;
    if (descriptor.get !== undefined || descriptor.set !== undefined) return key;
  }
  return undefined;
}

/**
 * Refuses a getter or setter among `value`'s own properties. sluice reads an option more than
 * once (to check it, then to use it): a getter could throw there, or answer differently.
 */
function validateDataProperties(name: string, value: object): void {
  const accessor = accessorOf(value);
  if (accessor !== undefined) {
    throw new InvalidArgumentError(`${name}: '${accessor}' is a getter or setter, not a value`);
  }
}

/**
 * True for data sluice can read as options: a plain object (see {@link isPlainObject}) whose
 * own properties are values, not getters or setters.
 */
export function isPlainData(value: unknown): value is Readonly<Record<string, unknown>> {
  return isPlainObject(value) && accessorOf(value) === undefined;
}

/**
 * True when `value` is an object (a class instance too) whose `methods` are functions, read
 * once each: a getter or proxy that throws makes it no such object, rather than an exception.
 */
export function hasMethods(value: unknown, methods: readonly string[]): boolean {
  if ((typeof value !== 'object' || value === null) && typeof value !== 'function') return false;
  try {
    return methods.every(
      (method) => typeof (value as Record<string, unknown>)[method] === 'function',
    );
  } catch {
    return false;
  }
}

/** Checks a codec: an object (a class instance too) with `encode` and `decode` functions. */
export function validateCodec(codec: unknown): asserts codec is Codec {
  if (!hasMethods(codec, ['encode', 'decode'])) {
    throw new InvalidArgumentError('codec must be an object with encode and decode functions');
  }
}

/** Checks an event listener: `name` one of the emitter's `names`, `listener` a function. */
export function validateListener(
  name: unknown,
  listener: unknown,
  names: ReadonlySet<string>,
): void {
  if (typeof name !== 'string' || !names.has(name)) {
    const given = typeof name === 'string' ? `'${name}'` : `a ${typeof name}`;
    throw new InvalidArgumentError(`no event named ${given} (events: ${[...names].join(', ')})`);
  }
  if (typeof listener !== 'function') {
    throw new InvalidArgumentError(`the listener of '${name}' must be a function`);
  }
}

/** Checks an array of items sluice will read one by one: not a Proxy, no element a getter. */
export function validateArray(name: string, value: unknown): asserts value is readonly unknown[] {
  if (!Array.isArray(value) || types.isProxy(value)) {
    throw new InvalidArgumentError(`${name} must be an array`);
  }
  validateDataProperties(name, value);
}

function validateHeaderMap(
  where: string,
  value: unknown,
  nullAllowed: boolean,
): asserts value is Headers {
  if (!isPlainObject(value)) throw new InvalidArgumentError(`${where}s must be a plain object`);
  validateDataProperties(`${where}s`, value);
  for (const [key, item] of Object.entries(value)) {
    if (key.length === 0 || byteLength(key) > MAX_NAME_BYTES) {
      throw new InvalidArgumentError(`${where} names must be 1 to ${MAX_NAME_BYTES} bytes`);
    }
    validateWellFormed(`${where} name`, key);
    if (!(nullAllowed && item === null)) validateHeaderValue(where, key, item);
    if (typeof item === 'string') validateWellFormed(`${where} '${key}'`, item);
  }
}

/** Checks message headers: string keys, string / number / boolean values. */
export function validateHeaders(headers: unknown): asserts headers is Headers {
  validateHeaderMap('header', headers, false);
}

const X_MATCH = new Set(['all', 'any', 'all-with-x', 'any-with-x']);

/**
 * Checks the arguments of a headers-exchange binding, including `x-match`; a `null` value
 * means "the header is present, whatever its value", as RabbitMQ's void-typed argument.
 */
export function validateBindingArguments(args: unknown): asserts args is BindingArguments {
  validateHeaderMap('binding argument', args, true);
  const xMatch = args['x-match'];
  if (xMatch !== undefined && (typeof xMatch !== 'string' || !X_MATCH.has(xMatch))) {
    throw new InvalidArgumentError(`x-match must be one of ${[...X_MATCH].join(', ')}`);
  }
}

/** Checks that an optional option is an integer within [min, max]. */
export function validateIntegerOption(
  name: string,
  value: unknown,
  min: number,
  max: number,
): asserts value is number | undefined {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
  }
}

/** Checks that an optional option is a boolean. */
export function validateBooleanOption(
  name: string,
  value: unknown,
): asserts value is boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new InvalidArgumentError(`${name} must be a boolean`);
  }
}

/** Checks that an optional option is a non-empty string of at most 255 bytes. */
export function validateStringOption(
  name: string,
  value: unknown,
): asserts value is string | undefined {
  if (value === undefined) return;
  if (typeof value !== 'string' || value.length === 0 || byteLength(value) > MAX_NAME_BYTES) {
    throw new InvalidArgumentError(
      `${name} must be a non-empty string of at most ${MAX_NAME_BYTES} bytes`,
    );
  }
  validateWellFormed(name, value);
}

/**
 * Checks the optional W3C trace context of a publish: `traceparent` a valid header value (see
 * {@link parseTraceparent}), `tracestate` a printable ASCII string of at most 512 characters
 * that comes with a `traceparent`.
 */
export function validateTraceContext(traceparent: unknown, tracestate: unknown): void {
  if (traceparent !== undefined) {
    if (typeof traceparent !== 'string' || parseTraceparent(traceparent) === undefined) {
      throw new InvalidArgumentError(
        'traceparent must be a W3C traceparent header value (00-<32 hex>-<16 hex>-<2 hex>)',
      );
    }
  }
  if (tracestate === undefined) return;
  if (
    typeof tracestate !== 'string' ||
    tracestate.length > MAX_TRACESTATE_LENGTH ||
    !PRINTABLE_ASCII.test(tracestate)
  ) {
    throw new InvalidArgumentError(
      `tracestate must be printable ASCII of at most ${MAX_TRACESTATE_LENGTH} characters`,
    );
  }
  if (traceparent === undefined) throw new InvalidArgumentError('tracestate requires traceparent');
}

/** Checks that an optional option is one of the allowed literals. */
export function validateEnumOption<T extends string>(
  name: string,
  value: unknown,
  allowed: readonly T[],
): asserts value is T | undefined {
  if (value !== undefined && !allowed.includes(value as T)) {
    throw new InvalidArgumentError(`${name} must be one of ${allowed.join(', ')}`);
  }
}

/**
 * The option names of `T`, from an object naming each one (the compiler checks that it names
 * them all and nothing else), for {@link validateOptionsObject}.
 */
export function optionNames<T>(
  names: Readonly<Record<keyof Required<T>, true>>,
): ReadonlySet<string> {
  return new Set(Object.keys(names));
}

/**
 * Checks that options is undefined or plain data (a plain object of values: no Proxy, getter or
 * setter), so that property reads are safe, whose names are all among `allowed`: a misspelt
 * option (`maxDelivery`) is refused, not ignored.
 */
export function validateOptionsObject(
  name: string,
  value: unknown,
  allowed: ReadonlySet<string>,
): asserts value is object | undefined {
  if (value === undefined) return;
  if (!isPlainObject(value)) throw new InvalidArgumentError(`${name} must be a plain object`);
  validateDataProperties(name, value);
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) {
      throw new InvalidArgumentError(
        `${name}: unknown option '${key}' (known: ${[...allowed].join(', ')})`,
      );
    }
  }
}
