/**
 * A sync worker (`npm run example:sync-worker`): changes to the rows of a table (inserts,
 * updates and deletes, each carrying the row's next version) are published with
 * `partitionKey = rowId` into a queue of 8 partitions, and ordered workers, child processes of
 * this one, apply them to a copy of the table: one Redis hash per row. While the changes flow,
 * one worker is killed (SIGKILL) and a new one started, and another is frozen (SIGSTOP) until
 * its partitions have new owners, then thawed: the writes it still had in hand carry an old
 * fencing token and the copy refuses them. At the end the copy equals the source, no row
 * received a change before the one that precedes it, and the run exits 0 (1 otherwise).
 *
 * It finds a Redis as the demo does (REDIS_URL, else 127.0.0.1:6379, else a redis-server it
 * starts), works in a fresh namespace `sync-<time>-<random>` and deletes its keys at the end.
 * A worker is this file run again: `... worker <redisUrl> <namespace> <name>`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { deleteNamespaceKeys, findRedis, waitFor } from '../scripts/local-redis.js';
// In an application: `from 'sluice'`.
import { Sluice, type Delivery } from '../src/index.js';

/** One row of the source table. */
interface Row {
  readonly name: string;
  readonly qty: number;
}

/** One change of a row: its version counts the row's changes, deletes included. */
interface Change {
  readonly row: string;
  readonly version: number;
  readonly op: 'insert' | 'update' | 'delete';
  readonly data: Row | null;
}

const QUEUE = 'rows';
const PARTITIONS = 8;
const ROWS = 100;
const CHANGES_PER_BATCH = 20;
const BATCH_INTERVAL_MS = 40;
const PUBLISH_MS = 8000;
/** What applying one change takes (a real worker calls the target's API here). */
const WORK_MS = 20;
const WAIT_MS = 60_000;

/** The copy's keys: one hash per row and the outcome counters, in one hash slot. */
const rowKey = (namespace: string, row: string): string => `${namespace}:{copy}:row:${row}`;
const statsKey = (namespace: string): string => `${namespace}:{copy}:stats`;

/**
 * Applies one change to the copy, in one step: refused when the row was written under a newer
 * fencing token of its partition (this worker was deposed meanwhile: the new owner handles the
 * change), skipped when its version is there already (a redelivery after a crash), otherwise
 * written, and counted as a gap if the row's previous version is missing (out of order).
 * KEYS: row stats; ARGV: version token op data. Returns the outcome.
 */
const APPLY = `
local stored = redis.call('HMGET', KEYS[1], 'version', 'token')
local version, token = tonumber(ARGV[1]), tonumber(ARGV[2])
local stored_version, stored_token = tonumber(stored[1]) or 0, tonumber(stored[2]) or 0
local outcome = 'applied'
if token < stored_token then
  outcome = 'fenced'
elseif version <= stored_version then
  outcome = 'replayed'
else
  if version ~= stored_version + 1 then outcome = 'gap' end
  redis.call('HSET', KEYS[1], 'version', version, 'token', token, 'op', ARGV[3], 'data', ARGV[4])
end
redis.call('HINCRBY', KEYS[2], outcome, 1)
return outcome
`;

/** The child: applies changes until SIGTERM, then closes gracefully. */
async function workerProcess(args: readonly string[]): Promise<void> {
  const [redisUrl, namespace, name] = args;
  if (!redisUrl || !namespace || !name) {
    throw new Error('usage: sync-worker.ts worker <redisUrl> <namespace> <name>');
  }
  const say = (line: string): void => console.log(`   [${name}] ${line}`);
  const copy = new Redis(redisUrl);
  const apply = async (msg: Delivery<Change>): Promise<void> => {
    const change = msg.body;
    await delay(WORK_MS);
    // Now and then the target is busy: the change is retried in place, holding back its row.
    if (msg.deliveryCount === 1 && Math.random() < 0.02) {
      await copy.hincrby(statsKey(namespace), 'retried', 1);
      throw new Error('target busy');
    }
    const outcome = await copy.eval(
      APPLY,
      2,
      rowKey(namespace, change.row),
      statsKey(namespace),
      change.version,
      msg.fencingToken ?? 0,
      change.op,
      JSON.stringify(change.data),
    );
    if (outcome === 'gap') say(`row ${change.row} got version ${change.version} out of order`);
  };
  const sluice = await Sluice.connect({ url: redisUrl, namespace });
  const consumer = await sluice
    .consume<Change>(QUEUE, apply, {
      ordered: true,
      concurrency: 16,
      prefetch: 64,
      retry: { initialDelayMs: 100 },
    })
    .catch(async (error: unknown) => {
      await sluice.close();
      copy.disconnect();
      throw error;
    });
  consumer.on('partition.revoked', ({ partition, reason }) => {
    if (reason === 'lost') say(`lost partition ${partition}: its lease ran out, another owns it`);
  });
  process.once('SIGTERM', () => {
    consumer
      .close()
      .then(() => sluice.close())
      .finally(() => copy.disconnect())
      .catch((error: unknown) => say(`closing: ${String(error)}`));
  });
}

/** The source table and the changes made to it. */
class Source {
  readonly rows = new Map<string, { version: number; data: Row | null }>();
  readonly ops = { insert: 0, update: 0, delete: 0 };

  /** The next change of a random row: an insert if it does not exist, else mostly updates. */
  change(): Change {
    const row = `r${Math.floor(Math.random() * ROWS) + 1}`;
    const current = this.rows.get(row);
    const version = (current?.version ?? 0) + 1;
    const op = current?.data == null ? 'insert' : Math.random() < 0.15 ? 'delete' : 'update';
    const data = op === 'delete' ? null : { name: `item ${row}`, qty: version * 10 };
    this.rows.set(row, { version, data });
    this.ops[op]++;
    return { row, version, op, data };
  }
}

/** A worker process, its output forwarded line by line. */
function startWorker(redisUrl: string, namespace: string, name: string): ChildProcess {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), 'worker', redisUrl, namespace, name],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  if (child.stdout) createInterface({ input: child.stdout }).on('line', (l) => console.log(l));
  return child;
}

/** The workers, by name, and who owns each partition. */
class Workers {
  readonly processes = new Map<string, ChildProcess>();
  /** Workers that exited and whose output has all been forwarded. */
  private readonly closed = new Set<ChildProcess>();

  constructor(
    private readonly sluice: Sluice,
    private readonly redisUrl: string,
    private readonly namespace: string,
  ) {}

  start(name: string): void {
    const child = startWorker(this.redisUrl, this.namespace, name);
    child.once('close', () => this.closed.add(child));
    this.processes.set(name, child);
  }

  signal(name: string, signal: NodeJS.Signals): void {
    this.processes.get(name)?.kill(signal);
  }

  /** Each partition's owner as `w1#3` (worker and fencing token), or undefined. */
  async owners(): Promise<(string | undefined)[]> {
    const names = new Map([...this.processes].map(([name, child]) => [String(child.pid), name]));
    const { partitions } = await this.sluice.inspectQueue(QUEUE);
    return partitions.map(({ owner }) => {
      if (owner === undefined) return undefined;
      // A consumer's name is `<host>-<pid>-<random>`.
      const pid = /-(\d+)-[0-9a-f]+$/.exec(owner.consumer)?.[1] ?? '';
      return `${names.get(pid) ?? '?'}#${owner.token}`;
    });
  }

  /** `p0 w1#1  p1 w2#2  …` */
  async ownerLine(): Promise<string> {
    return (await this.owners()).map((owner, p) => `p${p} ${owner ?? '-'}`).join('  ');
  }

  /** The partitions `name` owns. */
  async ownedBy(name: string): Promise<number[]> {
    return (await this.owners()).flatMap((owner, p) => (owner?.startsWith(`${name}#`) ? [p] : []));
  }

  /** Whether every partition is owned, by the workers named only. */
  async ownedOnlyBy(names: readonly string[]): Promise<boolean> {
    const owners = await this.owners();
    return owners.every((owner) => names.includes(owner?.split('#')[0] ?? ''));
  }

  /** Sends SIGTERM to `names` and waits until every worker has exited. */
  async stop(names: readonly string[]): Promise<void> {
    for (const name of names) this.signal(name, 'SIGTERM');
    const children = [...this.processes.values()];
    await waitFor(() => children.every((child) => this.closed.has(child)), {
      timeoutMs: WAIT_MS,
      description: 'the workers closed',
    });
  }

  /** Kills whatever still runs (a failed run). */
  killAll(): void {
    for (const child of this.processes.values()) {
      if (this.closed.has(child)) continue;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  }
}

/** Publishes changes of the source for `PUBLISH_MS`; resolves with how many. */
async function publishChanges(sluice: Sluice, source: Source): Promise<number> {
  let published = 0;
  for (const end = Date.now() + PUBLISH_MS; Date.now() < end; await delay(BATCH_INTERVAL_MS)) {
    const changes = Array.from({ length: CHANGES_PER_BATCH }, () => source.change());
    // One script call, in order; the next batch only once this one is confirmed.
    await sluice.publishBatch(
      changes.map((change) => ({
        exchange: '',
        routingKey: QUEUE,
        body: change,
        options: { partitionKey: change.row },
      })),
    );
    published += changes.length;
  }
  return published;
}

/** Compares the copy with the source; throws if they differ or a change came out of order. */
async function compare(
  redis: Redis,
  namespace: string,
  source: Source,
  published: number,
): Promise<void> {
  const stats = await redis.hgetall(statsKey(namespace));
  const count = (outcome: string): number => Number(stats[outcome] ?? 0);
  console.log(
    `the copy: ${count('applied') + count('gap')} changes applied, ${count('replayed')} ` +
      `redeliveries skipped (applied already), ${count('fenced')} stale writes refused ` +
      `(old fencing token), ${count('retried')} failures retried in place, ` +
      `${count('gap')} out of order`,
  );
  const differ: string[] = [];
  let live = 0;
  for (const [row, { version, data }] of source.rows) {
    const copied = await redis.hgetall(rowKey(namespace, row));
    if (data !== null) live++;
    if (Number(copied.version) !== version || copied.data !== JSON.stringify(data)) {
      differ.push(
        `  ${row}: source v${version} ${JSON.stringify(data)}, copy v${copied.version} ${copied.data}`,
      );
    }
  }
  if (differ.length > 0 || count('gap') > 0 || count('applied') !== published) {
    throw new Error(`the copy differs from the source:\n${differ.join('\n')}`);
  }
  console.log(
    `the copy equals the source: ${source.rows.size} rows (${live} live, ` +
      `${source.rows.size - live} deleted), each at its last version`,
  );
}

async function run(redisUrl: string): Promise<void> {
  // Unique even for runs that start in the same millisecond (the examples test runs it per project).
  const namespace = `sync-${Date.now()}-${randomBytes(3).toString('hex')}`;
  console.log(`namespace '${namespace}'`);
  const sluice = await Sluice.connect({ url: redisUrl, namespace });
  const redis = new Redis(redisUrl);
  const workers = new Workers(sluice, redisUrl, namespace);
  try {
    await sluice.declareQueue(QUEUE, { partitions: PARTITIONS });
    for (const name of ['w1', 'w2', 'w3']) workers.start(name);
    console.log(`queue '${QUEUE}' of ${PARTITIONS} partitions; workers w1, w2, w3 started`);
    await waitFor(
      async () => {
        const owners = await workers.owners();
        const names = new Set(owners.map((owner) => owner?.split('#')[0]));
        return !names.has(undefined) && names.size === 3;
      },
      { timeoutMs: WAIT_MS, description: 'the partitions shared by three workers' },
    );
    console.log(`owners: ${await workers.ownerLine()}`);

    const source = new Source();
    console.log(
      `publishing changes of ${ROWS} rows for ${PUBLISH_MS / 1000} s, partitionKey = row id`,
    );
    const publishing = publishChanges(sluice, source);
    publishing.catch(() => undefined); // awaited below

    await delay(1500);
    const killed = await workers.ownedBy('w1');
    workers.signal('w1', 'SIGKILL');
    console.log(`killed w1 (SIGKILL), owner of partitions ${killed.join(', ')}`);
    await delay(1000);
    workers.start('w4');
    console.log('started w4');
    await delay(1000);
    const frozen = await workers.ownedBy('w2');
    workers.signal('w2', 'SIGSTOP');
    console.log(`froze w2 (SIGSTOP), owner of partitions ${frozen.join(', ')}`);
    await waitFor(() => workers.ownedOnlyBy(['w3', 'w4']), {
      timeoutMs: WAIT_MS,
      description: 'new owners for the partitions of w1 and w2',
    });
    console.log(`new owners once the leases of w1 and w2 ran out: ${await workers.ownerLine()}`);
    workers.signal('w2', 'SIGCONT');
    console.log('thawed w2 (SIGCONT)');

    const published = await publishing;
    const { insert, update, delete: deletes } = source.ops;
    console.log(
      `published ${published} changes: ${insert} inserts, ${update} updates, ${deletes} deletes`,
    );
    await waitFor(
      async () => {
        const info = await sluice.inspectQueue(QUEUE);
        return info.messages === 0 && info.unacked === 0 && info.delayed === 0;
      },
      { timeoutMs: WAIT_MS, description: 'the queue drained' },
    );
    console.log(`queue drained; owners: ${await workers.ownerLine()}`);
    await workers.stop(['w2', 'w3', 'w4']);
    await compare(redis, namespace, source, published);
  } finally {
    workers.killAll();
    await sluice.close();
    await deleteNamespaceKeys(redis, namespace);
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'worker') return workerProcess(args);
  const redis = await findRedis({ preferLocal6379: true });
  try {
    console.log(`sync worker on ${redis.url} (${redis.source})`);
    await run(redis.url);
  } finally {
    await redis.stop();
  }
  console.log('Done.');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
