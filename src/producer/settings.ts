import type { Connection } from '../connection/connection.js';
import { InvalidArgumentError, UnsupportedError } from '../errors/index.js';
import { validateEnumOption, validateIntegerOption } from '../validation/index.js';

/**
 * What a confirm waits for:
 * - `written`: Redis applied the write (in memory; on disk as its persistence settings say);
 * - `replicated`: and `replicas` replicas acknowledged it (WAIT);
 * - `fsynced`: and the server's append-only file was fsynced with it (WAITAOF, Redis ≥ 7.2 or
 *   Valkey, with `appendonly yes`).
 */
export type Durability = 'written' | 'replicated' | 'fsynced';

/** The producer's part of the connect options. */
export interface ProducerConnectOptions {
  /** Largest encoded body accepted by publish. Default 16 MiB. */
  readonly maxBodyBytes?: number | undefined;
  /** Confirm level of every publish unless a publish says otherwise. Default `written`. */
  readonly durability?: Durability | undefined;
  /** Replicas that must acknowledge a `replicated` publish. Default 1. */
  readonly replicas?: number | undefined;
  /** How long WAIT / WAITAOF may wait; must be below `confirmTimeoutMs`. Default 1000. */
  readonly durabilityTimeoutMs?: number | undefined;
  /**
   * Deadline of a confirm, retries and durability included: a publish resolves or rejects
   * within it. Default 10 000.
   */
  readonly confirmTimeoutMs?: number | undefined;
  /**
   * How long a published dedup key (by default the message id) makes a repeated publish a
   * duplicate: at least this long, at most twice. 0 turns deduplication off (and with it
   * retries of publishes whose outcome is unknown); otherwise at least `confirmTimeoutMs`, so
   * that sluice's own retries are always recognized. Default 120 000, as JetStream's.
   */
  readonly dedupWindowMs?: number | undefined;
}

/** {@link ProducerConnectOptions} with every default applied. */
export type ProducerSettings = {
  readonly [K in keyof ProducerConnectOptions]-?: Exclude<ProducerConnectOptions[K], undefined>;
};

const MIB = 1024 * 1024;
const DAY_MS = 86_400_000;
/** Longest dedup window: markers cost memory per message and target queue. */
const MAX_DEDUP_WINDOW_MS = 7 * DAY_MS;
export const DURABILITIES: readonly Durability[] = ['written', 'replicated', 'fsynced'];

/** Validates the producer's connect options and applies the defaults. */
export function producerSettings(options: ProducerConnectOptions): ProducerSettings {
  validateIntegerOption('maxBodyBytes', options.maxBodyBytes, 1, 512 * MIB);
  validateEnumOption('durability', options.durability, DURABILITIES);
  validateIntegerOption('replicas', options.replicas, 1, 1000);
  validateIntegerOption('confirmTimeoutMs', options.confirmTimeoutMs, 100, 3_600_000);
  validateIntegerOption('durabilityTimeoutMs', options.durabilityTimeoutMs, 1, 3_600_000);
  const confirmTimeoutMs = options.confirmTimeoutMs ?? 10_000;
  // The default window covers the confirm deadline, so that sluice's own retries find the
  // first attempt's markers.
  const dedupWindowMs =
    options.dedupWindowMs === undefined
      ? Math.max(120_000, confirmTimeoutMs)
      : options.dedupWindowMs;
  validateDedupWindow(dedupWindowMs, confirmTimeoutMs);
  const durabilityTimeoutMs =
    options.durabilityTimeoutMs ?? Math.min(1000, Math.floor(confirmTimeoutMs / 2));
  if (durabilityTimeoutMs >= confirmTimeoutMs) {
    throw new InvalidArgumentError('durabilityTimeoutMs must be below confirmTimeoutMs');
  }
  return {
    maxBodyBytes: options.maxBodyBytes ?? 16 * MIB,
    durability: options.durability ?? 'written',
    replicas: options.replicas ?? 1,
    durabilityTimeoutMs,
    confirmTimeoutMs,
    dedupWindowMs,
  };
}

/**
 * Checks a dedup window: 0 (off), or from `confirmTimeoutMs` (a retry within the confirm
 * deadline must find the first publish's markers) to 7 days.
 */
export function validateDedupWindow(windowMs: unknown, confirmTimeoutMs: number): void {
  validateIntegerOption('dedupWindowMs', windowMs, 0, MAX_DEDUP_WINDOW_MS);
  if (windowMs !== undefined && windowMs > 0 && windowMs < confirmTimeoutMs) {
    throw new InvalidArgumentError(
      `dedupWindowMs must be 0 (off) or at least confirmTimeoutMs (${confirmTimeoutMs})`,
    );
  }
}

/**
 * Refuses a durability that the server cannot give: at connect for the configured level, and
 * before anything is sent for a publish's own level. Never a silent downgrade.
 */
export function assertDurabilitySupported(connection: Connection, durability: Durability): void {
  if (durability !== 'fsynced') return;
  const { name, version, features } = connection.server;
  if (!features.waitAof) {
    throw new UnsupportedError(
      `durability 'fsynced' needs WAITAOF (Redis ≥ 7.2 or Valkey ≥ 7.2); ${name} ${version} has none`,
    );
  }
  if (!connection.appendOnly) {
    throw new UnsupportedError("durability 'fsynced' needs the server to run with appendonly yes");
  }
}
