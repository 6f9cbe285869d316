/**
 * sluice/postgres: the PostgreSQL inbox, an idempotency store whose done markers commit in the
 * handler's own transaction (`pg` is an optional peer dependency). See docs/idempotency.md.
 * @packageDocumentation
 * @module sluice/postgres
 */
export { PostgresInbox } from './inbox.js';
export type {
  PostgresInboxContext,
  PostgresInboxExecuteOptions,
  PostgresInboxOptions,
} from './inbox.js';
export { migrate, migrationSql, purgeExpired } from './migration.js';
export type { InboxTableOptions } from './migration.js';
