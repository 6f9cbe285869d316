import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { matchHeaders } from '../../src/routing/headers.js';
import { Router } from '../../src/routing/router.js';
import { matchTopic, TopicTrie } from '../../src/routing/topic.js';
import type { BindingArguments } from '../../src/routing/headers.js';
import type {
  BindingRecord,
  ExchangeRecord,
  ExchangeType,
  TopologySnapshot,
} from '../../src/topology/types.js';
import type { Headers, HeaderValue } from '../../src/message/headers.js';

interface ExchangeSpec {
  readonly type: ExchangeType;
  readonly alternateExchange?: string;
}

interface BindingSpec {
  readonly source: string;
  readonly destination: string;
  readonly destinationType?: 'queue' | 'exchange';
  readonly bindingKey?: string;
  readonly arguments?: BindingArguments;
}

/** A snapshot from a terse description; bindings go to queues unless told otherwise. */
function snapshot(
  exchanges: Readonly<Record<string, ExchangeSpec>>,
  queues: readonly string[],
  bindings: readonly BindingSpec[],
): TopologySnapshot {
  return {
    version: 7,
    exchanges: new Map(
      Object.entries(exchanges).map(([name, spec]): [string, ExchangeRecord] => [
        name,
        { name, durable: true, internal: false, ...spec },
      ]),
    ),
    queues: new Map(queues.map((name) => [name, { name, durable: true }])),
    bindings: bindings.map((binding): BindingRecord => ({
      destinationType: 'queue',
      bindingKey: '',
      arguments: {},
      ...binding,
    })),
  };
}

const NO_HEADERS: Headers = {};
const QUEUE_NAMES = ['q1', 'q2', 'q3', 'q4'];

// Small alphabets so that random keys collide with random patterns often.
const word = fc.constantFrom('a', 'b', 'ab', '');
const patternWord = fc.oneof(word, fc.constantFrom('*', '#', 'a*'));
const routingKey = fc.array(word, { maxLength: 6 }).map((words) => words.join('.'));
const bindingKey = fc.array(patternWord, { maxLength: 5 }).map((words) => words.join('.'));

const headerValue = fc.constantFrom<HeaderValue>('v1', '1', 1, 2, true, false);
const headerKey = fc.constantFrom('h1', 'h2', 'x-h');
const headerTable = fc
  .array(fc.tuple(headerKey, headerValue), { maxLength: 4 })
  .map((entries): Headers => Object.fromEntries(entries));
const bindingArguments = fc
  .tuple(fc.option(fc.constantFrom('all', 'any', 'all-with-x', 'any-with-x')), headerTable)
  .map(([mode, table]): BindingArguments =>
    mode === null ? table : { ...table, 'x-match': mode },
  );

/** What a router must return: every queue whose binding matches, sorted, each once. */
function expectedQueues<A>(
  bindings: readonly (readonly [A, string])[],
  matches: (argument: A) => boolean,
): string[] {
  return [...new Set(bindings.filter(([argument]) => matches(argument)).map(([, q]) => q))].sort();
}

describe('topic matching', () => {
  it('a TopicTrie returns exactly the values whose binding key matchTopic accepts', () => {
    fc.assert(
      fc.property(fc.array(bindingKey, { maxLength: 12 }), routingKey, (keys, key) => {
        const trie = new TopicTrie<number>();
        keys.forEach((pattern, index) => trie.add(pattern, index));
        const expected = keys.flatMap((pattern, index) =>
          matchTopic(pattern, key) ? [index] : [],
        );
        expect(trie.match(key).sort((a, b) => a - b)).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('returns a value once even when several binding keys carrying it match', () => {
    const trie = new TopicTrie<string>();
    for (const pattern of ['a.*', 'a.#', '#', '#.b', '*.*']) trie.add(pattern, 'q');
    expect(trie.match('a.b')).toEqual(['q']);
  });

  it('treats "" as zero words: # matches it, * does not', () => {
    expect(matchTopic('#', '')).toBe(true);
    expect(matchTopic('', '')).toBe(true);
    expect(matchTopic('*', '')).toBe(false);
    expect(matchTopic('*', '.')).toBe(false);
    expect(matchTopic('*.*', '.')).toBe(true);
  });

  it('routes a.# to a', () => {
    expect(matchTopic('a.#', 'a')).toBe(true);
  });

  it('treats a word like a* as a literal', () => {
    expect(matchTopic('a*', 'ab')).toBe(false);
    expect(matchTopic('a*', 'a*')).toBe(true);
  });

  it('matches patterns full of # against long keys without exponential blow-up', () => {
    const pattern = [...Array<string>(40).fill('#'), 'z'].join('.');
    const key = Array<string>(60).fill('a').join('.');
    const trie = new TopicTrie<string>();
    trie.add(pattern, 'q');
    const startedMs = performance.now();
    expect(trie.match(key)).toEqual([]);
    expect(matchTopic(pattern, key)).toBe(false);
    expect(performance.now() - startedMs).toBeLessThan(1000);
  });
});

describe('topic exchange', () => {
  const bindingsArbitrary = fc.array(fc.tuple(bindingKey, fc.constantFrom(...QUEUE_NAMES)), {
    maxLength: 12,
  });
  /** A router of one topic exchange with `bindings` (pattern, queue). */
  const topicRouter = (bindings: readonly (readonly [string, string])[]): Router =>
    new Router(
      snapshot(
        { logs: { type: 'topic' } },
        QUEUE_NAMES,
        bindings.map(([pattern, queue]) => ({
          source: 'logs',
          destination: queue,
          bindingKey: pattern,
        })),
      ),
    );
  /** `router` routes `key` as the pairwise matchTopic loop over `bindings` does. */
  const expectRoutedAsModel = (
    router: Router,
    bindings: readonly (readonly [string, string])[],
    key: string,
  ): void => {
    const expected = expectedQueues(bindings, (pattern) => matchTopic(pattern, key));
    expect(router.route('logs', key, NO_HEADERS)).toEqual(expected);
  };

  it('routes to the queues whose binding keys match, as the pairwise matchTopic loop does', () => {
    fc.assert(
      fc.property(bindingsArbitrary, routingKey, (bindings, key) => {
        expectRoutedAsModel(topicRouter(bindings), bindings, key);
      }),
      { numRuns: 500 },
    );
  });

  it('routes every key of a sequence as the model does, repeats and all', () => {
    fc.assert(
      fc.property(bindingsArbitrary, fc.array(routingKey, { maxLength: 40 }), (bindings, keys) => {
        const router = topicRouter(bindings);
        for (const key of [...keys, ...keys]) expectRoutedAsModel(router, bindings, key);
      }),
      { numRuns: 200 },
    );
  });

  it('routes right once the matches it keeps were emptied (past 1,024 keys)', () => {
    const router = topicRouter([
      ['k.*.even', 'q1'],
      ['k.#', 'q2'],
    ]);
    // 3,000 distinct keys, twice over: the kept matches are emptied and filled again.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 3000; i++) {
        const key = `k.${i}.${i % 2 === 0 ? 'even' : 'odd'}`;
        expect(router.route('logs', key, NO_HEADERS)).toEqual(i % 2 === 0 ? ['q1', 'q2'] : ['q2']);
      }
    }
  });
});

describe('headers exchange', () => {
  it('routes to the queues whose arguments match, as the pairwise matchHeaders loop does', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(bindingArguments, fc.constantFrom(...QUEUE_NAMES)), { maxLength: 8 }),
        headerTable,
        (bindings, headers) => {
          const router = new Router(
            snapshot(
              { events: { type: 'headers' } },
              QUEUE_NAMES,
              bindings.map(([args, queue]) => ({
                source: 'events',
                destination: queue,
                arguments: args,
              })),
            ),
          );
          const expected = expectedQueues(bindings, (args) => matchHeaders(args, headers));
          expect(router.route('events', 'ignored', headers)).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('compares values by type: 1 and "1" differ', () => {
    expect(matchHeaders({ 'x-match': 'all', h: 1 }, { h: '1' })).toBe(false);
    expect(matchHeaders({ 'x-match': 'all', h: 1 }, { h: 1 })).toBe(true);
    expect(matchHeaders({ 'x-match': 'any', h: true }, { h: 'true' })).toBe(false);
  });

  it('treats missing x-match as all', () => {
    expect(matchHeaders({ a: 1, b: 2 }, { a: 1 })).toBe(false);
    expect(matchHeaders({ a: 1, b: 2 }, { a: 1, b: 2, c: 3 })).toBe(true);
  });

  it('with all or any ignores x- keys of the binding and of the message', () => {
    expect(matchHeaders({ 'x-match': 'all', 'x-h': 1 }, {})).toBe(true);
    expect(matchHeaders({ 'x-match': 'any', 'x-h': 1 }, { 'x-h': 1 })).toBe(false);
  });

  it('with all-with-x or any-with-x compares x- keys but never x-match itself', () => {
    expect(matchHeaders({ 'x-match': 'all-with-x', 'x-h': 1 }, {})).toBe(false);
    expect(matchHeaders({ 'x-match': 'all-with-x', 'x-h': 1 }, { 'x-h': 1 })).toBe(true);
    expect(matchHeaders({ 'x-match': 'any-with-x', 'x-h': 1 }, { 'x-h': 1 })).toBe(true);
    expect(matchHeaders({ 'x-match': 'all-with-x' }, {})).toBe(true);
  });

  it('with nothing to compare, all matches every message and any matches none', () => {
    expect(matchHeaders({ 'x-match': 'all' }, {})).toBe(true);
    expect(matchHeaders({ 'x-match': 'any' }, { h1: 1 })).toBe(false);
    expect(matchHeaders({ 'x-match': 'any-with-x' }, { 'x-h': 1 })).toBe(false);
  });
});

describe('direct exchange', () => {
  const router = new Router(
    snapshot(
      { orders: { type: 'direct' } },
      ['created', 'audit', 'shipped'],
      [
        { source: 'orders', destination: 'created', bindingKey: 'order.created' },
        { source: 'orders', destination: 'audit', bindingKey: 'order.created' },
        { source: 'orders', destination: 'audit', bindingKey: 'order.shipped' },
        { source: 'orders', destination: 'shipped', bindingKey: 'order.shipped' },
      ],
    ),
  );

  it('routes to every queue bound with exactly the routing key, sorted', () => {
    expect(router.route('orders', 'order.created', NO_HEADERS)).toEqual(['audit', 'created']);
  });

  it('does not treat binding keys as patterns', () => {
    expect(router.route('orders', 'order.*', NO_HEADERS)).toEqual([]);
  });

  it('routes nowhere when no binding key equals the routing key', () => {
    expect(router.route('orders', 'order.cancelled', NO_HEADERS)).toEqual([]);
  });

  it('reports the snapshot version it was built from', () => {
    expect(router.version).toBe(7);
  });
});

describe('fanout exchange', () => {
  it('routes to every bound queue whatever the routing key, each once', () => {
    const router = new Router(
      snapshot(
        { broadcast: { type: 'fanout' } },
        ['q1', 'q2'],
        [
          { source: 'broadcast', destination: 'q2', bindingKey: 'ignored' },
          { source: 'broadcast', destination: 'q1' },
          { source: 'broadcast', destination: 'q2' },
        ],
      ),
    );
    expect(router.route('broadcast', 'anything', NO_HEADERS)).toEqual(['q1', 'q2']);
  });
});

describe('exchange-to-exchange bindings', () => {
  it('delivers once to a queue reached along both sides of a diamond', () => {
    const router = new Router(
      snapshot(
        { top: { type: 'fanout' }, left: { type: 'topic' }, right: { type: 'direct' } },
        ['q'],
        [
          { source: 'top', destination: 'left', destinationType: 'exchange' },
          { source: 'top', destination: 'right', destinationType: 'exchange' },
          { source: 'left', destination: 'q', bindingKey: 'a.#' },
          { source: 'right', destination: 'q', bindingKey: 'a.b' },
        ],
      ),
    );
    expect(router.route('top', 'a.b', NO_HEADERS)).toEqual(['q']);
  });

  it('filters at every hop with the routing key of the message', () => {
    const router = new Router(
      snapshot(
        { front: { type: 'topic' }, back: { type: 'direct' } },
        ['q'],
        [
          { source: 'front', destination: 'back', destinationType: 'exchange', bindingKey: '#' },
          { source: 'back', destination: 'q', bindingKey: 'exact' },
        ],
      ),
    );
    expect(router.route('front', 'exact', NO_HEADERS)).toEqual(['q']);
    expect(router.route('front', 'other', NO_HEADERS)).toEqual([]);
  });

  it('terminates on cycles and still delivers to the queues on them', () => {
    const router = new Router(
      snapshot(
        { x: { type: 'fanout' }, y: { type: 'fanout' } },
        ['qx', 'qy'],
        [
          { source: 'x', destination: 'y', destinationType: 'exchange' },
          { source: 'y', destination: 'x', destinationType: 'exchange' },
          { source: 'x', destination: 'x', destinationType: 'exchange' },
          { source: 'x', destination: 'qx' },
          { source: 'y', destination: 'qy' },
        ],
      ),
    );
    expect(router.route('x', 'k', NO_HEADERS)).toEqual(['qx', 'qy']);
    expect(router.route('y', 'k', NO_HEADERS)).toEqual(['qx', 'qy']);
  });

  it('skips destinations that are not in the snapshot', () => {
    const router = new Router(
      snapshot(
        { x: { type: 'fanout' } },
        ['q'],
        [
          { source: 'x', destination: 'gone' },
          { source: 'x', destination: 'nowhere', destinationType: 'exchange' },
          { source: 'x', destination: 'q' },
        ],
      ),
    );
    expect(router.route('x', 'k', NO_HEADERS)).toEqual(['q']);
  });
});

describe('alternate exchange', () => {
  const router = new Router(
    snapshot(
      {
        main: { type: 'direct', alternateExchange: 'unrouted' },
        unrouted: { type: 'fanout' },
        hub: { type: 'fanout' },
        loopA: { type: 'direct', alternateExchange: 'loopB' },
        loopB: { type: 'direct', alternateExchange: 'loopA' },
        first: { type: 'direct', alternateExchange: 'second' },
        second: { type: 'direct', alternateExchange: 'unrouted' },
        dangling: { type: 'direct', alternateExchange: 'missing' },
        stale: { type: 'direct', alternateExchange: 'unrouted' },
      },
      ['orders', 'lost'],
      [
        { source: 'main', destination: 'orders', bindingKey: 'order' },
        { source: 'unrouted', destination: 'lost' },
        { source: 'hub', destination: 'main', destinationType: 'exchange' },
        { source: 'stale', destination: 'deleted-queue', bindingKey: 'order' },
      ],
    ),
  );

  it('is not used when a binding matched', () => {
    expect(router.route('main', 'order', NO_HEADERS)).toEqual(['orders']);
  });

  it('receives the messages that no binding matched', () => {
    expect(router.route('main', 'other', NO_HEADERS)).toEqual(['lost']);
  });

  it('is used by an exchange reached through an exchange-to-exchange binding', () => {
    expect(router.route('hub', 'other', NO_HEADERS)).toEqual(['lost']);
  });

  it('chains when the alternate exchange routes nothing either', () => {
    expect(router.route('first', 'k', NO_HEADERS)).toEqual(['lost']);
  });

  it('terminates when alternate exchanges form a cycle', () => {
    expect(router.route('loopA', 'k', NO_HEADERS)).toEqual([]);
  });

  it('routes nowhere when the alternate exchange does not exist', () => {
    expect(router.route('dangling', 'k', NO_HEADERS)).toEqual([]);
  });

  it('is not used when the matched binding leads to a missing queue, as in RabbitMQ', () => {
    expect(router.route('stale', 'order', NO_HEADERS)).toEqual([]);
  });
});

describe('default exchange', () => {
  const router = new Router(snapshot({}, ['jobs'], []));

  it('routes to the queue named by the routing key', () => {
    expect(router.route('', 'jobs', NO_HEADERS)).toEqual(['jobs']);
  });

  it('routes nowhere when no queue has that name', () => {
    expect(router.route('', 'missing', NO_HEADERS)).toEqual([]);
  });
});

describe('unknown exchange', () => {
  it('routes nowhere', () => {
    expect(new Router(snapshot({}, ['q'], [])).route('nope', 'q', NO_HEADERS)).toEqual([]);
  });
});
