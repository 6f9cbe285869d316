/**
 * Local Redis servers for the test suites and the demo (not part of the published package).
 *
 * `startRedisServer` runs a throw-away `redis-server` (or `valkey-server`) on a free port in a
 * fresh directory and can kill, pause, stop and restart it; `startReplicaServer` runs one as a
 * replica of another; `findRedis` picks the Redis a run should use, in the order DESIGN.md
 * section 10 gives.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { unlinkMatching } from '../src/connection/connection.js';
import { escapeGlob } from '../src/keys/index.js';

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 10_000;
/** Signals after which `kill` waits for the process to be gone. */
const TERMINATING_SIGNALS: ReadonlySet<NodeJS.Signals> = new Set([
  'SIGKILL',
  'SIGTERM',
  'SIGINT',
  'SIGQUIT',
]);

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this long (default 5000). */
  timeoutMs?: number;
  /** Pause between attempts (default 25). */
  intervalMs?: number;
  /** What is awaited, for the timeout message. */
  description?: string;
}

/** A value that passes an `if`. */
export type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/**
 * Polls `predicate` until it returns a truthy value and resolves with that value. A throwing or
 * rejecting attempt counts as "not yet"; an attempt still pending at the deadline is abandoned.
 * Rejects once `timeoutMs` has passed, with the last error as `cause`.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<Truthy<T>> {
  const { timeoutMs = 5000, intervalMs = 25, description = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await beforeDeadline(predicate, deadline);
      if (value) return value as Truthy<T>;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    const remainingMs = deadline - Date.now();
    if (remainingMs <= 0) {
      const reason = lastError instanceof Error ? `; last attempt: ${lastError.message}` : '';
      throw new Error(`${description} not reached within ${timeoutMs} ms${reason}`, {
        cause: lastError,
      });
    }
    await delay(Math.min(intervalMs, remainingMs));
  }
}

/** One attempt of `predicate`, rejected if it has not settled by `deadline`. */
async function beforeDeadline<T>(predicate: () => T | Promise<T>, deadline: number): Promise<T> {
  const timer = new AbortController();
  const expired = delay(Math.max(0, deadline - Date.now()), undefined, {
    signal: timer.signal,
  }).then(() => {
    throw new Error('attempt still pending at the deadline');
  });
  try {
    return await Promise.race([Promise.resolve().then(predicate), expired]);
  } finally {
    timer.abort();
  }
}

/** The server binary to use when none is named: `$SLUICE_REDIS_SERVER`, else `redis-server`. */
export function defaultRedisServerBinary(): string {
  return process.env.SLUICE_REDIS_SERVER || 'redis-server';
}

/** The path of `binary` if it is executable (a path) or an executable on PATH, else undefined. */
export function findOnPath(binary: string): string | undefined {
  const candidates = binary.includes('/')
    ? [binary]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .filter((dir) => dir !== '')
        .map((dir) => join(dir, binary));
  return candidates.find((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Opens a new connection to a server (plain TCP, or TLS for a TLS-only server). */
type Dial = () => Socket;

/** Plain TCP to `port` of 127.0.0.1. */
function plainDial(port: number): Dial {
  return () => createConnection({ host: HOST, port });
}

/**
 * Sends one command on a fresh connection and resolves with the first reply line (`+PONG`,
 * `-ERR ...`), or `''` if the server closed the connection without replying (as SHUTDOWN does).
 * Rejects when the connection fails or no reply comes within `timeoutMs`.
 */
function sendCommand(dial: Dial, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = dial();
    let received = '';
    const finish = (outcome: () => void): void => {
      clearTimeout(timer);
      socket.destroy();
      outcome();
    };
    const timer = setTimeout(() => {
      finish(() => reject(new Error(`no reply to ${args[0]} in ${timeoutMs} ms`)));
    }, timeoutMs);
    socket.setEncoding('utf8');
    // Written at once: a socket (TLS too) holds what is written before it is connected.
    const parts = args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
    socket.write(`*${args.length}\r\n${parts.join('')}`);
    socket.on('data', (chunk: string) => {
      received += chunk;
      const end = received.indexOf('\r\n');
      if (end >= 0) finish(() => resolve(received.slice(0, end)));
    });
    socket.once('error', (error) => finish(() => reject(error)));
    socket.once('close', () => finish(() => resolve('')));
  });
}

/** True if the server `dial` reaches answers PING with PONG within `timeoutMs`. */
async function pingsWithin(dial: Dial, timeoutMs: number): Promise<boolean> {
  try {
    return (await sendCommand(dial, ['PING'], timeoutMs)) === '+PONG';
  } catch {
    return false;
  }
}

/** A port of 127.0.0.1 that was free a moment ago (bind to port 0, read it, release it). */
export async function findFreePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') {
    throw new Error('could not read the port the OS assigned');
  }
  return address.port;
}

// Nothing started here may outlive this process. The exit hook covers a normal exit; on Linux,
// `setpriv --pdeathsig` also kills a server whose parent dies without running it (SIGKILL).
const liveServers = new Set<ChildProcess>();
const ownedDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveServers) child.kill('SIGKILL');
    for (const dir of ownedDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/**
 * A fresh temp dir (`<prefix>XXXXXX`) that is removed when this process exits, unless
 * {@link removeTempDir} removed it before: for the servers of a test and their files.
 */
export function makeTempDir(prefix: string): string {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  ownedDirs.add(dir);
  return dir;
}

/** Removes a dir made by {@link makeTempDir}, with everything in it. */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  ownedDirs.delete(dir);
}

/** PEM files of a TLS setup: a CA, a certificate it signed for the server, and one for a client. */
export interface TlsFiles {
  readonly caCertFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
}

/** TLS options of {@link startRedisServer}. */
export interface RedisTlsOptions {
  readonly files: TlsFiles;
  /**
   * `tls-auth-clients`: `yes` refuses a client without a certificate the CA signed; `optional`
   * accepts a client without one (default `yes`).
   */
  readonly authClients?: 'yes' | 'optional';
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Server binary, e.g. `valkey-server` (default {@link defaultRedisServerBinary}). */
  binary?: string;
  /**
   * Extra server arguments, e.g. `['--appendonly', 'yes', '--appendfsync', 'always']`; they
   * override the defaults `--save "" --appendonly no`. A leading non-option argument is taken
   * as a config file. The port and dir are set through the options, not here.
   */
  args?: string[];
  /** Data directory (default: a fresh temp dir, removed by `dispose`). */
  dir?: string;
  /** Port on 127.0.0.1 (default: a free one). */
  port?: number;
  /**
   * Serve TLS only: `port` becomes the `tls-port` and the plain port is closed (`--port 0`). The
   * handle's own commands (PING, SHUTDOWN) use the client certificate of `files`.
   */
  tls?: RedisTlsOptions;
}

/** A server process started by {@link startRedisServer}. */
export interface RedisServerHandle {
  /** `redis://127.0.0.1:<port>`, or `rediss://` for a TLS server. */
  readonly url: string;
  readonly port: number;
  /** Data directory (RDB, AOF, `server.log`); kept across restarts. */
  readonly dir: string;
  /** The binary as given, e.g. `redis-server`. */
  readonly binary: string;
  /** Process id of the current server process; changes on restart. */
  readonly pid: number;
  /**
   * Sends `signal` to the server (SIGKILL to crash it, SIGSTOP/SIGCONT to freeze and thaw it);
   * after SIGKILL, SIGTERM, SIGINT or SIGQUIT, resolves once the process has exited.
   */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Shuts the server down (SHUTDOWN NOSAVE NOW, else SIGTERM, else SIGKILL) and waits for its exit. */
  stop(): Promise<void>;
  /** Stops the server if it runs, then starts it again on the same port, dir and arguments. */
  restart(): Promise<void>;
  /** Resolves once the server answers PING; rejects if it exits or the deadline passes. */
  waitUntilReady(options?: { timeoutMs?: number }): Promise<void>;
  /** Stops the server and removes its dir if this handle created it. */
  dispose(): Promise<void>;
}

class LocalRedisServer implements RedisServerHandle {
  readonly url: string;
  readonly #argv: readonly string[];
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #running = false;
  #paused = false;

  readonly #dial: Dial;
  readonly #tls: RedisTlsOptions | undefined;

  constructor(
    readonly binary: string,
    readonly port: number,
    readonly dir: string,
    args: readonly string[],
    private readonly ownsDir: boolean,
    tls: RedisTlsOptions | undefined,
  ) {
    this.#tls = tls;
    this.url = `${tls === undefined ? 'redis' : 'rediss'}://${HOST}:${port}`;
    this.#argv = serverArgv(listenArgs(port, tls), dir, this.#logFile(), args);
    this.#dial = tls === undefined ? plainDial(port) : tlsDial(port, tls.files);
  }

  get pid(): number {
    return this.#child?.pid ?? 0;
  }

  async start(): Promise<void> {
    installExitHook();
    const setpriv = findOnPath('setpriv');
    // A configuration the server refuses is reported on stderr, before it opens its log file.
    const stderr = openSync(this.#stderrFile(), 'a');
    const stdio: StdioOptions = ['ignore', 'ignore', stderr];
    const child: ChildProcess = setpriv
      ? spawn(setpriv, ['--pdeathsig', 'SIGKILL', this.binary, ...this.#argv], { stdio })
      : spawn(this.binary, this.#argv, { stdio });
    closeSync(stderr);
    this.#child = child;
    this.#running = true;
    this.#paused = false;
    liveServers.add(child);
    this.#exited = new Promise((resolve) => {
      const exited = (): void => {
        liveServers.delete(child);
        this.#running = false;
        resolve();
      };
      child.once('exit', exited);
      child.once('error', exited);
    });
    await this.waitUntilReady();
    // An idle server must not keep this process alive (the exit hook kills it); awaiting its
    // exit re-references it, see #awaitExit.
    child.unref();
  }

  async waitUntilReady(options: { timeoutMs?: number } = {}): Promise<void> {
    await waitFor(async () => !this.#running || (await pingsWithin(this.#dial, 1000)), {
      timeoutMs: options.timeoutMs ?? READY_TIMEOUT_MS,
      description: `${this.binary} on port ${this.port} answering PING`,
    });
    if (!this.#running) {
      const stderr = this.#stderrTail();
      if (this.#tls !== undefined && />>> 'tls-[^\n]*\nBad directive/u.test(stderr)) {
        throw new Error(
          `${this.binary} was built without TLS support (it does not know tls-port); ` +
            "use a build with BUILD_TLS=yes, as Debian's redis-server and valkey-server are",
        );
      }
      throw new Error(
        `${this.binary} on port ${this.port} exited before answering PING; last log lines:\n` +
          `${this.logTail()}\nstderr:\n${stderr}`,
      );
    }
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (!this.#running || this.#child === undefined) {
      if (TERMINATING_SIGNALS.has(signal)) return;
      throw new Error(`${this.binary} on port ${this.port} is not running`);
    }
    this.#child.kill(signal);
    if (signal === 'SIGSTOP') this.#paused = true;
    if (signal === 'SIGCONT') this.#paused = false;
    if (!TERMINATING_SIGNALS.has(signal)) return;
    // A stopped process keeps every signal but SIGKILL pending until it runs again.
    if (this.#paused && signal !== 'SIGKILL') this.#child.kill('SIGCONT');
    await this.#awaitExit();
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!this.#running || child === undefined) return;
    if (this.#paused) await this.kill('SIGCONT');
    const reply = await sendCommand(this.#dial, ['SHUTDOWN', 'NOSAVE', 'NOW'], 2000).catch(
      () => '-unreachable',
    );
    // An error reply (NOAUTH, a replica refusing) leaves the process running: ask with a signal.
    if (reply.startsWith('-')) child.kill('SIGTERM');
    if (await this.#exitsWithin(EXIT_TIMEOUT_MS)) return;
    child.kill('SIGKILL');
    await this.#awaitExit();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async dispose(): Promise<void> {
    await this.stop();
    if (this.ownsDir) removeTempDir(this.dir);
  }

  logTail(lines = 20): string {
    try {
      return readFileSync(this.#logFile(), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  #logFile(): string {
    return join(this.dir, 'server.log');
  }

  #stderrFile(): string {
    return join(this.dir, 'stderr.log');
  }

  #stderrTail(): string {
    try {
      return readFileSync(this.#stderrFile(), 'utf8').trimEnd().split('\n').slice(-10).join('\n');
    } catch {
      return '(none)';
    }
  }

  async #exitsWithin(timeoutMs: number): Promise<boolean> {
    const timer = new AbortController();
    const timedOut = delay(timeoutMs, false, { signal: timer.signal }).catch(() => false);
    const exited = await Promise.race([this.#awaitExit().then(() => true), timedOut]);
    timer.abort();
    return exited;
  }

  /** Waits for the exit with the child referenced, so that this process stays up to see it. */
  async #awaitExit(): Promise<void> {
    this.#child?.ref();
    await this.#exited;
  }
}

/** TLS to `port` of 127.0.0.1, checking the server against the CA, with the client certificate. */
function tlsDial(port: number, files: TlsFiles): Dial {
  const [ca, cert, key] = [files.caCertFile, files.clientCertFile, files.clientKeyFile].map(
    (file) => readFileSync(file),
  );
  return () => connectTls({ host: HOST, port, ca, cert, key });
}

/** Where the server listens: `port` in plain TCP, or, with `tls`, in TLS only. */
function listenArgs(port: number, tls: RedisTlsOptions | undefined): string[] {
  if (tls === undefined) return ['--port', String(port)];
  const { files, authClients = 'yes' } = tls;
  return [
    ...['--port', '0', '--tls-port', String(port)],
    ...['--tls-cert-file', files.serverCertFile, '--tls-key-file', files.serverKeyFile],
    ...['--tls-ca-cert-file', files.caCertFile, '--tls-auth-clients', authClients],
  ];
}

/** Server arguments: ours first, so that the caller's `args` override the defaults. */
function serverArgv(
  listen: readonly string[],
  dir: string,
  logFile: string,
  args: readonly string[],
): string[] {
  for (const reserved of ['--port', '--dir', '--tls-port']) {
    if (args.includes(reserved)) {
      throw new Error(`pass ${reserved} as an option of startRedisServer, not in args`);
    }
  }
  const [first, ...rest] = args;
  const hasConfigFile = first !== undefined && !first.startsWith('--');
  const options = hasConfigFile ? rest : args;
  const defaults = [
    ...(options.includes('--save') ? [] : ['--save', '']),
    ...(options.includes('--appendonly') ? [] : ['--appendonly', 'no']),
  ];
  return [
    ...(hasConfigFile ? [first] : []),
    ...listen,
    ...['--bind', HOST, '--dir', dir, '--logfile', logFile],
    ...defaults,
    ...options,
  ];
}

/**
 * Starts `redis-server` (or `options.binary`, e.g. `valkey-server`) on 127.0.0.1 and resolves
 * once it answers PING. Without `port` a free one is chosen (and another tried if the port was
 * taken meanwhile); without `dir` a fresh temp dir is created. The process is killed when this
 * process exits.
 */
export async function startRedisServer(
  options: RedisServerOptions = {},
): Promise<RedisServerHandle> {
  const binary = options.binary ?? defaultRedisServerBinary();
  if (findOnPath(binary) === undefined) {
    throw new Error(`${binary} is not on PATH (try: apt-get install ${binary})`);
  }
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? makeTempDir('sluice-redis-');
  const maxAttempts = options.port === undefined ? 3 : 1;
  for (let attempt = 1; ; attempt += 1) {
    const port = options.port ?? (await findFreePort());
    const server = new LocalRedisServer(
      binary,
      port,
      dir,
      options.args ?? [],
      ownsDir,
      options.tls,
    );
    try {
      await server.start();
      return server;
    } catch (error) {
      await server.stop();
      const portTaken = server.logTail().includes('Address already in use');
      if (!portTaken || attempt >= maxAttempts) {
        if (ownsDir) await server.dispose();
        throw error;
      }
    }
  }
}

/**
 * Starts a server with `cluster-enabled yes` that owns every hash slot (a one-node Redis
 * Cluster), and resolves once the cluster reports `cluster_state:ok`. It refuses, as a real
 * Cluster does, any command or script whose keys span two slots (CROSSSLOT).
 */
export async function startClusterNode(
  options: RedisServerOptions = {},
): Promise<RedisServerHandle> {
  const server = await startRedisServer({
    ...options,
    args: [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      ...(options.args ?? []),
    ],
  });
  const client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    await waitFor(
      async () => String(await client.call('CLUSTER', 'INFO')).includes('cluster_state:ok'),
      { timeoutMs: 10_000, description: `cluster node on port ${server.port} reporting state ok` },
    );
  } catch (error) {
    await server.dispose();
    throw error;
  } finally {
    client.disconnect();
  }
  return server;
}

/** How many replicas `primary` counts as connected and online. */
export async function onlineReplicas(primary: Redis): Promise<number> {
  return ((await primary.info('replication')).match(/state=online/gu) ?? []).length;
}

/**
 * Starts a replica of the local server on `primaryPort` (`--replicaof 127.0.0.1 <port>`, with
 * {@link startRedisServer}'s `options`; `primary` is a client of that server) and resolves
 * once the replica acknowledges a write through WAIT: a replica that just turned online
 * acknowledges its first write only at its next periodic ACK. Disposes the replica if it does
 * not get there within 10 s.
 */
export async function startReplicaServer(
  primary: Redis,
  primaryPort: number,
  options: RedisServerOptions = {},
): Promise<RedisServerHandle> {
  // The primary would wait 5 s for more replicas before a diskless full sync.
  await primary.config('SET', 'repl-diskless-sync-delay', '0');
  const replicas = (await onlineReplicas(primary)) + 1;
  const replica = await startRedisServer({
    ...options,
    args: ['--replicaof', HOST, String(primaryPort), ...(options.args ?? [])],
  });
  try {
    // A write before the first replica attached is not in the replication stream (offset 0),
    // and WAIT would count a replica that has acknowledged nothing yet.
    await waitFor(
      async () => {
        await primary.incr('local-redis:replica-probe');
        const offset = /master_repl_offset:(\d+)/u.exec(await primary.info('replication'));
        if (Number(offset?.[1] ?? 0) === 0) return false;
        return Number(await primary.call('WAIT', replicas, 100)) >= replicas;
      },
      { timeoutMs: 10_000, description: `${replicas} replicas acknowledging writes` },
    );
  } catch (error) {
    await replica.dispose();
    throw error;
  }
  return replica;
}

/** Where {@link findRedis} found its server. */
export type RedisSource = 'env' | 'local' | 'spawned' | 'container';

/** A Redis to use, and how to let go of it. */
export interface FoundRedis {
  readonly url: string;
  readonly source: RedisSource;
  /** Stops what findRedis started; does nothing for a server it merely found. */
  stop(): Promise<void>;
}

/** Options of {@link findRedis}. */
export interface FindRedisOptions {
  /** Use a Redis already answering on 127.0.0.1:6379 (for the demo; tests start their own). */
  preferLocal6379: boolean;
  /** Server binary to start (default {@link defaultRedisServerBinary}). */
  binary?: string;
  /** Start a one-node cluster ({@link startClusterNode}) instead of a standalone server. */
  clusterNode?: boolean;
}

const doNothing = (): Promise<void> => Promise.resolve();

/**
 * Finds a Redis: `$REDIS_URL` if set; else (with `preferLocal6379`) 127.0.0.1:6379 if it answers
 * PING within 500 ms; else the server binary from PATH, started on a free port; else a
 * Testcontainers Redis if a Docker runtime is available; else throws, saying how to get one.
 */
export async function findRedis(options: FindRedisOptions): Promise<FoundRedis> {
  const envUrl = process.env.REDIS_URL;
  if (envUrl) return { url: envUrl, source: 'env', stop: doNothing };
  if (options.preferLocal6379 && (await pingsWithin(plainDial(6379), 500))) {
    return { url: `redis://${HOST}:6379`, source: 'local', stop: doNothing };
  }
  const binary = options.binary ?? defaultRedisServerBinary();
  if (findOnPath(binary) !== undefined) {
    const server = await (options.clusterNode === true ? startClusterNode : startRedisServer)({
      binary,
    });
    return { url: server.url, source: 'spawned', stop: () => server.dispose() };
  }
  const container = await startRedisContainer(binary);
  if (container !== undefined) return container;
  throw new Error(
    [
      `No Redis server available: REDIS_URL is not set, ${binary} is not on PATH and no Docker runtime was found.`,
      'Get one in any of these ways:',
      '  - set REDIS_URL to a Redis you can use, e.g. REDIS_URL=redis://127.0.0.1:6379',
      '  - install redis-server (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis);',
      '    set SLUICE_REDIS_SERVER=valkey-server to start Valkey instead',
      '  - install and start Docker, so that Testcontainers can run one',
    ].join('\n'),
  );
}

/** A Redis (or Valkey, when `binary` names it) container, or undefined if Docker is not usable. */
async function startRedisContainer(binary: string): Promise<FoundRedis | undefined> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
  } catch {
    return undefined;
  }
  const { RedisContainer } = await import('@testcontainers/redis');
  const container = binary.includes('valkey')
    ? new RedisContainer('valkey/valkey:8.0').withCommand(['valkey-server'])
    : new RedisContainer('redis:7.0');
  const started = await container.start();
  return {
    url: started.getConnectionUrl(),
    source: 'container',
    stop: async () => {
      await started.stop();
    },
  };
}

/**
 * Deletes every key of `namespace` (the key schema puts each one under `<namespace>:`) with
 * SCAN + UNLINK, never FLUSH; resolves with how many were deleted. Scans one node only.
 */
export function deleteNamespaceKeys(redis: Redis, namespace: string): Promise<number> {
  return unlinkMatching(redis, `${escapeGlob(namespace)}:*`);
}
