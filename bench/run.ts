/**
 * `npm run bench`: sluice against raw ioredis Streams and against BullMQ, measured in one run
 * on one server (DESIGN.md section 10). Not a test: it prints a table and exits 0.
 *
 * Redis: `$REDIS_URL` if set, else a `redis-server` of its own on a free port with a replica of
 * its own next to it (both stopped at the end), so that nothing else using 6379 disturbs the
 * numbers. The replica stays attached for the whole run, so every row pays for replication and
 * the `replicated` publish row differs from the others by its WAITs alone; with `$REDIS_URL`
 * that row is skipped. Every contender runs under a fresh key prefix whose keys are deleted
 * after it. `BENCH_MESSAGES` sets N (default 50,000), `BENCH_ROUNDS` the measured rounds whose
 * median is reported (default 3).
 */
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { Redis } from 'ioredis';
import {
  deleteNamespaceKeys,
  startRedisServer,
  startReplicaServer,
  type RedisServerHandle,
} from '../scripts/local-redis.js';
import { Sluice, type ServerInfo } from '../src/index.js';
import { consumeScenario, stopInboxPostgres } from './consume.js';
import { publishScenario } from './publish.js';
import { formatTable, integer, type RowResult } from './report.js';
import {
  makeBody,
  messagesFromEnv,
  roundsFromEnv,
  type Contender,
  type Scenario,
} from './support.js';

/** Messages per contender in the warm-up round, whose timings are thrown away. */
const WARMUP_MESSAGES = 5000;

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

/** Every contender of a scenario: each row's sluice, then the baselines. */
function contendersOf(scenario: Scenario): Contender[] {
  return [
    ...scenario.rows.map((row) => row.sluice),
    scenario.baselines.raw,
    scenario.baselines.bullmq,
  ];
}

/** Messages per second of each contender (by name) of each scenario (by id), for one round. */
type RoundRates = Map<string, Map<string, number>>;

/** What one round runs: each scenario's contenders, with N messages each. */
interface RoundPlan {
  readonly prefixBase: string;
  readonly messages: number;
  /**
   * Which contender of each scenario goes first. Rounds rotate the order, so that none of
   * them always follows the same one (and inherits, say, its garbage to collect).
   */
  readonly firstContender: number;
}

/** Runs every contender of every scenario once, each under its own key prefix. */
async function round(
  admin: Redis,
  url: string,
  scenarios: readonly Scenario[],
  plan: RoundPlan,
): Promise<RoundRates> {
  const { prefixBase, messages, firstContender } = plan;
  const rates: RoundRates = new Map();
  for (const scenario of scenarios) {
    const scenarioRates = new Map<string, number>();
    const contenders = contendersOf(scenario);
    for (let offset = 0; offset < contenders.length; offset += 1) {
      const contender = contenders[(firstContender + offset) % contenders.length] as Contender;
      const prefix = `${prefixBase}-${scenario.id}-${contender.name}`;
      try {
        const elapsedMs = await contender.run({ url, prefix, messages });
        scenarioRates.set(contender.name, (messages * 1000) / elapsedMs);
      } finally {
        await deleteNamespaceKeys(admin, prefix);
      }
    }
    rates.set(scenario.id, scenarioRates);
  }
  return rates;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] ?? Number.NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? Number.NaN) + upper) / 2;
}

/** A contender's rate in every round, in round order. */
function ratesOf(
  rounds: readonly RoundRates[],
  scenario: Scenario,
  contender: Contender,
): number[] {
  return rounds.map((rates) => {
    const rate = rates.get(scenario.id)?.get(contender.name);
    if (rate === undefined) {
      throw new Error(`no ${contender.name} result for scenario ${scenario.id}`);
    }
    return rate;
  });
}

/** The table's rows: per row, the medians of its sluice contender and of the baselines. */
function summarize(scenarios: readonly Scenario[], rounds: readonly RoundRates[]): RowResult[] {
  return scenarios.flatMap((scenario) => {
    const { raw, bullmq } = scenario.baselines;
    const baselineRates = {
      raw: median(ratesOf(rounds, scenario, raw)),
      bullmq: median(ratesOf(rounds, scenario, bullmq)),
    };
    return scenario.rows.map((row) => ({
      label: row.label,
      rates: { sluice: median(ratesOf(rounds, scenario, row.sluice)), ...baselineRates },
    }));
  });
}

/** One line per scenario and contender with the rate of every round, for judging the spread. */
function formatRounds(scenarios: readonly Scenario[], rounds: readonly RoundRates[]): string {
  const lines: string[] = [];
  for (const scenario of scenarios) {
    for (const contender of contendersOf(scenario)) {
      const rates = ratesOf(rounds, scenario, contender).map((rate) => integer.format(rate));
      lines.push(`  ${scenario.id} ${contender.name}: ${rates.join(', ')}`);
    }
  }
  return lines.join('\n');
}

/** One line per comparison of two rows: the ratio of their medians, and of each round. */
function formatComparisons(scenarios: readonly Scenario[], rounds: readonly RoundRates[]): string {
  const lines: string[] = [];
  for (const scenario of scenarios) {
    for (const comparison of scenario.comparisons ?? []) {
      const numerator = ratesOf(rounds, scenario, comparison.numerator);
      const denominator = ratesOf(rounds, scenario, comparison.denominator);
      const ratio = median(numerator) / median(denominator);
      const perRound = numerator.map((rate, i) => (rate / (denominator[i] ?? NaN)).toFixed(2));
      const target = comparison.target === undefined ? '' : ` (target ≥ ${comparison.target}x)`;
      lines.push(
        `  ${scenario.id} ${comparison.label}: ${ratio.toFixed(2)}x${target}; ` +
          `per round: ${perRound.map((r) => `${r}x`).join(', ')}`,
      );
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const messages = messagesFromEnv();
  const rounds = roundsFromEnv();
  const warmupMessages = Math.min(WARMUP_MESSAGES, messages);
  const runId = randomBytes(4).toString('hex');
  const redis = await benchRedis();
  // BENCH_ONLY=publish or BENCH_ONLY=consume runs one scenario (when working on one path).
  const only = process.env.BENCH_ONLY;
  const scenarios = [
    publishScenario({ replicated: redis.noReplicaReason === undefined }),
    consumeScenario,
  ].filter((scenario) => only === undefined || only === '' || scenario.id === only);
  const admin = new Redis(redis.url);
  try {
    const server = await serverInfo(redis.url, `sluice-bench-${runId}-info`);
    const cpu = cpus();
    const load = loadavg().map((value) => value.toFixed(2));
    console.log(`server: ${server.name} ${server.version} (${redis.description})`);
    if (redis.noReplicaReason !== undefined) {
      console.log(`no replicated publish row: ${redis.noReplicaReason}`);
    }
    console.log(
      `client: Node ${process.version}, ${cpu.length} CPUs (${cpu[0]?.model.trim() ?? 'unknown'}), ` +
        `load average ${load.join(' ')}`,
    );
    console.log(
      `N = ${integer.format(messages)} messages per scenario and contender, ` +
        `body ${JSON.stringify(makeBody(0)).length} bytes of JSON; ` +
        `warm-up ${integer.format(warmupMessages)} (not reported); median of ${rounds} round(s)`,
    );
    const prefixBase = `sluice-bench-${runId}`;
    const warmup = {
      prefixBase: `${prefixBase}-warmup`,
      messages: warmupMessages,
      firstContender: 0,
    };
    await round(admin, redis.url, scenarios, warmup);
    const results: RoundRates[] = [];
    for (let index = 0; index < rounds; index += 1) {
      const plan = { prefixBase: `${prefixBase}-${index}`, messages, firstContender: index };
      results.push(await round(admin, redis.url, scenarios, plan));
    }
    console.log('');
    console.log(formatTable(summarize(scenarios, results)));
    const baselineNote = redis.noReplicaReason === undefined ? '; neither waits for a replica' : '';
    console.log(`(the publish rows share one raw and one BullMQ measurement${baselineNote})`);
    const comparisons = formatComparisons(scenarios, results);
    if (comparisons !== '') {
      console.log('');
      console.log('rows compared (ratio of the medians):');
      console.log(comparisons);
    }
    console.log('');
    console.log('msg/s of each round:');
    console.log(formatRounds(scenarios, results));
  } finally {
    await admin.quit();
    await redis.stop();
    await stopInboxPostgres();
  }
}

try {
  await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
}
