import type { Command } from 'commander';
import { setTimeout as delay } from 'node:timers/promises';
import { duration } from '../../dashboard/format.js';
import { readOverview } from '../../dashboard/overview.js';
import type { BindingView, ExchangeView } from '../../dashboard/types.js';
import { positiveInteger, print, withSluice, type JsonFlag } from '../context.js';
import { toJson } from '../json.js';
import { table, tree, type TreeNode } from '../table.js';

/**
 * The exchanges as trees of their bindings, an exchange-to-exchange binding holding the
 * destination's own bindings under it. The default exchange is left out: it binds every queue
 * by its name and nothing else.
 */
function exchangeTrees(
  exchanges: readonly ExchangeView[],
  bindings: readonly BindingView[],
): TreeNode[] {
  const types = new Map(exchanges.map((exchange) => [exchange.name, exchange.type]));
  const label = (name: string): string => `${name} (${types.get(name) ?? '?'})`;
  const under = (source: string, seen: ReadonlySet<string>): TreeNode[] =>
    bindings
      .filter((binding) => binding.source === source)
      .map((binding) => {
        const key = binding.bindingKey === '' ? '' : `  ${binding.bindingKey}`;
        if (binding.destinationType === 'queue')
          return { label: `queue ${binding.destination}${key}`, children: [] };
        // A cycle of exchange bindings is shown once round, not forever.
        const children = seen.has(binding.destination)
          ? []
          : under(binding.destination, new Set([...seen, binding.destination]));
        return { label: `exchange ${label(binding.destination)}${key}`, children };
      });
  return exchanges
    .filter((exchange) => exchange.name !== '')
    .map((exchange) => ({
      label: label(exchange.name),
      children: under(exchange.name, new Set([exchange.name])),
    }));
}

/** `sluice topology`. */
export function registerTopology(program: Command): void {
  program
    .command('topology')
    .description('exchanges and their bindings, as a tree')
    .option('--json', 'exchanges, queues (with their arguments) and bindings as JSON')
    .action(async (options: JsonFlag) => {
      const listing = await withSluice(program, (sluice) => sluice.listTopology());
      if (options.json === true) print(toJson(listing));
      else for (const line of tree(exchangeTrees(listing.exchanges, listing.bindings))) print(line);
    });
}

/** A rate with one decimal; `-` when there is none (the queue's counters went back). */
function rate(perSecond: number | null): number | string {
  return perSecond === null ? '-' : Number(perSecond.toFixed(1));
}

/** `sluice queues`. */
export function registerQueues(program: Command): void {
  program
    .command('queues')
    .description('every queue with its depth, unacked, delayed, lag, consumers and rates')
    .option('--json', 'an array of queues as JSON')
    .option('--rate-interval <ms>', 'how long to measure the rates over', positiveInteger, 1000)
    .addHelpText(
      'after',
      `
Rates are measured between two readings, --rate-interval apart; lag is the age
of the oldest message not yet acked. redeliver/s counts failed deliveries given
back for another try; dead-letter/s counts messages that died (every reason),
routed to the dead-letter exchange or, without one, dropped. --json adds the
totals since each queue was declared, dead letters by reason and drops.`,
    )
    .action(async (options: JsonFlag & { rateInterval: number }) => {
      const { queues } = await withSluice(program, async (sluice) => {
        // The first reading starts the rates' interval; the second ends it.
        await sluice.stats();
        await delay(options.rateInterval);
        return readOverview(sluice);
      });
      if (options.json === true) {
        print(toJson(queues));
        return;
      }
      print(
        table(
          [
            'queue',
            'ready',
            'unacked',
            'delayed',
            'lag',
            'consumers',
            'publish/s',
            'deliver/s',
            'ack/s',
            'redeliver/s',
            'dead-letter/s',
          ],
          queues.map((q) => [
            q.name,
            q.ready,
            q.unacked,
            q.delayed,
            duration(q.lagMs),
            q.consumers,
            rate(q.publishRate),
            rate(q.deliverRate),
            rate(q.ackRate),
            rate(q.redeliverRate),
            rate(q.deadLetterRate),
          ]),
        ),
      );
    });
}
