/**
 * Tracing with a real OpenTelemetry SDK: the in-memory exporter of @opentelemetry/sdk-trace-base
 * collects the spans sluice makes through @opentelemetry/api.
 */
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/index.js';
import { waitFor } from '../support/index.js';
import { useSluice } from '../support/sluice.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(contextManager.enable());
});
afterAll(async () => {
  trace.disable();
  context.disable();
  await provider.shutdown();
});
beforeEach(() => exporter.reset());

/** The finished spans named `name`, once there are `count` of them. */
async function spansNamed(name: string, count = 1): Promise<ReadableSpan[]> {
  return waitFor(() => {
    const spans = exporter.getFinishedSpans().filter((span) => span.name === name);
    return spans.length >= count ? spans : undefined;
  });
}

function parentOf(span: ReadableSpan): { traceId: string; spanId: string } | undefined {
  return span.parentSpanContext;
}

describe('tracing with @opentelemetry/api', () => {
  it("makes a publish span the parent of the delivery's process span", async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('orders', 'topic');
    await sluice.declareQueue('work');
    await sluice.bindQueue('work', 'orders', 'order.*');
    const confirm = await sluice.publish('orders', 'order.created', { id: 1 });
    const seen: Delivery[] = [];
    const consumer = await sluice.consume('work', (msg) => void seen.push(msg));
    const [process] = await spansNamed('process work');
    await consumer.close();
    const [publish] = await spansNamed('publish orders');
    const publishContext = (publish as ReadableSpan).spanContext();
    expect(publish).toMatchObject({
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'sluice',
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'publish',
        'messaging.destination.name': 'orders',
        'messaging.message.id': confirm.messageId,
        'messaging.sluice.destination.routing_key': 'order.created',
      },
    });
    expect(process).toMatchObject({
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'sluice',
        'messaging.operation.type': 'process',
        'messaging.destination.name': 'work',
        'messaging.message.id': confirm.messageId,
        'messaging.sluice.message.delivery_count': 1,
      },
    });
    expect(parentOf(process as ReadableSpan)).toMatchObject({
      traceId: publishContext.traceId,
      spanId: publishContext.spanId,
    });
    expect(seen[0]?.traceparent).toBe(`00-${publishContext.traceId}-${publishContext.spanId}-01`);
  });

  it('records nothing without an SDK, still carries a given context, and records once one is registered', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    const given = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const seen: Delivery[] = [];
    const active: (string | undefined)[] = [];
    trace.disable(); // no tracer provider: every span a no-op
    try {
      await sluice.publish('', 'q', 'plain');
      await sluice.publish('', 'q', 'traced', { traceparent: given, tracestate: 'vendor=1' });
      const consumer = await sluice.consume('q', (msg) => {
        seen.push(msg);
        active.push(trace.getSpanContext(context.active())?.spanId);
      });
      await waitFor(() => seen.length === 2);
      await consumer.close();
    } finally {
      trace.setGlobalTracerProvider(provider);
    }
    expect(seen.map((msg) => [msg.traceparent, msg.tracestate])).toEqual([
      [undefined, undefined],
      [given, 'vendor=1'],
    ]);
    // The handler of the traced message runs in the context it carries.
    expect(active).toEqual([undefined, 'b7ad6b7169203331']);
    expect(exporter.getFinishedSpans()).toEqual([]);
    // Registered again, asked per message: the next publish records its span.
    await sluice.publish('', 'q', 'recorded');
    await spansNamed('publish amq.default');
  });

  it('runs the handler in its process span, so that its own spans nest under it', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.publish('', 'q', 'x');
    const active: (string | undefined)[] = [];
    const consumer = await sluice.consume('q', () => {
      active.push(trace.getSpan(context.active())?.spanContext().spanId);
    });
    const [process] = await spansNamed('process q');
    await consumer.close();
    expect(active).toEqual([(process as ReadableSpan).spanContext().spanId]);
  });

  it('keeps a dead-lettered message in the trace of its publish', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('work.dlq');
    await sluice.bindQueue('work.dlq', 'dlx');
    await sluice.declareQueue('work', { deadLetterExchange: 'dlx' });
    await sluice.publish('', 'work', 'doomed');
    const rejecting = await sluice.consume('work', (msg) => msg.reject());
    const dead = await sluice.consume('work.dlq', () => undefined);
    const [deadProcess] = await spansNamed('process work.dlq');
    await Promise.all([rejecting.close(), dead.close()]);
    const [publish] = await spansNamed('publish amq.default');
    const [workProcess] = await spansNamed('process work');
    const { traceId, spanId } = (publish as ReadableSpan).spanContext();
    expect(parentOf(workProcess as ReadableSpan)).toMatchObject({ traceId, spanId });
    expect(parentOf(deadProcess as ReadableSpan)).toMatchObject({ traceId, spanId });
  });

  it("takes an explicit traceparent as the publish span's parent", async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpanId = '00f067aa0ba902b7';
    await sluice.publish('', 'q', 'x', {
      traceparent: `00-${traceId}-${callerSpanId}-01`,
      tracestate: 'vendor=value',
    });
    const [publish] = await spansNamed('publish amq.default');
    const publishContext = (publish as ReadableSpan).spanContext();
    expect(parentOf(publish as ReadableSpan)).toMatchObject({ traceId, spanId: callerSpanId });
    expect(publishContext.traceId).toBe(traceId);
    const stream = sluice.messages('q');
    for await (const msg of stream) {
      expect(msg.traceparent).toBe(`00-${traceId}-${publishContext.spanId}-01`);
      expect(msg.tracestate).toBe('vendor=value');
      await msg.ack();
      break;
    }
  });

  it('ends the process span of a handler that throws with an error status', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.publish('', 'q', 'x');
    const consumer = await sluice.consume(
      'q',
      () => {
        throw new TypeError('broken handler');
      },
      { retry: { initialDelayMs: 600_000 } },
    );
    const [process] = await spansNamed('process q');
    await consumer.close();
    expect(process?.status).toMatchObject({
      code: SpanStatusCode.ERROR,
      message: 'broken handler',
    });
    expect(process?.attributes['error.type']).toBe('TypeError');
  });

  it('ends the publish span of a refused publish with the error code', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('nowhere', 'direct');
    await expect(sluice.publish('nowhere', 'k', 'x', { mandatory: true })).rejects.toMatchObject({
      code: 'UNROUTABLE',
    });
    const [publish] = await spansNamed('publish nowhere');
    expect(publish?.status.code).toBe(SpanStatusCode.ERROR);
    expect(publish?.attributes['error.type']).toBe('UNROUTABLE');
  });
});
