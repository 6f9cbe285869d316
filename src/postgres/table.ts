/**
 * The inbox table: its name, checked once, and every statement sluice runs on it. A name is
 * built into SQL text (identifiers cannot be parameters), so only plain lower-case identifiers
 * pass, and they are quoted anyway, so that a reserved word (`order`) is a name too.
 */
import { InvalidArgumentError } from '../errors/index.js';

/** The table markers go to when none is named. */
const DEFAULT_INBOX_TABLE = 'sluice_inbox';

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;
/** PostgreSQL cuts names at 63 bytes; the index's adds `_expires_at_idx` to the table's. */
const MAX_SCHEMA_LENGTH = 63;
const MAX_TABLE_LENGTH = 48;

/** The statements of one inbox table. */
export interface InboxTable {
  /** The name as given: `sluice_inbox` or `schema.table`. */
  readonly name: string;
  /** Creates the table and its index unless they exist. */
  readonly migration: string;
  /**
   * Records key `$1` as done for `$2` milliseconds, replacing a record that expired; returns a
   * row when it did, none when the key is done already. Waits, on the key's unique index, for
   * a transaction that recorded the same key and has not ended.
   */
  readonly claim: string;
  /** Deletes the expired records. */
  readonly purge: string;
}

/** Checks `table` (`name` or `schema.name`) and builds its statements. */
export function inboxTable(table: unknown = DEFAULT_INBOX_TABLE): InboxTable {
  if (typeof table !== 'string') throw new InvalidArgumentError('table must be a string');
  const parts = table.split('.');
  const name = parts.at(-1) ?? '';
  const schema = parts.length === 2 ? parts[0] : undefined;
  const valid =
    parts.length <= 2 &&
    IDENTIFIER.test(name) &&
    name.length <= MAX_TABLE_LENGTH &&
    (schema === undefined || (IDENTIFIER.test(schema) && schema.length <= MAX_SCHEMA_LENGTH));
  if (!valid) {
    throw new InvalidArgumentError(
      `table '${table}' must be a name or schema.name of lower-case letters, digits and ` +
        `underscores, not starting with a digit (name at most ${MAX_TABLE_LENGTH} characters)`,
    );
  }
  const qualified = [schema, name]
    .filter((part) => part !== undefined)
    .map((part) => `"${part}"`)
    .join('.');
  return {
    name: table,
    migration: [
      `CREATE TABLE IF NOT EXISTS ${qualified} (`,
      '  key text PRIMARY KEY,',
      '  done_at timestamptz NOT NULL,',
      '  expires_at timestamptz NOT NULL',
      ');',
      `CREATE INDEX IF NOT EXISTS "${name}_expires_at_idx" ON ${qualified} (expires_at);`,
    ].join('\n'),
    claim:
      `INSERT INTO ${qualified} AS inbox (key, done_at, expires_at) ` +
      `VALUES ($1, clock_timestamp(), clock_timestamp() + $2::float8 * interval '1 millisecond') ` +
      'ON CONFLICT (key) DO UPDATE ' +
      'SET done_at = EXCLUDED.done_at, expires_at = EXCLUDED.expires_at ' +
      'WHERE inbox.expires_at <= EXCLUDED.done_at',
    purge: `DELETE FROM ${qualified} WHERE expires_at <= clock_timestamp()`,
  };
}
