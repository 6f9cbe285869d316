/**
 * The inbox table's life: the migration that creates it (as SQL for a migration tool, or run by
 * {@link migrate}), and the purge of expired markers.
 */
import type { Pool } from 'pg';
import { optionNames, validateOptionsObject } from '../validation/index.js';
import { run, validatePool } from './connection.js';
import { inboxTable, type InboxTable } from './table.js';

/** Which inbox table {@link migrate}, {@link migrationSql} and {@link purgeExpired} mean. */
export interface InboxTableOptions {
  /** A name or `schema.name` (the schema must exist). Default `sluice_inbox`. */
  readonly table?: string | undefined;
}

const TABLE_OPTIONS = optionNames<InboxTableOptions>({ table: true });

function tableOf(options: unknown): InboxTable {
  validateOptionsObject('options', options, TABLE_OPTIONS);
  return inboxTable((options as InboxTableOptions | undefined)?.table);
}

function checked(pool: unknown, options: unknown): InboxTable {
  validatePool(pool);
  return tableOf(options);
}

/**
 * The migration that creates the inbox table and its index on `expires_at`, for a migration
 * tool of your own; safe to run again (`IF NOT EXISTS`).
 */
export function migrationSql(options?: InboxTableOptions): string {
  return tableOf(options).migration;
}

/**
 * Runs {@link migrationSql} on `pool`, in one transaction that holds an advisory lock, so that
 * consumers starting together each may call it. Rejects with a
 * {@link sluice!SluiceError | SluiceError} when PostgreSQL refuses (a schema that does not
 * exist, no right to create).
 */
export async function migrate(pool: Pool, options?: InboxTableOptions): Promise<void> {
  const table = checked(pool, options);
  // A simple-protocol query of several statements is one transaction; the lock lasts as long.
  await run(
    pool,
    `creating ${table.name}`,
    `SELECT pg_advisory_xact_lock(hashtext('sluice migration ${table.name}'));\n${table.migration}`,
  );
}

/**
 * Deletes the markers whose time to live has run out (the index on `expires_at` finds them) and
 * resolves with how many. Optional: an expired marker is replaced when its key comes again; run
 * it now and then to keep the table small.
 */
export async function purgeExpired(pool: Pool, options?: InboxTableOptions): Promise<number> {
  const table = checked(pool, options);
  const result = await run(pool, `purging ${table.name}`, table.purge);
  return result.rowCount ?? 0;
}
