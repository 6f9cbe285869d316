/**
 * `npm run bench`: sluice against raw ioredis Streams and against BullMQ, measured in one run
 * on one server (DESIGN.md section 10). Not a test: it prints a table and exits 0.
 *
 * Redis: `$REDIS_URL` if set, else a `redis-server` of its own on a free port (stopped at the
 * end), so that nothing else using 6379 disturbs the numbers. Every contender runs under a
 * fresh key prefix whose keys are deleted after it. `BENCH_MESSAGES` sets N (default 50,000),
 * `BENCH_ROUNDS` the measured rounds whose median is reported (default 3).
 */
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { deleteNamespaceKeys, startRedisServer } from '../scripts/local-redis.js';
import { Sluice, type ServerInfo } from '../src/index.js';
import { consumeContenders } from './consume.js';
import { publishContenders } from './publish.js';
import { formatTable, integer, type ScenarioResult } from './report.js';
import {
  PREFETCH,
  PUBLISH_WINDOW,
  makeBody,
  messagesFromEnv,
  roundsFromEnv,
  type Contender,
  type ContenderName,
} from './support.js';

/** Messages per contender in the warm-up round, whose timings are thrown away. */
const WARMUP_MESSAGES = 5000;

interface Scenario {
  /** Part of the key prefixes. */
  readonly id: string;
  /** The row label of the table. */
  readonly label: string;
  readonly contenders: readonly Contender[];
}

const SCENARIOS: readonly Scenario[] = [
  { id: 'publish', label: `publish, window ${PUBLISH_WINDOW}`, contenders: publishContenders },
  { id: 'consume', label: `consume + ack, prefetch ${PREFETCH}`, contenders: consumeContenders },
];

interface BenchRedis {
  readonly url: string;
  readonly description: string;
  stop(): Promise<void>;
}

async function benchRedis(): Promise<BenchRedis> {
  const url = process.env.REDIS_URL;
  if (url) return { url, description: 'REDIS_URL', stop: () => Promise.resolve() };
  const server = await startRedisServer();
  return {
    url: server.url,
    description: `${server.binary} started by the bench on port ${server.port}`,
    stop: () => server.dispose(),
  };
}

async function serverInfo(url: string, namespace: string): Promise<ServerInfo> {
  const sluice = await Sluice.connect({ url, namespace });
  try {
    return sluice.server;
  } finally {
    await sluice.close();
  }
}

/** Messages per second of each contender of each scenario, for one round. */
type RoundRates = Map<string, Partial<Record<ContenderName, number>>>;

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
async function round(admin: Redis, url: string, plan: RoundPlan): Promise<RoundRates> {
  const { prefixBase, messages, firstContender } = plan;
  const rates: RoundRates = new Map();
  for (const scenario of SCENARIOS) {
    const scenarioRates: Partial<Record<ContenderName, number>> = {};
    const { contenders } = scenario;
    for (let offset = 0; offset < contenders.length; offset += 1) {
      const contender = contenders[(firstContender + offset) % contenders.length] as Contender;
      const prefix = `${prefixBase}-${scenario.id}-${contender.name}`;
      try {
        const elapsedMs = await contender.run({ url, prefix, messages });
        scenarioRates[contender.name] = (messages * 1000) / elapsedMs;
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

/** Each contender's rate in every round, in round order. */
function ratesOf(
  rounds: readonly RoundRates[],
  scenario: Scenario,
  contender: ContenderName,
): number[] {
  return rounds.map((rates) => {
    const rate = rates.get(scenario.id)?.[contender];
    if (rate === undefined) throw new Error(`no ${contender} result for scenario ${scenario.id}`);
    return rate;
  });
}

function summarize(rounds: readonly RoundRates[]): ScenarioResult[] {
  return SCENARIOS.map((scenario) => ({
    scenario: scenario.label,
    rates: {
      sluice: median(ratesOf(rounds, scenario, 'sluice')),
      raw: median(ratesOf(rounds, scenario, 'raw')),
      bullmq: median(ratesOf(rounds, scenario, 'bullmq')),
    },
  }));
}

/** One line per scenario and contender with the rate of every round, for judging the spread. */
function formatRounds(rounds: readonly RoundRates[]): string {
  const lines: string[] = [];
  for (const scenario of SCENARIOS) {
    for (const contender of scenario.contenders) {
      const rates = ratesOf(rounds, scenario, contender.name).map((rate) => integer.format(rate));
      lines.push(`  ${scenario.id} ${contender.name}: ${rates.join(', ')}`);
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
  const admin = new Redis(redis.url);
  try {
    const server = await serverInfo(redis.url, `sluice-bench-${runId}-info`);
    const cpu = cpus();
    const load = loadavg().map((value) => value.toFixed(2));
    console.log(`server: ${server.name} ${server.version} (${redis.description})`);
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
    await round(admin, redis.url, warmup);
    const results: RoundRates[] = [];
    for (let index = 0; index < rounds; index += 1) {
      const plan = { prefixBase: `${prefixBase}-${index}`, messages, firstContender: index };
      results.push(await round(admin, redis.url, plan));
    }
    console.log('');
    console.log(formatTable(summarize(results)));
    console.log('');
    console.log('msg/s of each round:');
    console.log(formatRounds(results));
  } finally {
    await admin.quit();
    await redis.stop();
  }
}

try {
  await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
}
