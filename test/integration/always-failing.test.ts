/**
 * What an operator sees of a handler that always fails: the server-side totals of `stats()`,
 * `sluice queues --json` and the Prometheus text, with a dead-letter exchange and without one
 * (where giving up on a message drops it).
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { QueueStats } from '../../src/index.js';
import { prometheusMetrics } from '../../src/prometheus/index.js';
import type { QueueView } from '../../src/dashboard/types.js';
import { sluiceCli } from '../support/cli.js';
import { waitFor } from '../support/index.js';
import { statsWhen, useSluice } from '../support/sluice.js';

const MESSAGES = 10;
const MAX_DELIVERIES = 3;
const NO_DEATHS = { rejected: 0, expired: 0, maxlen: 0, delivery_limit: 0, poison: 0 };

/** The value of one sample line of the exposition text (`name{labels} value`), if present. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('an always-failing handler', () => {
  it('shows as redeliveries, then dead letters (with a DLX) or drops (without), everywhere', async () => {
    const { sluice, namespace } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('work.dlq');
    await sluice.bindQueue('work.dlq', 'dlx');
    await sluice.declareQueue('work', { deadLetterExchange: 'dlx', maxDeliveries: MAX_DELIVERIES });
    await sluice.declareQueue('solo', { maxDeliveries: MAX_DELIVERIES });
    const registry = new Registry();
    const metrics = prometheusMetrics({ sluice, registry });
    const fail = (): never => {
      throw new Error('always');
    };
    // work retries after a delay (through the delayed set), solo at once (at the tail).
    const work = await sluice.consume('work', fail, {
      retry: { initialDelayMs: 20, multiplier: 1, jitter: 0 },
    });
    const solo = await sluice.consume('solo', fail, { retry: false });
    const dropsSeen: boolean[] = [];
    solo.on('delivery.deadLettered', ({ dropped }) => dropsSeen.push(dropped));
    metrics.observe(work);
    metrics.observe(solo);
    for (let i = 0; i < MESSAGES; i++) {
      await sluice.publish('', 'work', { i });
      await sluice.publish('', 'solo', { i });
    }

    const done = (s: QueueStats): boolean =>
      s.totals.deadLettered.delivery_limit === MESSAGES && s.deadLetterBacklog === 0;
    const workStats = await statsWhen(sluice, 'work', done, 'every work message dead-lettered');
    const soloStats = await statsWhen(sluice, 'solo', done, 'every solo message given up on');
    // Each message failed MAX_DELIVERIES times; all but the last failure gave it another try.
    const redelivered = MESSAGES * (MAX_DELIVERIES - 1);
    expect(workStats).toMatchObject({
      messages: 0,
      unacked: 0,
      delayed: 0,
      totals: {
        published: MESSAGES,
        acked: 0,
        redelivered,
        deadLettered: { ...NO_DEATHS, delivery_limit: MESSAGES },
        dropped: 0,
      },
    });
    expect(soloStats.totals).toMatchObject({
      published: MESSAGES,
      acked: 0,
      redelivered,
      deadLettered: { ...NO_DEATHS, delivery_limit: MESSAGES },
      dropped: MESSAGES,
    });
    expect((await sluice.stats('work.dlq')).messages).toBe(MESSAGES);
    // The consumer's event says so too: solo has no dead-letter exchange.
    await waitFor(() => dropsSeen.length === MESSAGES, {
      description: 'an event for every give-up',
    });
    expect(dropsSeen).toEqual(Array.from({ length: MESSAGES }, () => true));

    const text = await registry.metrics();
    expect(sample(text, 'sluice_queue_messages_redelivered_total{queue="work"}')).toBe(redelivered);
    expect(sample(text, 'sluice_queue_messages_redelivered_total{queue="solo"}')).toBe(redelivered);
    for (const queue of ['work', 'solo']) {
      expect(
        sample(
          text,
          `sluice_queue_messages_dead_lettered_total{queue="${queue}",reason="delivery_limit"}`,
        ),
      ).toBe(MESSAGES);
      expect(
        sample(
          text,
          `sluice_queue_messages_dead_lettered_total{queue="${queue}",reason="expired"}`,
        ),
      ).toBe(0);
    }
    expect(sample(text, 'sluice_queue_messages_dropped_total{queue="work"}')).toBe(0);
    expect(sample(text, 'sluice_queue_messages_dropped_total{queue="solo"}')).toBe(MESSAGES);
    // Consumer-side: work's give-ups are dead letters, solo's are drops.
    expect(
      sample(text, 'sluice_messages_dead_lettered_total{queue="work",reason="delivery_limit"}'),
    ).toBe(MESSAGES);
    expect(text).not.toContain('sluice_messages_dead_lettered_total{queue="solo"');
    expect(
      sample(text, 'sluice_messages_dropped_total{queue="solo",reason="delivery_limit"}'),
    ).toBe(MESSAGES);
    expect(sample(text, 'sluice_deliveries_total{queue="solo",outcome="failed"}')).toBe(
      MESSAGES * MAX_DELIVERIES,
    );

    await Promise.all([work.close(), solo.close()]);
    metrics.close();
    const run = await sluiceCli(namespace, ['queues', '--json', '--rate-interval', '100']);
    expect(run.code, run.stderr).toBe(0);
    const queues = JSON.parse(run.stdout) as QueueView[];
    const row = (name: string): QueueView | undefined => queues.find((q) => q.name === name);
    expect(row('work')?.totals).toEqual(workStats.totals);
    expect(row('solo')?.totals).toEqual(soloStats.totals);
    // Nothing moves any more: the rates are measured, and 0.
    expect(row('solo')).toMatchObject({ redeliverRate: 0, deadLetterRate: 0, dropRate: 0 });
  });

  it('of an ordered consumer counts its retries in place as redeliveries', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('ordered', {
      singleActiveConsumer: true,
      maxDeliveries: MAX_DELIVERIES,
    });
    const consumer = await sluice.consume(
      'ordered',
      () => {
        throw new Error('always');
      },
      { retry: false },
    );
    for (let i = 0; i < MESSAGES; i++) await sluice.publish('', 'ordered', { i });
    const stats = await statsWhen(
      sluice,
      'ordered',
      (s) => s.totals.dropped === MESSAGES,
      'every message given up on',
    );
    await consumer.close();
    expect(stats.totals).toMatchObject({
      published: MESSAGES,
      acked: 0,
      redelivered: MESSAGES * (MAX_DELIVERIES - 1),
      deadLettered: { ...NO_DEATHS, delivery_limit: MESSAGES },
      dropped: MESSAGES,
    });
    expect(consumer.stats.handlerErrors).toBe(MESSAGES * MAX_DELIVERIES);
  });
});
