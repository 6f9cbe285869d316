/**
 * The inputs with which hostile-input.property.test.ts caught sluice out, one example each:
 * each is refused with a typed error before anything is written (or, for the callbacks and
 * codecs that misbehave, handled as their own failure).
 */
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  CodecError,
  InvalidArgumentError,
  NotFoundError,
  Sluice,
  type Codec,
} from '../../src/index.js';
import { redisUrl } from '../support/index.js';
import { changedKeys, namespaceState } from '../support/namespace-state.js';
import { rejection } from '../support/rejection.js';
import { useSluice } from '../support/sluice.js';

/** A proxy whose every property read throws. */
function throwingProxy(): object {
  return new Proxy(
    {},
    {
      get(_, key) {
        throw new Error(`read of ${String(key)}`);
      },
    },
  );
}

/** `{ [key]: first }` whose `key` is a getter: `first` on the first read, `later` after it. */
function changing(key: string, first: unknown, later: unknown): object {
  let reads = 0;
  return Object.defineProperty({}, key, {
    enumerable: true,
    get: () => (reads++ === 0 ? first : later),
  });
}

/** Expects `call` to reject with an error of `type` and to leave the namespace as it was. */
async function expectRefusedWritingNothing(
  scope: { redis: Redis; namespace: string },
  type: abstract new (...args: never[]) => Error,
  call: () => Promise<unknown>,
): Promise<void> {
  const before = await namespaceState(scope.redis, scope.namespace);
  const { error } = await rejection(call());
  expect(error).toBeInstanceOf(type);
  expect(changedKeys(before, await namespaceState(scope.redis, scope.namespace))).toEqual([]);
}

describe('options that are not plain data', () => {
  it('a getter that throws is refused with InvalidArgumentError, not a ServerError', async () => {
    const scope = await useSluice();
    const durable = Object.defineProperty({}, 'durable', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    });
    await expectRefusedWritingNothing(scope, InvalidArgumentError, () =>
      scope.sluice.declareQueue('q', durable),
    );
  });

  it('a proxy is refused by publish, publishBatch, consume (an idempotency store too), messages and the dlq tools', async () => {
    const scope = await useSluice();
    const { sluice } = scope;
    await sluice.declareQueue('q');
    const calls = [
      () => sluice.publish('', 'q', 'x', throwingProxy()),
      () => sluice.publishBatch([], throwingProxy()),
      () => sluice.publishBatch(new Proxy([], {})),
      () => sluice.consume('q', () => undefined, throwingProxy()),
      () =>
        sluice.consume('q', () => undefined, { idempotency: { store: throwingProxy() as never } }),
      () => sluice.dlq.replay('q', throwingProxy()),
      () => sluice.dlq.list('q', new Proxy({}, {})),
    ];
    for (const call of calls) await expectRefusedWritingNothing(scope, InvalidArgumentError, call);
    expect(() => sluice.messages('q', throwingProxy())).toThrow(InvalidArgumentError);
  });

  it('a getter that answers differently on a second read cannot slip past validation', async () => {
    const scope = await useSluice();
    await scope.sluice.declareQueue('q');
    // Validated as undefined (the default), then read as -5 by the consumer.
    await expectRefusedWritingNothing(scope, InvalidArgumentError, () =>
      scope.sluice.consume('q', () => undefined, changing('prefetch', undefined, -5)),
    );
  });

  it('nack refuses a proxy', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.publish('', 'q', 'x');
    const stream = sluice.messages('q');
    for await (const delivery of stream) {
      const { error } = await rejection(delivery.nack(throwingProxy()));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      await delivery.ack();
      break;
    }
  });

  it('null publish options are refused, as null options of every other operation', async () => {
    const scope = await useSluice();
    await scope.sluice.declareQueue('q');
    await expectRefusedWritingNothing(scope, InvalidArgumentError, () =>
      scope.sluice.publish('', 'q', 'x', null as never),
    );
    await expectRefusedWritingNothing(scope, InvalidArgumentError, () =>
      scope.sluice.publishBatch([
        { exchange: '', routingKey: 'q', body: 'x', options: null as never },
      ]),
    );
  });
});

describe('connect options', () => {
  it('null namespace and codec are refused, not taken for the defaults', async () => {
    for (const options of [{ namespace: null }, { codec: null }]) {
      const { error } = await rejection(
        Sluice.connect({ url: redisUrl(), ...(options as object) }),
      );
      expect(error).toBeInstanceOf(InvalidArgumentError);
    }
  });

  it('url and redis together are refused; an undefined one is absent', async () => {
    const { redis } = await useSluice();
    const { error } = await rejection(Sluice.connect({ url: false, redis } as never));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    const adopted = await Sluice.connect({ url: undefined, redis });
    await adopted.close();
    const connected = await Sluice.connect({ url: redisUrl(), redis: undefined });
    await connected.close();
  });

  it('a redis client whose reads throw is refused with InvalidArgumentError', async () => {
    const { error } = await rejection(Sluice.connect({ redis: throwingProxy() as never }));
    expect(error).toBeInstanceOf(InvalidArgumentError);
  });

  it('a codec whose encode throws or returns no encoded body fails the publish with CodecError', async () => {
    const decode = (data: Buffer): unknown => data;
    const codecs: Codec[] = [
      {
        encode: () => {
          throw new Error('encode');
        },
        decode,
      },
      { encode: () => 'not an encoded body' as never, decode },
    ];
    for (const codec of codecs) {
      const scope = await useSluice({ codec });
      await scope.sluice.declareQueue('q');
      await expectRefusedWritingNothing(scope, CodecError, () =>
        scope.sluice.publish('', 'q', 'x'),
      );
    }
  });
});

describe('binding from a predeclared exchange', () => {
  it('a bind refused for its destination or its key stores no record of the exchange', async () => {
    const scope = await useSluice();
    await scope.sluice.declareQueue('q');
    await scope.sluice.declareExchange('x', 'direct');
    await expectRefusedWritingNothing(scope, NotFoundError, () =>
      scope.sluice.bindQueue('ghost', 'amq.topic', 'a.*'),
    );
    await expectRefusedWritingNothing(scope, InvalidArgumentError, () =>
      scope.sluice.bindExchange('x', 'amq.direct', {}),
    );
    await expectRefusedWritingNothing(scope, InvalidArgumentError, () =>
      scope.sluice.bindQueue('q', 'amq.topic', 'a*'),
    );
    // A valid bind still stores it and routes.
    await scope.sluice.bindQueue('q', 'amq.topic', 'a.*');
    const confirm = await scope.sluice.publish('amq.topic', 'a.b', 'x');
    expect(confirm.targets.map((target) => target.queue)).toEqual(['q']);
  });
});

describe('listeners and callbacks', () => {
  it('on and off refuse an unknown event or a listener that is not a function', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    const consumer = await sluice.consume('q', () => undefined);
    for (const target of [sluice, consumer] as const) {
      const call = (method: 'on' | 'off', name: unknown, listener: unknown): unknown => {
        const fn = Reflect.get(target, method) as (...args: unknown[]) => unknown;
        return Reflect.apply(fn, target, [name, listener]);
      };
      const on = (name: unknown, listener: unknown): unknown => call('on', name, listener);
      const off = (name: unknown, listener: unknown): unknown => call('off', name, listener);
      expect(() => on('connection.lost', 42)).toThrow(InvalidArgumentError);
      expect(() => on('no.such.event', () => undefined)).toThrow(InvalidArgumentError);
      expect(() => off(Symbol('x'), () => undefined)).toThrow(InvalidArgumentError);
      expect(on('connection.lost', () => undefined)).toBe(target);
    }
    await consumer.close();
  });

  it('a replay whose onProgress throws or rejects replays every message all the same', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('from');
    await sluice.declareQueue('to');
    await sluice.publishBatch(
      Array.from({ length: 4 }, (_, i) => ({ exchange: '', routingKey: 'from', body: i })),
    );
    let calls = 0;
    const result = await sluice.dlq.replay('from', {
      toQueue: 'to',
      onProgress: () => {
        calls++;
        if (calls % 2 === 0) return Promise.reject(new Error('progress rejected')) as never;
        throw new Error('progress threw');
      },
    });
    expect(result).toMatchObject({ replayed: 4, skipped: 0, failed: 0 });
    expect(calls).toBe(4);
    expect(await sluice.inspectQueue('from')).toMatchObject({ messages: 0, deadLetterBacklog: 0 });
    expect((await sluice.inspectQueue('to')).messages).toBe(4);
  });
});
