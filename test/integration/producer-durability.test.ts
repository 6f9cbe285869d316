import { describe, expect, it } from 'vitest';
import {
  ConfirmTimeoutError,
  InvalidArgumentError,
  Sluice,
  UnsupportedError,
} from '../../src/index.js';
import { queueMessageIds } from '../support/faults.js';
import { redisServer, redisUrl, useNamespace } from '../support/index.js';
import { useSluice } from '../support/sluice.js';

describe('confirm levels on a server without replicas or AOF', () => {
  it('refuses fsynced at connect: no WAITAOF on Redis 7.0, no appendonly on Valkey', async () => {
    const { namespace } = useNamespace();
    const error: unknown = await Sluice.connect({
      url: redisUrl(),
      namespace,
      durability: 'fsynced',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedError);
    const missing = redisServer().kind === 'redis' ? /WAITAOF/ : /appendonly/;
    expect((error as Error).message).toMatch(missing);
  });

  it('refuses a publish asking for fsynced before sending anything', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('q');
    await expect(sluice.publish('', 'q', 1, { durability: 'fsynced' })).rejects.toBeInstanceOf(
      UnsupportedError,
    );
    expect(await queueMessageIds(redis, namespace, 'q')).toEqual([]);
  });

  it('rejects a replicated publish with no replica after durabilityTimeoutMs, as applied', async () => {
    const { sluice, redis, namespace } = await useSluice({
      durability: 'replicated',
      durabilityTimeoutMs: 200,
    });
    await sluice.declareQueue('q');
    const startedAt = Date.now();
    const error: unknown = await sluice
      .publish('', 'q', 1, { messageId: 'm' })
      .catch((e: unknown) => e);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(190);
    expect(error).toBeInstanceOf(ConfirmTimeoutError);
    expect(error).toMatchObject({ messageId: 'm', applied: true, mayBeApplied: true });
    expect((error as Error).message).toMatch(/0 of 1 replicas/);
    // Written, not replicated: a written-level publish of the same id is its duplicate.
    expect(
      await sluice.publish('', 'q', 1, { messageId: 'm', durability: 'written' }),
    ).toMatchObject({ duplicate: true });
    expect(await queueMessageIds(redis, namespace, 'q')).toEqual(['m']);
  });

  it('refuses bad durability options at connect and per publish', async () => {
    const { sluice, namespace } = await useSluice();
    await sluice.declareQueue('q');
    for (const options of [
      { durability: 'durable' },
      { replicas: 0 },
      { confirmTimeoutMs: 50 },
      { durabilityTimeoutMs: 0 },
      { confirmTimeoutMs: 1000, durabilityTimeoutMs: 1000 },
    ]) {
      await expect(
        Sluice.connect({ url: redisUrl(), namespace, ...(options as object) }),
      ).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    await expect(
      sluice.publish('', 'q', 1, { durability: 'synced' } as object),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
