/**
 * The PostgreSQL inbox (sluice/postgres) on a real PostgreSQL and a real Redis: a handler runs
 * once per key, its rows commit with the key's marker or not at all, a crash between the commit
 * and the ack never runs it again, and failures of PostgreSQL are typed and lose no message.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  ConnectionError,
  InvalidArgumentError,
  ServerError,
  TimeoutError,
  type Delivery,
} from '../../src/index.js';
import {
  migrate,
  migrationSql,
  PostgresInbox,
  purgeExpired,
  type PostgresInboxContext,
} from '../../src/postgres/index.js';
import { startEmbeddedPostgres } from '../../scripts/local-postgres.js';
import { redisUrl, waitFor } from '../support/index.js';
import { drainWithRestarts, publishEachTwice, startProcess } from '../support/processes.js';
import { createSchema, postgresSuite, withSearchPath } from '../support/postgres.js';
import { useSluice } from '../support/sluice.js';

const postgres = postgresSuite();

const CHARGES = 'CREATE TABLE charges (id bigserial PRIMARY KEY, job text NOT NULL)';

/** A schema with the inbox table and the `charges` table, and an inbox on it. */
async function useInbox(): Promise<
  Awaited<ReturnType<typeof postgres.useSchema>> & { inbox: PostgresInbox }
> {
  const scope = await postgres.useSchema();
  await migrate(scope.pool);
  await scope.pool.query(CHARGES);
  return { ...scope, inbox: new PostgresInbox({ pool: scope.pool }) };
}

async function count(pool: pg.Pool, sql: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${sql}`);
  return Number(rows[0]?.n);
}

/**
 * A transaction of `inbox` that holds `key` (with `leaseMs`) until released: `inside` resolves
 * once its handler runs (having inserted a charge `job`, if given), `outcome` is execute's.
 */
function holdKey(
  inbox: PostgresInbox,
  key: string,
  leaseMs: number,
  job?: string,
): { inside: Promise<void>; release: () => void; outcome: Promise<'done' | 'duplicate'> } {
  let entered = (): void => undefined;
  const inside = new Promise<void>((resolve) => (entered = resolve));
  let release = (): void => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const outcome = inbox.execute(key, { ttlMs: 60_000, leaseMs }, async ({ db }) => {
    if (job !== undefined) await db.query('INSERT INTO charges (job) VALUES ($1)', [job]);
    entered();
    await released;
  });
  // Awaited by the test, perhaps after it failed otherwise.
  outcome.catch(() => undefined);
  return { inside, release: () => release(), outcome };
}

/** An inbox consumer process (test/support/inbox-process.ts) on `queue`, lease 5 s. */
function startConsumer(
  namespace: string,
  queue: string,
  postgresUrl: string,
  crashAfterCommit = false,
): ChildProcess {
  return startProcess(
    'inbox-process.ts',
    redisUrl(),
    namespace,
    queue,
    postgresUrl,
    '5000',
    ...(crashAfterCommit ? ['crash-after-commit'] : []),
  );
}

describe('PostgreSQL inbox', () => {
  it('runs a job published twice once: its row and its marker commit together, the duplicate is acked and counted', async () => {
    const { sluice } = await useSluice();
    const { pool, inbox } = await useInbox();
    await sluice.declareQueue('charges');
    for (let i = 0; i < 2; i++) {
      await sluice.publish('', 'charges', 1250, { dedupKey: 'order-1', dedupWindowMs: 0 });
    }
    const seenInside: number[] = [];
    const consumer = await sluice.consume(
      'charges',
      async (msg: Delivery<number>, { db }) => {
        await db.query('INSERT INTO charges (job) VALUES ($1)', [msg.dedupKey]);
        // Another session sees neither the row nor the marker before the commit.
        seenInside.push(await count(pool, 'charges'), await count(pool, 'sluice_inbox'));
      },
      { idempotency: { store: inbox } },
    );
    await waitFor(async () => {
      const info = await sluice.inspectQueue('charges');
      return consumer.stats.duplicates === 1 && info.messages === 0 && info.unacked === 0;
    });
    expect(seenInside).toEqual([0, 0]);
    expect(await count(pool, 'charges')).toBe(1);
    const { rows } = await pool.query<{ key: string; live: boolean }>(
      'SELECT key, expires_at > now() AS live FROM sluice_inbox',
    );
    expect(rows).toEqual([{ key: 'order-1', live: true }]);
    expect(consumer.stats.handlerErrors).toBe(0);
    await consumer.close();
  });

  it('commits nothing of a handler that throws, and runs the retry', async () => {
    const { sluice } = await useSluice();
    const { pool, inbox } = await useInbox();
    await sluice.declareQueue('charges');
    await sluice.publish('', 'charges', 'flaky', { dedupKey: 'order-1' });
    const committedBefore: number[] = [];
    let runs = 0;
    const consumer = await sluice.consume(
      'charges',
      async (msg: Delivery, { db }: PostgresInboxContext) => {
        runs++;
        // What the failed run left, as another session sees it: nothing.
        committedBefore.push(await count(pool, 'charges'), await count(pool, 'sluice_inbox'));
        await db.query('INSERT INTO charges (job) VALUES ($1)', [msg.dedupKey]);
        if (runs === 1) throw new Error('card declined');
      },
      { idempotency: { store: inbox }, retry: { initialDelayMs: 20 } },
    );
    await waitFor(() => consumer.stats.acked === 1);
    expect(runs).toBe(2);
    expect(committedBefore).toEqual([0, 0, 0, 0]);
    expect(await count(pool, 'charges')).toBe(1);
    expect(await count(pool, 'sluice_inbox')).toBe(1);
    await consumer.close();
  });

  it('acks, without running the handler, a message redelivered after a crash between commit and ack', async () => {
    const { sluice, namespace, redis } = await useSluice();
    const { pool, url, inbox } = await useInbox();
    await sluice.declareQueue('charges', { ackTimeoutMs: 1000 });
    await sluice.publish('', 'charges', 1250, { dedupKey: 'order-1' });
    const crashing = startConsumer(namespace, 'charges', url, true);
    const [code, signal] = (await once(crashing, 'exit')) as [number | null, string | null];
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
    // Committed, not acked.
    expect(await count(pool, 'charges')).toBe(1);
    expect(await count(pool, 'sluice_inbox')).toBe(1);
    expect(await sluice.inspectQueue('charges')).toMatchObject({ messages: 0, unacked: 1 });
    let runs = 0;
    const consumer = await sluice.consume(
      'charges',
      () => {
        runs++;
      },
      { idempotency: { store: inbox } },
    );
    await waitFor(() => consumer.stats.duplicates === 1, { timeoutMs: 20_000 });
    await waitFor(async () => (await sluice.inspectQueue('charges')).messages === 0);
    expect(runs).toBe(0);
    expect(Number(await redis.get(`${namespace}:runs`))).toBe(1);
    expect(await count(pool, 'charges')).toBe(1);
    await consumer.close();
  });

  it('applies every job exactly once: each published twice, one of three consumers killed and restarted', async () => {
    const { sluice, namespace, redis } = await useSluice();
    const { pool, url } = await useInbox();
    await sluice.declareQueue('charges', { ackTimeoutMs: 1000 });
    const jobs = 10_000;
    await publishEachTwice(sluice, 'charges', jobs);
    await drainWithRestarts(
      sluice,
      redis,
      namespace,
      'charges',
      () => startConsumer(namespace, 'charges', url),
      { milestoneMs: 90_000, drainMs: 120_000 },
    );
    const { rows } = await pool.query<{ jobs: string; rows: string }>(
      'SELECT count(DISTINCT job) AS jobs, count(*) AS rows FROM charges',
    );
    expect(rows[0]).toEqual({ jobs: String(jobs), rows: String(jobs) });
    expect(await count(pool, 'sluice_inbox')).toBe(jobs);
  }, 240_000);
});

describe('PostgreSQL inbox: keys held, input and failures', () => {
  it('waits for a key another transaction holds at most leaseMs, then fails with a TimeoutError', async () => {
    const { inbox } = await useInbox();
    const holder = holdKey(inbox, 'order-1', 10_000);
    await holder.inside;
    const started = Date.now();
    const waiting = inbox.execute('order-1', { ttlMs: 60_000, leaseMs: 1000 }, () =>
      Promise.resolve(),
    );
    await expect(waiting).rejects.toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    holder.release();
    expect(await holder.outcome).toBe('done');
    expect(
      await inbox.execute('order-1', { ttlMs: 60_000, leaseMs: 1000 }, () => Promise.resolve()),
    ).toBe('duplicate');
  });

  it('lets PostgreSQL end a holder idle past its lease: the waiter gets the key, the holder commits nothing', async () => {
    const { inbox, pool } = await useInbox();
    const holder = holdKey(inbox, 'order-1', 1000, 'idle');
    await holder.inside;
    const waiter = await inbox.execute(
      'order-1',
      { ttlMs: 60_000, leaseMs: 10_000 },
      async ({ db }) => {
        await db.query('INSERT INTO charges (job) VALUES ($1)', ['waiter']);
      },
    );
    expect(waiter).toBe('done');
    holder.release();
    await expect(holder.outcome).rejects.toBeInstanceOf(ConnectionError);
    const { rows } = await pool.query<{ job: string }>('SELECT job FROM charges');
    expect(rows).toEqual([{ job: 'waiter' }]);
  });

  it('refuses bad input before anything is sent', async () => {
    const pool = new pg.Pool({ connectionString: postgres.url, max: 1 });
    onTestFinished(() => pool.end());
    const client = new pg.Client({ connectionString: postgres.url });
    for (const options of [
      undefined,
      {},
      { pool: {} },
      { pool: client },
      { pool, table: 'Inbox' },
      { pool, table: 'inbox; DROP TABLE charges' },
      { pool, table: 'a.b.c' },
      { pool, table: '1inbox' },
      { pool, table: 'x'.repeat(49) },
      { pool, table: 42 },
      { pool, typo: true },
    ]) {
      expect(
        () =>
          new PostgresInbox(options as unknown as ConstructorParameters<typeof PostgresInbox>[0]),
        JSON.stringify(options, (key, value: unknown) => (key === 'pool' ? typeof value : value)),
      ).toThrow(InvalidArgumentError);
    }
    expect(new PostgresInbox({ pool, table: 'billing.inbox_2' }).table).toBe('billing.inbox_2');
    const inbox = new PostgresInbox({ pool });
    const work = (): Promise<void> => Promise.resolve();
    const lease = { ttlMs: 60_000, leaseMs: 1000 };
    for (const [key, options, fn] of [
      ['', lease, work],
      ['a'.repeat(1025), lease, work],
      ['€'.repeat(700), lease, work],
      ['nul\u0000', lease, work],
      ['lone\ud800', lease, work],
      [42, lease, work],
      ['k', undefined, work],
      ['k', { ttlMs: 60_000 }, work],
      ['k', { ttlMs: 10, leaseMs: 1000 }, work],
      ['k', { ttlMs: 60_000, leaseMs: 7_200_000 }, work],
      ['k', { ...lease, extra: 1 }, work],
      ['k', lease, 'work'],
    ] as const) {
      await expect(
        inbox.execute(key as string, options as typeof lease, fn as typeof work),
      ).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    await expect(migrate(undefined as unknown as pg.Pool)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(migrate(client as unknown as pg.Pool)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(migrate(pool, { table: 'no-dashes' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(purgeExpired(pool, { table: 1 } as unknown as object)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(() => migrationSql({ table: 'Inbox' })).toThrow(InvalidArgumentError);
    // Nothing reached the server: the pool never opened a connection.
    expect(pool.totalCount).toBe(0);
  });

  it('migrates into a named schema, again without harm, and purges expired markers only', async () => {
    const { pool, schema } = await postgres.useSchema();
    const table = `${schema}.inbox`;
    await Promise.all([migrate(pool, { table }), migrate(pool, { table })]);
    await migrate(pool, { table });
    const inbox = new PostgresInbox({ pool, table });
    const lease = { ttlMs: 1000, leaseMs: 1000 };
    expect(await inbox.execute('short', lease, () => Promise.resolve())).toBe('done');
    expect(await inbox.execute('long', { ...lease, ttlMs: 60_000 }, () => Promise.resolve())).toBe(
      'done',
    );
    // Once its time to live ran out, a key runs again (its marker replaced) or is purged.
    await waitFor(
      async () => (await inbox.execute('short', lease, () => Promise.resolve())) === 'done',
      { timeoutMs: 5000, intervalMs: 200 },
    );
    await waitFor(async () => (await purgeExpired(pool, { table })) === 1, {
      timeoutMs: 5000,
      intervalMs: 200,
    });
    const { rows } = await pool.query<{ key: string }>(`SELECT key FROM ${table}`);
    expect(rows).toEqual([{ key: 'long' }]);
  });

  it('fails a delivery with a ServerError on a table never migrated, and keeps the message for the retry', async () => {
    const { sluice } = await useSluice();
    const { pool } = await postgres.useSchema();
    await pool.query(CHARGES);
    await sluice.declareQueue('charges');
    await sluice.publish('', 'charges', 1250, { dedupKey: 'order-1' });
    const errors: unknown[] = [];
    let runs = 0;
    const consumer = await sluice.consume(
      'charges',
      async (msg: Delivery, { db }) => {
        runs++;
        await db.query('INSERT INTO charges (job) VALUES ($1)', [msg.dedupKey]);
      },
      { idempotency: { store: new PostgresInbox({ pool }) }, retry: { initialDelayMs: 50 } },
    );
    consumer.on('delivery.failed', ({ error }) => errors.push(error));
    await waitFor(() => errors.length >= 1);
    expect(errors[0]).toBeInstanceOf(ServerError);
    expect((errors[0] as ServerError).cause).toMatchObject({ code: '42P01' });
    expect(runs).toBe(0);
    await migrate(pool);
    await waitFor(() => consumer.stats.acked === 1);
    expect(runs).toBe(1);
    expect(await count(pool, 'charges')).toBe(1);
    await consumer.close();
  });

  it('fails deliveries with a ConnectionError while PostgreSQL is stopped, and handles them once it is back', async () => {
    const server = await startEmbeddedPostgres();
    onTestFinished(() => server.dispose());
    const admin = new pg.Pool({ connectionString: server.url, max: 1 });
    admin.on('error', () => undefined);
    onTestFinished(() => admin.end());
    const { schema } = await createSchema(admin);
    const pool = new pg.Pool({ connectionString: withSearchPath(server.url, schema), max: 3 });
    pool.on('error', () => undefined);
    onTestFinished(() => pool.end());
    await migrate(pool);
    await pool.query(CHARGES);
    const { sluice } = await useSluice();
    await sluice.declareQueue('charges');
    const errors: unknown[] = [];
    const consumer = await sluice.consume(
      'charges',
      async (msg: Delivery, { db }: PostgresInboxContext) => {
        await db.query('INSERT INTO charges (job) VALUES ($1)', [msg.dedupKey]);
      },
      { idempotency: { store: new PostgresInbox({ pool }) }, retry: { initialDelayMs: 100 } },
    );
    consumer.on('delivery.failed', ({ error }) => errors.push(error));
    await server.stop();
    await sluice.publish('', 'charges', 1250, { dedupKey: 'order-1' });
    await waitFor(() => errors.length >= 2);
    expect(errors.every((error) => error instanceof ConnectionError)).toBe(true);
    // Kept: delivered again, or parked for the retry.
    const { messages, unacked, delayed } = await sluice.inspectQueue('charges');
    expect(messages + unacked + delayed).toBe(1);
    await server.start();
    await waitFor(() => consumer.stats.acked === 1, { timeoutMs: 20_000 });
    expect(await count(pool, 'charges')).toBe(1);
    await consumer.close();
  });
});
