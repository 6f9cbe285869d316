/**
 * A consumer with the PostgreSQL inbox in its own process, for crash tests. Each handled job
 * inserts one row `(job)` into the table `charges` through `ctx.db` (so the row commits with the
 * marker), and counts handler runs in `<namespace>:runs` in Redis. With `crash-after-commit`,
 * the process kills itself (SIGKILL) as soon as a store transaction committed, before sluice
 * acks the delivery.
 * Usage: inbox-process.ts <redisUrl> <namespace> <queue> <postgresUrl> <leaseMs> [crash-after-commit]
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { Sluice, type Delivery, type IdempotencyStore } from '../../src/index.js';
import { PostgresInbox, type PostgresInboxContext } from '../../src/postgres/index.js';

const [redisUrl, namespace, queue, postgresUrl, leaseMs, mode] = process.argv.slice(2);
if (
  redisUrl === undefined ||
  namespace === undefined ||
  queue === undefined ||
  postgresUrl === undefined ||
  leaseMs === undefined
) {
  throw new Error(
    'usage: inbox-process.ts <redisUrl> <namespace> <queue> <postgresUrl> <leaseMs> [crash-after-commit]',
  );
}
const redis = new Redis(redisUrl);
const pool = new pg.Pool({ connectionString: postgresUrl, max: 10 });
const inbox = new PostgresInbox({ pool });
const store: IdempotencyStore<PostgresInboxContext> =
  mode === 'crash-after-commit'
    ? {
        async execute(key, options, work) {
          const outcome = await inbox.execute(key, options, work);
          if (outcome === 'done') process.kill(process.pid, 'SIGKILL');
          return outcome;
        },
      }
    : inbox;
const sluice = await Sluice.connect({ url: redisUrl, namespace });
await sluice.consume(
  queue,
  async (msg: Delivery, { db }) => {
    await redis.incr(`${namespace}:runs`);
    await db.query('INSERT INTO charges (job) VALUES ($1)', [msg.dedupKey]);
  },
  {
    prefetch: 100,
    concurrency: 20,
    retry: { initialDelayMs: 50 },
    idempotency: { store, leaseMs: Number(leaseMs) },
  },
);
process.stdout.write('ready\n');
