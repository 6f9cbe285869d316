/**
 * The built `sluice` command (dist/cli/main.js) as a child process, for the CLI and dashboard
 * tests: what a user runs, not the sources through tsx.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { redisUrl, waitFor } from './index.js';

/** The built command; `npm test` builds it first. */
export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const RUN_TIMEOUT_MS = 30_000;

/** How a run of the command ended. */
export interface CliRun {
  readonly code: number | null;
  /** The signal that ended it, when one did (its code is then null). */
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link sluiceCli}. */
export interface CliOptions {
  /** Written to its standard input, which is then closed (never a terminal). */
  readonly input?: string | Buffer;
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
  /** Leave out `--url` and `--namespace` (to test the environment variables). */
  readonly bare?: boolean;
}

/** This process's environment less the variables the command reads, which a test sets itself. */
function withoutSluiceVariables(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('SLUICE_')) delete env[name];
  return env;
}

function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm test does)`);
}

/** Options of {@link run}. */
export interface RunOptions {
  /** Written to its standard input, which is then closed. */
  readonly input?: string | Buffer | undefined;
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly cwd?: string | undefined;
  /** Killed after this long; default 30 s. */
  readonly timeoutMs?: number | undefined;
}

/** Runs `command`; `result` resolves when it ends. */
function spawnRun(
  command: string,
  args: readonly string[],
  options: RunOptions,
): { child: ChildProcess; result: Promise<CliRun> } {
  const child = spawn(command, args, {
    env: { ...withoutSluiceVariables(), ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: options.timeoutMs ?? RUN_TIMEOUT_MS,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  const result = new Promise<CliRun>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.end(options.input);
  });
  return { child, result };
}

/** Runs any `command` to its end. */
export function run(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CliRun> {
  return spawnRun(command, args, options).result;
}

/**
 * Starts `sluice --url <project's Redis> --namespace <namespace> ...args`; `result` resolves
 * when it ends.
 */
export function startCli(
  namespace: string,
  args: readonly string[],
  options: CliOptions = {},
): { child: ChildProcess; result: Promise<CliRun> } {
  assertBuilt();
  const connection = options.bare === true ? [] : ['--url', redisUrl(), '--namespace', namespace];
  return spawnRun(process.execPath, [CLI, ...connection, ...args], options);
}

/** Runs `sluice --url <project's Redis> --namespace <namespace> ...args` to its end. */
export function sluiceCli(
  namespace: string,
  args: readonly string[],
  options: CliOptions = {},
): Promise<CliRun> {
  return startCli(namespace, args, options).result;
}

/**
 * Starts `sluice dashboard --port 0 ...args` on `namespace`, killed when the test ends;
 * resolves with the URL it prints (with the token, unless read-only) and the process.
 */
export function startDashboardProcess(
  namespace: string,
  args: readonly string[],
): Promise<{ url: string; process: ChildProcess }> {
  return startDashboardProcessWith(['--url', redisUrl(), '--namespace', namespace], args);
}

/**
 * Starts `sluice <connection...> dashboard --port 0 ...args` (the connection flags as given),
 * killed when the test ends; resolves as {@link startDashboardProcess} does.
 */
export async function startDashboardProcessWith(
  connection: readonly string[],
  args: readonly string[],
): Promise<{ url: string; process: ChildProcess }> {
  assertBuilt();
  const child = spawn(process.execPath, [CLI, ...connection, 'dashboard', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  let url: string | undefined;
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`sluice dashboard exited: ${output}`);
      url = /at (http:\/\/\S+)/u.exec(output)?.[1];
      return url !== undefined;
    },
    { timeoutMs: 15_000 },
  );
  return { url: url as string, process: child };
}
