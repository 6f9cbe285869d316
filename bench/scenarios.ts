/**
 * The scenarios of a run, built the same way in the runner and in every worker process, and
 * what the runner hands a worker.
 */
import { consumeScenario } from './consume.js';
import { latencyScenario } from './latency.js';
import { memoryScenario } from './memory.js';
import { batchScenario, bodySizeScenario, sequentialScenario, windowScenario } from './publish.js';
import { contendersOf, type Contender, type Scenario } from './support.js';

/** What decides which rows a run has. */
export interface BenchConfig {
  /** Whether the server has a replica that acknowledges writes (the `replicated` row). */
  readonly replicated: boolean;
}

/** Every scenario, in the order the table shows them. */
export function benchScenarios(config: BenchConfig): Scenario[] {
  return [
    windowScenario(config),
    sequentialScenario,
    batchScenario,
    consumeScenario,
    latencyScenario,
    bodySizeScenario('publish-100b', '100 B', 100),
    bodySizeScenario('publish-1k', '1 KiB', 1024),
    memoryScenario,
  ];
}

/** One run of one contender, as the runner asks a worker for it (JSON on its command line). */
export interface WorkerTask {
  readonly config: BenchConfig;
  readonly scenario: string;
  readonly contender: string;
  readonly url: string;
  readonly prefix: string;
  readonly messages: number;
  /** Messages of the warm-up run before the measured one (0: none). */
  readonly warmupMessages: number;
}

/** The key prefix of the warm-up run of the worker whose measured run has `prefix`. */
export function warmupPrefix(prefix: string): string {
  return `${prefix}-warmup`;
}

/** The contender `name` of the scenario `id`. */
export function findContender(scenarios: readonly Scenario[], id: string, name: string): Contender {
  const scenario = scenarios.find((candidate) => candidate.id === id);
  const contender = scenario && contendersOf(scenario).find((c) => c.name === name);
  if (contender === undefined) throw new Error(`no contender ${name} in scenario ${id}`);
  return contender;
}
