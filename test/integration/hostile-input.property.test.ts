/**
 * Every public operation, fed hostile values of every JavaScript type (test/support/hostile.ts)
 * mixed with valid ones, against a real Redis. For each call:
 * - it settles within a stated bound (its deadline option plus a margin), never hangs;
 * - an operation that returns a promise never throws instead, and one that rejects (or a
 *   synchronous operation that throws) does so with a SluiceError of a documented code; on a
 *   healthy server that is never SERVER, CONNECTION or TIMEOUT, which would mean that sluice
 *   sent Redis something it should have refused itself;
 * - a value that cannot be valid (a name that is not a string, options that are not plain data
 *   of known names and types) is refused, never accepted;
 * - a refusal writes nothing: the namespace's keys are the same before and after;
 * - no unhandled rejection or uncaught exception happens meanwhile.
 *
 * Seeded (HOSTILE_SEED, HOSTILE_RUNS override the defaults); fast-check prints the seed, the
 * path and the shrunk counterexample of a failure.
 */
import fc from 'fast-check';
import { types } from 'node:util';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  SETTLEMENT_TIMEOUT_MS,
  Sluice,
  SluiceError,
  defaultCodec,
  type ClientEvents,
  type Consumer,
  type ConsumerEventName,
  type Delivery,
  type ExchangeType,
  type MessageStream,
  type SluiceErrorCode,
} from '../../src/index.js';
import { Keyspace } from '../../src/keys/index.js';
import { Registry } from 'prom-client';
import { prometheusMetrics } from '../../src/prometheus/index.js';
import {
  argument,
  callback,
  callbacks,
  hostileFunction,
  hostileString,
  hostileValue,
  options,
  unreadableObject,
} from '../support/hostile.js';
import { redisUrl, waitFor } from '../support/index.js';
import { changedKeys, namespaceState } from '../support/namespace-state.js';
import { connectSluice, useSluice } from '../support/sluice.js';

const SEED = Number(process.env.HOSTILE_SEED ?? 20_251_202);
const RUNS = Number(process.env.HOSTILE_RUNS ?? 100);
const OPERATION_TIMEOUT_MS = 2000;
const CONFIRM_TIMEOUT_MS = 2000;
/** What a call may take beyond its own deadline (timers, a loaded 2-core machine). */
const MARGIN_MS = 1500;
const CLIENT_OPTIONS = {
  operationTimeoutMs: OPERATION_TIMEOUT_MS,
  confirmTimeoutMs: CONFIRM_TIMEOUT_MS,
  durabilityTimeoutMs: 50,
  maxBodyBytes: 64 * 1024,
} as const;
const ADMIN_BOUND_MS = OPERATION_TIMEOUT_MS + MARGIN_MS;
const PUBLISH_BOUND_MS = CONFIRM_TIMEOUT_MS + MARGIN_MS;

/** Every code of SluiceErrorCode; the compiler checks that none is missing. */
const DOCUMENTED_CODES: Readonly<Record<SluiceErrorCode, true>> = {
  INVALID_ARGUMENT: true,
  NOT_FOUND: true,
  PRECONDITION_FAILED: true,
  ACCESS_REFUSED: true,
  UNROUTABLE: true,
  MESSAGE_TOO_LARGE: true,
  CONNECTION: true,
  TIMEOUT: true,
  UNSUPPORTED: true,
  CLOSED: true,
  STALE_DELIVERY: true,
  CODEC: true,
  QUEUE_FULL: true,
  SERVER: true,
};
/** Codes a healthy, reachable server never causes: each would mean a validation gap. */
const UNHEALTHY: ReadonlySet<SluiceErrorCode> = new Set(['SERVER', 'CONNECTION', 'TIMEOUT']);

// ---------------------------------------------------------------------------------------------
// Outcomes of one call
// ---------------------------------------------------------------------------------------------

type Outcome =
  | { readonly kind: 'resolved' | 'returned'; readonly value: unknown }
  | { readonly kind: 'rejected' | 'threw'; readonly error: unknown }
  | { readonly kind: 'hung' };

/** Runs `call` and waits for its promise (if it returns one) for at most `boundMs`. */
async function settle(call: () => unknown, boundMs: number): Promise<Outcome> {
  let result: unknown;
  try {
    result = call();
  } catch (error) {
    return { kind: 'threw', error };
  }
  if (!(result instanceof Promise)) return { kind: 'returned', value: result };
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'hung' }), boundMs);
  });
  try {
    return await Promise.race([
      (result as Promise<unknown>).then(
        (value): Outcome => ({ kind: 'resolved', value }),
        (error: unknown): Outcome => ({ kind: 'rejected', error }),
      ),
      hung,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function errorOf(outcome: Outcome): unknown {
  return 'error' in outcome ? outcome.error : undefined;
}

/** The code of a refusal: a rejection (or throw) with a SluiceError whose code says nothing ran. */
function refusalCode(outcome: Outcome): SluiceErrorCode | undefined {
  const error = errorOf(outcome);
  return error instanceof SluiceError && !UNHEALTHY.has(error.code) ? error.code : undefined;
}

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}\n${error.stack ?? ''}`;
  return fc.stringify(error);
}

/** One call of a public operation, and what it may do. */
interface Call {
  readonly run: () => unknown;
  /** `promise`: returns a promise, never throws; `sync`: returns a value or throws. */
  readonly form: 'promise' | 'sync';
  readonly boundMs: number;
  /** The arguments can't be valid: the call must refuse. */
  readonly mustRefuse?: boolean;
  /** Codes allowed besides the refusals (TIMEOUT for a publish whose replicas never answer). */
  readonly alsoAllowed?: readonly SluiceErrorCode[];
  /** Releases what a call that did not refuse made (a consumer, a client). */
  readonly dispose?: (value: unknown) => Promise<void>;
  /**
   * The call is several independent writes (a batch that is not atomic): one refused at
   * routing does not undo the others. Only a refusal of its arguments must write nothing.
   */
  readonly independentWrites?: boolean;
}

/** Asserts what every call must do (see the file's header). */
function expectWellBehaved(call: Call, outcome: Outcome): void {
  expect(outcome.kind, `settles within ${call.boundMs} ms`).not.toBe('hung');
  if (call.form === 'promise') {
    expect(
      outcome.kind,
      `returns a promise, never throws: ${describeError(errorOf(outcome))}`,
    ).toMatch(/^(resolved|rejected)$/u);
  }
  if ('error' in outcome) {
    const { error } = outcome;
    expect(
      error instanceof SluiceError,
      `fails with a SluiceError, not ${describeError(error)}`,
    ).toBe(true);
    const { code } = error as SluiceError;
    expect(DOCUMENTED_CODES[code], `code ${code} is documented`).toBe(true);
    const allowed = !UNHEALTHY.has(code) || (call.alsoAllowed ?? []).includes(code);
    expect(allowed, `no ${code} from a healthy server: ${describeError(error)}`).toBe(true);
  }
  if (call.mustRefuse === true) {
    expect(
      refusalCode(outcome),
      `refuses arguments that cannot be valid, not ${outcome.kind}`,
    ).toBeDefined();
  }
}

// ---------------------------------------------------------------------------------------------
// What can't be valid: the oracle for `mustRefuse`
// ---------------------------------------------------------------------------------------------

/** Whether a value has the JS type an option requires (ranges are not the oracle's business). */
type TypeCheck = (value: unknown) => boolean;
const isBoolean: TypeCheck = (value) => typeof value === 'boolean';
const isString: TypeCheck = (value) => typeof value === 'string';
const isInteger: TypeCheck = (value) => Number.isSafeInteger(value);
const isNumber: TypeCheck = (value) => typeof value === 'number';
const isFunction: TypeCheck = (value) => typeof value === 'function';
const anyValue: TypeCheck = () => true;

/** Server addresses as connect takes them, on a port nobody listens on, or not quite. */
const addresses = fc.constantFrom(
  [{ host: '127.0.0.1', port: 1 }],
  [
    { host: '127.0.0.1', port: 1 },
    { host: 'localhost', port: 2 },
  ],
  [],
  [{ host: '', port: 1 }],
  [{ host: '127.0.0.1', port: 0 }],
  [{ host: '127.0.0.1', port: 1, db: 0 }],
);
const isAddressList: TypeCheck = (value) => {
  const items = arrayItems(value);
  return (
    items !== undefined &&
    items.length > 0 &&
    items.length <= 64 &&
    items.every(
      (address) =>
        isPlainData(address) &&
        Object.keys(address).every((key) => key === 'host' || key === 'port') &&
        typeof address['host'] === 'string' &&
        address['host'] !== '' &&
        Number.isSafeInteger(address['port']) &&
        (address['port'] as number) >= 1 &&
        (address['port'] as number) <= 65_535,
    )
  );
};
const PEM = '-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n';
const isPem = (value: unknown): boolean =>
  value === undefined || Buffer.isBuffer(value) || (typeof value === 'string' && value !== '');
const isTlsOptions: TypeCheck = (value) =>
  isPlainData(value) &&
  Object.entries(value).every(([key, item]) =>
    ['ca', 'cert', 'key'].includes(key)
      ? isPem(item)
      : key === 'servername'
        ? item === undefined || (typeof item === 'string' && item !== '')
        : key === 'rejectUnauthorized' && (item === undefined || typeof item === 'boolean'),
  );

/**
 * Whether connect must refuse where Redis is and how to log in (the options being plain data
 * of the right types): not exactly one of url, redis, cluster and sentinels; name without
 * sentinels or sentinels without it; credentials for a client passed in; half a TLS key pair.
 */
function locationRefused(options: Readonly<Record<string, unknown>>): boolean {
  const given = ['url', 'redis', 'cluster', 'sentinels'].filter((k) => options[k] !== undefined);
  if (given.length !== 1) return true;
  if ((options['name'] !== undefined) !== (given[0] === 'sentinels')) return true;
  if (given[0] === 'redis' && ['username', 'password', 'tls'].some((k) => options[k] !== undefined))
    return true;
  const tls = options['tls'] as { cert?: unknown; key?: unknown } | undefined;
  return tls !== undefined && (tls.cert === undefined) !== (tls.key === undefined);
}

/** An option: the valid values to generate, and the type check of the oracle. */
interface OptionSpec {
  readonly valid: fc.Arbitrary<unknown>;
  readonly type: TypeCheck;
}
type OptionsSpec = Readonly<Record<string, OptionSpec>>;

/** A plain object, not a proxy: what sluice accepts as options (or headers, or a batch message). */
function isPlainData(value: unknown): value is Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || types.isProxy(value)) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) return false;
  return Object.values(Object.getOwnPropertyDescriptors(value)).every(
    (descriptor) => !('get' in descriptor) && !('set' in descriptor),
  );
}

/**
 * True when `value` cannot be valid options of `spec`: not undefined nor plain data, an unknown
 * key, or an option of the wrong type (undefined is an option's absence).
 */
function invalidOptions(value: unknown, spec: OptionsSpec): boolean {
  if (value === undefined) return false;
  if (!isPlainData(value)) return true;
  return Object.entries(value).some(([key, option]) => {
    const check = spec[key]?.type;
    return check === undefined || (option !== undefined && !check(option));
  });
}

/**
 * The items of an array that sluice can read as data (holes as undefined), or undefined for a
 * value that is not one: not an array, a proxy, or an element that is a getter.
 */
function arrayItems(value: unknown): unknown[] | undefined {
  if (!Array.isArray(value) || types.isProxy(value)) return undefined;
  const items: unknown[] = [];
  for (let i = 0; i < value.length; i++) {
    const descriptor = Object.getOwnPropertyDescriptor(value, i);
    if (descriptor !== undefined && !('value' in descriptor)) return undefined;
    items.push(descriptor?.value);
  }
  return items;
}

function optionsOf(spec: OptionsSpec, required: readonly string[] = []): fc.Arbitrary<unknown> {
  const shape = Object.fromEntries(Object.entries(spec).map(([key, { valid }]) => [key, valid]));
  return options(shape, required);
}

/** Calls `method` of `target` with arguments of any type. */
function invoke(target: object, method: string, args: readonly unknown[]): unknown {
  const fn = (target as Record<string, unknown>)[method];
  if (typeof fn !== 'function') throw new Error(`no method ${method}`);
  return Reflect.apply(fn, target, args) as unknown;
}

// ---------------------------------------------------------------------------------------------
// The namespace every property runs in: fixtures, and a run of one call
// ---------------------------------------------------------------------------------------------

interface World {
  readonly sluice: Sluice;
  readonly redis: Redis;
  readonly namespace: string;
}

const FIXTURE_EXCHANGES: Readonly<Record<string, ExchangeType>> = {
  'x-direct': 'direct',
  'x-topic': 'topic',
  'x-fanout': 'fanout',
  'x-headers': 'headers',
};
/** `q-a` holds messages, `q-b` dead-letters to x-fanout, `q-full` is at its maxLength, `q-empty` has none. */
const FIXTURE_QUEUES = ['q-a', 'q-b', 'q-full', 'q-empty'] as const;

const exchangeName = fc.constantFrom(
  '',
  ...Object.keys(FIXTURE_EXCHANGES),
  'x-internal',
  'amq.direct',
  'amq.topic',
  'amq.fanout',
  'amq.headers',
  'ghost',
  'x-new',
);
const queueName = fc.constantFrom(...FIXTURE_QUEUES, 'ghost', 'q-new');
const routingKey = fc.constantFrom('', 'k', 'a.b', 'a.*', '*.b', '#', 'x.#', 'a*', 'q-a', 'q-full');
const headerValue = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean());
const headers = fc.dictionary(fc.constantFrom('h', 'x-match', 'n', 'é'), headerValue, {
  maxKeys: 3,
});
const bindingArguments = fc.dictionary(
  fc.constantFrom('h', 'n', 'x-match'),
  fc.oneof(
    headerValue,
    fc.constant(null),
    fc.constantFrom('all', 'any', 'all-with-x', 'any-with-x'),
  ),
  { maxKeys: 3 },
);
/** An integer option of range [min, max]: mostly within, its edges, and one step past each. */
const integer = (min: number, max: number): fc.Arbitrary<number> =>
  fc.oneof(
    { arbitrary: fc.integer({ min, max: Math.min(max, 2 ** 31 - 1) }), weight: 6 },
    fc.constantFrom(min, max),
    fc.constantFrom(min - 1, max + 1),
  );

/**
 * A lifetime (a message's expiration, a queue's TTL) of at most `max`: 10 minutes or more, or
 * one step past either end. A message that expires during the run would be dead-lettered by
 * the client in the background, which the comparison of a later call would take for its write.
 */
const lifetime = (max: number): fc.Arbitrary<number> =>
  fc.oneof(
    { arbitrary: fc.integer({ min: 600_000, max: Math.min(max, 2 ** 31 - 1) }), weight: 6 },
    fc.constantFrom(-1, max, max + 1),
  );

async function declareFixtures(sluice: Sluice): Promise<void> {
  await Promise.all(
    Object.entries(FIXTURE_EXCHANGES).map(([name, type]) => sluice.declareExchange(name, type)),
  );
  await sluice.declareExchange('x-internal', 'direct', { internal: true });
  await sluice.declareQueue('q-a');
  await sluice.declareQueue('q-b', { deadLetterExchange: 'x-fanout' });
  await sluice.declareQueue('q-full', { maxLength: 1 });
  await sluice.declareQueue('q-empty');
  await sluice.bindQueue('q-a', 'x-direct', 'k');
  await sluice.bindQueue('q-a', 'x-topic', 'a.*');
  await sluice.bindQueue('q-b', 'x-fanout');
  await sluice.bindQueue('q-a', 'x-headers', { 'x-match': 'any', h: 1 });
  await sluice.bindExchange('x-fanout', 'x-topic', 'x.#');
  const [held, full] = await Promise.all([
    sluice.inspectQueue('q-a'),
    sluice.inspectQueue('q-full'),
  ]);
  for (let i = held.messages; i < 3; i++) await sluice.publish('', 'q-a', { fixture: i });
  if (full.messages === 0) await sluice.publish('', 'q-full', 'the one message');
  await sluice.purgeQueue('q-empty');
}

/** A client on a fresh namespace with the fixtures declared. */
async function useWorld(): Promise<World> {
  const world = await useSluice(CLIENT_OPTIONS);
  await declareFixtures(world.sluice);
  return world;
}

/**
 * Runs one call and checks it: well behaved, and a refusal changes no key of the namespace.
 * Resolves with the outcome.
 */
async function check(world: World, call: Call): Promise<Outcome> {
  const before = await namespaceState(world.redis, world.namespace);
  const outcome = await settle(call.run, call.boundMs);
  try {
    expectWellBehaved(call, outcome);
    const code = refusalCode(outcome);
    if (code === 'INVALID_ARGUMENT' || (code !== undefined && call.independentWrites !== true)) {
      const after = await namespaceState(world.redis, world.namespace);
      expect(changedKeys(before, after), `a refusal (${code}) writes nothing`).toEqual([]);
    }
  } finally {
    if (outcome.kind === 'resolved' || outcome.kind === 'returned') {
      await call.dispose?.(outcome.value);
    }
  }
  return outcome;
}

/**
 * The property of one operation: every generated call is well behaved and writes nothing when
 * it refuses. The fixtures are declared again after a call that was not refused (it may have
 * deleted or purged one).
 */
async function forEveryCall<A>(
  world: World,
  args: fc.Arbitrary<A>,
  call: (args: A) => Call,
  runs = RUNS,
): Promise<void> {
  let dirty = false;
  await fc.assert(
    fc.asyncProperty(args, async (generated) => {
      if (dirty) await declareFixtures(world.sluice);
      dirty = true;
      const outcome = await check(world, call(generated));
      dirty = refusalCode(outcome) === undefined;
    }),
    { numRuns: runs, seed: SEED },
  );
}

// ---------------------------------------------------------------------------------------------
// Option specs of the operations
// ---------------------------------------------------------------------------------------------

const boolean: OptionSpec = { valid: fc.boolean(), type: isBoolean };
const EXCHANGE_OPTIONS: OptionsSpec = {
  durable: boolean,
  internal: boolean,
  alternateExchange: { valid: exchangeName, type: isString },
};
const QUEUE_OPTIONS: OptionsSpec = {
  durable: boolean,
  deadLetterExchange: { valid: exchangeName, type: isString },
  deadLetterRoutingKey: { valid: routingKey, type: isString },
  maxDeliveries: { valid: integer(1, 1_000_000), type: isInteger },
  ackTimeoutMs: { valid: integer(100, 7 * 86_400_000), type: isInteger },
  messageTtlMs: { valid: lifetime(365 * 86_400_000), type: isInteger },
  maxLength: { valid: integer(0, 2 ** 31 - 1), type: isInteger },
  overflow: {
    valid: fc.constantFrom('reject-publish', 'drop-head', 'reject-publish-dlx'),
    type: isString,
  },
  partitions: { valid: integer(1, 1024), type: isInteger },
  singleActiveConsumer: boolean,
};
const PUBLISH_OPTIONS: OptionsSpec = {
  mandatory: boolean,
  headers: { valid: headers, type: (value) => isPlainData(value) },
  messageId: {
    valid: fc.oneof(fc.uuid(), fc.string({ minLength: 1, maxLength: 10 })),
    type: isString,
  },
  contentType: { valid: fc.constantFrom('text/plain', 'application/json', 'x'), type: isString },
  correlationId: { valid: fc.string({ minLength: 1, maxLength: 10 }), type: isString },
  expirationMs: { valid: lifetime(2 ** 31 - 1), type: isInteger },
  dedupKey: { valid: fc.string({ minLength: 1, maxLength: 10 }), type: isString },
  dedupWindowMs: { valid: fc.constantFrom(0, CONFIRM_TIMEOUT_MS, 60_000), type: isInteger },
  durability: { valid: fc.constantFrom('written', 'replicated', 'fsynced'), type: isString },
  partitionKey: { valid: fc.string({ minLength: 1, maxLength: 10 }), type: isString },
  traceparent: {
    valid: fc.constantFrom(
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      'not a traceparent',
    ),
    type: isString,
  },
  tracestate: { valid: fc.constantFrom('vendor=value', '', 'é'), type: isString },
};
const RETRY_POLICY: OptionsSpec = {
  initialDelayMs: { valid: integer(1, 30 * 86_400_000), type: isInteger },
  multiplier: { valid: fc.double({ min: 1, max: 100, noNaN: true }), type: isNumber },
  maxDelayMs: { valid: integer(1, 30 * 86_400_000), type: isInteger },
  jitter: { valid: fc.double({ min: 0, max: 1, noNaN: true }), type: isNumber },
};
/** A store of idempotency markers: a plain object or a class instance with `execute`, or not. */
class WidgetStore {
  execute(): Promise<'done'> {
    return Promise.resolve('done');
  }
}
const IDEMPOTENCY_OPTIONS: OptionsSpec = {
  key: { valid: fc.constantFrom(...callbacks, (d: Delivery) => d.messageId), type: isFunction },
  ttlMs: { valid: integer(1000, 365 * 86_400_000), type: isInteger },
  leaseMs: { valid: integer(1000, 3_600_000), type: isInteger },
  store: {
    valid: fc.oneof(
      fc.constantFrom(new WidgetStore(), { execute: () => Promise.resolve('done') }),
      unreadableObject,
    ),
    type: (value) => typeof value === 'object' && value !== null,
  },
};
const CONSUME_OPTIONS: OptionsSpec = {
  prefetch: { valid: integer(1, 10_000), type: isInteger },
  concurrency: { valid: integer(1, 10_000), type: isInteger },
  retry: { valid: optionsOf(RETRY_POLICY), type: (value) => !invalidOptions(value, RETRY_POLICY) },
  idempotency: {
    // With a store of one's own half the time: it is the option that takes an object.
    valid: fc.oneof(optionsOf(IDEMPOTENCY_OPTIONS), optionsOf(IDEMPOTENCY_OPTIONS, ['store'])),
    type: (value) => !invalidOptions(value, IDEMPOTENCY_OPTIONS),
  },
  ordered: boolean,
  onPoison: { valid: fc.constantFrom('dead-letter', 'halt'), type: isString },
};
/** Consume options, idempotent ones (the most to check) half the time. */
const consumeOptions = fc.oneof(
  optionsOf(CONSUME_OPTIONS),
  optionsOf(CONSUME_OPTIONS, ['idempotency']),
);

/** The events of a client and of a consumer, as the docs name them. */
const CLIENT_EVENTS = [
  'publish.confirmed',
  'publish.retried',
  'publish.failed',
  'connection.lost',
  'connection.restored',
  'expiry.failed',
] as const satisfies readonly (keyof ClientEvents)[];
const CONSUMER_EVENTS = [
  'delivery.handled',
  'delivery.failed',
  'delivery.deadLettered',
  'delivery.duplicate',
  'delivery.reclaimed',
  'connection.lost',
  'connection.restored',
  'readError',
  'groupRecreated',
  'cancelled',
] as const satisfies readonly ConsumerEventName[];

function isEventOf(events: readonly string[], name: unknown): boolean {
  return typeof name === 'string' && events.includes(name);
}

/** `durability: 'replicated'` waits for a replica there is not: ConfirmTimeoutError, applied. */
function replicated(publishOptions: unknown): boolean {
  return (
    isPlainData(publishOptions) &&
    (publishOptions as { durability?: unknown }).durability === 'replicated'
  );
}

// ---------------------------------------------------------------------------------------------
// Unhandled rejections and uncaught exceptions, for the whole file
// ---------------------------------------------------------------------------------------------

const unhandled: unknown[] = [];
const recordUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeAll(() => {
  process.on('unhandledRejection', recordUnhandled);
  process.on('uncaughtException', recordUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', recordUnhandled);
  process.off('uncaughtException', recordUnhandled);
});
afterEach(async () => {
  // Node reports an unhandled rejection once the microtasks of the turn have run: one more
  // turn of the event loop lets any rejection left by the test's last call be reported.
  await new Promise((resolve) => setImmediate(resolve));
  expect(
    unhandled.splice(0).map(describeError),
    'unhandled rejections, uncaught exceptions',
  ).toEqual([]);
});

// ---------------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------------

describe('every public operation, fed hostile values', () => {
  it('Sluice.connect connects or refuses, and a client it makes works', async () => {
    const world = await useWorld();
    const url = redisUrl();
    const decode = (data: Buffer): unknown => data.toString();
    class TextCodec {
      encode(body: unknown): { data: Buffer; contentType: string } {
        return { data: Buffer.from(String(body)), contentType: 'text/plain' };
      }
      decode(data: Buffer): unknown {
        return data.toString();
      }
    }
    /**
     * Codecs of the right shape, a class instance among them, ones that misbehave when used,
     * and objects that cannot be read.
     */
    const codec: OptionSpec = {
      valid: fc.oneof(
        fc.constantFrom(
          defaultCodec,
          new TextCodec(),
          {
            encode: () => {
              throw new Error('hostile codec: encode throws');
            },
            decode,
          },
          { encode: () => 'not an encoded body', decode },
          { encode: () => ({ data: 'not a Buffer', contentType: 1 }), decode },
        ),
        unreadableObject,
      ),
      type: (value) => (typeof value === 'object' && value !== null) || typeof value === 'function',
    };
    const spec: OptionsSpec = {
      url: {
        valid: fc.oneof(
          { arbitrary: fc.constant(url), weight: 4 },
          fc.constantFrom(`${url}/0`, `${url}/1`, `${url}/abc`, `${url}?db=1.5`),
          // A port nobody listens on: refused at once, CONNECTION.
          fc.constant('redis://127.0.0.1:1'),
        ),
        type: isString,
      },
      redis: {
        valid: fc.oneof(fc.constant(world.redis), unreadableObject),
        type: (value) => typeof value === 'object' && value !== null,
      },
      // Seeds and Sentinels on a port nobody listens on: refused, CONNECTION.
      cluster: { valid: addresses, type: isAddressList },
      sentinels: { valid: addresses, type: isAddressList },
      name: { valid: fc.constantFrom('mymaster'), type: isString },
      // The test server's default user has no password: any password logs it in.
      username: { valid: fc.constantFrom('default'), type: isString },
      password: { valid: fc.constantFrom('secret'), type: isString },
      sentinelUsername: { valid: fc.constantFrom('sentinel'), type: isString },
      sentinelPassword: { valid: fc.constantFrom('secret'), type: isString },
      // Only a half pair of certificate and key, refused before connecting: a TLS handshake
      // with the plain test server would only fail slowly.
      tls: { valid: fc.constantFrom({ cert: PEM }, { key: PEM }), type: isTlsOptions },
      namespace: { valid: fc.constantFrom(world.namespace, 'other'), type: isString },
      connectTimeoutMs: { valid: fc.constantFrom(100, 1000, 5000), type: isInteger },
      operationTimeoutMs: { valid: fc.constantFrom(100, 2000), type: isInteger },
      codec,
      tracing: boolean,
      maxBodyBytes: { valid: integer(1, 512 * 1024 * 1024), type: isInteger },
      durability: PUBLISH_OPTIONS['durability'] as OptionSpec,
      replicas: { valid: integer(1, 1000), type: isInteger },
      durabilityTimeoutMs: { valid: fc.constantFrom(1, 50, 1000, 3_600_000), type: isInteger },
      confirmTimeoutMs: { valid: fc.constantFrom(100, 2000, 20_000), type: isInteger },
      dedupWindowMs: { valid: fc.constantFrom(0, 120_000, 100), type: isInteger },
    };
    const where = ['url', 'redis', 'cluster', 'sentinels', 'name'];
    const common = Object.fromEntries(Object.entries(spec).filter(([key]) => !where.includes(key)));
    const located = (...names: string[]): fc.Arbitrary<unknown> =>
      optionsOf(
        { ...common, ...Object.fromEntries(names.map((name) => [name, spec[name] as OptionSpec])) },
        names,
      );
    // Where Redis is: a URL (most often), a client to adopt, Cluster seeds, Sentinels, or anything.
    const connectArguments = fc.oneof(
      { arbitrary: located('url'), weight: 3 },
      located('redis'),
      located('cluster'),
      located('sentinels', 'name'),
      optionsOf(spec),
    );
    await forEveryCall(world, connectArguments, (connectOptions) => ({
      run: () => invoke(Sluice, 'connect', [connectOptions]),
      form: 'promise',
      // The longest connect timeout generated, for a URL whose port refuses.
      boundMs: 10_000 + MARGIN_MS,
      mustRefuse:
        connectOptions === undefined ||
        invalidOptions(connectOptions, spec) ||
        locationRefused(connectOptions as Readonly<Record<string, unknown>>),
      alsoAllowed: ['CONNECTION'],
      dispose: async (client) => {
        const connected = client as Sluice;
        // A client that connected works with its codec: a publish that routes nowhere.
        const outcome = await settle(
          () => connected.publish('', 'nowhere', { hostile: true }),
          CONFIRM_TIMEOUT_MS + MARGIN_MS,
        );
        await connected.close();
        expectWellBehaved({ run: () => undefined, form: 'promise', boundMs: 0 }, outcome);
      },
    }));
  });

  it('declareExchange and deleteExchange declare, delete or refuse', async () => {
    const world = await useWorld();
    const deleteSpec: OptionsSpec = { ifUnused: boolean };
    const args = fc.oneof(
      fc.tuple(
        fc.constant('declareExchange' as const),
        argument(exchangeName),
        argument(fc.constantFrom('direct', 'topic', 'fanout', 'headers')),
        optionsOf(EXCHANGE_OPTIONS),
      ),
      fc.tuple(
        fc.constant('deleteExchange' as const),
        argument(exchangeName),
        optionsOf(deleteSpec),
        fc.constant(undefined),
      ),
    );
    await forEveryCall(world, args, ([method, name, second, third]) => ({
      run: () =>
        invoke(
          world.sluice,
          method,
          method === 'declareExchange' ? [name, second, third] : [name, second],
        ),
      form: 'promise',
      boundMs: ADMIN_BOUND_MS,
      mustRefuse:
        typeof name !== 'string' ||
        (method === 'declareExchange'
          ? typeof second !== 'string' || invalidOptions(third, EXCHANGE_OPTIONS)
          : invalidOptions(second, deleteSpec)),
    }));
  });

  it('declareQueue and deleteQueue declare, delete or refuse', async () => {
    const world = await useWorld();
    const deleteSpec: OptionsSpec = { ifEmpty: boolean, ifUnused: boolean };
    const args = fc.oneof(
      fc.tuple(fc.constant('declareQueue' as const), argument(queueName), optionsOf(QUEUE_OPTIONS)),
      fc.tuple(fc.constant('deleteQueue' as const), argument(queueName), optionsOf(deleteSpec)),
    );
    await forEveryCall(world, args, ([method, name, queueOptions]) => ({
      run: () => invoke(world.sluice, method, [name, queueOptions]),
      form: 'promise',
      boundMs: ADMIN_BOUND_MS,
      mustRefuse:
        typeof name !== 'string' ||
        invalidOptions(queueOptions, method === 'declareQueue' ? QUEUE_OPTIONS : deleteSpec),
    }));
  });

  it('bindQueue, unbindQueue, bindExchange and unbindExchange bind, unbind or refuse', async () => {
    const world = await useWorld();
    const args = fc.tuple(
      fc.constantFrom('bindQueue', 'unbindQueue', 'bindExchange', 'unbindExchange'),
      argument(fc.oneof(queueName, exchangeName)),
      argument(exchangeName),
      fc.oneof(fc.constant(undefined), argument(routingKey), argument(bindingArguments)),
    );
    await forEveryCall(world, args, ([method, destination, source, keyOrArguments]) => ({
      run: () => invoke(world.sluice, method, [destination, source, keyOrArguments]),
      form: 'promise',
      boundMs: ADMIN_BOUND_MS,
      mustRefuse:
        typeof destination !== 'string' ||
        typeof source !== 'string' ||
        !(
          keyOrArguments === undefined ||
          typeof keyOrArguments === 'string' ||
          (isPlainData(keyOrArguments) &&
            Object.values(keyOrArguments).every(
              (value) => value === null || ['string', 'number', 'boolean'].includes(typeof value),
            ))
        ),
    }));
  });

  it('inspectQueue, stats and purgeQueue read, purge or refuse', async () => {
    const world = await useWorld();
    const args = fc.tuple(
      fc.constantFrom('inspectQueue', 'stats', 'purgeQueue'),
      argument(queueName),
    );
    await forEveryCall(world, args, ([method, name]) => ({
      run: () => invoke(world.sluice, method, [name]),
      form: 'promise',
      boundMs: ADMIN_BOUND_MS,
      // stats() without a queue reads every queue.
      mustRefuse: typeof name !== 'string' && !(method === 'stats' && name === undefined),
    }));
  });

  it('listTopology lists, whatever it is given', async () => {
    const world = await useWorld();
    await forEveryCall(world, fc.array(hostileValue, { maxLength: 3 }), (args) => ({
      run: () => invoke(world.sluice, 'listTopology', args),
      form: 'promise',
      boundMs: ADMIN_BOUND_MS,
    }));
  });

  it('prometheusMetrics registers or refuses, and observe takes consumers only', async () => {
    const world = await useWorld();
    const registry = new Registry();
    const spec: OptionsSpec = {
      sluice: {
        valid: fc.oneof(fc.constant(world.sluice), unreadableObject),
        type: (value) => value instanceof Sluice,
      },
      registry: {
        valid: fc.oneof(fc.constant(registry), unreadableObject),
        type: (value) => value instanceof Registry,
      },
      queues: {
        valid: fc.array(argument(queueName), { maxLength: 3 }),
        type: (value) =>
          (arrayItems(value) ?? [undefined]).every((item) => typeof item === 'string'),
      },
    };
    const args = fc.tuple(optionsOf(spec, ['sluice']), argument(fc.constant(undefined)));
    await forEveryCall(world, args, ([metricsOptions, observed]) => ({
      run: () => {
        const metrics = prometheusMetrics(metricsOptions as never);
        try {
          metrics.observe(observed as never);
        } finally {
          metrics.close();
        }
      },
      form: 'sync',
      boundMs: ADMIN_BOUND_MS,
      mustRefuse: true,
    }));
    // What it made works: a scrape of real queues.
    const metrics = prometheusMetrics({ sluice: world.sluice, registry });
    expect(await registry.metrics()).toContain('sluice_queue_messages_ready{queue="q-a"}');
    metrics.close();
  });

  it('publish confirms or refuses, with every option', async () => {
    const world = await useWorld();
    const args = fc.tuple(
      argument(exchangeName),
      argument(routingKey),
      fc.oneof(hostileValue, fc.jsonValue(), fc.string(), fc.constant(Buffer.from('bytes'))),
      optionsOf(PUBLISH_OPTIONS),
    );
    await forEveryCall(world, args, ([exchange, key, body, publishOptions]) => ({
      run: () => invoke(world.sluice, 'publish', [exchange, key, body, publishOptions]),
      form: 'promise',
      boundMs: PUBLISH_BOUND_MS,
      mustRefuse:
        typeof exchange !== 'string' ||
        typeof key !== 'string' ||
        invalidOptions(publishOptions, PUBLISH_OPTIONS),
      alsoAllowed: replicated(publishOptions) ? ['TIMEOUT'] : [],
    }));
  });

  it('publishBatch confirms every message or refuses', async () => {
    const world = await useWorld();
    const batchSpec: OptionsSpec = { atomic: boolean };
    const messageSpec: OptionsSpec = {
      exchange: { valid: exchangeName, type: isString },
      routingKey: { valid: routingKey, type: isString },
      body: { valid: fc.oneof(fc.jsonValue(), hostileValue), type: anyValue },
      options: {
        valid: optionsOf(PUBLISH_OPTIONS),
        type: (value) => !invalidOptions(value, PUBLISH_OPTIONS),
      },
    };
    const message = fc.oneof(
      fc.record({ exchange: exchangeName, routingKey, body: fc.jsonValue() }),
      optionsOf(messageSpec),
    );
    const args = fc.tuple(
      fc.oneof(hostileValue, fc.array(message, { maxLength: 4 })),
      optionsOf(batchSpec),
    );
    await forEveryCall(
      world,
      args,
      ([messages, batchOptions]) => ({
        run: () => invoke(world.sluice, 'publishBatch', [messages, batchOptions]),
        form: 'promise',
        boundMs: PUBLISH_BOUND_MS,
        mustRefuse:
          invalidOptions(batchOptions, batchSpec) ||
          (arrayItems(messages)?.some(
            (item) =>
              item === undefined ||
              invalidOptions(item, messageSpec) ||
              typeof (item as { exchange?: unknown }).exchange !== 'string' ||
              typeof (item as { routingKey?: unknown }).routingKey !== 'string',
          ) ??
            true),
        alsoAllowed: arrayItems(messages)?.some(
          (item) => isPlainData(item) && replicated((item as { options?: unknown }).options),
        )
          ? ['TIMEOUT']
          : [],
        independentWrites:
          (arrayItems(messages)?.length ?? 0) > 1 &&
          !(isPlainData(batchOptions) && batchOptions['atomic'] === true),
      }),
      Math.ceil(RUNS * 0.6),
    );
  });

  it('consume starts a consumer or refuses, with every option', async () => {
    const world = await useWorld();
    const handler = fc.oneof({ arbitrary: callback, weight: 2 }, hostileFunction, hostileValue);
    const args = fc.tuple(argument(queueName), handler, consumeOptions);
    await forEveryCall(
      world,
      args,
      ([queue, handle, given]) => ({
        run: () => invoke(world.sluice, 'consume', [queue, handle, given]),
        form: 'promise',
        boundMs: ADMIN_BOUND_MS,
        mustRefuse:
          typeof queue !== 'string' ||
          typeof handle !== 'function' ||
          invalidOptions(given, CONSUME_OPTIONS),
        dispose: (consumer) => (consumer as Consumer).close(),
      }),
      Math.ceil(RUNS * 0.6),
    );
  });

  it('messages returns a stream whose start succeeds or fails typed, or refuses', async () => {
    const world = await useWorld();
    const args = fc.tuple(argument(queueName), consumeOptions);
    await forEveryCall(
      world,
      args,
      ([queue, given]) => ({
        run: () => invoke(world.sluice, 'messages', [queue, given]),
        form: 'sync',
        boundMs: ADMIN_BOUND_MS,
        mustRefuse: typeof queue !== 'string' || invalidOptions(given, CONSUME_OPTIONS),
        // The start is reported by the iteration: its first step settles, typed, once closed.
        dispose: async (value) => {
          const stream = value as MessageStream;
          const first = stream[Symbol.asyncIterator]().next();
          const closed = stream.close();
          const outcome = await settle(() => first, ADMIN_BOUND_MS);
          expectWellBehaved(
            { run: () => undefined, form: 'promise', boundMs: ADMIN_BOUND_MS },
            outcome,
          );
          await closed;
        },
      }),
      Math.ceil(RUNS * 0.6),
    );
  });

  it('consumer.close, on and off close, listen or refuse', async () => {
    const world = await useWorld();
    let consumer: Consumer | undefined;
    onTestFinished(async () => {
      await consumer?.close();
    });
    const eventName = fc.constantFrom(...CONSUMER_EVENTS);
    const closeSpec: OptionsSpec = {
      timeoutMs: { valid: integer(0, 2 ** 31 - 1), type: isInteger },
    };
    const args = fc.oneof(
      fc.tuple(fc.constant('close' as const), optionsOf(closeSpec), fc.constant(undefined)),
      fc.tuple(
        fc.constantFrom('on' as const, 'off' as const),
        argument(eventName),
        argument(callback),
      ),
    );
    await fc.assert(
      fc.asyncProperty(args, async ([method, first, second]) => {
        consumer ??= await world.sluice.consume('q-empty', () => undefined);
        const target = consumer;
        const outcome = await check(world, {
          run: () => invoke(target, method, method === 'close' ? [first] : [first, second]),
          form: method === 'close' ? 'promise' : 'sync',
          boundMs: ADMIN_BOUND_MS,
          mustRefuse:
            method === 'close'
              ? invalidOptions(first, closeSpec)
              : !isEventOf(CONSUMER_EVENTS, first) || typeof second !== 'function',
        });
        if (method === 'close' && outcome.kind === 'resolved') consumer = undefined;
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('a delivery acks, nacks, rejects and extends, or refuses, with every option', async () => {
    const world = await useWorld();
    await world.sluice.declareQueue('q-work', { ackTimeoutMs: 7 * 86_400_000 });
    const messageCount = 150;
    await world.sluice.publishBatch(
      Array.from({ length: messageCount }, (_, i) => ({
        exchange: '',
        routingKey: 'q-work',
        body: { i },
      })),
    );
    const stream = world.sluice.messages('q-work', { prefetch: 1 });
    const deliveries = stream[Symbol.asyncIterator]();
    const keys = new Keyspace(world.namespace).queue('q-work');
    /** Once nothing is about to change: one delivery held, no retry due soon, no dead letter to route. */
    const quiet = (): Promise<boolean> =>
      waitFor(
        async () => {
          const info = await world.sluice.inspectQueue('q-work');
          const dueSoon = await world.redis.zcount(keys.delayed, '-inf', Date.now() + 5000);
          return (
            (info.unacked === 1 || info.messages === 0) &&
            dueSoon === 0 &&
            info.deadLetterBacklog === 0
          );
        },
        { timeoutMs: 10_000, description: 'q-work quiet' },
      );
    let delivery: Delivery | undefined;
    const nackSpec: OptionsSpec = {
      requeue: boolean,
      delayMs: {
        valid: fc.constantFrom(0, 1, 10, 86_400_000, 30 * 86_400_000, 30 * 86_400_000 + 1),
        type: isInteger,
      },
    };
    const args = fc.tuple(
      fc.boolean(),
      fc.oneof(
        fc.tuple(
          fc.constant('nack' as const),
          fc.array(optionsOf(nackSpec), { minLength: 1, maxLength: 1 }),
        ),
        fc.tuple(
          fc.constantFrom('ack' as const, 'reject' as const, 'extend' as const),
          fc.array(hostileValue, { maxLength: 2 }),
        ),
      ),
    );
    await fc.assert(
      fc.asyncProperty(args, async ([fresh, [method, methodArgs]]) => {
        if (delivery === undefined || (fresh && delivery.settled)) {
          const next = await settle(() => deliveries.next(), ADMIN_BOUND_MS);
          expect(next.kind, 'a delivery arrives').toBe('resolved');
          delivery = (next as { value: IteratorResult<Delivery> }).value.value as Delivery;
        }
        await quiet();
        const target = delivery;
        await check(world, {
          run: () => invoke(target, method, methodArgs),
          form: 'promise',
          boundMs: SETTLEMENT_TIMEOUT_MS + MARGIN_MS,
          mustRefuse: method === 'nack' && invalidOptions(methodArgs[0], nackSpec),
        });
      }),
      { numRuns: RUNS, seed: SEED },
    );
    await stream.close();
  });

  it('dlq.list, show, replay and purge read, move, purge or refuse', async () => {
    const world = await useWorld();
    const listSpec: OptionsSpec = {
      after: {
        valid: fc.constantFrom('0-0', '1-0', '18446744073709551615-18446744073709551615'),
        type: isString,
      },
      count: { valid: integer(1, 10_000), type: isInteger },
    };
    const replaySpec: OptionsSpec = {
      toQueue: { valid: queueName, type: isString },
      limit: { valid: fc.constantFrom(1, 2, Number.MAX_SAFE_INTEGER), type: isInteger },
      onProgress: { valid: callback, type: isFunction },
      viaExchange: boolean,
    };
    const args = fc.oneof(
      fc.tuple(fc.constant('list' as const), argument(queueName), optionsOf(listSpec)),
      fc.tuple(
        fc.constant('show' as const),
        argument(queueName),
        argument(fc.oneof(hostileString, fc.uuid())),
      ),
      fc.tuple(fc.constant('replay' as const), argument(queueName), optionsOf(replaySpec)),
      fc.tuple(fc.constant('purge' as const), argument(queueName), fc.constant(undefined)),
    );
    await forEveryCall(world, args, ([method, queue, second]) => ({
      run: () => invoke(world.sluice.dlq, method, [queue, second]),
      form: 'promise',
      boundMs: ADMIN_BOUND_MS,
      mustRefuse:
        typeof queue !== 'string' ||
        (method === 'list' && invalidOptions(second, listSpec)) ||
        (method === 'show' && typeof second !== 'string') ||
        (method === 'replay' && invalidOptions(second, replaySpec)),
    }));
  });

  it('sluice.on and off listen or refuse', async () => {
    const world = await useWorld();
    const args = fc.tuple(
      fc.constantFrom('on', 'off'),
      argument(fc.constantFrom(...CLIENT_EVENTS)),
      argument(callback),
    );
    await forEveryCall(world, args, ([method, name, listener]) => ({
      run: () => invoke(world.sluice, method, [name, listener]),
      form: 'sync',
      boundMs: ADMIN_BOUND_MS,
      mustRefuse: !isEventOf(CLIENT_EVENTS, name) || typeof listener !== 'function',
    }));
    // Listeners that were accepted do not disturb a publish.
    await expect(world.sluice.publish('', 'q-a', 'after the listeners')).resolves.toBeDefined();
  });

  it('close takes no arguments, and a closed client refuses every operation with ClosedError', async () => {
    const world = await useWorld();
    const operations = [
      ...[
        'declareExchange',
        'deleteExchange',
        'declareQueue',
        'deleteQueue',
        'bindQueue',
        'unbindQueue',
        'bindExchange',
        'unbindExchange',
        'inspectQueue',
        'stats',
        'listTopology',
        'purgeQueue',
        'publish',
        'publishBatch',
        'consume',
        'messages',
      ].map((method) => ({ method, of: (client: Sluice): object => client })),
      ...['list', 'show', 'replay', 'purge'].map((method) => ({
        method: `dlq.${method}`,
        of: (client: Sluice): object => client.dlq,
      })),
    ];
    const hostileArguments = fc.array(hostileValue, { maxLength: 4 });
    const args = fc.tuple(hostileArguments, fc.constantFrom(...operations), hostileArguments);
    await fc.assert(
      fc.asyncProperty(args, async ([closeArgs, { method, of }, methodArgs]) => {
        const client = await connectSluice(world.namespace, CLIENT_OPTIONS);
        const closed = await check(world, {
          run: () => invoke(client, 'close', closeArgs),
          form: 'promise',
          boundMs: ADMIN_BOUND_MS,
        });
        expect(closed.kind, 'close resolves, whatever it is given').toBe('resolved');
        const outcome = await check(world, {
          run: () => invoke(of(client), method.replace('dlq.', ''), methodArgs),
          form: method === 'messages' ? 'sync' : 'promise',
          boundMs: ADMIN_BOUND_MS,
        });
        expect(refusalCode(outcome), `${method} of a closed client`).toBe('CLOSED');
      }),
      { numRuns: Math.ceil(RUNS / 2), seed: SEED },
    );
  });
});
