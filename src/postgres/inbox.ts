/**
 * The PostgreSQL inbox: an {@link IdempotencyStore} whose done markers are rows of a table, each
 * written in the transaction the handler writes its own rows in. The marker's row is inserted
 * first; a consumer handling the same key meanwhile waits on the key's unique index until that
 * transaction ends, so the open transaction is the key's processing lease. Then the handler runs
 * on the transaction's client (`ctx.db`), and the transaction commits: the marker and the
 * handler's rows are there together, or neither is. sluice acks after the commit; a message
 * redelivered after a crash between the two finds the marker and is acked as a duplicate.
 */
import type { Pool, PoolClient } from 'pg';
import type { IdempotencyStore } from '../consumer/idempotency.js';
import { InvalidArgumentError, ServerError } from '../errors/index.js';
import {
  optionNames,
  validateIntegerOption,
  validateOptionsObject,
  validateWellFormed,
} from '../validation/index.js';
import { checkout, run, validatePool } from './connection.js';
import { inboxTable, type InboxTable } from './table.js';

/** What a handler gets as `ctx` with a {@link PostgresInbox}. */
export interface PostgresInboxContext {
  /**
   * A client inside the transaction that records the key as done: what the handler writes
   * through it commits with that record, or not at all. The handler neither commits, rolls back
   * nor releases it; a failed statement fails the handler (nothing is committed).
   */
  readonly db: PoolClient;
}

/** Options of {@link PostgresInbox}. */
export interface PostgresInboxOptions {
  /** The pool clients are taken from; sluice never ends it. */
  readonly pool: Pool;
  /**
   * The table of markers, created by {@link migrate}: a name or `schema.name` of lower-case
   * letters, digits and underscores. Default `sluice_inbox`.
   */
  readonly table?: string | undefined;
}

/** Options of {@link PostgresInbox.execute}: what `consume` passes of its `idempotency` options. */
export interface PostgresInboxExecuteOptions {
  /** How long the key stays done, from when its handler started: 1 s to 365 days. */
  readonly ttlMs: number;
  /**
   * The bound of every wait inside the transaction, 1 s to 1 h: for the key while another
   * transaction holds it (lock_timeout), for any one statement (statement_timeout), and for the
   * handler idling inside the transaction (idle_in_transaction_session_timeout, after which
   * PostgreSQL ends the session and nothing commits).
   */
  readonly leaseMs: number;
}

const INBOX_OPTIONS = optionNames<PostgresInboxOptions>({ pool: true, table: true });
const EXECUTE_OPTIONS = optionNames<PostgresInboxExecuteOptions>({ ttlMs: true, leaseMs: true });
const MAX_KEY_LENGTH = 1024;
/** A btree entry must fit in a third of a page (about 2,700 bytes): keys stay well below. */
const MAX_KEY_BYTES = 2048;

function validateKey(key: unknown): asserts key is string {
  if (
    typeof key !== 'string' ||
    key.length === 0 ||
    key.length > MAX_KEY_LENGTH ||
    Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES
  ) {
    throw new InvalidArgumentError(
      `an idempotency key must be a string of 1 to ${MAX_KEY_LENGTH} characters and at most ` +
        `${MAX_KEY_BYTES} UTF-8 bytes`,
    );
  }
  // PostgreSQL's text has no NUL; a lone surrogate would be stored as U+FFFD, meeting another key.
  if (key.includes('\u0000')) {
    throw new InvalidArgumentError('an idempotency key must not contain NUL characters');
  }
  validateWellFormed('the idempotency key', key);
}

function validateExecuteOptions(options: unknown): asserts options is PostgresInboxExecuteOptions {
  if (options === undefined) throw new InvalidArgumentError('execute options are required');
  validateOptionsObject('execute options', options, EXECUTE_OPTIONS);
  const { ttlMs, leaseMs } = options as Partial<PostgresInboxExecuteOptions>;
  if (ttlMs === undefined || leaseMs === undefined) {
    throw new InvalidArgumentError('execute options need ttlMs and leaseMs');
  }
  validateIntegerOption('ttlMs', ttlMs, 1000, 365 * 86_400_000);
  validateIntegerOption('leaseMs', leaseMs, 1000, 3_600_000);
}

/**
 * An {@link IdempotencyStore} on PostgreSQL: pass it as `consume(queue, handler, {
 * idempotency: { store } })`, and the handler's `ctx.db` is a client inside the transaction in
 * which the key is recorded as done. Create its table first with {@link migrate}.
 */
export class PostgresInbox implements IdempotencyStore<PostgresInboxContext> {
  private readonly pool: Pool;
  private readonly inbox: InboxTable;

  constructor(options: PostgresInboxOptions) {
    if (options === undefined) throw new InvalidArgumentError('PostgresInbox needs { pool }');
    validateOptionsObject('PostgresInbox options', options, INBOX_OPTIONS);
    validatePool(options.pool);
    this.pool = options.pool;
    this.inbox = inboxTable(options.table);
  }

  /** The table of markers, as given (`sluice_inbox` by default). */
  get table(): string {
    return this.inbox.name;
  }

  /**
   * Runs `work` in a transaction that records `key` as done for `ttlMs`, and commits: resolves
   * `'done'` once committed, or `'duplicate'` without running `work` when the key is done and
   * has not expired. A transaction recording the same key meanwhile is waited for, up to
   * `leaseMs`. Rejects with `work`'s own error, or a {@link sluice!SluiceError | SluiceError}
   * when PostgreSQL failed (a {@link sluice!TimeoutError | TimeoutError} past `leaseMs`);
   * nothing is committed then.
   */
  async execute(
    key: string,
    options: PostgresInboxExecuteOptions,
    work: (context: PostgresInboxContext) => Promise<void>,
  ): Promise<'done' | 'duplicate'> {
    validateKey(key);
    validateExecuteOptions(options);
    if (typeof work !== 'function') throw new InvalidArgumentError('work must be a function');
    const client = await checkout(this.pool);
    // The pool stops listening to a client it lent: a session PostgreSQL ends meanwhile (an idle
    // timeout) would be an uncaught 'error'. The next statement reports it instead.
    const ignore = (): void => undefined;
    client.on('error', ignore);
    try {
      const outcome = await this.transaction(client, key, options, work);
      client.off('error', ignore);
      client.release();
      return outcome;
    } catch (error) {
      // Not a statement's answer: a failed ROLLBACK leaves the session unusable, it is closed.
      const rolledBack = await client.query('ROLLBACK').then(
        () => true,
        () => false,
      );
      client.off('error', ignore);
      client.release(!rolledBack);
      throw error;
    }
  }

  private async transaction(
    client: PoolClient,
    key: string,
    { ttlMs, leaseMs }: PostgresInboxExecuteOptions,
    work: (context: PostgresInboxContext) => Promise<void>,
  ): Promise<'done' | 'duplicate'> {
    const table = this.inbox.name;
    // leaseMs is a checked integer: it can be part of the text, saving a round trip per setting.
    await run(
      client,
      'beginning the transaction',
      `BEGIN; SET LOCAL lock_timeout = ${leaseMs}; SET LOCAL statement_timeout = ${leaseMs}; ` +
        `SET LOCAL idle_in_transaction_session_timeout = ${leaseMs}`,
    );
    const claimed = await run(client, `recording key in ${table}`, this.inbox.claim, [key, ttlMs]);
    if (claimed.rowCount === 0) {
      await run(client, 'ending the transaction of a duplicate', 'ROLLBACK');
      return 'duplicate';
    }
    await work({ db: client });
    const committed = await run(client, 'committing', 'COMMIT');
    // COMMIT of a transaction a failed statement aborted rolls it back, and says so.
    if (committed.command === 'ROLLBACK') {
      throw new ServerError(
        `PostgreSQL rolled the transaction of key '${key}' back: a statement of the handler ` +
          'failed (and the handler went on); nothing was committed',
      );
    }
    return 'done';
  }
}
