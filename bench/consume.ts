/**
 * The consume scenario: consume and ack N pre-filled messages with at most {@link PREFETCH}
 * unacked.
 *
 * - sluice: `consume(queue, handler, { prefetch, concurrency: prefetch })`, automatic ack
 *   (ownership-checked ack + delete, coalesced per tick); and the same with `idempotency: {}`
 *   (per message: the key's lease before the handler, done marker + ack after it), or with
 *   the PostgreSQL inbox (a transaction per message).
 * - raw: the loop a competent engineer writes by hand (raw-consumer.ts).
 * - bullmq: a Worker with `concurrency: prefetch` on jobs added with `removeOnComplete`.
 * - sluice on a queue of 16 partitions, 4 consumers ordered and 4 unordered (partitioned.ts):
 *   their consumers start, and settle ownership, before the messages are published, and the
 *   clock covers the consuming alone.
 *
 * Compared under the table: the idempotent consumer (Redis store) with the plain one, ordered
 * with unordered.
 *
 * The pre-fill is not timed. The clock starts before the consumer or worker is created (so its
 * start-up, a few round trips, is included) and stops once every message has been handled and
 * acked (completed, for BullMQ).
 */
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import pg from 'pg';
import { findPostgres } from '../scripts/local-postgres.js';
import { migrate, PostgresInbox } from '../src/postgres/index.js';
import { Redis } from 'ioredis';
import { Sluice, type Consumer } from '../src/index.js';
import { BenchWorker } from './bullmq-worker.js';
import { createRawGroup, rawConsume } from './raw-consumer.js';
import {
  PARTITIONED_CONCURRENCY,
  PARTITIONED_CONSUMERS,
  PARTITIONS,
  sluicePartitioned,
} from './partitioned.js';
import {
  AGAINST_BULLMQ,
  EXCHANGE,
  PREFETCH,
  PREFILL_CHUNK,
  QUEUE,
  ROUTING_KEY,
  allAcked,
  declareTopology,
  expectCount,
  handleMessage,
  inChunks,
  indexes,
  makeBody,
  throughput,
  timed,
  xaddPipelined,
  type BenchBody,
  type Contender,
  type Measurement,
  type RunContext,
  type Scenario,
} from './support.js';

/** Calls `fill(first, count)` for consecutive chunks of {@link PREFILL_CHUNK} message indexes. */
function prefill(
  messages: number,
  fill: (first: number, count: number) => Promise<unknown>,
): Promise<void> {
  return inChunks(messages, PREFILL_CHUNK, fill);
}

/**
 * How sluice's consumer runs: plain; idempotent with the Redis store (a lease, then marker +
 * ack per message); or idempotent with the PostgreSQL inbox (a transaction per message).
 */
type ConsumeMode = 'plain' | 'redis' | 'postgres';

/**
 * A PostgreSQL inbox in a table of this run's own (markers of another run must not make
 * duplicates), and how to let go of it: the table dropped, the pool ended, the server stopped
 * if this process started it (the runner hands every run the same one as `PG_URL`).
 */
async function postgresInbox(): Promise<{ store: PostgresInbox; dispose: () => Promise<void> }> {
  const found = await findPostgres();
  const pool = new pg.Pool({ connectionString: found.url, max: 20 });
  const table = `bench_inbox_${randomBytes(6).toString('hex')}`;
  await migrate(pool, { table });
  return {
    store: new PostgresInbox({ pool, table }),
    dispose: async () => {
      try {
        await pool.query(`DROP TABLE ${table}`);
        await pool.end();
      } finally {
        await found.stop();
      }
    },
  };
}

const sluiceConsume = (mode: ConsumeMode): Contender => ({
  name: mode === 'plain' ? 'sluice' : `sluice-${mode}`,
  async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
    const sluice = await Sluice.connect({ url, namespace: prefix });
    let inbox: Awaited<ReturnType<typeof postgresInbox>> | undefined;
    let consumer: Consumer<BenchBody> | undefined;
    try {
      if (mode === 'postgres') inbox = await postgresInbox();
      const store = inbox?.store;
      await declareTopology(sluice);
      await prefill(messages, (first, count) =>
        sluice.publishBatch(
          indexes(first, count).map((i) => ({
            exchange: EXCHANGE,
            routingKey: ROUTING_KEY,
            body: makeBody(i),
          })),
        ),
      );
      const elapsedMs = await timed(async () => {
        const options = {
          prefetch: PREFETCH,
          concurrency: PREFETCH,
          ...(mode === 'redis' ? { idempotency: {} } : {}),
          ...(store === undefined ? {} : { idempotency: { store } }),
        };
        // The handler says when the last message is handled (as the raw loop knows when it
        // is done); only the last acks' round trip is then polled for, so that polling every
        // millisecond does not compete with the consumer for the whole run.
        let handled = 0;
        let allHandled: () => void = () => undefined;
        const done = new Promise<void>((resolve) => (allHandled = resolve));
        const started = await sluice.consume<BenchBody>(
          QUEUE,
          (delivery) => {
            if (++handled === messages) allHandled();
            return handleMessage(delivery.body);
          },
          options,
        );
        consumer = started;
        await done;
        await allAcked([started], messages, 'sluice');
      });
      const stats = consumer?.stats;
      expectCount('sluice: handler errors', stats?.handlerErrors ?? -1, 0);
      expectCount('sluice: acked', stats?.acked ?? -1, messages);
      const left = await sluice.inspectQueue(QUEUE);
      expectCount('sluice: messages left in the queue', left.messages + left.unacked, 0);
      return throughput(messages, elapsedMs);
    } finally {
      await consumer?.close();
      await sluice.close();
      await inbox?.dispose();
    }
  },
});

const rawConsumer: Contender = {
  name: 'raw',
  async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
    const stream = `${prefix}:stream`;
    const commands = new Redis(url);
    const reader = new Redis(url);
    try {
      await createRawGroup(commands, stream);
      await prefill(messages, (first, count) =>
        xaddPipelined(commands, stream, indexes(first, count)),
      );
      const elapsedMs = await timed(() =>
        rawConsume(reader, commands, stream, messages, handleMessage),
      );
      expectCount('raw: stream length', await commands.xlen(stream), 0);
      return throughput(messages, elapsedMs);
    } finally {
      reader.disconnect();
      await commands.quit();
    }
  },
};

const bullmqConsume: Contender = {
  name: 'bullmq',
  async run({ url, prefix, messages }: RunContext): Promise<Measurement> {
    const queue = new Queue<BenchBody>(QUEUE, { connection: { url }, prefix });
    let worker: BenchWorker | undefined;
    try {
      await prefill(messages, (first, count) =>
        queue.addBulk(
          indexes(first, count).map((i) => ({
            name: ROUTING_KEY,
            data: makeBody(i),
            opts: { removeOnComplete: true, removeOnFail: true },
          })),
        ),
      );
      const elapsedMs = await timed(async () => {
        worker = new BenchWorker(url, prefix, handleMessage);
        await worker.completed(messages);
      });
      const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'failed', 'completed');
      expectCount(
        'bullmq: jobs left in the queue',
        Object.values(counts).reduce((sum, count) => sum + count, 0),
        0,
      );
      return throughput(messages, elapsedMs);
    } finally {
      await worker?.close();
      await queue.close();
    }
  },
};

const plain = sluiceConsume('plain');
const idempotent = sluiceConsume('redis');
const ordered = sluicePartitioned(true);
const unordered = sluicePartitioned(false);
const partitioned =
  `${PARTITIONS} partitions, ${PARTITIONED_CONSUMERS} consumers, ` +
  `concurrency ${PARTITIONED_CONCURRENCY}`;
const consumeAck = `consume + ack, prefetch ${PREFETCH}`;

/**
 * The consume scenario: sluice with its defaults, as an idempotent consumer, and on a
 * partitioned queue in order and not.
 */
export const consumeScenario: Scenario = {
  id: 'consume',
  usesPostgres: true,
  rows: [
    { label: consumeAck, sluice: plain, targets: { ...AGAINST_BULLMQ, raw: 1 } },
    {
      label: `${consumeAck}, idempotent (Redis store)`,
      sluice: idempotent,
      targets: AGAINST_BULLMQ,
    },
    // Not among the rows: no target.
    { label: `${consumeAck}, idempotent (PostgreSQL inbox)`, sluice: sluiceConsume('postgres') },
    { label: `${consumeAck}, ordered, ${partitioned}`, sluice: ordered, targets: AGAINST_BULLMQ },
    {
      label: `${consumeAck}, unordered, ${partitioned}`,
      sluice: unordered,
      targets: AGAINST_BULLMQ,
    },
  ],
  baselines: { raw: rawConsumer, bullmq: bullmqConsume },
  comparisons: [
    {
      label: 'idempotent consumer (Redis store) / plain',
      numerator: idempotent,
      denominator: plain,
      target: 0.7,
    },
    { label: 'ordered / unordered', numerator: ordered, denominator: unordered, target: 0.7 },
  ],
};
