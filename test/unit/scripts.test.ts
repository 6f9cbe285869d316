import { describe, expect, it } from 'vitest';
import { luaSources, scriptBodies } from '../../src/connection/scripts.js';
import { Field } from '../../src/message/fields.js';
import { scriptDescriptors } from '../support/script-descriptors.js';

/** The names a header line such as `-- KEYS: stream outbox` lists, or undefined without one. */
function headerNames(lua: string, what: 'KEYS' | 'ARGV'): string[] | undefined {
  const line = new RegExp(`^-- ${what}: (.*)$`, 'mu').exec(lua);
  return line?.[1]?.trim().split(/\s+/u);
}

describe('Lua scripts and their descriptors', () => {
  it('every script of src/lua has exactly one descriptor, and every descriptor a script', () => {
    expect(scriptDescriptors.map((d) => d.file).sort()).toEqual([...luaSources.keys()].sort());
  });

  it.for(scriptDescriptors.map((d) => [d.file, d] as const))(
    '%s: the header lists the descriptor\u2019s keys and args, in order',
    ([file, descriptor]) => {
      const lua = luaSources.get(file) as string;
      expect(headerNames(lua, 'KEYS'), `${file}.lua -- KEYS:`).toEqual([...descriptor.keys]);
      expect(headerNames(lua, 'ARGV'), `${file}.lua -- ARGV:`).toEqual([...descriptor.args]);
    },
  );

  it('uses only field names of the shared table, and gives the table to the scripts that do', () => {
    const known = new Set(Object.keys(Field));
    for (const [file, body] of scriptBodies) {
      for (const [, name] of body.matchAll(/\bF\.([A-Za-z]+)/gu)) {
        expect(known.has(name as string), `${file}: F.${String(name)}`).toBe(true);
      }
      if (/\bF\./u.test(body)) expect(body, file).toMatch(/^local F = \{/u);
    }
  });

  it('spells no field name as a literal where the table has it', () => {
    const literals = Object.values(Field).map((name) => `'${name}'`);
    for (const [file, lua] of luaSources) {
      const code = lua
        .split('\n')
        .filter((line) => !line.trimStart().startsWith('--'))
        .join('\n');
      for (const literal of literals) expect(code, `${file}.lua`).not.toContain(literal);
    }
  });
});
