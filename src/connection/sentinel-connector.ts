/**
 * The connector of the Sentinel clients sluice creates: ioredis' own, with two defects of its
 * failover detector (its subscriptions to the Sentinels' `+switch-master`) worked around.
 *
 * 1. ioredis 5 leaves a connection's detector running after the connection closed. When the
 *    primary dies, the client reconnects while the Sentinels still vote; the `+switch-master`
 *    that ends the vote then reaches the old detector, which calls the connector's
 *    disconnect(), meant for a live connection to a primary that stopped being one. Arriving
 *    while the connector asks a Sentinel for the primary, it reads as the application closing
 *    the client: the attempt rejects with "Connection is closed." and the client ends for good,
 *    failing every later command (a producer or consumer stalled until restarted). Stopped at
 *    the close, the detector leaves the reconnection alone, which finds the new primary by
 *    itself. ioredis 6 stops it the same way (redis/ioredis#2198).
 * 2. The detector's connections to the Sentinels have no `error` listener, so ioredis logs an
 *    unhandled error event whenever a Sentinel goes away; sluice's clients raise none.
 */
import { SentinelConnector, type Redis, type SentinelConnectionOptions } from 'ioredis';
import { ignoreError } from './client.js';

/** The part of ioredis' private failover detector used here. */
interface FailoverDetector {
  readonly sentinels: readonly { readonly client: Redis }[];
  cleanup(): void;
}

export class ClosingSentinelConnector extends SentinelConnector {
  /** ioredis gives a connector the client's options, which hold the Sentinel ones. */
  constructor(options: unknown) {
    super(options as SentinelConnectionOptions);
  }

  private get detector(): FailoverDetector | null {
    return (this as unknown as { failoverDetector: FailoverDetector | null }).failoverDetector;
  }

  override async connect(
    ...args: Parameters<SentinelConnector['connect']>
  ): ReturnType<SentinelConnector['connect']> {
    const stream = await super.connect(...args);
    // ioredis makes the stream's detector in its own listener of this event, registered first.
    const connected =
      this.options.enableTLSForSentinelMode === true && this.options.tls !== undefined
        ? 'secureConnect'
        : 'connect';
    stream.once(connected, () => {
      for (const { client } of this.detector?.sentinels ?? []) client.on('error', ignoreError);
    });
    // Read at the close, the field holds this stream's detector, or an earlier one stopped.
    stream.once('close', () => this.detector?.cleanup());
    return stream;
  }
}
