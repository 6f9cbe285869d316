/**
 * Programs of test/support in processes of their own, for crash tests: started through tsx,
 * SIGKILLed when the test ends; and the crash run that idempotent consumers are tested with.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { onTestFinished } from 'vitest';
import type { Sluice } from '../../src/index.js';
import { waitFor } from './index.js';

/** Runs test/support/`program` with `args` (stdout piped, stderr inherited) until the test ends. */
export function startProcess(program: string, ...args: string[]): ChildProcess {
  const path = fileURLToPath(new URL(program, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', path, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  return child;
}

/** Publishes jobs 0 to `jobs` - 1 to `queue`, each twice: two message ids, one dedup key. */
export async function publishEachTwice(sluice: Sluice, queue: string, jobs: number): Promise<void> {
  for (let start = 0; start < jobs; start += 1000) {
    const batch = Array.from({ length: Math.min(1000, jobs - start) }, (_, i) => start + i).flatMap(
      (job) =>
        [0, 1].map(() => ({
          exchange: '',
          routingKey: queue,
          body: { job },
          options: { dedupKey: `job-${job}`, dedupWindowMs: 0 },
        })),
    );
    await sluice.publishBatch(batch);
  }
}

/**
 * Three consumer processes from `start` drain `queue`; the first is SIGKILLed and started
 * again each time the handler runs counted in `<namespace>:runs` pass 2,000, 5,000 and 8,000.
 * Resolves once nothing is ready, unacked or delayed in the queue.
 */
export async function drainWithRestarts(
  sluice: Sluice,
  redis: Redis,
  namespace: string,
  queue: string,
  start: () => ChildProcess,
  timeouts: { readonly milestoneMs: number; readonly drainMs: number },
): Promise<void> {
  const consumers = [start(), start(), start()];
  for (const milestone of [2000, 5000, 8000]) {
    await waitFor(async () => Number(await redis.get(`${namespace}:runs`)) >= milestone, {
      timeoutMs: timeouts.milestoneMs,
    });
    consumers[0]?.kill('SIGKILL');
    consumers[0] = start();
  }
  await waitFor(
    async () => {
      const info = await sluice.inspectQueue(queue);
      return info.messages === 0 && info.unacked === 0 && info.delayed === 0;
    },
    { timeoutMs: timeouts.drainMs },
  );
}
