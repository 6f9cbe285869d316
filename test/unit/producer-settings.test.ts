import { describe, expect, it } from 'vitest';
import { parseServerInfo, type Connection } from '../../src/connection/connection.js';
import { InvalidArgumentError, UnsupportedError } from '../../src/errors/index.js';
import {
  assertDurabilitySupported,
  producerSettings,
  validateDedupWindow,
  type ProducerConnectOptions,
} from '../../src/producer/settings.js';
import type { PublishOptions, QueueOptions } from '../../src/index.js';

const MIB = 1024 * 1024;
const SEVEN_DAYS_MS = 7 * 86_400_000;

describe('producer settings (connect options of the producer)', () => {
  it('applies the defaults when no option is given', () => {
    expect(producerSettings({})).toEqual({
      maxBodyBytes: 16 * MIB,
      durability: 'written',
      replicas: 1,
      durabilityTimeoutMs: 1000,
      confirmTimeoutMs: 10_000,
      dedupWindowMs: 120_000,
    });
  });

  it('keeps every option that is given', () => {
    const options = {
      maxBodyBytes: 1024,
      durability: 'replicated',
      replicas: 2,
      durabilityTimeoutMs: 250,
      confirmTimeoutMs: 2000,
      dedupWindowMs: 60_000,
    } as const;
    expect(producerSettings(options)).toEqual(options);
  });

  it('defaults durabilityTimeoutMs to half of a confirm deadline shorter than 2 s', () => {
    expect(producerSettings({ confirmTimeoutMs: 1000 }).durabilityTimeoutMs).toBe(500);
    expect(producerSettings({ confirmTimeoutMs: 101 }).durabilityTimeoutMs).toBe(50);
    expect(producerSettings({ confirmTimeoutMs: 2000 }).durabilityTimeoutMs).toBe(1000);
    expect(producerSettings({ confirmTimeoutMs: 60_000 }).durabilityTimeoutMs).toBe(1000);
  });

  it('accepts every option at the ends of its range', () => {
    const accepted: ProducerConnectOptions[] = [
      { maxBodyBytes: 1 },
      { maxBodyBytes: 512 * MIB },
      { durability: 'written' },
      { durability: 'replicated' },
      { durability: 'fsynced' },
      { replicas: 1 },
      { replicas: 1000 },
      { confirmTimeoutMs: 100 },
      { confirmTimeoutMs: 3_600_000, dedupWindowMs: 3_600_000 },
      { durabilityTimeoutMs: 1 },
      { durabilityTimeoutMs: 9999 },
      { dedupWindowMs: 0 },
      { dedupWindowMs: 10_000 },
      { dedupWindowMs: SEVEN_DAYS_MS },
    ];
    for (const options of accepted) {
      expect(() => producerSettings(options), JSON.stringify(options)).not.toThrow();
    }
  });

  it('refuses every option out of its range with InvalidArgumentError', () => {
    const refused: Record<string, unknown>[] = [
      { maxBodyBytes: 0 },
      { maxBodyBytes: 512 * MIB + 1 },
      { maxBodyBytes: 1.5 },
      { maxBodyBytes: '1024' },
      { durability: 'durable' },
      { durability: '' },
      { durability: 1 },
      { replicas: 0 },
      { replicas: 1001 },
      { replicas: -1 },
      { confirmTimeoutMs: 99 },
      { confirmTimeoutMs: 3_600_001 },
      { confirmTimeoutMs: Number.NaN },
      { confirmTimeoutMs: Number.POSITIVE_INFINITY },
      { durabilityTimeoutMs: 0 },
      { durabilityTimeoutMs: 3_600_001 },
      { dedupWindowMs: -1 },
      { dedupWindowMs: SEVEN_DAYS_MS + 1 },
      { dedupWindowMs: 0.5 },
      { dedupWindowMs: null },
    ];
    for (const options of refused) {
      expect(
        () => producerSettings(options as ProducerConnectOptions),
        JSON.stringify(options),
      ).toThrow(InvalidArgumentError);
    }
  });

  it('refuses a durabilityTimeoutMs that is not below confirmTimeoutMs', () => {
    expect(() => producerSettings({ durabilityTimeoutMs: 10_000 })).toThrow(
      'durabilityTimeoutMs must be below confirmTimeoutMs',
    );
    expect(() => producerSettings({ confirmTimeoutMs: 500, durabilityTimeoutMs: 600 })).toThrow(
      InvalidArgumentError,
    );
  });

  it('refuses a dedup window shorter than the confirm deadline, so retries find their first try', () => {
    expect(() => producerSettings({ dedupWindowMs: 9999 })).toThrow(InvalidArgumentError);
    expect(() => producerSettings({ confirmTimeoutMs: 30_000, dedupWindowMs: 20_000 })).toThrow(
      'dedupWindowMs must be 0 (off) or at least confirmTimeoutMs (30000)',
    );
  });
});

describe('validateDedupWindow (the dedupWindowMs of one publish)', () => {
  it('accepts no window, 0 (dedup off), and windows from the confirm deadline to 7 days', () => {
    for (const windowMs of [undefined, 0, 5000, 60_000, SEVEN_DAYS_MS]) {
      expect(() => validateDedupWindow(windowMs, 5000), String(windowMs)).not.toThrow();
    }
  });

  it('refuses windows below the confirm deadline, above 7 days, or not integers', () => {
    for (const windowMs of [1, 4999, SEVEN_DAYS_MS + 1, -1, 5000.5, '5000', null]) {
      expect(() => validateDedupWindow(windowMs, 5000), String(windowMs)).toThrow(
        InvalidArgumentError,
      );
    }
  });
});

/** The two things assertDurabilitySupported reads from a connection: the server and its AOF. */
function connectedTo(info: string, appendOnly: boolean): Connection {
  const connection: Pick<Connection, 'server' | 'appendOnly'> = {
    server: parseServerInfo(info),
    appendOnly,
  };
  return connection as Connection;
}

describe('assertDurabilitySupported', () => {
  const redis70 = connectedTo('redis_version:7.0.15\r\n', false);
  const redis72 = connectedTo('redis_version:7.2.4\r\n', true);
  const valkey8 = connectedTo(
    'redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n',
    true,
  );

  it("accepts 'written' and 'replicated' on any server", () => {
    for (const connection of [redis70, redis72, valkey8]) {
      expect(() => assertDurabilitySupported(connection, 'written')).not.toThrow();
      expect(() => assertDurabilitySupported(connection, 'replicated')).not.toThrow();
    }
  });

  it("accepts 'fsynced' on Redis 7.2 and Valkey 8 with an append-only file", () => {
    expect(() => assertDurabilitySupported(redis72, 'fsynced')).not.toThrow();
    expect(() => assertDurabilitySupported(valkey8, 'fsynced')).not.toThrow();
  });

  it("refuses 'fsynced' on a server without WAITAOF (Redis 7.0) with UnsupportedError", () => {
    const withAof = connectedTo('redis_version:7.0.15\r\n', true);
    expect(() => assertDurabilitySupported(withAof, 'fsynced')).toThrow(UnsupportedError);
    expect(() => assertDurabilitySupported(withAof, 'fsynced')).toThrow(/redis 7\.0\.15 has none/);
  });

  it("refuses 'fsynced' on a server that runs without appendonly", () => {
    const withoutAof = connectedTo('redis_version:7.2.4\r\n', false);
    expect(() => assertDurabilitySupported(withoutAof, 'fsynced')).toThrow(UnsupportedError);
    expect(() => assertDurabilitySupported(withoutAof, 'fsynced')).toThrow(/appendonly yes/);
  });
});

describe('the default dedup window', () => {
  it('covers a confirm deadline longer than two minutes', () => {
    expect(producerSettings({ confirmTimeoutMs: 600_000 }).dedupWindowMs).toBe(600_000);
    expect(producerSettings({}).dedupWindowMs).toBe(120_000);
  });
});

describe('option types under exactOptionalPropertyTypes', () => {
  it('take undefined wherever the runtime does, and the runtime treats it as absent', () => {
    const maybe = (): number | undefined => undefined;
    // These compile only because every optional option also accepts `undefined`.
    const options: ProducerConnectOptions = {
      durability: undefined,
      replicas: maybe(),
      confirmTimeoutMs: maybe(),
      dedupWindowMs: undefined,
    };
    const publish: PublishOptions = { expirationMs: maybe(), mandatory: undefined };
    const queue: QueueOptions = { maxLength: maybe(), overflow: undefined };
    expect(producerSettings(options)).toEqual(producerSettings({}));
    expect(Object.values(publish).every((value) => value === undefined)).toBe(true);
    expect(Object.values(queue).every((value) => value === undefined)).toBe(true);
  });
});
