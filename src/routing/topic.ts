/**
 * Topic exchange matching with RabbitMQ's semantics: keys are split into words on
 * `.`, words may be empty (`"a..b"` is three words), `""` is zero words, `*` in a
 * binding key matches exactly one word, `#` matches zero or more words, and any other
 * word (including `a*` or `#a`) matches only itself.
 */

/**
 * Splits a routing or binding key into words the way RabbitMQ's
 * `rabbit_exchange_type_topic:split_topic_key` does. `String.split` alone would turn
 * `""` into one empty word, but the broker treats the empty key as zero words (so
 * binding `*` does not match it while `#` does).
 */
export function splitTopicWords(key: string): string[] {
  return key === '' ? [] : key.split('.');
}

/**
 * Whether a topic binding key matches a routing key, exactly as RabbitMQ decides it.
 * For one-off checks; an exchange with many bindings compiles them into a trie. Written
 * independently of the trie (a dynamic programme over word positions, quadratic at worst) so
 * that each can be tested against the other.
 */
export function matchTopic(bindingKey: string, routingKey: string): boolean {
  const pattern = splitTopicWords(bindingKey);
  const words = splitTopicWords(routingKey);
  // rest[j]: whether the pattern words after the current one match words[j..].
  // Starting from the empty pattern suffix, which matches only the empty word suffix.
  let rest = Array.from({ length: words.length + 1 }, (_, j) => j === words.length);
  for (let i = pattern.length - 1; i >= 0; i--) {
    const patternWord = pattern[i];
    const current = new Array<boolean>(words.length + 1).fill(false);
    for (let j = words.length; j >= 0; j--) {
      const word = words[j];
      if (patternWord === '#') {
        // Match zero words here, or swallow words[j] and stay on this `#`.
        current[j] = rest[j] === true || (word !== undefined && current[j + 1] === true);
      } else {
        current[j] =
          word !== undefined &&
          (patternWord === '*' || patternWord === word) &&
          rest[j + 1] === true;
      }
    }
    rest = current;
  }
  return rest[0] === true;
}

interface TrieNode<T> {
  /** Dense id, used to memoize (node, word index) states during a match. */
  readonly id: number;
  /** Reached through a `#` edge: such a node may also swallow further words itself. */
  readonly isHash: boolean;
  readonly literal: Map<string, TrieNode<T>>;
  star: TrieNode<T> | undefined;
  hash: TrieNode<T> | undefined;
  /** Values of the binding keys that end at this node. */
  readonly values: Set<T>;
}

/**
 * Topic bindings compiled into a word trie (as RabbitMQ's topic exchange stores them),
 * so that routing walks the trie instead of testing every binding key in turn.
 */
export class TopicTrie<T> {
  private readonly root: TrieNode<T>;
  private nodeCount = 0;
  private hasHash = false;

  constructor() {
    this.root = this.createNode(false);
  }

  /** Adds a binding key; `match` returns `value` for every routing key it matches. */
  add(bindingKey: string, value: T): void {
    let node = this.root;
    for (const word of splitTopicWords(bindingKey)) {
      node = this.child(node, word);
    }
    node.values.add(value);
  }

  /** The values of all binding keys matching `routingKey`, each once, in no defined order. */
  match(routingKey: string): T[] {
    const words = splitTopicWords(routingKey);
    const found = new Set<T>();
    // Without `#` a state (node, word index) has a single path to it: the node's
    // depth is the index. With `#` many paths lead to the same state (think
    // `#.#.#.a` against a long key), and exploring each again is exponential, so
    // every state is visited once. Each state yields the same values however it
    // was reached, so skipping a revisit loses nothing.
    const visited = this.hasHash ? new Set<number>() : undefined;
    this.visit(this.root, 0, words, found, visited);
    return [...found];
  }

  private visit(
    node: TrieNode<T>,
    index: number,
    words: readonly string[],
    found: Set<T>,
    visited: Set<number> | undefined,
  ): void {
    if (visited !== undefined) {
      const state = node.id * (words.length + 1) + index;
      if (visited.has(state)) return;
      visited.add(state);
    }
    // `#` may match zero words, so its node is entered without consuming one.
    if (node.hash !== undefined) this.visit(node.hash, index, words, found, visited);
    const word = words[index];
    if (word === undefined) {
      for (const value of node.values) found.add(value);
      return;
    }
    if (node.isHash) this.visit(node, index + 1, words, found, visited);
    if (node.star !== undefined) this.visit(node.star, index + 1, words, found, visited);
    const literal = node.literal.get(word);
    if (literal !== undefined) this.visit(literal, index + 1, words, found, visited);
  }

  private child(node: TrieNode<T>, word: string): TrieNode<T> {
    if (word === '*') return (node.star ??= this.createNode(false));
    if (word === '#') {
      this.hasHash = true;
      return (node.hash ??= this.createNode(true));
    }
    let next = node.literal.get(word);
    if (next === undefined) {
      next = this.createNode(false);
      node.literal.set(word, next);
    }
    return next;
  }

  private createNode(isHash: boolean): TrieNode<T> {
    return {
      id: this.nodeCount++,
      isHash,
      literal: new Map(),
      star: undefined,
      hash: undefined,
      values: new Set(),
    };
  }
}
