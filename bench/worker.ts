/**
 * One run of one contender in a process of its own, started by bench/run.ts:
 * `node bench-results/build/bench/worker.js <WorkerTask as JSON>` (compiled first). It
 * connects, warms up on a few messages under a prefix of its own (keys deleted before the
 * measured run), runs the measured workload, prints one line `bench-result <Measurement as
 * JSON>` and exits.
 */
import { Redis } from 'ioredis';
import { deleteNamespaceKeys } from '../scripts/local-redis.js';
import { RESULT_PREFIX } from './support.js';
import { benchScenarios, findContender, warmupPrefix, type WorkerTask } from './scenarios.js';

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? '') as WorkerTask;
  const contender = findContender(benchScenarios(task.config), task.scenario, task.contender);
  const { url, prefix, messages, warmupMessages } = task;
  if (warmupMessages > 0) {
    const warmup = warmupPrefix(prefix);
    try {
      await contender.run({ url, prefix: warmup, messages: warmupMessages });
    } finally {
      const admin = new Redis(url);
      await deleteNamespaceKeys(admin, warmup);
      await admin.quit();
    }
  }
  const measurement = await contender.run({ url, prefix, messages });
  console.log(`${RESULT_PREFIX}${JSON.stringify(measurement)}`);
}

try {
  await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
}
