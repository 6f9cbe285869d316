/**
 * What every benchmark scenario shares: the run's settings, the topology and message bodies,
 * what a contender measures, the sliding window that keeps a fixed number of operations in
 * flight, and timing.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Cluster, type ChainableCommander, type Redis } from 'ioredis';
import { waitFor } from '../scripts/local-redis.js';
import { unlinkMatching } from '../src/connection/connection.js';
import type { Consumer, QueueOptions, ServerAddress, Sluice } from '../src/index.js';
import { escapeGlob } from '../src/keys/index.js';

/** N, the messages of most scenarios, unless `BENCH_MESSAGES` says otherwise. */
export const DEFAULT_MESSAGES = 50_000;
/**
 * Measured rounds unless `BENCH_ROUNDS` says otherwise. Each round runs every contender once;
 * the median damps what other processes on a small machine do to a single measurement.
 */
export const DEFAULT_ROUNDS = 3;
/** Publishes (or XADDs, or Queue.adds) in flight at once in the windowed publish rows. */
export const PUBLISH_WINDOW = 256;
/** Messages per batch (publishBatch, pipeline, addBulk) in the batch scenario. */
export const BATCH_SIZE = 256;
/** Deliveries held unacked at once in the consume scenario (and handlers running at once). */
export const PREFETCH = 100;
/** Messages a pre-fill (not timed) writes per round trip. */
export const PREFILL_CHUNK = 1000;
/** Bytes of JSON of every body unless a row says otherwise. */
export const BODY_BYTES = 256;

/** The topic exchange the scenarios publish to. */
export const EXCHANGE = 'bench.orders';
/** The fanout exchange of the fanout rows. */
export const FANOUT_EXCHANGE = 'bench.orders.fanout';
/** The queue bound to {@link EXCHANGE} by {@link BINDING_KEY} (also BullMQ's queue name). */
export const QUEUE = 'bench.orders.created';
/** The routing key of every message (BullMQ's job name). */
export const ROUTING_KEY = 'order.created';
/** The binding of {@link QUEUE}: a pattern that {@link ROUTING_KEY} matches. */
export const BINDING_KEY = 'order.*';
/** Queues that the bindings which {@link ROUTING_KEY} does not match lead to. */
const OTHER_QUEUES = 10;

/**
 * What a sluice contender publishes to:
 * - `topic`: {@link EXCHANGE} with {@link QUEUE} bound by {@link BINDING_KEY}, and
 *   `bindings - 1` more bindings `orders.<i>.*` (which the routing key does not match) spread
 *   over {@link OTHER_QUEUES} other queues;
 * - `fanout`: {@link FANOUT_EXCHANGE} with `queues` queues bound, {@link QUEUE} the first.
 */
export type Topology =
  | { readonly kind: 'topic'; readonly bindings: number }
  | { readonly kind: 'fanout'; readonly queues: number };

/** The headline topology: a topic exchange with one queue bound. */
export const ONE_QUEUE: Topology = { kind: 'topic', bindings: 1 };

/** The exchange that a contender on `topology` publishes to. */
export function exchangeOf(topology: Topology): string {
  return topology.kind === 'topic' ? EXCHANGE : FANOUT_EXCHANGE;
}

/** The queues that every message published on `topology` is routed to. */
export function targetQueues(topology: Topology): string[] {
  if (topology.kind === 'topic') return [QUEUE];
  return Array.from({ length: topology.queues }, (_, i) => (i === 0 ? QUEUE : `${QUEUE}.${i}`));
}

/** Declares `topology`; `queueOptions` apply to {@link QUEUE}. */
export async function declareTopology(
  sluice: Sluice,
  topology: Topology = ONE_QUEUE,
  queueOptions: QueueOptions = {},
): Promise<void> {
  await sluice.declareQueue(QUEUE, queueOptions);
  if (topology.kind === 'fanout') {
    await sluice.declareExchange(FANOUT_EXCHANGE, 'fanout');
    for (const queue of targetQueues(topology)) {
      if (queue !== QUEUE) await sluice.declareQueue(queue);
      await sluice.bindQueue(queue, FANOUT_EXCHANGE, '');
    }
    return;
  }
  await sluice.declareExchange(EXCHANGE, 'topic');
  await sluice.bindQueue(QUEUE, EXCHANGE, BINDING_KEY);
  const others = Math.min(OTHER_QUEUES, topology.bindings - 1);
  for (let i = 0; i < others; i++) await sluice.declareQueue(`bench.other.${i}`);
  for (let i = 1; i < topology.bindings; i++) {
    await sluice.bindQueue(`bench.other.${i % others}`, EXCHANGE, `orders.${i}.*`);
  }
}

/** Where one contender runs: its own key prefix on the shared server. */
export interface RunContext {
  readonly url: string;
  /** Every key the contender creates starts with `<prefix>:`; the runner deletes them afterwards. */
  readonly prefix: string;
  readonly messages: number;
}

/** What the table can show of a run: a rate, a latency percentile or memory per message. */
export type Metric =
  'msgPerSecond' | 'p50Ms' | 'p99Ms' | 'maxMs' | 'streamBytesPerMessage' | 'bytesPerMessage';

/** What one run of a contender measured (a contender measures only some metrics). */
export type Measurement = Partial<Record<Metric, number>>;

/** The measurement of a run that handled `messages` in `elapsedMs`. */
export function throughput(messages: number, elapsedMs: number): Measurement {
  return { msgPerSecond: (messages * 1000) / elapsedMs };
}

/** One implementation of a scenario. */
export interface Contender {
  /** Unique within its scenario; part of its key prefix. */
  readonly name: string;
  run(context: RunContext): Promise<Measurement>;
}

/** What sluice is compared with: hand-written ioredis Streams code, BullMQ. */
export type BaselineName = 'raw' | 'bullmq';

/**
 * The ratio that a row aims at against each baseline: sluice's value over the baseline's, at
 * least this for a rate, at most this for a latency or a size.
 */
export type Targets = Partial<Readonly<Record<BaselineName, number>>>;

/** The target of every throughput row of the list: at least twice BullMQ's rate. */
export const AGAINST_BULLMQ: Targets = { bullmq: 2 };

/** A row of the table: one configuration of sluice and one metric, against the baselines. */
export interface ScenarioRow {
  readonly label: string;
  readonly sluice: Contender;
  /** Default `msgPerSecond`. */
  readonly metric?: Metric;
  readonly targets?: Targets;
}

/**
 * Two contenders of one scenario compared with each other (rather than with the baselines):
 * the median rate of `numerator` over that of `denominator`, and the same ratio per round.
 */
export interface RowComparison {
  readonly label: string;
  readonly numerator: Contender;
  readonly denominator: Contender;
  /** The least ratio aimed at. */
  readonly target?: number;
}

/**
 * One thing the bench measures. Every contender (each row's sluice, each baseline) runs once
 * per round, in a process of its own; the baselines run once for all rows, so that every row is
 * compared with the same measurement.
 */
export interface Scenario {
  /** Part of the key prefixes; what `BENCH_ONLY` names. */
  readonly id: string;
  readonly rows: readonly ScenarioRow[];
  readonly baselines: Readonly<Record<BaselineName, Contender>>;
  /** Rows compared with each other, printed under the table. */
  readonly comparisons?: readonly RowComparison[];
  /** Messages per run of a contender, from the run's N (default N). */
  readonly messages?: (n: number) => number;
  /** Whether each run first warms up on a few messages, not measured (default true). */
  readonly warmup?: boolean;
  /**
   * Whether a contender needs PostgreSQL: the runner then finds (or starts) one for the whole
   * run and hands it to every run as `PG_URL`.
   */
  readonly usesPostgres?: boolean;
}

/** Every contender of a scenario, once each: the rows' sluice ones, then the baselines. */
export function contendersOf(scenario: Scenario): Contender[] {
  const { raw, bullmq } = scenario.baselines;
  return [...new Set([...scenario.rows.map((row) => row.sluice), raw, bullmq])];
}

/** The body of a message: a small order event, padded by `note` to the size asked for. */
export interface BenchBody {
  readonly orderId: number;
  readonly customer: string;
  readonly amountCents: number;
  readonly currency: string;
  readonly note: string;
}

/**
 * The body of the message with index `index`, exactly `bytes` bytes of JSON (the same in every
 * contender).
 */
export function makeBody(index: number, bytes = BODY_BYTES): BenchBody {
  const body = {
    orderId: index,
    customer: `customer-${String(index % 10_000).padStart(5, '0')}`,
    amountCents: 1000 + (index % 9000),
    currency: 'EUR',
    note: '',
  };
  const padding = bytes - JSON.stringify(body).length;
  if (padding < 0) throw new Error(`a body of message ${index} takes more than ${bytes} bytes`);
  return { ...body, note: 'x'.repeat(padding) };
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

/** Calls `write(first, count)` for consecutive chunks of at most `size` message indexes, one at a time. */
export async function inChunks(
  messages: number,
  size: number,
  write: (first: number, count: number) => Promise<unknown>,
): Promise<void> {
  for (let first = 0; first < messages; first += size) {
    await write(first, Math.min(size, messages - first));
  }
}

/** `count` consecutive message indexes from `first`. */
export function indexes(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

/** Runs `pipeline`; rejects with the first command's error if any failed. */
export async function execPipeline(pipeline: ChainableCommander): Promise<void> {
  const failed = (await pipeline.exec())?.find(([error]) => error !== null);
  if (failed !== undefined) throw failed[0] as Error;
}

/**
 * Appends the bodies of messages `ids` (`bytes` bytes of JSON each) to `stream` as raw entries
 * of one field, `body`, in one pipeline.
 */
export function xaddPipelined(
  redis: Redis,
  stream: string,
  ids: readonly number[],
  bytes = BODY_BYTES,
): Promise<void> {
  const pipeline = redis.pipeline();
  for (const i of ids) pipeline.xadd(stream, '*', 'body', JSON.stringify(makeBody(i, bytes)));
  return execPipeline(pipeline);
}

/**
 * Resolves once `consumers` together have acked (or failed the handler of) `messages`
 * deliveries. Polls every millisecond, so that the poll adds at most ~1 ms to a run: call it
 * once the last message is handled, so that it does not compete with the consumers meanwhile.
 */
export async function allAcked<T>(
  consumers: readonly Consumer<T>[],
  messages: number,
  what: string,
): Promise<void> {
  const settled = (): number =>
    consumers.reduce((sum, c) => sum + c.stats.acked + c.stats.handlerErrors, 0);
  await waitFor(() => settled() >= messages, {
    intervalMs: 1,
    timeoutMs: 300_000,
    description: `${what}: every message acked`,
  });
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

/** Deletes every key of `namespace` on every master of the Redis Cluster that `seeds` lead to. */
export async function deleteClusterNamespace(
  seeds: readonly ServerAddress[],
  namespace: string,
): Promise<void> {
  const admin = new Cluster([...seeds]);
  try {
    await unlinkMatching(admin, `${escapeGlob(namespace)}:*`);
  } finally {
    await admin.quit();
  }
}

/** The repository's root (the nearest folder with a package.json), where worker processes run. */
export const ROOT = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    if (dirname(dir) === dir)
      throw new Error('the bench runs inside the repository: no package.json above it');
    dir = dirname(dir);
  }
  return dir;
})();
/** Starts the line on which a worker prints its measurement as JSON. */
export const RESULT_PREFIX = 'bench-result ';

/** Where {@link buildWorkers} puts the compiled processes. */
const BUILD_DIR = join(ROOT, 'bench-results', 'build');

/**
 * Compiles the processes that measure (bench/worker.ts, bench/cluster-worker.ts,
 * bench/profile.ts and what they import, sluice's src among it) with tsc into
 * `bench-results/build`, with src/lua beside, so that they run plain JavaScript as a service
 * that installed sluice does: tsx's transform adds work of its own to every function it
 * names (`__name`), which a profile of the publish path showed at several percent.
 */
export function buildWorkers(): void {
  rmSync(BUILD_DIR, { recursive: true, force: true });
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.bench.json'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  cpSync(join(ROOT, 'src', 'lua'), join(BUILD_DIR, 'src', 'lua'), { recursive: true });
}

/** The compiled file of bench/<name>.ts (see {@link buildWorkers}). */
export function compiledWorker(name: string): string {
  return join(BUILD_DIR, 'bench', `${name}.js`);
}

/**
 * Runs `node <worker> <task as JSON>` (a compiled worker) and resolves with the JSON it prints
 * after {@link RESULT_PREFIX}; rejects, with its output, if it fails or prints none. A worker still
 * running after `timeoutMs` is killed, so that a hung one fails the run rather than stalling it.
 */
export function runWorkerProcess<T>(
  worker: string,
  task: unknown,
  options: { readonly env: NodeJS.ProcessEnv; readonly timeoutMs: number; readonly what: string },
): Promise<T> {
  const child = spawn(process.execPath, [worker, JSON.stringify(task)], {
    cwd: ROOT,
    env: options.env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (stdout += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  return new Promise<T>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((candidate) => candidate.startsWith(RESULT_PREFIX));
      if (code !== 0 || line === undefined) {
        const exit = code ?? signal ?? 'unknown';
        reject(new Error(`worker ${options.what} failed (exit ${exit}); its output:\n${stdout}`));
        return;
      }
      resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as T);
    });
  });
}
