/**
 * The inbox table's statements (sluice/postgres): names are checked and quoted before they
 * become SQL, and docs/idempotency.md shows the migration that `migrate` runs, word for word.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';
import { migrationSql } from '../../src/postgres/index.js';
import { inboxTable } from '../../src/postgres/table.js';

describe('the inbox table', () => {
  it('is documented in docs/idempotency.md as migrate() creates it', () => {
    const docs = readFileSync(new URL('../../docs/idempotency.md', import.meta.url), 'utf8');
    expect(docs).toContain('```sql\n' + migrationSql() + '\n```');
  });

  it('quotes a schema-qualified name, so that a reserved word is a name too', () => {
    const table = inboxTable('billing.order');
    expect(table.migration).toContain('CREATE TABLE IF NOT EXISTS "billing"."order" (');
    expect(table.migration).toContain('"order_expires_at_idx" ON "billing"."order" (expires_at)');
    expect(table.claim).toMatch(/^INSERT INTO "billing"\."order" AS inbox /);
    expect(table.purge).toBe('DELETE FROM "billing"."order" WHERE expires_at <= clock_timestamp()');
  });

  it('takes plain lower-case identifiers only', () => {
    for (const good of ['sluice_inbox', '_inbox', 'a1', 's.t', 'x'.repeat(48)]) {
      expect(inboxTable(good).name).toBe(good);
    }
    for (const bad of [
      '',
      'Inbox',
      'in box',
      'in"box',
      "in'box",
      'inbox;',
      '1inbox',
      'a.b.c',
      '.inbox',
      'inbox.',
      'x'.repeat(49),
      `${'s'.repeat(64)}.inbox`,
      'inbóx',
      42,
      null,
    ]) {
      expect(() => inboxTable(bad), String(bad)).toThrow(InvalidArgumentError);
    }
  });
});
