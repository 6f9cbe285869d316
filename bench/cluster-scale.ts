/**
 * `npm run bench:cluster`: sluice's publish and publish + consume throughput on a Redis Cluster
 * of 1, 2 and 3 masters (issue E, scale-out). Not a test: it prints a markdown table, writes it
 * as JSON to `bench-results/cluster-scale.json`, and exits 0.
 *
 * The clusters are started by the Cluster test kit (test/support/cluster.ts) on free ports, one
 * per master count, without replicas (the replicated row of `npm run bench` prices WAIT; here
 * only the spread of the work over masters varies), all of them for the whole run. Every run is
 * a process of its own (bench/cluster-worker.ts) that warms up first; the rounds are
 * interleaved, each round running every master count once, in an order that rotates from round
 * to round. Every run uses the same namespace (its keys deleted after it), so that each master
 * count spreads the queue's partitions the same way in every round. `BENCH_MESSAGES` sets N
 * (default 50,000), `BENCH_ROUNDS` the measured rounds (default 3).
 *
 * Everything runs on this machine: a client that cannot keep more masters busy, or fewer cores
 * than servers, caps the scaling; the header gives the core count.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { Keyspace } from '../src/keys/index.js';
import { startCluster, type LocalCluster } from '../test/support/cluster.js';
import type { ClusterMeasurement, ClusterTask } from './cluster-worker.js';
import { integer, median } from './report.js';
import {
  QUEUE,
  ROOT,
  deleteClusterNamespace,
  messagesFromEnv,
  roundsFromEnv,
  compiledWorker,
  buildWorkers,
  runWorkerProcess,
} from './support.js';

const WORKER = compiledWorker('cluster-worker');
/** Where the results go as JSON (`bench-results/` is not committed). */
const RESULTS_FILE = join(ROOT, 'bench-results', 'cluster-scale.json');
/** The longest a worker may take. */
const WORKER_TIMEOUT_MS = 15 * 60_000;
/** The master counts measured; the first is the baseline of the ratios. */
const MASTER_COUNTS = [1, 2, 3] as const;
/** Partitions of the queue: every master of 3 serves several. */
const PARTITIONS = 12;

/** One measured run. */
interface ClusterRun {
  readonly round: number;
  readonly masters: number;
  readonly measurement: ClusterMeasurement;
}

/** How many of the queue's partitions each master of `cluster` serves, in master order. */
async function partitionsPerMaster(cluster: LocalCluster, namespace: string): Promise<number[]> {
  const keys = new Keyspace(namespace);
  const owners = await Promise.all(
    Array.from({ length: PARTITIONS }, (_, p) => cluster.masterFor(keys.queue(QUEUE, p).stream)),
  );
  const masters = cluster.nodes.filter((node) => node.role === 'master');
  return masters.map((master) => owners.filter((owner) => owner.id === master.id).length);
}

async function serverVersion(cluster: LocalCluster): Promise<string> {
  const [node] = cluster.nodes;
  if (node === undefined) throw new Error('a cluster without nodes');
  const client = new Redis(node.port, node.host);
  try {
    const info = await client.info('server');
    const valkey = /^valkey_version:(\S+)/mu.exec(info)?.[1];
    return valkey === undefined
      ? `redis ${/^redis_version:(\S+)/mu.exec(info)?.[1] ?? 'unknown'}`
      : `valkey ${valkey}`;
  } finally {
    await client.quit();
  }
}

function formatTable(
  runs: readonly ClusterRun[],
  spreads: ReadonlyMap<number, readonly number[]>,
): { table: string; rows: Record<string, number | string>[] } {
  const medians = new Map(
    MASTER_COUNTS.map((masters) => {
      const of = runs.filter((run) => run.masters === masters).map((run) => run.measurement);
      return [
        masters,
        {
          publish: median(of.map((m) => m.publishPerSecond)),
          endToEnd: median(of.map((m) => m.endToEndPerSecond)),
        },
      ];
    }),
  );
  const base = medians.get(MASTER_COUNTS[0]);
  if (base === undefined) throw new Error('no run of the baseline');
  const rows = MASTER_COUNTS.map((masters) => {
    const { publish, endToEnd } = medians.get(masters) ?? base;
    return {
      masters,
      partitionsPerMaster: (spreads.get(masters) ?? []).join(' / '),
      publishPerSecond: Math.round(publish),
      publishRatio: Number((publish / base.publish).toFixed(2)),
      endToEndPerSecond: Math.round(endToEnd),
      endToEndRatio: Number((endToEnd / base.endToEnd).toFixed(2)),
    };
  });
  const lines = [
    '| masters | partitions per master | publish msg/s | ratio to 1 master | publish + consume msg/s | ratio to 1 master |',
    '|---:|---|---:|---:|---:|---:|',
    ...rows.map(
      (row) =>
        `| ${row.masters} | ${row.partitionsPerMaster} | ${integer.format(row.publishPerSecond)} | ` +
        `${row.publishRatio.toFixed(2)} | ${integer.format(row.endToEndPerSecond)} | ` +
        `${row.endToEndRatio.toFixed(2)} |`,
    ),
  ];
  return { table: lines.join('\n'), rows };
}

async function main(): Promise<void> {
  buildWorkers();
  const startedAt = new Date();
  const messages = messagesFromEnv();
  const rounds = roundsFromEnv();
  const namespace = `sluice-cluster-bench-${randomBytes(4).toString('hex')}`;
  const loadAtStart = loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
  const clusters = new Map<number, LocalCluster>();
  try {
    for (const masters of MASTER_COUNTS) {
      clusters.set(masters, await startCluster({ masters, replicasPerMaster: 0 }));
    }
    const spreads = new Map<number, number[]>();
    for (const [masters, cluster] of clusters) {
      spreads.set(masters, await partitionsPerMaster(cluster, namespace));
    }
    const first = clusters.get(MASTER_COUNTS[0]) as LocalCluster;
    const server = await serverVersion(first);
    const cpu = cpus();
    const header = [
      `server: ${server}, Clusters of ${MASTER_COUNTS.join(', ')} masters without replicas ` +
        'started by the test kit on this machine',
      `client: Node ${process.version}, ${cpu.length} CPUs (${cpu[0]?.model.trim() ?? 'unknown'}), ` +
        `load average ${loadAtStart} at the start`,
      `N = ${integer.format(messages)} per run, one queue of ${PARTITIONS} partitions, 2 ` +
        `unordered consumers, 256 publishes in flight; ${rounds} interleaved round(s), medians`,
    ];
    console.log(header.join('\n'));
    const runs: ClusterRun[] = [];
    for (let round = 0; round < rounds; round++) {
      for (let offset = 0; offset < MASTER_COUNTS.length; offset++) {
        const masters = MASTER_COUNTS[(round + offset) % MASTER_COUNTS.length] as number;
        const cluster = clusters.get(masters) as LocalCluster;
        const task: ClusterTask = {
          seeds: cluster.seeds,
          prefix: namespace,
          partitions: PARTITIONS,
          messages,
        };
        try {
          const measurement = await runWorkerProcess<ClusterMeasurement>(WORKER, task, {
            env: process.env,
            timeoutMs: WORKER_TIMEOUT_MS,
            what: `${masters} master(s)`,
          });
          runs.push({ round, masters, measurement });
          console.error(
            `round ${round + 1}, ${masters} master(s): publish ` +
              `${integer.format(measurement.publishPerSecond)} msg/s, publish + consume ` +
              `${integer.format(measurement.endToEndPerSecond)} msg/s`,
          );
        } finally {
          await deleteClusterNamespace(cluster.seeds, namespace);
        }
      }
    }
    const { table, rows } = formatTable(runs, spreads);
    console.log('');
    console.log(table);
    const loadAtEnd = loadavg()
      .map((value) => value.toFixed(2))
      .join(' ');
    console.log('');
    console.log(`load average ${loadAtEnd} at the end; JSON in ${RESULTS_FILE}`);
    mkdirSync(dirname(RESULTS_FILE), { recursive: true });
    const results = {
      startedAt: startedAt.toISOString(),
      server,
      machine: { cpus: cpu.length, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAtEnd },
      settings: { messages, rounds, partitions: PARTITIONS, masterCounts: MASTER_COUNTS },
      rows,
      runs,
    };
    writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    await Promise.allSettled([...clusters.values()].map((cluster) => cluster.stop()));
  }
}

try {
  await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
}
