/**
 * What every benchmark scenario shares: the run's settings, the message bodies, the sliding
 * window that keeps a fixed number of operations in flight, and timing.
 */
import { performance } from 'node:perf_hooks';
import type { Sluice } from '../src/index.js';

/** Messages per measured scenario unless `BENCH_MESSAGES` says otherwise. */
export const DEFAULT_MESSAGES = 50_000;
/**
 * Measured rounds unless `BENCH_ROUNDS` says otherwise. Each round runs every contender once;
 * the median damps what other processes on a small machine do to a single measurement.
 */
export const DEFAULT_ROUNDS = 3;
/** Publishes (or XADDs, or Queue.adds) in flight at once in the publish scenario. */
export const PUBLISH_WINDOW = 256;
/** Deliveries held unacked at once in the consume scenario (and handlers running at once). */
export const PREFETCH = 100;
/** Messages the pre-fill of the consume scenario writes per round trip (not timed). */
export const PREFILL_CHUNK = 1000;

/** The direct exchange both scenarios publish to. */
export const EXCHANGE = 'bench.orders';
/** The one queue bound to {@link EXCHANGE} (also BullMQ's queue name). */
export const QUEUE = 'bench.orders.created';
/** The binding key of {@link QUEUE} and the routing key of every message (BullMQ's job name). */
export const ROUTING_KEY = 'order.created';

/** Declares {@link EXCHANGE} (direct) and {@link QUEUE}, bound by {@link ROUTING_KEY}. */
export async function declareTopology(sluice: Sluice): Promise<void> {
  await sluice.declareExchange(EXCHANGE, 'direct');
  await sluice.declareQueue(QUEUE);
  await sluice.bindQueue(QUEUE, EXCHANGE, ROUTING_KEY);
}

/** Where one contender runs: its own key prefix on the shared server. */
export interface RunContext {
  readonly url: string;
  /** Every key the contender creates starts with `<prefix>:`; the runner deletes them afterwards. */
  readonly prefix: string;
  readonly messages: number;
}

/** One implementation of a scenario; resolves with the measured time in milliseconds. */
export interface Contender {
  /** Unique within its scenario; part of its key prefix. */
  readonly name: string;
  run(context: RunContext): Promise<number>;
}

/** What sluice is compared with: hand-written ioredis Streams code, BullMQ. */
export type BaselineName = 'raw' | 'bullmq';

/** A row of the table: one configuration of sluice, against its scenario's baselines. */
export interface ScenarioRow {
  readonly label: string;
  readonly sluice: Contender;
}

/**
 * Two rows of one scenario compared with each other (rather than with the baselines): the
 * median rate of `numerator` over that of `denominator`, and the same ratio per round.
 */
export interface RowComparison {
  readonly label: string;
  readonly numerator: Contender;
  readonly denominator: Contender;
  /** The ratio aimed at, printed next to the measured one. */
  readonly target?: number;
}

/**
 * One thing the bench measures. Every row's sluice contender and every baseline runs once per
 * round; the baselines run once for all rows, so that every row is compared with the same
 * measurement.
 */
export interface Scenario {
  /** Part of the key prefixes. */
  readonly id: string;
  readonly rows: readonly ScenarioRow[];
  readonly baselines: Readonly<Record<BaselineName, Contender>>;
  /** Rows compared with each other, printed under the table. */
  readonly comparisons?: readonly RowComparison[];
}

/** The body of message `index`: a small order event, about 100 bytes of JSON. */
export interface BenchBody {
  readonly orderId: number;
  readonly customer: string;
  readonly event: string;
  readonly amountCents: number;
  readonly currency: string;
}

/** The body of the message with index `index` (the same in every contender). */
export function makeBody(index: number): BenchBody {
  return {
    orderId: index,
    customer: `customer-${String(index % 10_000).padStart(5, '0')}`,
    event: 'order.created',
    amountCents: 1000 + (index % 9000),
    currency: 'EUR',
  };
}

/** Every contender's message handler: check the body and resolve, as an async handler would. */
export function handleMessage(body: BenchBody): Promise<void> {
  if (typeof body.orderId !== 'number') return Promise.reject(new Error('body without an orderId'));
  return Promise.resolve();
}

/** N from `BENCH_MESSAGES`, else {@link DEFAULT_MESSAGES}. */
export function messagesFromEnv(): number {
  return positiveIntegerFromEnv('BENCH_MESSAGES', DEFAULT_MESSAGES);
}

/** Measured rounds from `BENCH_ROUNDS`, else {@link DEFAULT_ROUNDS}; the table shows their median. */
export function roundsFromEnv(): number {
  return positiveIntegerFromEnv('BENCH_ROUNDS', DEFAULT_ROUNDS);
}

function positiveIntegerFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${name} must be a positive integer, not '${raw}'`);
  }
  return value;
}

/**
 * Runs `task(0) … task(total - 1)` with at most `window` of them in flight: each completion
 * starts the next one (a sliding window, not batches separated by Promise.all barriers).
 */
export async function slidingWindow(
  total: number,
  window: number,
  task: (index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < total) {
      const index = next;
      next += 1;
      await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, total) }, lane));
}

/** Milliseconds that `operation` took. */
export async function timed(operation: () => Promise<unknown>): Promise<number> {
  const startedAt = performance.now();
  await operation();
  return performance.now() - startedAt;
}

/** Fails the run when a contender did not do all of its work (a fast wrong result is no result). */
export function expectCount(what: string, actual: number, expected: number): void {
  if (actual !== expected) throw new Error(`${what}: expected ${expected}, found ${actual}`);
}
