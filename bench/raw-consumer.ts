/**
 * The consumer of the raw baselines, as a competent engineer writes it by hand: XREADGROUP
 * COUNT {@link PREFETCH} BLOCK on its own connection, the batch's handlers run concurrently,
 * then one XACK and one XDEL with all of the batch's ids, pipelined on a second connection,
 * before the next read. At most {@link PREFETCH} entries are unacked at any time.
 */
import type { Redis } from 'ioredis';
import { PREFETCH, execPipeline, type BenchBody } from './support.js';

const GROUP = 'bench';
const CONSUMER = 'bench-1';
const BLOCK_MS = 2000;

/** Creates the consumer group (and the stream) that {@link rawConsume} reads. */
export async function createRawGroup(commands: Redis, stream: string): Promise<void> {
  await commands.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM');
}

/** The entries of an XREADGROUP reply on one stream (strings), or none after a BLOCK timeout. */
function entriesOf(reply: unknown): [id: string, fields: string[]][] {
  if (reply === null) return [];
  const [stream] = reply as [[name: string, entries: [string, string[]][]]];
  return stream[1];
}

function bodyOf(fields: readonly string[]): BenchBody {
  const value = fields[fields.indexOf('body') + 1];
  if (value === undefined) throw new Error('stream entry without a body field');
  return JSON.parse(value) as BenchBody;
}

/**
 * Consumes `messages` entries of `stream` (reading on `reader`, acking on `commands`), with
 * `handle` as the handler of each one's body; resolves once the last batch is acked.
 */
export async function rawConsume(
  reader: Redis,
  commands: Redis,
  stream: string,
  messages: number,
  handle: (body: BenchBody) => Promise<void>,
): Promise<void> {
  let handled = 0;
  while (handled < messages) {
    const reply = await reader.xreadgroup(
      'GROUP',
      GROUP,
      CONSUMER,
      'COUNT',
      PREFETCH,
      'BLOCK',
      BLOCK_MS,
      'STREAMS',
      stream,
      '>',
    );
    const entries = entriesOf(reply);
    if (entries.length === 0) continue;
    await Promise.all(entries.map(([, fields]) => handle(bodyOf(fields))));
    const ids = entries.map(([id]) => id);
    await execPipeline(
      commands
        .pipeline()
        .xack(stream, GROUP, ...ids)
        .xdel(stream, ...ids),
    );
    handled += ids.length;
  }
}
