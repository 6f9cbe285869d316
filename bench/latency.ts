/**
 * The latency scenario: a producer publishing at a steady {@link LATENCY_RATE} msg/s and a
 * consumer in the same process, started before it. Per message, the time from just before the
 * publish call to the start of its handler, on one clock (`performance.now`); the run reports
 * the 50th and 99th percentiles and the maximum over min(N, {@link LATENCY_SECONDS} x the rate)
 * messages.
 *
 * The producer is open-loop: a timer tick sends every message that is due by then, without
 * waiting for earlier confirms, as a service publishing on requests does; the confirms are
 * checked at the end.
 *
 * - sluice: `publish` to the topic exchange with one queue bound (the defaults: dedup on,
 *   durability `written`); `consume` with prefetch and concurrency {@link PREFETCH}, automatic
 *   ack; one client.
 * - raw: `XADD` on a connection of its own; the consume loop of raw-consumer.ts on two more.
 * - bullmq: `Queue.add` (`removeOnComplete`); a Worker of concurrency {@link PREFETCH}, ready
 *   before the first job.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { waitFor } from '../scripts/local-redis.js';
import { Sluice, type Consumer } from '../src/index.js';
import { BenchWorker } from './bullmq-worker.js';
import { createRawGroup, rawConsume } from './raw-consumer.js';
import {
  EXCHANGE,
  PREFETCH,
  QUEUE,
  ROUTING_KEY,
  allAcked,
  declareTopology,
  expectCount,
  handleMessage,
  makeBody,
  type BenchBody,
  type Contender,
  type Measurement,
  type RunContext,
  type Scenario,
} from './support.js';

/** Messages per second the producer publishes. */
export const LATENCY_RATE = 1000;
/** How long the producer publishes at the most (fewer seconds when N is smaller). */
export const LATENCY_SECONDS = 10;
/** Waiting for the last messages and confirms once the producer is done. */
const DRAIN = { intervalMs: 5, timeoutMs: 60_000 };

/**
 * When each message was sent and when its handler started; then the percentiles. Also what
 * the producer's confirms did, so that the run fails on a publish that failed.
 */
class LatencyRecorder {
  readonly #sentAt: Float64Array;
  readonly #latencyMs: Float64Array;
  #handled = 0;
  #confirmed = 0;
  #failure: Error | undefined;

  constructor(readonly messages: number) {
    this.#sentAt = new Float64Array(messages);
    this.#latencyMs = new Float64Array(messages);
  }

  /** Message `index` is about to be published by `publish`. */
  send(index: number, publish: () => Promise<unknown>): void {
    this.#sentAt[index] = performance.now();
    void publish().then(
      () => (this.#confirmed += 1),
      (error: unknown) =>
        (this.#failure ??= error instanceof Error ? error : new Error(String(error))),
    );
  }

  /** The handler of message `body.orderId` starts. */
  handle(body: BenchBody): Promise<void> {
    this.#latencyMs[body.orderId] = performance.now() - (this.#sentAt[body.orderId] ?? NaN);
    this.#handled += 1;
    return handleMessage(body);
  }

  get handled(): number {
    return this.#handled;
  }

  /** Resolves once every message is confirmed and handled; rejects with a failed publish. */
  async drained(what: string): Promise<void> {
    await waitFor(
      () =>
        this.#failure !== undefined ||
        (this.#confirmed === this.messages && this.#handled >= this.messages),
      { ...DRAIN, description: `${what}: every message confirmed and handled` },
    );
    if (this.#failure !== undefined) throw this.#failure;
    expectCount(`${what}: handled`, this.#handled, this.messages);
  }

  measurement(): Measurement {
    const sorted = [...this.#latencyMs].sort((a, b) => a - b);
    const rank = (quantile: number): number =>
      sorted[Math.max(0, Math.ceil(quantile * sorted.length) - 1)] ?? NaN;
    return { p50Ms: rank(0.5), p99Ms: rank(0.99), maxMs: rank(1) };
  }
}

/**
 * Sends messages 0 … N-1 at {@link LATENCY_RATE} per second: each tick of a 1 ms timer sends
 * those due by then (ticks come late under load, and catch up).
 */
async function paced(
  recorder: LatencyRecorder,
  publish: (index: number) => Promise<unknown>,
): Promise<void> {
  const startedAt = performance.now();
  let sent = 0;
  while (sent < recorder.messages) {
    const due = Math.floor(((performance.now() - startedAt) * LATENCY_RATE) / 1000) + 1;
    for (; sent < Math.min(due, recorder.messages); sent += 1) {
      const index = sent;
      recorder.send(index, () => publish(index));
    }
    await sleep(1);
  }
}

const sluiceLatency: Contender = {
  name: 'sluice',
  async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
    const client = await Sluice.connect({ url, namespace: prefix });
    let consumer: Consumer<BenchBody> | undefined;
    try {
      await declareTopology(client);
      const recorder = new LatencyRecorder(messages);
      const started = await client.consume<BenchBody>(QUEUE, (d) => recorder.handle(d.body), {
        prefetch: PREFETCH,
        concurrency: PREFETCH,
      });
      consumer = started;
      await paced(recorder, (i) => client.publish(EXCHANGE, ROUTING_KEY, makeBody(i)));
      await recorder.drained('sluice');
      await allAcked([started], messages, 'sluice');
      expectCount('sluice: handler errors', started.stats.handlerErrors, 0);
      return recorder.measurement();
    } finally {
      await consumer?.close();
      await client.close();
    }
  },
};

const rawLatency: Contender = {
  name: 'raw',
  async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
    const stream = `${prefix}:stream`;
    const producer = new Redis(url);
    const reader = new Redis(url);
    const commands = new Redis(url);
    try {
      await createRawGroup(commands, stream);
      const recorder = new LatencyRecorder(messages);
      const consumed = rawConsume(reader, commands, stream, messages, (body) =>
        recorder.handle(body),
      );
      // Known to the consuming below: a failure of the loop while the producer runs.
      consumed.catch(() => undefined);
      await paced(recorder, (i) => producer.xadd(stream, '*', 'body', JSON.stringify(makeBody(i))));
      await consumed;
      await recorder.drained('raw');
      expectCount('raw: stream length', await commands.xlen(stream), 0);
      return recorder.measurement();
    } finally {
      reader.disconnect();
      await Promise.all([producer.quit(), commands.quit()]);
    }
  },
};

const bullmqLatency: Contender = {
  name: 'bullmq',
  async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
    const queue = new Queue<BenchBody>(QUEUE, { connection: { url }, prefix });
    const recorder = new LatencyRecorder(messages);
    const worker = new BenchWorker(url, prefix, (body) => recorder.handle(body));
    try {
      await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
      const completed = worker.completed(messages);
      // Known to the await below: a failed job while the producer runs.
      completed.catch(() => undefined);
      const options = { removeOnComplete: true, removeOnFail: true };
      await paced(recorder, (i) => queue.add(ROUTING_KEY, makeBody(i), options));
      await recorder.drained('bullmq');
      await completed;
      return recorder.measurement();
    } finally {
      await worker.close();
      await queue.close();
    }
  },
};

const steady = `at a steady ${LATENCY_RATE.toLocaleString('en-US')} msg/s`;

/** The latency scenario: p50, p99 and max, each a row. */
export const latencyScenario: Scenario = {
  id: 'latency',
  messages: (n) => Math.min(n, LATENCY_RATE * LATENCY_SECONDS),
  rows: [
    { label: `latency p50 ${steady}`, sluice: sluiceLatency, metric: 'p50Ms' },
    {
      label: `latency p99 ${steady}`,
      sluice: sluiceLatency,
      metric: 'p99Ms',
      targets: { raw: 1.5 },
    },
    { label: `latency max ${steady}`, sluice: sluiceLatency, metric: 'maxMs' },
  ],
  baselines: { raw: rawLatency, bullmq: bullmqLatency },
};
