import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../scripts/local-redis.js';
import { hashSlot } from '../../src/keys/slot.js';
import { startCluster, type ClusterNode, type LocalCluster } from '../support/cluster.js';

/** A killed master's replica takes over within a node-timeout (1 s) and an election. */
const TAKEOVER_MS = 10_000;

describe('a local Redis Cluster', () => {
  let cluster: LocalCluster | undefined;
  let client: Cluster | undefined;
  let startMs = 0;

  beforeAll(async () => {
    const startedAt = Date.now();
    cluster = await startCluster({
      masters: 3,
      replicasPerMaster: 1,
      binary: inject('redisServerBinary'),
    });
    client = new Cluster([...cluster.seeds], { clusterRetryStrategy: () => 100 });
    client.on('error', () => undefined);
    startMs = Date.now() - startedAt;
  });

  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  function started(): { cluster: LocalCluster; client: Cluster } {
    if (cluster === undefined || client === undefined) throw new Error('cluster not started');
    return { cluster, client };
  }

  /** Resolves once `replica` holds `key` with `value` (a replica answers reads after READONLY). */
  async function replicated(replica: ClusterNode, key: string, value: string): Promise<void> {
    const direct = new Redis(replica.port, replica.host, { lazyConnect: true });
    direct.on('error', () => undefined);
    try {
      await direct.connect();
      await direct.call('READONLY');
      await waitFor(async () => (await direct.get(key)) === value, {
        description: `${key} on replica ${replica.port}`,
      });
    } finally {
      direct.disconnect();
    }
  }

  /** Writes `key` through the client; resolves once its master's replica has it too. */
  async function writeReplicated(
    key: string,
    value: string,
  ): Promise<{ master: ClusterNode; replica: ClusterNode }> {
    const { cluster, client } = started();
    await client.set(key, value);
    const master = await cluster.masterFor(key);
    const [replica] = cluster.replicasOf(master);
    if (replica === undefined) throw new Error('the master has no replica');
    await replicated(replica, key, value);
    return { master, replica };
  }

  it('splits the slots among 3 masters, each with a replica, and serves a Cluster client', async ({
    annotate,
  }) => {
    const { cluster, client } = started();
    await annotate(`6 nodes started and healthy in ${startMs} ms`);
    expect(cluster.nodes.filter((node) => node.role === 'master')).toHaveLength(3);
    for (const master of cluster.nodes.filter((node) => node.role === 'master')) {
      expect(cluster.replicasOf(master)).toHaveLength(1);
    }
    await client.set('kit:{a}', 'one');
    expect(await client.get('kit:{a}')).toBe('one');
    expect((await cluster.masterFor('kit:{a}')).id).toBe(
      (await cluster.masterFor(hashSlot('kit:{a}'))).id,
    );
  });

  it('keeps a written key readable after a manual failover of its master', async () => {
    const { cluster, client } = started();
    const { master, replica } = await writeReplicated('kit:{failover}', 'kept');
    await cluster.failover(replica);
    expect((await cluster.masterFor('kit:{failover}')).id).toBe(replica.id);
    expect(cluster.nodes.find((node) => node.id === master.id)?.role).toBe('replica');
    expect(await waitFor(() => client.get('kit:{failover}'))).toBe('kept');
  });

  it('fails a SIGKILLed master over to its replica, which serves the key; a restart rejoins it as a replica', async ({
    annotate,
  }) => {
    const { cluster, client } = started();
    const { master, replica } = await writeReplicated('kit:{crash}', 'survives');
    const killedAt = Date.now();
    const promoted = await cluster.killMaster(master);
    const takeoverMs = Date.now() - killedAt;
    await annotate(`a replica took over from the SIGKILLed master in ${takeoverMs} ms`);
    expect(promoted.id).toBe(replica.id);
    expect(takeoverMs).toBeLessThan(TAKEOVER_MS);
    expect(await waitFor(() => client.get('kit:{crash}'), { timeoutMs: TAKEOVER_MS })).toBe(
      'survives',
    );
    await cluster.restart(master);
    expect(cluster.nodes.find((node) => node.id === master.id)).toMatchObject({
      alive: true,
      role: 'replica',
      masterId: promoted.id,
    });
  });

  it('reshards a slot with its keys to another master while a client keeps writing to it', async () => {
    const { cluster, client } = started();
    const slot = hashSlot('{moving}');
    for (let i = 0; i < 250; i++) await client.set(`kit:{moving}:${i}`, String(i));
    const source = await cluster.masterFor(slot);
    const target = cluster.nodes.find((node) => node.role === 'master' && node.id !== source.id);
    if (target === undefined) throw new Error('no other master');
    let writes = 0;
    let writing = true;
    const load = (async () => {
      while (writing) await client.set(`kit:{moving}:load`, String(++writes));
    })();
    try {
      await cluster.reshard(slot, target);
    } finally {
      writing = false;
      await load;
    }
    expect((await cluster.masterFor(slot)).id).toBe(target.id);
    expect(writes).toBeGreaterThan(0);
    const values = await Promise.all(
      Array.from({ length: 250 }, (_, i) => client.get(`kit:{moving}:${i}`)),
    );
    expect(values).toEqual(Array.from({ length: 250 }, (_, i) => String(i)));
    expect(await client.get('kit:{moving}:load')).toBe(String(writes));
  });
});
