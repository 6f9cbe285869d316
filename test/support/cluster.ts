/**
 * A local Redis Cluster for topology tests: masters with replicas, each a server of
 * scripts/local-redis.ts on a free port in one temp dir, and the faults such tests need: a
 * master killed with SIGKILL, a manual failover, a slot resharded while load runs, a restart.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import {
  makeTempDir,
  removeTempDir,
  startRedisServer,
  waitFor,
  type RedisServerHandle,
} from '../../scripts/local-redis.js';
import { hashSlot } from '../../src/keys/slot.js';
import { adminClient } from './admin.js';

const HOST = '127.0.0.1';
const SLOT_COUNT = 16384;
/**
 * How long a node may not answer before it counts as failing: small, so that a replica takes
 * over from a killed master within a few seconds (a node-timeout, then 0.5–1 s of election).
 */
const NODE_TIMEOUT_MS = 1000;
const HEALTHY_TIMEOUT_MS = 30_000;
/** Keys per MIGRATE while resharding, by default: small batches keep the slot's traffic moving. */
const MIGRATE_BATCH = 100;
const MIGRATE_TIMEOUT_MS = 5000;

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Masters, among which the slots are split evenly (default 3). */
  masters?: number;
  /** Replicas of each master (default 1). */
  replicasPerMaster?: number;
  /** Server binary, e.g. `valkey-server` (default as in startRedisServer). */
  binary?: string;
  /** Extra server arguments for every node, e.g. `['--appendonly', 'yes']`. */
  args?: string[];
}

/** One node of a {@link LocalCluster}. */
export interface ClusterNode {
  readonly host: string;
  readonly port: number;
  /** The node id (CLUSTER MYID); it stays across restarts (kept in nodes.conf). */
  readonly id: string;
  /** The role the node reported at the cluster's last check (every operation ends with one). */
  readonly role: 'master' | 'replica';
  /** For a replica, the id of its master at the last check. */
  readonly masterId: string | undefined;
  /** False once the node was killed, until it is restarted. */
  readonly alive: boolean;
  /** The server process. */
  readonly server: RedisServerHandle;
}

/** A cluster started by {@link startCluster}. */
export interface LocalCluster {
  /** Every node, masters first as created; roles change with failovers. */
  readonly nodes: readonly ClusterNode[];
  /** Addresses of every node, for `new Cluster(seeds)`. */
  readonly seeds: readonly { host: string; port: number }[];
  /** The live master that serves `slotOrKey` (a slot number or a key), as a live node sees it. */
  masterFor(slotOrKey: number | string): Promise<ClusterNode>;
  /** The live nodes that replicate `master`. */
  replicasOf(master: ClusterNode): ClusterNode[];
  /**
   * Kills a master (`master`, or the `i`-th live master in node order) with SIGKILL and resolves
   * with the replica that took over, once the cluster is healthy again without it.
   */
  killMaster(master: number | ClusterNode): Promise<ClusterNode>;
  /**
   * `CLUSTER FAILOVER` on `replica`: resolves once it is a master and the cluster is healthy.
   */
  failover(replica: ClusterNode): Promise<void>;
  /**
   * Moves `slot` to the master `to`, as `redis-cli --cluster reshard` does: IMPORTING on `to`,
   * MIGRATING on the owner, MIGRATE of its keys in batches, then SETSLOT NODE on every master.
   * Clients keep working meanwhile (ASK redirections, TRYAGAIN for multi-key commands).
   * `keysPerMigrate` (default 100) sets the batch: smaller batches keep the slot migrating for
   * longer, for load to meet it.
   */
  reshard(slot: number, to: ClusterNode, options?: { keysPerMigrate?: number }): Promise<void>;
  /** Starts a node again (stopping it first if it runs) and waits until the cluster is healthy. */
  restart(node: ClusterNode): Promise<void>;
  /**
   * Resolves once every live node reports `cluster_state:ok` with every slot served, all of them
   * agree on the roles and slots of the live nodes, and every live replica is in sync.
   */
  waitHealthy(options?: { timeoutMs?: number }): Promise<void>;
  /** Stops every node and removes their files. */
  stop(): Promise<void>;
}

/** One line of CLUSTER NODES. */
interface NodeLine {
  readonly id: string;
  readonly flags: readonly string[];
  readonly masterId: string | undefined;
  readonly connected: boolean;
  /** The slot ranges it serves, as listed (`0-5460`, `7`), without migration markers. */
  readonly slots: readonly string[];
}

function parseNodes(reply: string): NodeLine[] {
  return reply
    .trim()
    .split('\n')
    .map((line) => {
      const [id = '', , flags = '', master = '-', , , , link = '', ...slots] = line
        .trim()
        .split(' ');
      return {
        id,
        flags: flags.split(','),
        masterId: master === '-' ? undefined : master,
        connected: link === 'connected',
        slots: slots.filter((range) => !range.startsWith('[')),
      };
    });
}

function servesSlot(line: NodeLine, slot: number): boolean {
  return line.slots.some((range) => {
    const [first = '', last = first] = range.split('-');
    return slot >= Number(first) && slot <= Number(last);
  });
}

class Node implements ClusterNode {
  readonly host = HOST;
  role: 'master' | 'replica' = 'master';
  masterId: string | undefined;
  alive = true;

  constructor(
    readonly id: string,
    readonly server: RedisServerHandle,
    /** An admin connection; it reconnects by itself after a restart. */
    readonly client: Redis,
  ) {}

  get port(): number {
    return this.server.port;
  }

  async nodes(): Promise<NodeLine[]> {
    return parseNodes(String(await this.client.call('CLUSTER', 'NODES')));
  }
}

class Cluster implements LocalCluster {
  constructor(
    readonly nodes: readonly Node[],
    private readonly root: string,
  ) {}

  get seeds(): { host: string; port: number }[] {
    return this.nodes.map(({ host, port }) => ({ host, port }));
  }

  private live(): Node[] {
    return this.nodes.filter((node) => node.alive);
  }

  private byId(id: string): Node {
    const node = this.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new Error(`no node ${id} in this cluster`);
    return node;
  }

  async masterFor(slotOrKey: number | string): Promise<ClusterNode> {
    const slot = typeof slotOrKey === 'number' ? slotOrKey : hashSlot(slotOrKey);
    const [observer] = this.live();
    if (observer === undefined) throw new Error('no live node');
    const owner = (await observer.nodes()).find(
      (line) => line.flags.includes('master') && servesSlot(line, slot),
    );
    if (owner === undefined) throw new Error(`no master serves slot ${slot}`);
    return this.byId(owner.id);
  }

  replicasOf(master: ClusterNode): ClusterNode[] {
    return this.live().filter((node) => node.role === 'replica' && node.masterId === master.id);
  }

  async killMaster(target: number | ClusterNode): Promise<ClusterNode> {
    const master =
      typeof target === 'number'
        ? this.live().filter((node) => node.role === 'master')[target]
        : this.byId(target.id);
    if (master === undefined || master.role !== 'master') {
      throw new Error(`no live master ${String(typeof target === 'number' ? target : target.id)}`);
    }
    const replicas = this.replicasOf(master);
    await master.server.kill('SIGKILL');
    master.alive = false;
    await this.waitHealthy();
    const promoted = replicas.find((node) => node.role === 'master');
    if (promoted === undefined) throw new Error(`no replica of ${master.id} took over`);
    return promoted;
  }

  async failover(replica: ClusterNode): Promise<void> {
    const node = this.byId(replica.id);
    await node.client.call('CLUSTER', 'FAILOVER');
    await waitFor(
      async () =>
        (await node.nodes())
          .find((line) => line.flags.includes('myself'))
          ?.flags.includes('master'),
      { timeoutMs: HEALTHY_TIMEOUT_MS, description: `node ${node.port} turning master` },
    );
    await this.waitHealthy();
  }

  async reshard(
    slot: number,
    to: ClusterNode,
    options: { keysPerMigrate?: number } = {},
  ): Promise<void> {
    const source = this.byId((await this.masterFor(slot)).id);
    const target = this.byId(to.id);
    if (source === target) return;
    await target.client.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
    await source.client.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
    for (;;) {
      const keys = (await source.client.call(
        'CLUSTER',
        'GETKEYSINSLOT',
        slot,
        options.keysPerMigrate ?? MIGRATE_BATCH,
      )) as string[];
      if (keys.length === 0) break;
      await source.client.call(
        'MIGRATE',
        target.host,
        target.port,
        '',
        0,
        MIGRATE_TIMEOUT_MS,
        'KEYS',
        ...keys,
      );
    }
    // The target first, so that the slot never lacks an owner that accepts its commands.
    const masters = this.live().filter((node) => node.role === 'master');
    const order = [target, source, ...masters.filter((node) => node !== target && node !== source)];
    for (const node of order) await node.client.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
    await this.waitHealthy();
  }

  async restart(node: ClusterNode): Promise<void> {
    const restarted = this.byId(node.id);
    await restarted.server.restart();
    restarted.alive = true;
    await this.waitHealthy();
  }

  async waitHealthy(options: { timeoutMs?: number } = {}): Promise<void> {
    await waitFor(() => this.healthy(), {
      timeoutMs: options.timeoutMs ?? HEALTHY_TIMEOUT_MS,
      description:
        'cluster healthy (state ok on every live node, views agreeing, replicas in sync)',
    });
  }

  /** One check of {@link waitHealthy}; records each node's role when it passes. */
  private async healthy(): Promise<boolean> {
    const live = this.live();
    const liveIds = new Set(live.map((node) => node.id));
    const views = await Promise.all(
      live.map(async (node) => {
        const [info, replication, lines] = await Promise.all([
          node.client.call('CLUSTER', 'INFO').then(String),
          node.client.info('replication'),
          node.nodes(),
        ]);
        const ok =
          info.includes('cluster_state:ok') &&
          info.includes(`cluster_slots_ok:${SLOT_COUNT}`) &&
          (!replication.includes('role:slave') ||
            (replication.includes('master_link_status:up') &&
              replication.includes('master_sync_in_progress:0')));
        return { ok, lines: lines.filter((line) => liveIds.has(line.id)) };
      }),
    );
    if (!views.every((view) => view.ok)) return false;
    // Every live node must see every other one connected and not failing, and all must agree
    // on their roles and slots: otherwise a client's CLUSTER SLOTS depends on the node it asks.
    const linked = views.every(
      (view) =>
        view.lines.length === live.length &&
        view.lines.every(
          (line) =>
            (line.flags.includes('myself') || line.connected) &&
            !line.flags.some((flag) => flag.startsWith('fail')),
        ),
    );
    const summaries = views.map((view) =>
      view.lines
        .map((line) => {
          const role = line.flags.includes('master') ? 'master' : line.masterId;
          return `${line.id} ${role ?? '-'} ${line.slots.join(',')}`;
        })
        .sort()
        .join('\n'),
    );
    if (!linked || summaries.some((summary) => summary !== summaries[0])) return false;
    for (const line of views[0]?.lines ?? []) {
      const node = this.byId(line.id);
      node.role = line.flags.includes('master') ? 'master' : 'replica';
      node.masterId = line.masterId;
    }
    return true;
  }

  async stop(): Promise<void> {
    for (const node of this.nodes) node.client.disconnect();
    await Promise.allSettled(this.nodes.map((node) => node.server.dispose()));
    removeTempDir(this.root);
  }
}

/**
 * Makes one cluster of `nodes`: the first `masterCount` share the slots, each of the others
 * replicates one of them in turn.
 */
async function formCluster(nodes: readonly Node[], masterCount: number): Promise<void> {
  const masters = nodes.slice(0, masterCount);
  await Promise.all(
    masters.map(async (node, i) => {
      // Distinct config epochs up front, as redis-cli does: gossip would only part equal ones
      // one collision at a time.
      await node.client.call('CLUSTER', 'SET-CONFIG-EPOCH', i + 1);
      const first = Math.floor((SLOT_COUNT * i) / masterCount);
      const last = Math.floor((SLOT_COUNT * (i + 1)) / masterCount) - 1;
      await node.client.call('CLUSTER', 'ADDSLOTSRANGE', first, last);
    }),
  );
  const [introducer, ...others] = nodes;
  if (introducer === undefined) throw new Error('a cluster needs a node');
  await Promise.all(
    others.map((node) => introducer.client.call('CLUSTER', 'MEET', HOST, node.port)),
  );
  // REPLICATE names a master by id: every node must know every other one first.
  await waitFor(
    async () =>
      (await Promise.all(nodes.map((node) => node.nodes()))).every(
        (lines) =>
          lines.length === nodes.length && lines.every((line) => !line.flags.includes('handshake')),
      ),
    { timeoutMs: HEALTHY_TIMEOUT_MS, description: 'every cluster node knowing every other one' },
  );
  await Promise.all(
    nodes
      .slice(masterCount)
      .map((node, i) =>
        node.client.call('CLUSTER', 'REPLICATE', (masters[i % masterCount] as Node).id),
      ),
  );
}

/**
 * Starts a Redis Cluster of `masters` masters with `replicasPerMaster` replicas each (every node
 * a `cluster-enabled` server on 127.0.0.1, `cluster-node-timeout` 1 s), joined with CLUSTER
 * MEET, the slots split evenly among the masters with ADDSLOTSRANGE, and resolves once it is
 * healthy ({@link LocalCluster.waitHealthy}). Whatever fails, nothing started stays running.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<LocalCluster> {
  const { masters = 3, replicasPerMaster = 1 } = options;
  const root = makeTempDir('sluice-cluster-');
  const started = await Promise.allSettled(
    Array.from({ length: masters * (1 + replicasPerMaster) }, async (_, i) => {
      const dir = join(root, `node-${i}`);
      mkdirSync(dir);
      const server = await startRedisServer({
        ...(options.binary === undefined ? {} : { binary: options.binary }),
        dir,
        args: [
          ...['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
          ...['--cluster-node-timeout', String(NODE_TIMEOUT_MS)],
          // A node learns its own address from the peers it meets: the lone node of a 1-master
          // cluster would report an empty one in CLUSTER SLOTS, which a client cannot dial.
          ...['--cluster-announce-ip', HOST],
          // A replica must not wait 5 s for company before its full sync.
          ...['--repl-diskless-sync-delay', '0'],
          ...(options.args ?? []),
        ],
      });
      const client = await adminClient(server).catch(async (error: unknown) => {
        await server.dispose();
        throw error;
      });
      return new Node(String(await client.call('CLUSTER', 'MYID')), server, client);
    }),
  );
  const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const cluster = new Cluster(nodes, root);
  try {
    const failed = started.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    await formCluster(nodes, masters);
    await cluster.waitHealthy();
    return cluster;
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}
