/**
 * A local Redis Sentinel set for topology tests: a primary, its replicas and the sentinels that
 * watch them, each a server of scripts/local-redis.ts on a free port in one temp dir, and the
 * faults such tests need: the primary killed with SIGKILL, a forced failover, a restart.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import {
  makeTempDir,
  removeTempDir,
  startRedisServer,
  startReplicaServer,
  waitFor,
  type RedisServerHandle,
} from '../../scripts/local-redis.js';
import { adminClient, fieldMap } from './admin.js';

const HOST = '127.0.0.1';
/** How long the primary may not answer before a sentinel counts it as down. */
const DOWN_AFTER_MS = 1000;
/**
 * Bounds a failover's steps; a failover that did not get a leader is tried again after twice
 * this, so it is small.
 */
const FAILOVER_TIMEOUT_MS = 3000;
const HEALTHY_TIMEOUT_MS = 30_000;

/** Options of {@link startSentinelSet}. */
export interface SentinelSetOptions {
  /** Replicas of the primary (default 2). */
  replicas?: number;
  /** Sentinels; the quorum is their majority (default 3, quorum 2). */
  sentinels?: number;
  /** The name the sentinels monitor the primary under (default `mymaster`). */
  name?: string;
  /** Server binary, e.g. `valkey-server` (default as in startRedisServer). */
  binary?: string;
}

/** Where a server listens, as ioredis takes it. */
export interface ServerAddress {
  readonly host: string;
  readonly port: number;
}

/** A sentinel set started by {@link startSentinelSet}. */
export interface LocalSentinelSet {
  /** The name the primary is monitored under, for ioredis `{ sentinels, name }`. */
  readonly name: string;
  /** Addresses of the sentinels, for ioredis `{ sentinels, name }`. */
  readonly sentinels: readonly ServerAddress[];
  /** Every data server, the first one started as the primary. */
  readonly servers: readonly RedisServerHandle[];
  /** The sentinel processes. */
  readonly sentinelServers: readonly RedisServerHandle[];
  /** The primary at the last check (start, failover, killPrimary, restart, waitHealthy). */
  readonly primary: RedisServerHandle;
  /** The live data servers but the primary. */
  readonly replicas: readonly RedisServerHandle[];
  /** The primary's address as a sentinel reports it now. */
  currentPrimary(): Promise<ServerAddress>;
  /**
   * Kills the primary with SIGKILL and resolves with the replica the sentinels promoted, once
   * the set is healthy without it. The killed process stays dead until {@link restart}.
   */
  killPrimary(): Promise<RedisServerHandle>;
  /**
   * `SENTINEL FAILOVER`: resolves with the new primary once the set is healthy again, the old
   * primary its replica (see {@link waitHealthy}).
   */
  failover(): Promise<RedisServerHandle>;
  /** Starts a data server again (as a replica unless it is the primary) and waits for health. */
  restart(server: RedisServerHandle): Promise<void>;
  /**
   * Resolves once every sentinel reports the same live primary, sees the other sentinels and
   * every live replica as up, and every live replica is in sync with that primary. After a
   * SENTINEL FAILOVER that takes 8–10 s: the sentinels turn the old primary into a replica
   * only once it has reported itself a primary for 8 s.
   */
  waitHealthy(options?: { timeoutMs?: number }): Promise<void>;
  /** Stops every process and removes their files. */
  stop(): Promise<void>;
}

/** A server with its admin connection. */
interface Member {
  readonly server: RedisServerHandle;
  readonly client: Redis;
  alive: boolean;
}

class SentinelSet implements LocalSentinelSet {
  #primary: Member;

  constructor(
    readonly name: string,
    private readonly data: readonly Member[],
    private readonly watchers: readonly Member[],
    private readonly root: string,
  ) {
    this.#primary = data[0] as Member;
  }

  get sentinels(): ServerAddress[] {
    return this.watchers.map(({ server }) => ({ host: HOST, port: server.port }));
  }

  get servers(): RedisServerHandle[] {
    return this.data.map(({ server }) => server);
  }

  get sentinelServers(): RedisServerHandle[] {
    return this.watchers.map(({ server }) => server);
  }

  get primary(): RedisServerHandle {
    return this.#primary.server;
  }

  get replicas(): RedisServerHandle[] {
    return this.data
      .filter((member) => member.alive && member !== this.#primary)
      .map(({ server }) => server);
  }

  private member(server: RedisServerHandle): Member {
    const member = this.data.find((candidate) => candidate.server === server);
    if (member === undefined) throw new Error(`port ${server.port} is no server of this set`);
    return member;
  }

  async currentPrimary(): Promise<ServerAddress> {
    for (const sentinel of this.watchers) {
      try {
        return await this.reportedPrimary(sentinel);
      } catch {
        // Ask the next one: this sentinel may be down.
      }
    }
    throw new Error(`no sentinel answers for ${this.name}`);
  }

  private async reportedPrimary(sentinel: Member): Promise<ServerAddress> {
    const [host, port] = (await sentinel.client.call(
      'SENTINEL',
      'GET-MASTER-ADDR-BY-NAME',
      this.name,
    )) as [string, string];
    return { host, port: Number(port) };
  }

  async killPrimary(): Promise<RedisServerHandle> {
    const killed = this.#primary;
    await killed.server.kill('SIGKILL');
    killed.alive = false;
    return this.awaitNewPrimary(killed);
  }

  async failover(): Promise<RedisServerHandle> {
    const previous = this.#primary;
    const [sentinel] = this.watchers;
    await sentinel?.client.call('SENTINEL', 'FAILOVER', this.name);
    return this.awaitNewPrimary(previous);
  }

  /** Waits until the sentinels report a primary other than `previous` and the set is healthy. */
  private async awaitNewPrimary(previous: Member): Promise<RedisServerHandle> {
    await waitFor(
      async () =>
        (await Promise.all(this.watchers.map((sentinel) => this.reportedPrimary(sentinel)))).every(
          ({ port }) => port !== previous.server.port,
        ),
      { timeoutMs: HEALTHY_TIMEOUT_MS, description: `sentinels reporting a new ${this.name}` },
    );
    await this.waitHealthy();
    return this.#primary.server;
  }

  async restart(server: RedisServerHandle): Promise<void> {
    const member = this.member(server);
    await server.restart();
    member.alive = true;
    if (member !== this.#primary) {
      // A former primary starts as a primary again; the sentinels would turn it into a replica
      // only after it has reported itself a primary for 8 s.
      const port = this.#primary.server.port;
      // The admin connection comes back within 50 ms of the restart.
      await waitFor(() => member.client.call('REPLICAOF', HOST, port), {
        description: `port ${server.port} taking REPLICAOF`,
      });
    }
    await this.waitHealthy();
  }

  async waitHealthy(options: { timeoutMs?: number } = {}): Promise<void> {
    await waitFor(() => this.healthy(), {
      timeoutMs: options.timeoutMs ?? HEALTHY_TIMEOUT_MS,
      description: `sentinel set ${this.name} healthy (one primary, replicas in sync, sentinels agreeing)`,
    });
  }

  /** One check of {@link waitHealthy}; records the primary when it passes. */
  private async healthy(): Promise<boolean> {
    const reported = await Promise.all(
      this.watchers.map((sentinel) => this.reportedPrimary(sentinel)),
    );
    const port = reported[0]?.port;
    const primary = this.data.find((member) => member.alive && member.server.port === port);
    if (primary === undefined || reported.some((address) => address.port !== port)) return false;
    const replicaPorts = this.data
      .filter((member) => member.alive && member !== primary)
      .map(({ server }) => String(server.port));
    const sentinelsAgree = await Promise.all(
      this.watchers.map(async ({ client }) => {
        const master = fieldMap(await client.call('SENTINEL', 'MASTER', this.name));
        const replicas = ((await client.call('SENTINEL', 'REPLICAS', this.name)) as unknown[]).map(
          fieldMap,
        );
        // Not their `master-link-status`: a sentinel refreshes a replica's INFO every 10 s
        // only; each replica's own INFO below tells the same, at once.
        const upReplicas = replicas.filter((replica) => replica.get('flags') === 'slave');
        return (
          master.get('flags') === 'master' &&
          master.get('num-other-sentinels') === String(this.watchers.length - 1) &&
          replicaPorts.every((replicaPort) =>
            upReplicas.some((replica) => replica.get('port') === replicaPort),
          )
        );
      }),
    );
    if (!sentinelsAgree.every(Boolean)) return false;
    const inSync = await Promise.all(
      this.data
        .filter((member) => member.alive)
        .map(async (member) => {
          const replication = await member.client.info('replication');
          if (member === primary) return replication.includes('role:master');
          return (
            replication.includes('role:slave') &&
            replication.includes(`master_port:${port}`) &&
            replication.includes('master_link_status:up') &&
            replication.includes('master_sync_in_progress:0')
          );
        }),
    );
    if (!inSync.every(Boolean)) return false;
    this.#primary = primary;
    return true;
  }

  async stop(): Promise<void> {
    const members = [...this.watchers, ...this.data];
    for (const { client } of members) client.disconnect();
    await Promise.allSettled(members.map(({ server }) => server.dispose()));
    removeTempDir(this.root);
  }
}

/** Starts a server of the set in its own dir under `root`, with its admin connection. */
async function startMember(
  root: string,
  name: string,
  start: (dir: string) => Promise<RedisServerHandle>,
): Promise<Member> {
  const dir = join(root, name);
  mkdirSync(dir);
  const server = await start(dir);
  try {
    return { server, client: await adminClient(server), alive: true };
  } catch (error) {
    await server.dispose();
    throw error;
  }
}

/**
 * Starts a primary, `replicas` replicas of it and `sentinels` sentinels monitoring it as `name`
 * (quorum: their majority; down after 1 s), and resolves once the set is healthy
 * ({@link LocalSentinelSet.waitHealthy}). Sentinels run as `<binary> <conf> --sentinel`.
 * Whatever fails, nothing started stays running.
 */
export async function startSentinelSet(
  options: SentinelSetOptions = {},
): Promise<LocalSentinelSet> {
  const { replicas = 2, sentinels = 3, name = 'mymaster' } = options;
  const binary = options.binary === undefined ? {} : { binary: options.binary };
  // A replica must not wait 5 s for company before its full sync, after a failover too.
  const args = ['--repl-diskless-sync-delay', '0'];
  const root = makeTempDir('sluice-sentinel-');
  const members: Member[] = [];
  const watchers: Member[] = [];
  try {
    const primary = await startMember(root, 'server-0', (dir) =>
      startRedisServer({ ...binary, dir, args }),
    );
    members.push(primary);
    // In turn: startReplicaServer counts the replicas already attached.
    for (let i = 1; i <= replicas; i++) {
      members.push(
        await startMember(root, `server-${i}`, (dir) =>
          startReplicaServer(primary.client, primary.server.port, { ...binary, dir, args }),
        ),
      );
    }
    const config = [
      `sentinel monitor ${name} ${HOST} ${primary.server.port} ${Math.floor(sentinels / 2) + 1}`,
      `sentinel down-after-milliseconds ${name} ${DOWN_AFTER_MS}`,
      `sentinel failover-timeout ${name} ${FAILOVER_TIMEOUT_MS}`,
      '',
    ].join('\n');
    const started = await Promise.allSettled(
      Array.from({ length: sentinels }, (_, i) =>
        startMember(root, `sentinel-${i}`, (dir) => {
          // A sentinel rewrites its config file, so each has its own, in its dir.
          const file = join(dir, 'sentinel.conf');
          writeFileSync(file, config);
          return startRedisServer({ ...binary, dir, args: [file, '--sentinel'] });
        }),
      ),
    );
    for (const result of started) if (result.status === 'fulfilled') watchers.push(result.value);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  } catch (error) {
    await new SentinelSet(name, members, watchers, root).stop();
    throw error;
  }
  const set = new SentinelSet(name, members, watchers, root);
  try {
    await set.waitHealthy();
  } catch (error) {
    await set.stop();
    throw error;
  }
  return set;
}
