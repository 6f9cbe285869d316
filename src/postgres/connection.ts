/**
 * What sluice/postgres needs of a `pg.Pool`, and what its failures become: every error of a
 * statement sluice runs is a {@link SluiceError}, with pg's error as the cause.
 */
import type { Pool, PoolClient } from 'pg';
import {
  ConnectionError,
  InvalidArgumentError,
  ServerError,
  TimeoutError,
  type SluiceError,
} from '../errors/index.js';

/** Checks that `pool` is a `pg.Pool` (or works as one), not a `pg.Client` (its connect differs). */
export function validatePool(pool: unknown): asserts pool is Pool {
  const candidate = pool as Partial<Pool> | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.connect !== 'function' ||
    typeof candidate.query !== 'function' ||
    typeof candidate.totalCount !== 'number'
  ) {
    throw new InvalidArgumentError('pool must be a pg.Pool');
  }
}

/** SQLSTATEs of a statement that waited too long: statement_timeout, lock_timeout. */
const TIMED_OUT = new Set(['57014', '55P03']);
/** SQLSTATEs of a session the server ended or would not start. */
const SESSION_LOST = new Set(['57P01', '57P02', '57P03', '53300']);
const UNDEFINED_TABLE = '42P01';

/** pg's error for a statement the server refused, with its SQLSTATE. */
interface DatabaseError extends Error {
  readonly code: string;
  readonly severity: string;
}

function isDatabaseError(error: unknown): error is DatabaseError {
  return (
    error instanceof Error &&
    typeof (error as Partial<DatabaseError>).severity === 'string' &&
    typeof (error as Partial<DatabaseError>).code === 'string'
  );
}

/**
 * The SluiceError for a failure of `doing` (a statement, or getting a client): a statement that
 * waited past its timeout is a {@link TimeoutError}, a connection that failed, timed out or was
 * ended a {@link ConnectionError}, any other refusal a {@link ServerError}.
 */
function postgresError(error: unknown, doing: string): SluiceError {
  const reason = error instanceof Error ? error.message : String(error);
  if (!isDatabaseError(error)) {
    return new ConnectionError(`PostgreSQL, ${doing}: ${reason}`, error);
  }
  const message = `PostgreSQL, ${doing}: ${reason} (SQLSTATE ${error.code})`;
  if (TIMED_OUT.has(error.code)) return new TimeoutError(message, error);
  if (SESSION_LOST.has(error.code) || error.code.startsWith('08')) {
    return new ConnectionError(message, error);
  }
  if (error.code === UNDEFINED_TABLE) {
    return new ServerError(`${message}: create the table first (migrate())`, error);
  }
  return new ServerError(message, error);
}

/** A client of `pool`; a failure to get one is a SluiceError. */
export async function checkout(pool: Pool): Promise<PoolClient> {
  try {
    return await pool.connect();
  } catch (error) {
    throw postgresError(error, 'getting a client from the pool');
  }
}

/**
 * Runs `text` on `client` (the simple protocol: several statements may be separated by `;`)
 * or with `values`; a failure is a SluiceError saying what was run.
 */
export async function run(
  client: Pool | PoolClient,
  doing: string,
  text: string,
  values?: readonly unknown[],
): Promise<{ readonly rowCount: number | null; readonly command: string }> {
  try {
    return await (values === undefined ? client.query(text) : client.query(text, [...values]));
  } catch (error) {
    throw postgresError(error, doing);
  }
}
