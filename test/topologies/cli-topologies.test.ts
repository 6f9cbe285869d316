/**
 * The `sluice` command and the dashboard where a URL does not say where Redis is (real
 * processes): on a Redis Cluster of 3 masters, a queue whose partitions live on every master is
 * read, peeked and purged whole, not on the one node a URL would reach; behind Sentinel, the
 * command finds the primary through the Sentinels, before and after a failover.
 */
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { Sluice } from '../../src/index.js';
import { Keyspace } from '../../src/keys/index.js';
import { CLI, run, startDashboardProcessWith, type CliRun } from '../support/cli.js';
import { startCluster } from '../support/cluster.js';
import { startSentinelSet } from '../support/sentinel.js';

const PARTITIONS = 6;
const MESSAGES = 60;

function shown(result: CliRun): string {
  return `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
}

describe('sluice command line on a Redis Cluster', () => {
  it('reads, peeks and purges a queue over every master, and the dashboard shows it', async () => {
    const cluster = await startCluster({
      masters: 3,
      replicasPerMaster: 0,
      binary: inject('redisServerBinary'),
    });
    onTestFinished(() => cluster.stop());
    const namespace = 'cli-cluster';
    const sluice = await Sluice.connect({ cluster: cluster.seeds, namespace });
    onTestFinished(() => sluice.close());
    await sluice.declareQueue('jobs', { partitions: PARTITIONS });
    await sluice.publishBatch(
      Array.from({ length: MESSAGES }, (_, i) => ({
        exchange: '',
        routingKey: 'jobs',
        body: { i },
        options: { partitionKey: `key-${i}` },
      })),
    );
    const keys = new Keyspace(namespace);
    const masters = await Promise.all(
      Array.from({ length: PARTITIONS }, (_, p) => cluster.masterFor(keys.queue('jobs', p).stream)),
    );
    // The queue is on every master: a command that read one node would see part of it.
    expect(new Set(masters.map((master) => master.id)).size).toBe(3);

    const seeds = cluster.seeds.map(({ host, port }) => `${host}:${port}`).join(',');
    const sluiceCli = (...args: string[]): Promise<CliRun> =>
      run(process.execPath, [CLI, '--cluster', seeds, '--namespace', namespace, ...args]);

    const inspected = await sluiceCli('queue', 'inspect', 'jobs', '--json');
    expect(inspected.code, shown(inspected)).toBe(0);
    const info = JSON.parse(inspected.stdout) as {
      messages: number;
      partitions: { messages: number }[];
    };
    expect(info.messages).toBe(MESSAGES);
    expect(info.partitions).toHaveLength(PARTITIONS);
    expect(info.partitions.every((partition) => partition.messages > 0)).toBe(true);

    const queues = await sluiceCli('queues', '--json');
    expect(queues.code, shown(queues)).toBe(0);
    expect(JSON.parse(queues.stdout)).toMatchObject([{ name: 'jobs', ready: MESSAGES }]);

    const peeked = await sluiceCli('peek', 'jobs', '--count', String(MESSAGES), '--json');
    expect(peeked.code, shown(peeked)).toBe(0);
    const bodies = peeked.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { body: { i: number } }).body.i);
    expect(new Set(bodies).size).toBe(MESSAGES);

    const dashboard = await startDashboardProcessWith(
      ['--cluster', seeds, '--namespace', namespace],
      ['--read-only'],
    );
    const overview = (await (await fetch(new URL('api/overview', dashboard.url))).json()) as {
      queues: { name: string; ready: number }[];
    };
    expect(overview.queues).toMatchObject([{ name: 'jobs', ready: MESSAGES }]);

    const purged = await sluiceCli('queue', 'purge', 'jobs', '--yes');
    expect(purged.code, shown(purged)).toBe(0);
    expect(purged.stdout).toContain(`purged ${MESSAGES}`);
    expect((await sluice.inspectQueue('jobs')).partitions.map((p) => p.messages)).toEqual(
      new Array<number>(PARTITIONS).fill(0),
    );

    const both = await sluiceCli('--url', 'redis://127.0.0.1:6379', 'queues');
    expect(both.code, shown(both)).toBe(2);
    expect(both.stderr).toContain('give one of --url, --cluster, --sentinels');
  });
});

describe('sluice command line behind Sentinel', () => {
  it('finds the primary through the Sentinels, and the new one after a failover', async () => {
    const set = await startSentinelSet({ binary: inject('redisServerBinary') });
    onTestFinished(() => set.stop());
    const namespace = 'cli-sentinel';
    const sluice = await Sluice.connect({ sentinels: set.sentinels, name: set.name, namespace });
    onTestFinished(() => sluice.close());
    await sluice.declareQueue('jobs');
    for (let i = 0; i < 5; i++) await sluice.publish('', 'jobs', { i });
    const sentinels = set.sentinels.map(({ host, port }) => `${host}:${port}`).join(',');
    const ready = async (): Promise<number> => {
      const result = await run(
        process.execPath,
        [CLI, '--namespace', namespace, 'queue', 'inspect', 'jobs', '--json'],
        { env: { SLUICE_SENTINELS: sentinels, SLUICE_SENTINEL_NAME: set.name } },
      );
      expect(result.code, shown(result)).toBe(0);
      return (JSON.parse(result.stdout) as { messages: number }).messages;
    };
    expect(await ready()).toBe(5);
    const before = await set.currentPrimary();
    await set.failover();
    expect(await set.currentPrimary()).not.toEqual(before);
    expect(await ready()).toBe(5);

    const half = await run(process.execPath, [CLI, '--sentinels', sentinels, 'queues']);
    expect(half.code, shown(half)).toBe(2);
    expect(half.stderr).toContain('--sentinels and --sentinel-name go together');
  });
});
