/**
 * Hostile values of every JavaScript type, for property tests of the public API: primitives at
 * their edges, strings sluice must refuse or keep intact, exotic objects (proxies, throwing
 * getters, thenables, class instances), and arbitraries that mix them with valid values, per
 * argument and per option.
 */
import fc from 'fast-check';

/**
 * `value`, printed by fast-check as `label`: a proxy or a throwing getter cannot be printed by
 * reading it, and a counterexample must say what it was.
 */
function labelled<T extends object>(label: string, value: T): T {
  Object.defineProperty(value, fc.toStringMethod, { value: () => label });
  return value;
}

function hostileError(what: string): Error {
  return new Error(`hostile value: ${what}`);
}

/**
 * True for the keys fast-check itself reads of a value (to print or clone it, all symbols named
 * `fast-check/...`): the proxies below let those through.
 */
function isLabelKey(key: PropertyKey): boolean {
  return typeof key === 'symbol' && (key.description ?? '').startsWith('fast-check/');
}

/** A proxy of `target` whose every property read throws. */
function getThrows<T extends object>(label: string, target: T): T {
  return new Proxy(labelled(label, target), {
    get(inner, key, receiver) {
      if (isLabelKey(key)) return Reflect.get(inner, key, receiver) as unknown;
      throw hostileError(`get ${String(key)}`);
    },
  });
}

/** A proxy on which every operation throws: reads, `in`, keys, descriptors, its prototype. */
function everythingThrows(label: string): object {
  return new Proxy(labelled(label, {}), {
    get(inner, key, receiver) {
      if (isLabelKey(key)) return Reflect.get(inner, key, receiver) as unknown;
      throw hostileError(`get ${String(key)}`);
    },
    has(inner, key) {
      if (isLabelKey(key)) return Reflect.has(inner, key);
      throw hostileError(`has ${String(key)}`);
    },
    ownKeys() {
      throw hostileError('ownKeys');
    },
    getOwnPropertyDescriptor(inner, key) {
      if (isLabelKey(key)) return Reflect.getOwnPropertyDescriptor(inner, key);
      throw hostileError(`getOwnPropertyDescriptor ${String(key)}`);
    },
    getPrototypeOf() {
      throw hostileError('getPrototypeOf');
    },
  });
}

/** `values` (default none) with property `key` a getter that throws. */
function throwingGetter(key: string, values: Readonly<Record<string, unknown>> = {}): object {
  return labelled(
    `${fc.stringify(values)} with ${key} a getter that throws`,
    Object.defineProperty({ ...values }, key, {
      enumerable: true,
      get() {
        throw hostileError(`getter ${key}`);
      },
    }),
  );
}

/** `values` with property `key` turned into a getter: `first` on the first read, `later` after. */
function changingGetter(
  values: Readonly<Record<string, unknown>>,
  key: string,
  later: unknown,
): object {
  const copy: Record<string, unknown> = { ...values };
  const first = copy[key];
  let reads = 0;
  Object.defineProperty(copy, key, {
    enumerable: true,
    get: () => (reads++ === 0 ? first : later),
  });
  return labelled(`${fc.stringify(values)} with ${key} a getter that changes`, copy);
}

const neverSettles = labelled('a promise that never settles', new Promise<never>(() => undefined));
const rejected = labelled(
  'a rejected promise (handled)',
  Promise.reject(hostileError('rejected promise')),
);
rejected.catch(() => undefined);

class Widget {
  readonly name = 'widget';
  describe(): string {
    return this.name;
  }
}

const cyclic: Record<string, unknown> = { name: 'cyclic' };
cyclic['self'] = cyclic;

// eslint-disable-next-line no-sparse-arrays
const sparse: unknown[] = [, 'after a hole'];
const arrayWithGetter = Object.defineProperty([1, 2], 0, {
  get() {
    throw hostileError('array getter');
  },
});

/** Control characters, C0, DEL and C1, one string each. */
const CONTROLS = [
  ...Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)),
  ...Array.from({ length: 33 }, (_, i) => String.fromCharCode(0x7f + i)),
];

/** Numbers at every edge: not finite, negative zero, fractions, past 2^31, 2^53, and beyond. */
export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(
    NaN,
    Infinity,
    -Infinity,
    -0,
    0,
    -1,
    0.5,
    -0.5,
    1.5,
    99.999,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32,
    2 ** 53 - 1,
    2 ** 53 + 1,
    2 ** 64,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    Number.EPSILON,
    1e21,
    -1e21,
  ),
  fc.double(),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.maxSafeInteger(),
);

/** Strings sluice must refuse or keep intact: empty, too long, controls, lone surrogates, wildcards. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '*',
    '#',
    '*.#',
    'a*',
    '#b',
    '.',
    '..',
    'a b',
    ' a',
    'a\tb',
    'a:b',
    '{a}',
    'a}',
    '[a]?',
    '\\',
    'amq.',
    'amq.gen-1',
    '__proto__',
    'constructor',
    'toString',
    'x-match',
    'nul\u0000',
    '\u0085',
    '\u00a0',
    '\u2028',
    '\ufeff',
    '\ud800',
    '\udfff',
    'a\ud800b',
    '\udc00\ud800',
    '😀',
    'é',
    'x'.repeat(255),
    'x'.repeat(256),
    'é'.repeat(128),
    '😀'.repeat(64),
    'x'.repeat(70_000),
    '0-0',
    '1-0',
    '-1',
    '1-',
    '1e3-0',
    '01-01',
    ' 1-0',
    '18446744073709551615-18446744073709551615',
    '18446744073709551616-0',
    'redis://',
    'redis://127.0.0.1:1/0',
  ),
  fc.constantFrom(...CONTROLS),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({
    unit: fc.constantFrom(...CONTROLS, '*', '#', '.', ':', '{', '}', ' ', '\ud800', '\udc00', 'a'),
    maxLength: 12,
  }),
);

/** BigInts, which neither JSON nor Redis arguments take. */
const hostileBigInt: fc.Arbitrary<bigint> = fc.oneof(
  fc.constantFrom(0n, -1n, 1n, 2n ** 64n),
  fc.bigInt(),
);

const hostileSymbol: fc.Arbitrary<symbol> = fc.constantFrom(
  Symbol('hostile'),
  Symbol.for('hostile'),
  Symbol.iterator,
);

/** Functions of every kind, including ones that throw when called. */
export const hostileFunction: fc.Arbitrary<unknown> = fc.constantFrom(
  labelled('() => undefined', () => undefined),
  labelled('function named() {}', function named(): void {}),
  labelled('async () => { await }', async () => {
    await Promise.resolve();
  }),
  labelled('function* generator() {}', function* generator(): Generator<never> {}),
  labelled('class Klass {}', class Klass {}),
  labelled('() => { throw }', () => {
    throw hostileError('function called');
  }),
  labelled('async () => { throw }', () => Promise.reject(hostileError('async function called'))),
  labelled('Math.max', Math.max.bind(Math)),
  labelled(
    'a function proxy that throws when called',
    new Proxy(() => undefined, {
      apply() {
        throw hostileError('proxy called');
      },
    }),
  ),
  labelled(
    'a function with encode/decode properties',
    Object.assign(() => undefined, { encode: 1, decode: 2 }),
  ),
);

/**
 * Callbacks the application passes (handlers, listeners, `onProgress`): of the right type, and
 * some that throw or return a promise that rejects when sluice calls them.
 */
export const callbacks: readonly ((...args: unknown[]) => unknown)[] = [
  labelled('() => undefined', () => undefined),
  labelled('() => { throw }', () => {
    throw hostileError('callback called');
  }),
  labelled('() => Promise.reject()', () => Promise.reject(hostileError('callback rejected'))),
];
export const callback: fc.Arbitrary<(...args: unknown[]) => unknown> = fc.constantFrom(
  ...callbacks,
);

/** Arrays: empty, sparse, with holes only, nested, with a throwing element, behind a proxy. */
const hostileArray: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    labelled('[]', []),
    labelled('[undefined]', [undefined]),
    labelled('[null]', [null]),
    labelled("[1, 'a']", [1, 'a']),
    labelled('[[]]', [[]]),
    labelled('sparse [, x]', sparse),
    labelled('new Array(3)', new Array<unknown>(3)),
    labelled('new Array(10001)', new Array<unknown>(10_001)),
    labelled('an array whose element 0 is a throwing getter', arrayWithGetter),
    getThrows('an array proxy whose reads throw', [1, 2]),
  ),
  fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 3 }),
);

/** Objects that are not plain data: collections, boxed values, promises, proxies, getters. */
export const hostileObject: fc.Arbitrary<unknown> = fc.constantFrom(
  labelled('{}', {}),
  labelled('{ unknownOption: 1 }', { unknownOption: 1 }),
  labelled('Object.create(null)', Object.create(null) as object),
  labelled(
    'Object.create(null) with an unknown key',
    Object.assign(Object.create(null) as object, { unknownOption: true }),
  ),
  labelled('new Map', new Map([['prefetch', 1]])),
  labelled('new Set', new Set([1])),
  labelled('new WeakMap', new WeakMap()),
  labelled("Buffer.from('hostile')", Buffer.from('hostile')),
  labelled('Buffer.alloc(0)', Buffer.alloc(0)),
  labelled('new Uint8Array(2)', new Uint8Array(2)),
  labelled('new ArrayBuffer(2)', new ArrayBuffer(2)),
  labelled('new Date()', new Date()),
  labelled('new Date(NaN)', new Date(NaN)),
  labelled('/re/g', /re/g),
  labelled('new Error', hostileError('an error object')),
  labelled('new Widget()', new Widget()),
  Object.freeze(labelled('Object.freeze({})', {})),
  labelled("new String('q-a')", new String('q-a')),
  labelled('new Number(1)', new Number(1)),
  labelled('new Boolean(false)', new Boolean(false)),
  labelled('Promise.resolve(1)', Promise.resolve(1)),
  neverSettles,
  rejected,
  labelled('a thenable', { then: (resolve: (value: unknown) => void) => resolve(1) }),
  labelled('a thenable that throws', {
    then: () => {
      throw hostileError('then');
    },
  }),
  labelled('a cyclic object', cyclic),
  labelled('an object whose toJSON throws', {
    toJSON: () => {
      throw hostileError('toJSON');
    },
  }),
  labelled('an object whose toString and valueOf throw', {
    toString: () => {
      throw hostileError('toString');
    },
    valueOf: () => {
      throw hostileError('valueOf');
    },
  }),
  throwingGetter('prefetch'),
  throwingGetter('encode'),
  getThrows('a proxy whose reads throw', {}),
  everythingThrows('a proxy on which everything throws'),
  labelled('a transparent proxy of {}', new Proxy({}, {})),
);

/**
 * Objects that cannot be read: a proxy whose reads throw, one on which everything throws, and
 * getters that throw for the methods sluice looks for. For options that take an object of
 * their own shape (a codec, a Redis client, an idempotency store).
 */
export const unreadableObject: fc.Arbitrary<object> = fc.constantFrom(
  getThrows('a proxy whose reads throw', {}),
  everythingThrows('a proxy on which everything throws'),
  ...['encode', 'execute', 'defineCommand'].map((key) => throwingGetter(key)),
);

/** Any hostile value: every JavaScript type, at its edges. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, null, true, false),
  hostileNumber,
  hostileBigInt,
  hostileString,
  hostileSymbol,
  hostileFunction,
  hostileArray,
  hostileObject,
  fc.anything({
    maxDepth: 2,
    withBigInt: true,
    withBoxedValues: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withNullPrototype: true,
    withObjectString: true,
    withSparseArray: true,
    withTypedArray: true,
  }),
);

/**
 * An argument: a valid value (`valid`) or a hostile one; valid three times as often, so that calls
 * with several arguments still get past the first check often enough.
 */
export function argument(valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.oneof({ arbitrary: valid, weight: 3 }, { arbitrary: hostileValue, weight: 1 });
}

/**
 * An options argument: undefined, a hostile value, or an object of some of the known options
 * (each valid, or now and then hostile) in every shape a caller may hand over: plain (most
 * often), with an unknown key, without a prototype, with a getter that throws or one that
 * changes its answer, behind a proxy. Options named in `required` are always there, up to
 * four others.
 */
export function options(
  shape: Readonly<Record<string, fc.Arbitrary<unknown>>>,
  required: readonly string[] = [],
): fc.Arbitrary<unknown> {
  const names = Object.keys(shape);
  const option = (name: string): fc.Arbitrary<unknown> =>
    fc.oneof(
      { arbitrary: shape[name] as fc.Arbitrary<unknown>, weight: 8 },
      { arbitrary: hostileValue, weight: 1 },
      // Exotic objects once more, which the options that take an object should meet often.
      { arbitrary: hostileObject, weight: 1 },
    );
  // At most four options besides the required ones: enough to meet every pair, few enough
  // that a call often gets past them all.
  const optional = names.filter((name) => !required.includes(name));
  const record = fc
    .subarray(optional, { maxLength: Math.min(4, optional.length) })
    .chain((chosen) =>
      fc.record(Object.fromEntries([...required, ...chosen].map((name) => [name, option(name)]))),
    );
  const name = fc.constantFrom(...names);
  return fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 1 },
    { arbitrary: hostileValue, weight: 1 },
    { arbitrary: record, weight: 12 },
    record.map((values) => ({ ...values, unknownOption: 1 })),
    record.map((values) => Object.assign(Object.create(null) as object, values)),
    fc.tuple(record, name).map(([values, key]) => throwingGetter(key, values)),
    fc
      .tuple(record, name, hostileValue)
      .map(([values, key, later]) => changingGetter({ [key]: undefined, ...values }, key, later)),
    record.map((values) =>
      getThrows(`a proxy of ${fc.stringify(values)} whose reads throw`, values),
    ),
    record.map((values) =>
      labelled(`a transparent proxy of ${fc.stringify(values)}`, new Proxy(values, {})),
    ),
  );
}
