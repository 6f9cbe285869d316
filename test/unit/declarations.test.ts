/**
 * The built declarations show the public API only: `Delivery` and `Consumer` are interfaces
 * with their public members, and nothing the package exports reveals an internal part (an
 * implementation class, the settlement strategy, the envelope, a start method). Reads the
 * emitted `dist/**\/*.d.ts` with the TypeScript compiler; run after `npm run build`.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));

const DELIVERY_MEMBERS = [
  'ack',
  'body',
  'contentType',
  'correlationId',
  'deathHistory',
  'dedupKey',
  'deliveryCount',
  'exchange',
  'expirationMs',
  'extend',
  'fencingToken',
  'headers',
  'messageId',
  'nack',
  'partition',
  'partitionKey',
  'publishedAt',
  'queue',
  'redelivered',
  'reject',
  'routingKey',
  'settled',
  'streamId',
  'traceparent',
  'tracestate',
];
const CONSUMER_MEMBERS = ['close', 'name', 'off', 'on', 'queue', 'stats'];
/** Methods of the implementations that callers must never see. */
const INTERNAL_METHODS = [
  'start',
  'autoAck',
  'ackAutomatically',
  'giveBack',
  'requeue',
  'idle',
  'settleWith',
  'settledElsewhere',
];
/** Names of internal types that no public signature may mention. */
const INTERNAL_TYPES =
  /\b(\w+Impl|Settlement|PlainSettlement|Envelope|Reader|Dispatcher|Leases|Reclaimer|QueueKeeper|ConsumerContext)\b/u;

function declarationFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return declarationFiles(path);
    return entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

let program: ts.Program;
let checker: ts.TypeChecker;
let exported: Map<string, ts.Symbol>;

/** The public (not private or protected) members of a type, by name. */
function publicMembers(type: ts.Type): ts.Symbol[] {
  return checker.getPropertiesOfType(type).filter((member) => {
    const declaration = member.declarations?.[0];
    if (declaration === undefined) return true;
    const flags = ts.getCombinedModifierFlags(declaration);
    return (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) === 0;
  });
}

/** `[Symbol.asyncIterator]` for the well-known symbol members the checker names `__@...`. */
function memberName(member: ts.Symbol): string {
  return member.name.startsWith('__@')
    ? `[Symbol.${member.name.slice(3).split('@')[0]}]`
    : member.name;
}

function declaredType(name: string): ts.Type {
  const symbol = exported.get(name);
  if (symbol === undefined) throw new Error(`dist/index.d.ts does not export ${name}`);
  return checker.getDeclaredTypeOfSymbol(symbol);
}

/** Parsing and binding every declaration file (with Node's types) takes a few seconds. */
const PARSE_TIMEOUT_MS = 60_000;

beforeAll(() => {
  const files = declarationFiles(DIST);
  program = ts.createProgram(files, { noEmit: true, strict: true, skipLibCheck: true });
  checker = program.getTypeChecker();
  const index = program.getSourceFile(join(DIST, 'index.d.ts'));
  const module = index === undefined ? undefined : checker.getSymbolAtLocation(index);
  if (module === undefined) throw new Error('no dist/index.d.ts: run `npm run build` first');
  exported = new Map(
    checker.getExportsOfModule(module).map((symbol) => {
      const target =
        symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
      return [symbol.name, target];
    }),
  );
}, PARSE_TIMEOUT_MS);

describe('the emitted declarations', () => {
  it('declare Delivery and Consumer once each, as interfaces', () => {
    const found: string[] = [];
    for (const file of program.getSourceFiles()) {
      if (!file.fileName.startsWith(DIST)) continue;
      ts.forEachChild(file, (node) => {
        if (
          (ts.isInterfaceDeclaration(node) || ts.isClassDeclaration(node)) &&
          ['Delivery', 'Consumer'].includes(node.name?.text ?? '')
        ) {
          const kind = ts.isInterfaceDeclaration(node) ? 'interface' : 'class';
          found.push(`${kind} ${node.name?.text ?? ''} in ${file.fileName.slice(DIST.length)}`);
        }
      });
    }
    expect(found.sort()).toEqual([
      'interface Consumer in consumer/types.d.ts',
      'interface Delivery in consumer/types.d.ts',
    ]);
  });

  it('give Delivery only its public members', () => {
    expect(publicMembers(declaredType('Delivery')).map(memberName).sort()).toEqual(
      DELIVERY_MEMBERS,
    );
  });

  it('give Consumer only its public members, and MessageStream those plus iteration', () => {
    expect(publicMembers(declaredType('Consumer')).map(memberName).sort()).toEqual(
      CONSUMER_MEMBERS,
    );
    expect(publicMembers(declaredType('MessageStream')).map(memberName).sort()).toEqual(
      ['[Symbol.asyncIterator]', ...CONSUMER_MEMBERS].sort(),
    );
  });

  it('export no implementation class and no internal member or type in any signature', () => {
    const leaks: string[] = [];
    for (const [name, symbol] of exported) {
      if (INTERNAL_TYPES.test(name)) leaks.push(`export ${name}`);
      const types = [checker.getDeclaredTypeOfSymbol(symbol)];
      // A class's static side (Sluice.connect) as well as its instances.
      if (symbol.flags & ts.SymbolFlags.Class && symbol.valueDeclaration !== undefined) {
        types.push(checker.getTypeOfSymbolAtLocation(symbol, symbol.valueDeclaration));
      }
      for (const type of types) {
        for (const member of publicMembers(type)) {
          const declaration = member.valueDeclaration ?? member.declarations?.[0];
          if (declaration === undefined) continue;
          const memberType = checker.getTypeOfSymbolAtLocation(member, declaration);
          if (INTERNAL_METHODS.includes(member.name) && memberType.getCallSignatures().length > 0) {
            leaks.push(`${name}.${member.name}()`);
          }
          const signature = checker.typeToString(
            memberType,
            undefined,
            ts.TypeFormatFlags.NoTruncation,
          );
          if (INTERNAL_TYPES.test(signature)) leaks.push(`${name}.${member.name}: ${signature}`);
        }
      }
    }
    expect(leaks).toEqual([]);
  });

  it('name the consumer events, typed per event', () => {
    const events = publicMembers(declaredType('ConsumerEvents')).map(memberName).sort();
    expect(events).toEqual(
      expect.arrayContaining([
        'cancelled',
        'connection.lost',
        'connection.restored',
        'delivery.deadLettered',
        'delivery.failed',
        'delivery.handled',
        'delivery.reclaimed',
        'groupRecreated',
        'readError',
      ]),
    );
    expect(events).not.toContain('deadLettered');
  });
});
