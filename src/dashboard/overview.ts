import type { Sluice } from '../sluice.js';
import type { Topology } from '../topology/topology.js';
import type { OverviewView } from './types.js';

/** The topology and every queue's counts, as the overview and `sluice queues` show them. */
export async function readOverview(
  sluice: Sluice,
): Promise<Pick<OverviewView, 'exchanges' | 'queues' | 'bindings'>> {
  // INTERIM until f-metrics' listing lands.
  const snapshot = await (sluice as unknown as { topology: Topology }).topology.snapshot();
  const queues = await Promise.all(
    [...snapshot.queues.values()].map(async (record) => {
      const info = await sluice.inspectQueue(record.name);
      return {
        name: record.name,
        ready: info.messages,
        unacked: info.unacked,
        delayed: info.delayed,
        deadLetterBacklog: info.deadLetterBacklog,
        lag: info.messages,
        consumers: info.consumers,
        partitions: info.partitions.length,
        publishRate: 0,
        deliverRate: 0,
        ackRate: 0,
        deadLetterExchange: record.deadLetterExchange,
      };
    }),
  );
  return {
    exchanges: [...snapshot.exchanges.values()].map(({ name, type }) => ({ name, type })),
    queues,
    bindings: snapshot.bindings.map(({ source, destination, destinationType, bindingKey }) => ({
      source,
      destination,
      destinationType,
      bindingKey,
    })),
  };
}
