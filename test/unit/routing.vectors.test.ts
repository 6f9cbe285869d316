import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { matchHeaders } from '../../src/routing/headers.js';
import { matchTopic, TopicTrie } from '../../src/routing/topic.js';
import type { BindingArguments } from '../../src/routing/headers.js';
import type { Headers, HeaderValue } from '../../src/message/headers.js';

// Decisions recorded from a real RabbitMQ 3.10 broker (see the fixture's README in
// shared/vectors): the matchers must agree with every one of them.
type TopicCase = readonly [bindingKey: string, routingKey: string, routed: boolean];
type HeadersCase = readonly [bindingArguments: BindingArguments, headers: Headers, routed: boolean];

const isHeaderValue = (value: unknown): value is HeaderValue =>
  typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';

const isTable = (value: unknown): value is Readonly<Record<string, HeaderValue>> =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  Object.values(value).every(isHeaderValue);

const isTopicCase = (value: unknown): value is TopicCase =>
  Array.isArray(value) &&
  value.length === 3 &&
  typeof value[0] === 'string' &&
  typeof value[1] === 'string' &&
  typeof value[2] === 'boolean';

const isHeadersCase = (value: unknown): value is HeadersCase =>
  Array.isArray(value) &&
  value.length === 3 &&
  isTable(value[0]) &&
  isTable(value[1]) &&
  typeof value[2] === 'boolean';

function loadVectors(): { topic: TopicCase[]; headers: HeadersCase[] } {
  const path = new URL('../fixtures/rabbitmq-routing.json', import.meta.url);
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (typeof parsed !== 'object' || parsed === null) throw new Error('vectors: not an object');
  const { topic, headers } = parsed as { topic?: unknown; headers?: unknown };
  if (!Array.isArray(topic) || !topic.every(isTopicCase)) throw new Error('vectors: bad topic');
  if (!Array.isArray(headers) || !headers.every(isHeadersCase)) {
    throw new Error('vectors: bad headers');
  }
  return { topic, headers };
}

const vectors = loadVectors();

/** The cases where `decide` disagrees with the broker, described for a failure message. */
function disagreements<C extends readonly [unknown, unknown, boolean]>(
  cases: readonly C[],
  decide: (testCase: C) => boolean,
): string[] {
  return cases
    .filter((testCase) => decide(testCase) !== testCase[2])
    .map(
      ([binding, message, routed]) =>
        `binding ${JSON.stringify(binding)}, message ${JSON.stringify(message)}: ` +
        `broker ${routed ? 'routed' : 'did not route'}`,
    );
}

function expectNoDisagreements(found: readonly string[]): void {
  expect(found, `${found.length} disagreements, first: \n${found.slice(0, 10).join('\n')}`).toEqual(
    [],
  );
}

describe('recorded RabbitMQ 3.10 routing decisions', () => {
  it('holds the full set of cases', () => {
    expect(vectors.topic).toHaveLength(18000);
    expect(vectors.headers).toHaveLength(9600);
  });

  describe('topic exchange', () => {
    it('matchTopic agrees with the broker on every case', () => {
      expectNoDisagreements(
        disagreements(vectors.topic, ([bindingKey, routingKey]) =>
          matchTopic(bindingKey, routingKey),
        ),
      );
    });

    it('a TopicTrie holding the binding key agrees with the broker on every case', () => {
      const tries = new Map<string, TopicTrie<string>>();
      const trieFor = (bindingKey: string): TopicTrie<string> => {
        let trie = tries.get(bindingKey);
        if (trie === undefined) {
          trie = new TopicTrie();
          trie.add(bindingKey, bindingKey);
          tries.set(bindingKey, trie);
        }
        return trie;
      };
      expectNoDisagreements(
        disagreements(vectors.topic, ([bindingKey, routingKey]) => {
          const matched = trieFor(bindingKey).match(routingKey);
          return matched.length === 1 && matched[0] === bindingKey;
        }),
      );
    });

    it('a TopicTrie holding every binding key agrees with the broker on every case', () => {
      const trie = new TopicTrie<string>();
      for (const [bindingKey] of vectors.topic) trie.add(bindingKey, bindingKey);
      const matchesByRoutingKey = new Map<string, ReadonlySet<string>>();
      expectNoDisagreements(
        disagreements(vectors.topic, ([bindingKey, routingKey]) => {
          let matches = matchesByRoutingKey.get(routingKey);
          if (matches === undefined) {
            matches = new Set(trie.match(routingKey));
            matchesByRoutingKey.set(routingKey, matches);
          }
          return matches.has(bindingKey);
        }),
      );
    });
  });

  describe('headers exchange', () => {
    it('matchHeaders agrees with the broker on every case', () => {
      expectNoDisagreements(
        disagreements(vectors.headers, ([bindingArguments, headers]) =>
          matchHeaders(bindingArguments, headers),
        ),
      );
    });
  });
});
