/**
 * `npm run bench`: sluice against raw ioredis Streams and against BullMQ, measured in one run
 * on one server (DESIGN.md section 10). Not a test: it prints markdown tables, writes them as
 * JSON to `bench-results/latest.json`, and exits 0.
 *
 * Redis: `$REDIS_URL` if set, else a `redis-server` of its own on a free port with a replica of
 * its own next to it (both stopped at the end), so that nothing else using 6379 disturbs the
 * numbers. The replica stays attached for the whole run, so every row pays for replication and
 * the `replicated` publish row differs from the others by its WAITs alone; with `$REDIS_URL`
 * that row is skipped.
 *
 * Every run of a contender is a process of its own (bench/worker.ts, compiled with tsc first:
 * see buildWorkers) under a fresh key prefix whose keys are deleted after it. The rounds are
 * interleaved: each round runs every scenario's contenders once, in an order that rotates from
 * round to round. `BENCH_MESSAGES` sets N (default 50,000), `BENCH_ROUNDS` the measured rounds
 * (default 3), `BENCH_ONLY` a comma-separated list of scenario ids to run.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { findPostgres, type FoundPostgres } from '../scripts/local-postgres.js';
import {
  deleteNamespaceKeys,
  startRedisServer,
  startReplicaServer,
  type RedisServerHandle,
} from '../scripts/local-redis.js';
import { Sluice, type ServerInfo } from '../src/index.js';
import {
  formatComparisons,
  formatMeasurement,
  formatRounds,
  formatRows,
  integer,
  summarize,
  type RunRecord,
} from './report.js';
import { benchScenarios, warmupPrefix, type BenchConfig, type WorkerTask } from './scenarios.js';
import {
  BODY_BYTES,
  contendersOf,
  messagesFromEnv,
  roundsFromEnv,
  ROOT,
  compiledWorker,
  buildWorkers,
  runWorkerProcess,
  type Measurement,
  type Scenario,
} from './support.js';

const WORKER = compiledWorker('worker');
/** Where the results go as JSON (`bench-results/` is not committed). */
const RESULTS_FILE = join(ROOT, 'bench-results', 'latest.json');
/** The longest a worker may take; a hung one fails the run rather than stalling it. */
const WORKER_TIMEOUT_MS = 15 * 60_000;
/** The most messages of the warm-up run of a worker, before its measured one. */
const MAX_WARMUP_MESSAGES = 5000;

/** The server the bench measures on. */
interface BenchRedis {
  readonly url: string;
  readonly description: string;
  /** Why there is no replica, or undefined if one acknowledges the server's writes. */
  readonly noReplicaReason: string | undefined;
  stop(): Promise<void>;
}

async function benchRedis(): Promise<BenchRedis> {
  const url = process.env.REDIS_URL;
  if (url) {
    return {
      url,
      description: 'REDIS_URL',
      noReplicaReason:
        'REDIS_URL names an external server, and the bench starts a replica only next to a ' +
        'server of its own',
      stop: () => Promise.resolve(),
    };
  }
  const primary = await startRedisServer();
  let replica: RedisServerHandle;
  try {
    replica = await startReplicaOf(primary);
  } catch (error) {
    await primary.dispose();
    throw error;
  }
  return {
    url: primary.url,
    description:
      `${primary.binary} started by the bench on port ${primary.port}, ` +
      `with a replica on port ${replica.port} attached for the whole run`,
    noReplicaReason: undefined,
    stop: async () => {
      try {
        await replica.dispose();
      } finally {
        await primary.dispose();
      }
    },
  };
}

/** A replica of `primary` (same binary), resolved once it acknowledges writes through WAIT. */
async function startReplicaOf(primary: RedisServerHandle): Promise<RedisServerHandle> {
  const client = new Redis(primary.url);
  try {
    return await startReplicaServer(client, primary.port, { binary: primary.binary });
  } finally {
    await client.quit();
  }
}

async function serverInfo(url: string, namespace: string): Promise<ServerInfo> {
  const sluice = await Sluice.connect({ url, namespace });
  try {
    return sluice.server;
  } finally {
    await sluice.close();
  }
}

/** The scenarios that `BENCH_ONLY` names (comma-separated ids), else all of them. */
function selectScenarios(all: readonly Scenario[]): Scenario[] {
  const only = (process.env.BENCH_ONLY ?? '')
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
  if (only.length === 0) return [...all];
  const unknown = only.filter((id) => !all.some((scenario) => scenario.id === id));
  if (unknown.length > 0) {
    const ids = all.map((scenario) => scenario.id).join(', ');
    throw new Error(`BENCH_ONLY names no scenario ${unknown.join(', ')} (scenarios: ${ids})`);
  }
  return all.filter((scenario) => only.includes(scenario.id));
}

/** Runs `task` in a worker process and resolves with the measurement it prints. */
function runWorker(task: WorkerTask, env: NodeJS.ProcessEnv): Promise<Measurement> {
  return runWorkerProcess<Measurement>(WORKER, task, {
    env,
    timeoutMs: WORKER_TIMEOUT_MS,
    what: `${task.scenario} ${task.contender}`,
  });
}

/** What the runs have in common. */
interface RunSettings {
  readonly admin: Redis;
  readonly url: string;
  readonly config: BenchConfig;
  readonly env: NodeJS.ProcessEnv;
  readonly prefixBase: string;
  readonly messages: number;
}

/**
 * Runs every contender of every scenario once, each in a worker process under its own key
 * prefix. The contenders of a scenario start at the `round`-th one, so that none of them
 * always runs right after the same other one.
 */
async function round(
  settings: RunSettings,
  scenarios: readonly Scenario[],
  index: number,
): Promise<RunRecord[]> {
  const { admin, url, config, env, prefixBase } = settings;
  const records: RunRecord[] = [];
  for (const scenario of scenarios) {
    const contenders = contendersOf(scenario);
    const messages = scenario.messages?.(settings.messages) ?? settings.messages;
    const warmupMessages =
      scenario.warmup === false ? 0 : Math.min(MAX_WARMUP_MESSAGES, Math.ceil(messages / 5));
    for (let offset = 0; offset < contenders.length; offset += 1) {
      const contender = contenders[(index + offset) % contenders.length];
      if (contender === undefined) continue;
      const prefix = `${prefixBase}-${index}-${scenario.id}-${contender.name}`;
      const task: WorkerTask = {
        config,
        scenario: scenario.id,
        contender: contender.name,
        url,
        prefix,
        messages,
        warmupMessages,
      };
      try {
        const measurement = await runWorker(task, env);
        records.push({
          round: index,
          scenario: scenario.id,
          contender: contender.name,
          messages,
          measurement,
        });
        console.error(
          `round ${index + 1}, ${scenario.id} ${contender.name}: ${formatMeasurement(measurement)}`,
        );
      } finally {
        // The worker deletes its warm-up keys, unless it failed first.
        await deleteNamespaceKeys(admin, prefix);
        await deleteNamespaceKeys(admin, warmupPrefix(prefix));
      }
    }
  }
  return records;
}

/** The version of this repository (no `name`) or of a package under its node_modules. */
function packageVersion(name?: string): string {
  const dir = name === undefined ? ROOT : join(ROOT, 'node_modules', name);
  const file = join(dir, 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** The commit being measured (with `-dirty` for uncommitted changes), if this is a checkout. */
function gitCommit(): string | undefined {
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
    return `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain') === '' ? '' : '-dirty'}`;
  } catch {
    return undefined;
  }
}

function loadAverage(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
}

async function main(): Promise<void> {
  buildWorkers();
  const startedAt = new Date();
  const clock = performance.now();
  const messages = messagesFromEnv();
  const rounds = roundsFromEnv();
  const runId = randomBytes(4).toString('hex');
  const loadAtStart = loadAverage();
  const redis = await benchRedis();
  const config: BenchConfig = { replicated: redis.noReplicaReason === undefined };
  const admin = new Redis(redis.url);
  let postgres: FoundPostgres | undefined;
  try {
    const scenarios = selectScenarios(benchScenarios(config));
    // One PostgreSQL for every worker: starting one per process would take longer than its run.
    if (scenarios.some((scenario) => scenario.usesPostgres === true))
      postgres = await findPostgres();
    const env = postgres === undefined ? process.env : { ...process.env, PG_URL: postgres.url };
    const server = await serverInfo(redis.url, `sluice-bench-${runId}-info`);
    const cpu = cpus();
    const commit = gitCommit();
    const versions = {
      sluice: `${packageVersion()}${commit === undefined ? '' : ` (${commit})`}`,
      ioredis: packageVersion('ioredis'),
      bullmq: packageVersion('bullmq'),
      node: process.version,
    };
    const machine = {
      cpus: cpu.length,
      cpuModel: cpu[0]?.model.trim() ?? 'unknown',
      platform: `${process.platform} ${process.arch}`,
      loadAverageAtStart: loadAtStart,
    };
    const header = [
      `server: ${server.name} ${server.version} (${redis.description})`,
      ...(redis.noReplicaReason === undefined
        ? []
        : [`no replicated publish row: ${redis.noReplicaReason}`]),
      `client: Node ${process.version}, ${machine.cpus} CPUs (${machine.cpuModel}), ` +
        `load average ${loadAtStart} at the start`,
      `versions: sluice ${versions.sluice}, ioredis ${versions.ioredis}, bullmq ${versions.bullmq}`,
      `N = ${integer.format(messages)}, body ${BODY_BYTES} bytes of JSON unless a row says ` +
        `otherwise; each run of a contender in a process of its own, after a warm-up of its ` +
        `own; ${rounds} interleaved round(s), median ±largest distance of a round from it`,
    ];
    console.log(header.join('\n'));
    const settings = {
      admin,
      url: redis.url,
      config,
      env,
      prefixBase: `sluice-bench-${runId}`,
      messages,
    };
    const records: RunRecord[] = [];
    for (let index = 0; index < rounds; index += 1) {
      records.push(...(await round(settings, scenarios, index)));
    }
    const summary = summarize(scenarios, records);
    const durationSeconds = (performance.now() - clock) / 1000;
    const loadAtEnd = loadAverage();
    console.log('');
    console.log(formatRows(summary.rows));
    if (summary.comparisons.length > 0) {
      console.log('');
      console.log(formatComparisons(summary.comparisons));
    }
    console.log('');
    console.log('Each round:');
    console.log(formatRounds(scenarios, records));
    console.log('');
    console.log(
      `${Math.round(durationSeconds)} s in all; load average ${loadAtEnd} at the end; ` +
        `JSON in ${RESULTS_FILE}`,
    );
    mkdirSync(dirname(RESULTS_FILE), { recursive: true });
    const results = {
      startedAt: startedAt.toISOString(),
      durationSeconds,
      server: { name: server.name, version: server.version, setup: redis.description },
      machine: { ...machine, loadAverageAtEnd: loadAtEnd },
      versions,
      settings: { messages, rounds, scenarios: scenarios.map((scenario) => scenario.id) },
      ...summary,
      runs: records,
    };
    writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    await admin.quit();
    await redis.stop();
    await postgres?.stop();
  }
}

try {
  await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
}
