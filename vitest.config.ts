/**
 * Test projects: `unit` needs no Redis; the integration projects run the same files against a
 * real server each (DESIGN.md section 10). With REDIS_URL set there is one project,
 * `integration`, against that URL; otherwise `integration:redis` starts `redis-server`,
 * `integration:redis-cluster-node` a `redis-server --cluster-enabled yes` that owns every slot,
 * and `integration:valkey` starts `valkey-server` (required under CI, skipped elsewhere if
 * missing). Every integration test asserts that each script call keeps its keys in one slot.
 * `browser` drives the dashboard in headless Chromium, once, against redis-server (or REDIS_URL):
 * what it checks is the dashboard, which the integration projects cover on every server kind.
 * The `integration:topologies:*` projects run test/topologies, whose tests start servers of their
 * own (a Cluster, a Sentinel set, TLS and ACL servers) with the project's binary.
 */
import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';
import { defaultRedisServerBinary, findOnPath } from './scripts/local-redis.js';

const INTEGRATION_TIMEOUT_MS = 60_000;

function integrationProject(
  name: string,
  binary: string,
  clusterNode = false,
): TestProjectInlineConfiguration {
  return {
    test: {
      name,
      include: ['test/integration/**/*.test.ts', 'test/fault/**/*.test.ts'],
      globalSetup: ['test/support/global-setup.ts'],
      setupFiles: ['test/support/slot-assertion.ts'],
      provide: { redisServerBinary: binary, redisClusterNode: clusterNode },
      testTimeout: INTEGRATION_TIMEOUT_MS,
      hookTimeout: INTEGRATION_TIMEOUT_MS,
    },
  };
}

/** Tests that start their own topology of `binary` servers: no shared Redis, no global setup. */
function topologiesProject(name: string, binary: string): TestProjectInlineConfiguration {
  return {
    test: {
      name,
      include: ['test/topologies/**/*.test.ts'],
      provide: { redisServerBinary: binary },
      testTimeout: INTEGRATION_TIMEOUT_MS,
      hookTimeout: INTEGRATION_TIMEOUT_MS,
    },
  };
}

function integrationProjects(): TestProjectInlineConfiguration[] {
  if (process.env.REDIS_URL) {
    return [
      integrationProject('integration', defaultRedisServerBinary()),
      topologiesProject('integration:topologies', defaultRedisServerBinary()),
    ];
  }
  const projects = [
    integrationProject('integration:redis', 'redis-server'),
    // A one-node Redis Cluster: every script and command must keep its keys in one slot.
    integrationProject('integration:redis-cluster-node', 'redis-server', true),
    topologiesProject('integration:topologies:redis', 'redis-server'),
  ];
  if (findOnPath('valkey-server') !== undefined) {
    projects.push(
      integrationProject('integration:valkey', 'valkey-server'),
      topologiesProject('integration:topologies:valkey', 'valkey-server'),
    );
  } else if (process.env.CI) {
    throw new Error(
      'CI is set but valkey-server is not on PATH: integration tests must run on Valkey as well. ' +
        'Install it (Debian bookworm: apt-get install -t bookworm-backports valkey-server) or set REDIS_URL.',
    );
  }
  return projects;
}

/** The dashboard in Chromium: one server is enough, the CLI and the API under it are tested on all. */
function browserProject(): TestProjectInlineConfiguration {
  return {
    test: {
      name: 'browser',
      include: ['test/browser/**/*.test.ts'],
      globalSetup: ['test/support/global-setup.ts'],
      provide: { redisServerBinary: defaultRedisServerBinary(), redisClusterNode: false },
      testTimeout: INTEGRATION_TIMEOUT_MS,
      hookTimeout: INTEGRATION_TIMEOUT_MS,
    },
  };
}

export default defineConfig({
  test: {
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results/vitest.json' },
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      ...integrationProjects(),
      browserProject(),
    ],
  },
});
