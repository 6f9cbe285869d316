import type { QueueStats } from '../queue/data.js';
import type { Sluice } from '../sluice.js';
import type { TopologyListing } from '../topology/types.js';
import type { OverviewView, QueueView } from './types.js';

/** The topology and the queues' statistics, as the overview and `sluice queues` show them. */
export type Overview = Pick<OverviewView, 'exchanges' | 'queues' | 'bindings'>;

/** A queue's statistics as a row of the overview, with its dead-letter exchange. */
function queueView(stats: QueueStats, deadLetterExchange: string | undefined): QueueView {
  return {
    name: stats.name,
    ready: stats.messages,
    unacked: stats.unacked,
    delayed: stats.delayed,
    deadLetterBacklog: stats.deadLetterBacklog,
    lagMs: stats.oldestMessageAgeMs,
    consumers: stats.consumers,
    partitions: stats.partitions.length,
    totals: stats.totals,
    publishRate: stats.rates?.publishedPerSecond ?? null,
    deliverRate: stats.rates?.deliveredPerSecond ?? null,
    ackRate: stats.rates?.ackedPerSecond ?? null,
    redeliverRate: stats.rates?.redeliveredPerSecond ?? null,
    deadLetterRate: stats.rates?.deadLetteredPerSecond ?? null,
    dropRate: stats.rates?.droppedPerSecond ?? null,
    deadLetterExchange: deadLetterExchange ?? null,
  };
}

/**
 * The overview from a topology listing and statistics read from `sluice.stats()`: a queue
 * declared or deleted between the two readings shows in neither list.
 */
export function overviewOf(listing: TopologyListing, stats: readonly QueueStats[]): Overview {
  const records = new Map(listing.queues.map((record) => [record.name, record]));
  return {
    exchanges: listing.exchanges.map(({ name, type }) => ({ name, type })),
    queues: stats
      .filter((queue) => records.has(queue.name))
      .map((queue) => queueView(queue, records.get(queue.name)?.deadLetterExchange)),
    bindings: listing.bindings.map(({ source, destination, destinationType, bindingKey }) => ({
      source,
      destination,
      destinationType,
      bindingKey,
    })),
  };
}

/** The overview as it is now, with `stats` (a reading of `sluice.stats()`) for the queues. */
export async function readOverview(
  sluice: Sluice,
  stats: Promise<readonly QueueStats[]> = sluice.stats(),
): Promise<Overview> {
  const [listing, queues] = await Promise.all([sluice.listTopology(), stats]);
  return overviewOf(listing, queues);
}
