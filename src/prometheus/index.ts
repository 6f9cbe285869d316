/**
 * sluice/prometheus: Prometheus metrics of a sluice client and its consumers, through
 * `prom-client` (an optional peer dependency). See docs/metrics.md.
 * @packageDocumentation
 * @module sluice/prometheus
 */
export { prometheusMetrics } from './metrics.js';
export type { PrometheusMetrics, PrometheusOptions } from './metrics.js';
