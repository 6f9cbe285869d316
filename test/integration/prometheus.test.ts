import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, PreconditionFailedError } from '../../src/index.js';
import { prometheusMetrics } from '../../src/prometheus/index.js';
import { waitFor } from '../support/index.js';
import { useSluice } from '../support/sluice.js';

/** The value of one sample line of the exposition text (`name{labels} value`), if present. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('sluice/prometheus', () => {
  it('exports publishes, deliveries, dead letters and queue gauges of real traffic', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('jobs.dlq');
    await sluice.bindQueue('jobs.dlq', 'dlx');
    await sluice.declareQueue('jobs', { deadLetterExchange: 'dlx' });
    const registry = new Registry();
    const metrics = prometheusMetrics({ sluice, registry });
    let failed = false;
    const consumer = await sluice.consume<string>(
      'jobs',
      async (msg) => {
        if (msg.body === 'bad') return msg.reject();
        if (msg.body === 'fails once' && !failed) {
          failed = true;
          throw new Error('once');
        }
      },
      { retry: false },
    );
    metrics.observe(consumer);
    for (const body of ['ok', 'ok', 'fails once', 'bad']) await sluice.publish('', 'jobs', body);
    await sluice.publish('', 'jobs', 'again', { messageId: 'fixed', dedupWindowMs: 60_000 });
    await sluice.publish('', 'jobs', 'again', { messageId: 'fixed', dedupWindowMs: 60_000 });
    const text = await waitFor(
      async () => {
        const current = await registry.metrics();
        return sample(current, 'sluice_deliveries_total{queue="jobs",outcome="handled"}') === 5
          ? current
          : undefined;
      },
      // A handler that rejects its delivery resolved: handled too.
      { description: 'five deliveries handled' },
    );
    await consumer.close();
    expect(sample(text, 'sluice_messages_published_total{exchange=""}')).toBe(5);
    expect(sample(text, 'sluice_publish_duplicates_total{exchange=""}')).toBe(1);
    expect(sample(text, 'sluice_publish_confirm_duration_seconds_count{exchange=""}')).toBe(6);
    expect(sample(text, 'sluice_deliveries_total{queue="jobs",outcome="failed"}')).toBe(1);
    expect(
      sample(text, 'sluice_handler_duration_seconds_count{queue="jobs",outcome="handled"}'),
    ).toBe(5);
    expect(
      sample(text, 'sluice_messages_dead_lettered_total{queue="jobs",reason="rejected"}'),
    ).toBe(1);
    expect(text).toContain('# TYPE sluice_handler_duration_seconds histogram');
    expect(text).toContain('# TYPE sluice_queue_messages_ready gauge');
    const after = await waitFor(async () => {
      const current = await registry.metrics();
      return sample(current, 'sluice_queue_messages_ready{queue="jobs.dlq"}') === 1
        ? current
        : undefined;
    });
    expect(sample(after, 'sluice_queue_messages_ready{queue="jobs"}')).toBe(0);
    expect(sample(after, 'sluice_queue_messages_unacked{queue="jobs"}')).toBe(0);
    expect(sample(after, 'sluice_queue_partitions{queue="jobs"}')).toBe(1);
    expect(sample(after, 'sluice_queue_messages_published_total{queue="jobs"}')).toBe(5);
    expect(sample(after, 'sluice_queue_messages_acked_total{queue="jobs"}')).toBe(4);
    expect(sample(after, 'sluice_queue_oldest_message_age_seconds{queue="jobs"}')).toBe(0);
    metrics.close();
    expect(await registry.metrics()).not.toContain('sluice_');
  });

  it('reads only the queues it is given, and counts failed publishes by code', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('a');
    await sluice.declareQueue('b');
    await sluice.declareExchange('nowhere', 'direct');
    const registry = new Registry();
    const metrics = prometheusMetrics({ sluice, registry, queues: ['b'] });
    await expect(sluice.publish('nowhere', 'k', 'x', { mandatory: true })).rejects.toThrow();
    const text = await registry.metrics();
    expect(sample(text, 'sluice_queue_messages_ready{queue="b"}')).toBe(0);
    expect(sample(text, 'sluice_queue_messages_ready{queue="a"}')).toBeUndefined();
    expect(
      sample(text, 'sluice_publish_failures_total{exchange="nowhere",reason="UNROUTABLE"}'),
    ).toBe(1);
    metrics.close();
  });

  it('refuses options that are not a client, a registry and queue names', async () => {
    const { sluice } = await useSluice();
    const registry = new Registry();
    const refused = [
      undefined,
      {},
      { sluice: {} },
      { sluice, registry: {} },
      { sluice, queues: 'q' },
      { sluice, queues: ['a:b'] },
      { sluice, other: 1 },
    ];
    for (const options of refused) {
      expect(() => prometheusMetrics(options as never)).toThrow(InvalidArgumentError);
    }
    const metrics = prometheusMetrics({ sluice, registry });
    expect(() => metrics.observe({} as never)).toThrow(InvalidArgumentError);
    metrics.close();
  });

  it('refuses a registry that has its metrics already, and registers none of them', async () => {
    const { sluice } = await useSluice();
    const registry = new Registry();
    const names = (): string[] => registry.getMetricsAsArray().map((metric) => metric.name);
    const first = prometheusMetrics({ sluice, registry, queues: [] });
    const registered = names();
    expect(() => prometheusMetrics({ sluice, registry, queues: [] })).toThrow(
      PreconditionFailedError,
    );
    expect(names()).toEqual(registered);
    first.close();
    expect(names()).toEqual([]);
    // One name taken, that of the last metric sluice makes: still none of sluice's goes in.
    new Counter({
      name: 'sluice_queue_messages_dropped_total',
      help: 'mine',
      registers: [registry],
    });
    expect(() => prometheusMetrics({ sluice, registry })).toThrow(PreconditionFailedError);
    expect(names()).toEqual(['sluice_queue_messages_dropped_total']);
    registry.removeSingleMetric('sluice_queue_messages_dropped_total');
    prometheusMetrics({ sluice, registry }).close();
  });
});
