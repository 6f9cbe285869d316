/**
 * docs/operations.md gives the ACL SETUSER line of each sluice role; they must be the rules
 * that test/topologies/acl.test.ts runs each role under (sluiceAclRules), so that the documented
 * lines are the tested ones. Regenerate them from sluiceAclRules for the docs' namespace when
 * this fails.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { aclSetUser, sluiceAclRules, type SluiceRole } from '../support/acl.js';

const DOC = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
const ROLES: readonly SluiceRole[] = ['producer', 'consumer', 'admin'];

/** The text of the section under `heading`, up to the next `## ` heading. */
function section(heading: string): string {
  const start = DOC.indexOf(`\n${heading}\n`);
  expect(start, `docs/operations.md has no "${heading}"`).toBeGreaterThanOrEqual(0);
  const end = DOC.indexOf('\n## ', start + heading.length + 1);
  return DOC.slice(start, end === -1 ? undefined : end);
}

/** The line the docs should show for `role` in namespace `shop`, its password a placeholder. */
function expectedLine(role: SluiceRole): string {
  return aclSetUser({
    name: `shop-${role}`,
    password: `${role}-password`,
    rules: sluiceAclRules('shop', role),
  }).join(' ');
}

describe('the ACL section of docs/operations.md', () => {
  const acl = section('## ACL users (least privilege)');

  it.each(ROLES)('shows the %s line sluiceAclRules makes for namespace shop', (role) => {
    expect(acl).toContain(`\n${expectedLine(role)}\n`);
  });

  it('shows those three lines and no other ACL SETUSER', () => {
    const shown = acl.split('\n').filter((line) => line.startsWith('ACL SETUSER'));
    expect(shown).toEqual(ROLES.map(expectedLine));
  });

  it('names the rule to drop on Redis 7.0, the only one the server may not know', () => {
    const withoutWaitAof = sluiceAclRules('shop', 'consumer', { waitAof: false });
    const full = sluiceAclRules('shop', 'consumer');
    expect(full.filter((rule) => !withoutWaitAof.includes(rule))).toEqual(['+waitaof']);
    expect(acl).toContain('drop `+waitaof`');
  });

  it('comes before the dashboard, after the Sentinel and TLS sections', () => {
    const at = (heading: string): number => DOC.indexOf(`\n${heading}\n`);
    const order = [
      '## Redis Sentinel',
      '## TLS',
      '## ACL users (least privilege)',
      '## The dashboard',
    ];
    const positions = order.map(at);
    expect(positions.every((position) => position >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });
});
