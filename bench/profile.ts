/**
 * Where one contender's time goes: `npm run bench:profile -- <scenario> <contender> [messages]`
 * compiles the bench as bench/run.ts does and runs the compiled profiler, which runs the
 * contender as a bench worker does (a warm-up, then the measured run) against
 * `REDIS_URL` (required: a server of your own), with the V8 CPU profiler on for the measured
 * run only. It resets the server's command statistics (`CONFIG RESETSTAT`) after the warm-up and
 * prints them afterwards, with the client's self time by function and by module over the timed
 * part of the run (roughly: its last messages / rate seconds before the profiler stopped, so a
 * consume run's untimed pre-fill is left out; the contender's checks after its clock, a few
 * milliseconds, fall inside), and writes the whole profile to `bench-results/<scenario>-<contender>.cpuprofile` (open
 * it in Chrome DevTools). Scenario and contender ids are those of bench/run.ts.
 *
 * It also prints the CPU time per message of both sides over the measured run: the client's
 * (`process.cpuUsage`, its setup and checks included) and the server's (`used_cpu_user` +
 * `used_cpu_sys` of `INFO cpu`, every thread of the server). On a machine shared with other
 * work these vary far less than rates do. With `--cpu` after the message count the V8 profiler
 * stays off (its sampling costs the client CPU of its own) and only these and the rate are
 * printed.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Profiler, Runtime } from 'node:inspector';
import { Session } from 'node:inspector/promises';
import { Redis } from 'ioredis';
import { deleteNamespaceKeys } from '../scripts/local-redis.js';
import { benchScenarios, findContender, warmupPrefix } from './scenarios.js';
import { buildWorkers, compiledWorker } from './support.js';

const TOP_FUNCTIONS = 25;
const TOP_MODULES = 12;
const SAMPLING_INTERVAL_US = 100;
const DEFAULT_MESSAGES = 50_000;
const WARMUP_MESSAGES = 5000;

/** Where a profile node's self time is counted: its module, or V8's own category. */
function moduleOf(frame: Runtime.CallFrame): string {
  if (frame.url === '') return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  if (frame.url.startsWith('node:')) return 'node internals';
  const packageAt = frame.url.lastIndexOf('node_modules/');
  if (packageAt >= 0) {
    const [scopeOrName = '', name = ''] = frame.url.slice(packageAt + 13).split('/');
    return scopeOrName.startsWith('@') ? `${scopeOrName}/${name}` : scopeOrName;
  }
  return frame.url.replace(/^file:\/\//, '').replace(`${process.cwd()}/`, '');
}

/** Self time (µs) per function and per module, of the samples in the profile's last `seconds`. */
function selfTimes(profile: Profiler.Profile, seconds: number) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  const from = profile.endTime - seconds * 1e6;
  let time = profile.startTime;
  let total = 0;
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  samples.forEach((id, index) => {
    const delta = deltas[index] ?? 0;
    time += delta;
    const frame = nodes.get(id)?.callFrame;
    if (time < from || frame === undefined) return;
    total += delta;
    const where = moduleOf(frame);
    const name = `${frame.functionName || '(anonymous)'} ${where}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + delta);
    byModule.set(where, (byModule.get(where) ?? 0) + delta);
  });
  return { total, byFunction, byModule };
}

function printShares(title: string, times: Map<string, number>, total: number, top: number): void {
  console.log(`\n${title}`);
  for (const [name, time] of [...times].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * time) / total).toFixed(1).padStart(6)}%  ${name}`);
  }
}

/** The server's CPU time so far (seconds, user + system, every thread), from `INFO cpu`. */
function serverCpuSeconds(info: string): number {
  const field = (name: string): number =>
    Number(new RegExp(`^${name}:([0-9.]+)`, 'mu').exec(info)?.[1]);
  const seconds = field('used_cpu_user') + field('used_cpu_sys');
  if (!Number.isFinite(seconds)) throw new Error('INFO cpu has no used_cpu_user / used_cpu_sys');
  return seconds;
}

async function main(): Promise<void> {
  const [scenario, name, count, mode] = process.argv.slice(2);
  if (scenario === undefined || name === undefined || (mode !== undefined && mode !== '--cpu')) {
    throw new Error('usage: npm run bench:profile -- <scenario> <contender> [messages [--cpu]]');
  }
  const messages = count === undefined ? DEFAULT_MESSAGES : Number(count);
  if (!Number.isSafeInteger(messages) || messages < 1)
    throw new Error(`bad message count ${count}`);
  // Its command statistics are reset: only a server named on purpose, never one found.
  const url = process.env.REDIS_URL;
  if (url === undefined || url === '') {
    throw new Error(
      'set REDIS_URL to a Redis of your own: bench:profile resets its command statistics (CONFIG RESETSTAT)',
    );
  }
  const contender = findContender(benchScenarios({ replicated: false }), scenario, name);
  const prefix = `sluice-profile-${process.pid}`;
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
  try {
    await contender.run({ url, prefix: warmupPrefix(prefix), messages: WARMUP_MESSAGES });
    await deleteNamespaceKeys(admin, warmupPrefix(prefix));
    await admin.call('CONFIG', 'RESETSTAT');
    const session = mode === undefined ? new Session() : undefined;
    if (session !== undefined) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
      await session.post('Profiler.start');
    }
    const serverBefore = serverCpuSeconds((await admin.call('INFO', 'cpu')) as string);
    const clientBefore = process.cpuUsage();
    const measurement = await contender.run({ url, prefix, messages });
    const client = process.cpuUsage(clientBefore);
    const server = serverCpuSeconds((await admin.call('INFO', 'cpu')) as string) - serverBefore;
    const perMessage = (us: number): string => `${(us / messages).toFixed(1)} µs`;
    console.log(`${scenario} ${name}, ${messages} messages: ${JSON.stringify(measurement)}`);
    console.log(
      `CPU per message: client ${perMessage(client.user + client.system)}, server ${perMessage(server * 1e6)}`,
    );
    if (session === undefined) return;
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    const commandStats = (await admin.call('INFO', 'commandstats')) as string;

    mkdirSync('bench-results', { recursive: true });
    const file = `bench-results/${scenario}-${name}.cpuprofile`;
    writeFileSync(file, JSON.stringify(profile));
    console.log(`profile: ${file}`);
    const rate = measurement.msgPerSecond;
    const seconds = rate !== undefined && rate > 0 ? messages / rate : 0;
    const { total, byFunction, byModule } = selfTimes(profile, seconds);
    console.log(`client self time over the last ${(total / 1e6).toFixed(2)} s (the timed part):`);
    printShares('by module', byModule, total, TOP_MODULES);
    printShares('by function', byFunction, total, TOP_FUNCTIONS);
    console.log('\nserver (INFO commandstats since the warm-up; calls inside scripts included):');
    for (const line of commandStats.split('\r\n')) {
      if (line.startsWith('cmdstat_') && !line.startsWith('cmdstat_config')) console.log(line);
    }
  } finally {
    await deleteNamespaceKeys(admin, prefix);
    await admin.quit();
  }
}

try {
  if (import.meta.url.endsWith('.ts')) {
    // Under tsx (npm run bench:profile): measure the compiled profiler instead, as bench/run.ts
    // measures compiled workers.
    buildWorkers();
    const run = spawnSync(process.execPath, [compiledWorker('profile'), ...process.argv.slice(2)], {
      stdio: 'inherit',
    });
    process.exitCode = run.status ?? 1;
  } else {
    await main();
  }
} catch (error) {
  console.error(error);
  process.exitCode = 1;
}
