/**
 * The BullMQ Worker of the consume and latency baselines: concurrency {@link PREFETCH} on the
 * bench queue, counting completed jobs and keeping the first failure.
 */
import { Worker } from 'bullmq';
import { PREFETCH, QUEUE, type BenchBody } from './support.js';

/** How long {@link BenchWorker.completed} waits at the most. */
const COMPLETION_TIMEOUT_MS = 300_000;

export class BenchWorker {
  readonly #worker: Worker<BenchBody, void>;
  #completed = 0;
  #failure: Error | undefined;
  /** Called on every completion and failure: the pending {@link completed}'s check. */
  #changed: () => void = () => undefined;

  constructor(url: string, prefix: string, handle: (body: BenchBody) => Promise<void>) {
    this.#worker = new Worker<BenchBody, void>(QUEUE, (job) => handle(job.data), {
      connection: { url, maxRetriesPerRequest: null },
      prefix,
      concurrency: PREFETCH,
    });
    this.#worker.on('completed', () => {
      this.#completed += 1;
      this.#changed();
    });
    const fail = (error: Error): void => {
      this.#failure ??= error;
      this.#changed();
    };
    this.#worker.on('failed', (_job, error) => fail(error));
    this.#worker.on('error', fail);
  }

  waitUntilReady(): Promise<unknown> {
    return this.#worker.waitUntilReady();
  }

  /**
   * Resolves once `jobs` jobs have completed, told by the completions themselves (no polling
   * beside the worker); rejects with the first failure, or after {@link COMPLETION_TIMEOUT_MS}.
   */
  completed(jobs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`bullmq: ${this.#completed} of ${jobs} jobs completed in time`)),
        COMPLETION_TIMEOUT_MS,
      );
      this.#changed = () => {
        if (this.#failure === undefined && this.#completed < jobs) return;
        clearTimeout(timer);
        this.#changed = () => undefined;
        if (this.#failure === undefined) resolve();
        else reject(this.#failure);
      };
      this.#changed();
    });
  }

  close(): Promise<void> {
    return this.#worker.close();
  }
}
