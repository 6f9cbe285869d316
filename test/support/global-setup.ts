/**
 * Global setup of the integration projects: finds (or starts) the project's Redis once per run
 * and provides its URL and kind to the tests (`inject('redisUrl')`, `inject('redisServer')`).
 */
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';
import { findRedis } from '../../scripts/local-redis.js';
import { readServerInfo, type ServerInfo } from './context.js';

/** Starts the project's Redis; the returned teardown stops what was started. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { redisServerBinary: binary, redisClusterNode: clusterNode } = project.getProvidedContext();
  const found = await findRedis({ preferLocal6379: false, binary, clusterNode });
  let info: ServerInfo;
  try {
    info = await probe(found.url);
  } catch (error) {
    await found.stop();
    throw new Error(`Redis at ${found.url} (${found.source}) does not answer: ${String(error)}`, {
      cause: error,
    });
  }
  project.provide('redisUrl', found.url);
  project.provide('redisServer', { ...info, source: found.source, binary });
  return () => found.stop();
}

async function probe(url: string): Promise<ServerInfo> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  try {
    await redis.connect();
    return await readServerInfo(redis);
  } finally {
    redis.disconnect();
  }
}
