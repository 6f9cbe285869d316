/**
 * Registration: a consumer counts as one of its queue's consumers (`inspectQueue`, `deleteQueue`
 * with `ifUnused`) while its registration lease lasts, and renews it while it lives; a consumer
 * that crashed stops counting once its lease ends, without anyone deregistering it.
 */
import type { RedisClient } from '../connection/client.js';
import type { QueueKeys } from '../keys/index.js';
import { PreconditionFailedError, type SluiceError } from '../errors/index.js';
import { Periodic } from './periodic.js';
import { deregisterConsumer, registerConsumer } from './scripts.js';

/** How long a registration lasts unrenewed (server time): a crashed consumer counts this long. */
export const REGISTRATION_LEASE_MS = 15_000;
/** How often a living consumer renews it: a third of the lease, so two renewals may fail. */
const RENEW_INTERVAL_MS = REGISTRATION_LEASE_MS / 3;

/** One consumer's registration with its queue. */
export class Registration {
  private renewal: Periodic | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: QueueKeys,
    private readonly consumerName: string,
    /** Whether the consumer is ordered: an unordered one is refused while ordered ones live. */
    private readonly ordered: () => boolean,
    private readonly report: (error: unknown) => void,
    /** A renewal was refused: ordered consumers joined the queue meanwhile. */
    private readonly refused: (error: SluiceError) => void,
  ) {}

  /** Registers: 'gone' when the queue is, 'refused' when ordered consumers of it live. */
  register(): Promise<'ok' | 'gone' | 'refused'> {
    return registerConsumer(this.redis, this.keys, {
      consumer: this.consumerName,
      leaseMs: REGISTRATION_LEASE_MS,
      ordered: this.ordered(),
    });
  }

  /** Renews the registration every interval until {@link stop}. */
  start(): void {
    this.renewal = new Periodic(
      async () => {
        // Offline, the call would only queue up behind the reconnect; the next round comes soon.
        if (this.redis.status !== 'ready') return;
        if ((await this.register()) === 'refused') {
          this.refused(
            new PreconditionFailedError(
              'ordered consumers joined the queue while this consumer was cut off: it closes',
            ),
          );
        }
      },
      RENEW_INTERVAL_MS,
      this.report,
      RENEW_INTERVAL_MS,
    );
  }

  /** Stops renewing; resolves once a renewal in progress is answered. */
  stop(): Promise<void> {
    return this.renewal?.stop() ?? Promise.resolve();
  }

  /** Deregisters (and leaves the group unless deliveries are still pending for this consumer). */
  async deregister(): Promise<void> {
    await deregisterConsumer(this.redis, this.keys, this.consumerName);
  }
}
