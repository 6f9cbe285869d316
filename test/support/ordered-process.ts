/**
 * An ordered consumer in its own process, for the crash and pause tests of per-key ordering. It
 * handles changes `{ row, version }` of `queue` and keeps, per row, keys in the row's own slot
 * ({@link rowKeys}):
 * - `target`: the version applied last and the fencing token it was applied under. A change is
 *   applied only under a token no lower than that one: a fenced write, as a store that guards
 *   itself with the token does, so a deposed owner's late write is refused;
 * - `log`, in order: `applied:<version>:<pid>:<token>`, `fenced:<version>:<pid>:<token>` (a
 *   write refused), and `acked:<version>:<pid>` once the ack of a change was confirmed;
 * - `running`: the pid whose handler of the row runs now. A handler that finds there another
 *   pid that is not in `<namespace>:gone` (the pids the test killed or paused) pushes the
 *   overlap to `<namespace>:violations`.
 * It counts the changes applied in `<namespace>:applied`, pushes settlements refused as stale to
 * `<namespace>:stale` (`<row>:<version>:<pid>:<error code>`) and partition events to
 * `<namespace>:events` (`<pid>:assigned:<partition>:<token>`, `<pid>:revoked:<partition>:<reason>`)
 * and the consumer's `readError`s to `<namespace>:errors`.
 * A first delivery of version `holdVersion` (0: none) pushes `<row>:<version>:<pid>` to
 * `<namespace>:held` once it runs, then waits until `<namespace>:go` exists; with `failEvery` n
 * (0: none), the first delivery of about one change in n fails (and is retried in place).
 * Usage: ordered-process.ts <url> <namespace> <queue> <concurrency> <holdVersion> <failEvery>
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Sluice, SluiceError, type Delivery } from '../../src/index.js';

/** One change of one row, as the ordering tests publish it (partition key: the row). */
export interface Change {
  readonly row: string;
  readonly version: number;
}

/** The keys this program keeps for `row`, in one slot. */
export function rowKeys(
  namespace: string,
  row: string,
): { readonly target: string; readonly log: string; readonly running: string } {
  const prefix = `${namespace}:row:{${row}}`;
  return { target: `${prefix}:target`, log: `${prefix}:log`, running: `${prefix}:running` };
}

/** KEYS: target log; ARGV: version token pid. Returns 1 when applied, 0 when fenced off. */
const APPLY = `
local last = tonumber(redis.call('HGET', KEYS[1], 'token') or '0')
local record = ARGV[1] .. ':' .. ARGV[3] .. ':' .. ARGV[2]
if tonumber(ARGV[2]) < last then
  redis.call('RPUSH', KEYS[2], 'fenced:' .. record)
  return 0
end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'token', ARGV[2])
redis.call('RPUSH', KEYS[2], 'applied:' .. record)
return 1`;

/** KEYS: running; ARGV: pid. Clears the marker if it is still this pid's. */
const LEAVE = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end`;

/** Whether the first delivery of this change fails: about one change in `failEvery`. */
function failsOnce(change: Change, failEvery: number): boolean {
  if (failEvery === 0) return false;
  let sum = change.version;
  for (const char of change.row) sum += char.charCodeAt(0);
  return sum % failEvery === 0;
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  await main(process.argv.slice(2));
}

async function main(args: string[]): Promise<void> {
  const [url, namespace, queue, concurrency, holdVersion, failEvery] = args;
  if (
    url === undefined ||
    namespace === undefined ||
    queue === undefined ||
    concurrency === undefined ||
    holdVersion === undefined ||
    failEvery === undefined
  ) {
    throw new Error(
      'usage: ordered-process.ts <url> <namespace> <queue> <concurrency> <holdVersion> <failEvery>',
    );
  }
  const pid = String(process.pid);
  const redis = new Redis(url);
  const record = (command: Promise<unknown>): void => {
    command.catch((error: unknown) =>
      process.stderr.write(`ordered-process ${pid}: ${String(error)}\n`),
    );
  };

  const handle = async (msg: Delivery<Change>): Promise<void> => {
    const { row, version } = msg.body;
    const keys = rowKeys(namespace, row);
    const holder = await redis.set(keys.running, pid, 'GET');
    if (holder !== null && (await redis.sismember(`${namespace}:gone`, holder)) === 0) {
      await redis.rpush(
        `${namespace}:violations`,
        `${pid} ran ${row} v${version} while ${holder} ran it`,
      );
    }
    try {
      if (version === Number(holdVersion) && msg.deliveryCount === 1) {
        await redis.rpush(`${namespace}:held`, `${row}:${version}:${pid}`);
        while ((await redis.exists(`${namespace}:go`)) === 0) await sleep(20);
      }
      if (msg.deliveryCount === 1 && failsOnce(msg.body, Number(failEvery))) {
        throw new Error(`failing ${row} v${version} once`);
      }
      const token = String(msg.fencingToken ?? 0);
      const applied = await redis.eval(APPLY, 2, keys.target, keys.log, version, token, pid);
      if (applied === 1) await redis.incr(`${namespace}:applied`);
    } finally {
      await redis.eval(LEAVE, 1, keys.running, pid);
    }
    // Acked as an automatic ack would be (in this tick's flush, the key moving on at once), but
    // with a promise that says when Redis confirmed it, or that it was refused.
    record(
      msg.ack().then(
        () => redis.rpush(keys.log, `acked:${version}:${pid}`),
        (error: unknown) => {
          const code = error instanceof SluiceError ? error.code : String(error);
          return redis.rpush(`${namespace}:stale`, `${row}:${version}:${pid}:${code}`);
        },
      ),
    );
  };

  const sluice = await Sluice.connect({ url, namespace });
  const consumer = await sluice.consume<Change>(queue, handle, {
    ordered: true,
    concurrency: Number(concurrency),
    retry: { initialDelayMs: 20 },
  });
  consumer.on('partition.assigned', ({ partition, token }) => {
    record(redis.rpush(`${namespace}:events`, `${pid}:assigned:${partition}:${token}`));
  });
  consumer.on('partition.revoked', ({ partition, reason }) => {
    record(redis.rpush(`${namespace}:events`, `${pid}:revoked:${partition}:${reason}`));
  });
  consumer.on('readError', (error) => {
    record(redis.rpush(`${namespace}:errors`, `${pid}: ${error.code} ${error.message}`));
  });
  process.stdout.write('ready\n');
}
