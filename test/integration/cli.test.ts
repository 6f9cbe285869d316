/**
 * The `sluice` command as users run it: dist/cli/main.js in a child process, against the
 * project's Redis, in a namespace of its own per test. Standard input is a closed pipe, never a
 * terminal, so destructive commands must be refused without --yes.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { QueueInfo, Sluice } from '../../src/index.js';
import { redisUrl, waitFor } from '../support/index.js';
import { CLI, run, sluiceCli, startCli, type CliRun } from '../support/cli.js';
import { declareWorkWithDeadLetters, useSluice } from '../support/sluice.js';

const { version } = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { version: string };

/** What a run printed, for failure messages. */
function shown(run: CliRun): string {
  return `exit ${run.code}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`;
}

/** Expects the run to have exited with `code`; resolves with its stdout. */
function exited(run: CliRun, code: number): string {
  expect(run.code, shown(run)).toBe(code);
  return run.stdout;
}

/** Topic `orders` to `work` (dead-lettering to fanout `dlx`, bound to `work.dlq`) and `audit` on `#`. */
async function declareShop(sluice: Sluice): Promise<void> {
  await declareWorkWithDeadLetters(sluice);
  await sluice.declareQueue('audit');
  await sluice.bindQueue('audit', 'orders', '#');
}

async function publishOrders(sluice: Sluice, n: number): Promise<void> {
  await sluice.publishBatch(
    Array.from({ length: n }, (_, i) => ({
      exchange: 'orders',
      routingKey: 'order.created',
      body: { i },
    })),
  );
}

describe('sluice command line', () => {
  it('prints its version and says in --help how to connect and what exit codes mean', async () => {
    const { namespace } = await useSluice();
    expect(exited(await sluiceCli(namespace, ['--version']), 0).trim()).toBe(version);
    const help = exited(await sluiceCli(namespace, ['--help']), 0);
    expect(help).toContain('env: SLUICE_URL');
    expect(help).toContain('env: SLUICE_NAMESPACE');
    for (const command of [
      'topology',
      'queues',
      'queue',
      'peek',
      'publish',
      'move',
      'dlq',
      'dashboard',
    ])
      expect(help).toMatch(new RegExp(`^  ${command}\\b`, 'mu'));
    expect(help).toContain('3  not found');
    expect(help).toContain('4  refused');
  });

  it('exits with 2 on a usage error, before connecting', async () => {
    const { namespace } = await useSluice();
    const unknown = await sluiceCli(namespace, ['frobnicate']);
    expect(unknown.code, shown(unknown)).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    const count = await sluiceCli(namespace, ['peek', 'work', '--count', 'many']);
    expect(count.code, shown(count)).toBe(2);
    expect(count.stderr).toContain('expected a positive integer');
    const name = await sluiceCli(namespace, ['queue', 'inspect', '']);
    expect(name.code, shown(name)).toBe(2);
    const url = await sluiceCli(namespace, ['--url', 'http://x', 'queues'], { bare: true });
    expect(url.code, shown(url)).toBe(2);
  });

  it('exits with 2 on a value that sluice refuses (INVALID_ARGUMENT), with one line on stderr', async () => {
    const { sluice, namespace } = await useSluice();
    await declareShop(sluice);
    for (const args of [
      ['publish', 'bad:exchange', 'k', '{}'],
      ['dlq', 'list', 'work.dlq', '--after', 'not-a-stream-id'],
    ]) {
      const refused = await sluiceCli(namespace, args);
      expect(refused.code, shown(refused)).toBe(2);
      expect(refused.stderr.trim()).toMatch(/^error: INVALID_ARGUMENT: [^\n]+$/u);
    }
  });

  it('ends quietly with 0 when its reader stops early (| head)', async () => {
    const { sluice, namespace } = await useSluice();
    await sluice.declareQueue('big');
    await sluice.publishBatch(
      Array.from({ length: 500 }, (_, i) => ({
        exchange: '',
        routingKey: 'big',
        body: { i, padding: 'x'.repeat(1000) },
      })),
    );
    // 500 KiB of output: far more than a pipe holds, so writing goes on after head has exited.
    const command = `"${process.execPath}" "${CLI}" --url "${redisUrl()}" --namespace ${namespace} peek big --count 500 | head -n 1`;
    const piped = await run('bash', ['-c', `set -o pipefail; ${command}`]);
    expect(piped.code, shown(piped)).toBe(0);
    expect(piped.stderr).toBe('');
    expect(piped.stdout.split('\n')).toHaveLength(2);
  });

  it('exits with 3 when the queue does not exist, with one line on stderr', async () => {
    const { namespace } = await useSluice();
    const run = await sluiceCli(namespace, ['queue', 'inspect', 'ghost']);
    expect(run.code, shown(run)).toBe(3);
    expect(run.stderr.trim()).toBe("error: NOT_FOUND: queue 'ghost' does not exist");
  });

  it('exits with 1 when Redis is unreachable', async () => {
    const { namespace } = await useSluice();
    const run = await sluiceCli(namespace, ['--url', 'redis://127.0.0.1:1', 'queues'], {
      bare: true,
    });
    expect(run.code, shown(run)).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('connects as SLUICE_URL and SLUICE_NAMESPACE say', async () => {
    const { sluice, namespace } = await useSluice();
    await sluice.declareQueue('from-env');
    const run = await sluiceCli(namespace, ['queue', 'inspect', 'from-env', '--json'], {
      bare: true,
      env: { SLUICE_URL: redisUrl(), SLUICE_NAMESPACE: namespace },
    });
    expect(JSON.parse(exited(run, 0))).toMatchObject({ name: 'from-env', messages: 0 });
  });

  it('shows the topology as a tree of exchanges and their bindings, and as JSON', async () => {
    const { sluice, namespace } = await useSluice();
    await declareShop(sluice);
    const tree = exited(await sluiceCli(namespace, ['topology']), 0);
    expect(tree).toContain('orders (topic)');
    expect(tree).toMatch(/[├└]─ queue audit {2}#/u);
    expect(tree).toMatch(/[├└]─ queue work {2}order\.\*/u);
    expect(tree).toMatch(/dlx \(fanout\)\n[│ ]*└─ queue work\.dlq/u);
    const json = JSON.parse(exited(await sluiceCli(namespace, ['topology', '--json']), 0)) as {
      exchanges: { name: string; type: string }[];
      bindings: { source: string; destination: string; bindingKey: string }[];
    };
    expect(json.exchanges).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'orders', type: 'topic' })]),
    );
    expect(json.bindings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ source: 'orders', destination: 'work', bindingKey: 'order.*' }),
      ]),
    );
  });

  it('lists queues with their counts, as a table and as JSON', async () => {
    const { sluice, namespace } = await useSluice();
    await declareShop(sluice);
    await publishOrders(sluice, 3);
    const table = exited(await sluiceCli(namespace, ['queues']), 0).split('\n');
    expect(table[0]).toMatch(/^queue +ready +unacked +delayed +lag +consumers +publish\/s/u);
    // Lag is the age of the oldest message; the rates are measured over --rate-interval.
    expect(table.find((line) => line.startsWith('work '))).toMatch(
      /^work +3 +0 +0 +[\d.]+s +0 +0 +0 +0 +0 +0$/u,
    );
    const json = JSON.parse(
      exited(await sluiceCli(namespace, ['queues', '--json', '--rate-interval', '200']), 0),
    ) as { name: string; ready: number; publishRate: number | null }[];
    expect(json.every((queue) => queue.publishRate === 0)).toBe(true);
    expect(json.map((queue) => [queue.name, queue.ready])).toEqual(
      expect.arrayContaining([
        ['audit', 3],
        ['work', 3],
        ['work.dlq', 0],
      ]),
    );
  });

  it('publishes from an argument, a file of headers and stdin, and peeks without consuming', async () => {
    const { sluice, namespace } = await useSluice();
    await declareShop(sluice);
    const published = await sluiceCli(namespace, [
      'publish',
      'orders',
      'order.created',
      '{"id":42}',
      '--content-type',
      'application/json',
      '--header',
      'source=cli',
      '--json',
    ]);
    const confirm = JSON.parse(exited(published, 0)) as { messageId: string; targets: unknown[] };
    expect(confirm.targets).toHaveLength(2);
    exited(await sluiceCli(namespace, ['publish', '', 'work'], { input: 'from stdin' }), 0);
    const peeked = exited(await sluiceCli(namespace, ['peek', 'work', '--json']), 0)
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { messageId: string; body: unknown; headers: unknown });
    expect(peeked).toEqual([
      expect.objectContaining({
        messageId: confirm.messageId,
        body: { id: 42 },
        headers: { source: 'cli' },
      }),
      expect.objectContaining({ body: 'from stdin' }),
    ]);
    expect(exited(await sluiceCli(namespace, ['peek', 'work', '--count', '1']), 0)).toMatch(
      new RegExp(
        `^\\d+-\\d+  p0  ${confirm.messageId}  orders order.created  \\{"id":42\\}\\n$`,
        'u',
      ),
    );
    expect((await sluice.inspectQueue('work')).messages).toBe(2);

    const notJson = await sluiceCli(namespace, [
      'publish',
      'orders',
      'x',
      '{',
      '--content-type',
      'application/json',
    ]);
    expect(notJson.code, shown(notJson)).toBe(2);
    const unroutable = await sluiceCli(namespace, ['publish', '', 'nowhere', 'y', '--mandatory']);
    expect(unroutable.code, shown(unroutable)).toBe(1);
    expect(unroutable.stderr).toContain('UNROUTABLE');
  });

  it('refuses destructive commands without --yes when stdin is not a terminal, with exit 4', async () => {
    const { sluice, namespace } = await useSluice();
    await declareShop(sluice);
    await publishOrders(sluice, 2);
    for (const args of [
      ['queue', 'purge', 'work'],
      ['queue', 'delete', 'work'],
      ['dlq', 'purge', 'work'],
      ['dlq', 'replay', 'work'],
      ['move', 'work', 'audit'],
    ]) {
      const run = await sluiceCli(namespace, args);
      expect(run.code, `${args.join(' ')}: ${shown(run)}`).toBe(4);
      expect(run.stderr).toContain('pass --yes');
    }
    expect((await sluice.inspectQueue('work')).messages).toBe(2);
    expect((await sluice.inspectQueue('audit')).messages).toBe(2);
  });

  it('asks on a terminal before purging, and purges only on yes', async () => {
    const { sluice, namespace } = await useSluice();
    await declareShop(sluice);
    await publishOrders(sluice, 3);
    // script(1) gives the command a terminal, answering the prompt with what it reads.
    const onTerminal = async (answer: string): Promise<CliRun> => {
      const command = [process.execPath, CLI, '--url', redisUrl(), '--namespace', namespace];
      return run('script', ['-qec', `${command.join(' ')} queue purge work`, '/dev/null'], {
        input: answer,
      });
    };
    const declined = await onTerminal('n\n');
    expect(declined.code, shown(declined)).toBe(4);
    expect(declined.stdout).toContain("purge 3 ready messages of queue 'work'? [y/N]");
    expect((await sluice.inspectQueue('work')).messages).toBe(3);
    const confirmed = await onTerminal('y\n');
    expect(confirmed.code, shown(confirmed)).toBe(0);
    expect(confirmed.stdout).toContain('purged 3');
    expect((await sluice.inspectQueue('work')).messages).toBe(0);
  });

  it('shows a progress bar on a terminal while it moves', async () => {
    const { sluice, namespace } = await useSluice();
    await sluice.declareQueue('old');
    await sluice.declareQueue('new');
    await sluice.publishBatch(
      Array.from({ length: 200 }, (_, i) => ({ exchange: '', routingKey: 'old', body: { i } })),
    );
    const command = [process.execPath, CLI, '--url', redisUrl(), '--namespace', namespace];
    const moved = await run('script', [
      '-qec',
      `${command.join(' ')} move old new --yes`,
      '/dev/null',
    ]);
    expect(moved.code, shown(moved)).toBe(0);
    // cli-progress's bar, drawn on the terminal (script(1) passes it through to stdout).
    expect(moved.stdout).toMatch(/100% \| ETA: 0s \| 200\/200/u);
    expect(moved.stdout).toContain('moved 200, skipped 0');
    expect((await sluice.inspectQueue('new')).messages).toBe(200);
  });

  it('inspects, purges and deletes a queue with --yes', async () => {
    const { sluice, namespace } = await useSluice();
    await declareShop(sluice);
    await publishOrders(sluice, 4);
    const info = JSON.parse(
      exited(await sluiceCli(namespace, ['queue', 'inspect', 'work', '--json']), 0),
    ) as {
      messages: number;
      partitions: unknown[];
    };
    expect(info).toMatchObject({
      messages: 4,
      unacked: 0,
      partitions: [{ partition: 0, messages: 4 }],
    });
    expect(exited(await sluiceCli(namespace, ['queue', 'inspect', 'work']), 0)).toMatch(
      /^work +4 +0 +0 +0 +0$/mu,
    );
    expect(exited(await sluiceCli(namespace, ['queue', 'purge', 'work', '--yes']), 0).trim()).toBe(
      'purged 4',
    );
    expect(
      exited(await sluiceCli(namespace, ['queue', 'delete', 'audit', '--if-empty', '--yes']), 1),
    ).toBe('');
    expect(exited(await sluiceCli(namespace, ['queue', 'delete', 'work', '--yes']), 0).trim()).toBe(
      "deleted queue 'work'",
    );
    await expect(sluice.inspectQueue('work')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('moves every ready message into another queue, each once, in order', async () => {
    const { sluice, namespace } = await useSluice();
    await sluice.declareQueue('old');
    await sluice.declareQueue('new');
    await sluice.publishBatch(
      Array.from({ length: 50 }, (_, i) => ({ exchange: '', routingKey: 'old', body: { i } })),
    );
    const run = await sluiceCli(namespace, ['move', 'old', 'new', '--yes']);
    expect(exited(run, 0).trim()).toBe('moved 50, skipped 0');
    expect(run.stderr).toBe(''); // no progress bar when standard error is not a terminal
    expect((await sluice.inspectQueue('old')).messages).toBe(0);
    const moved = await sluice.peekQueue('new', { count: 100 });
    expect(moved.map((m) => ('body' in m ? m.body : undefined))).toEqual(
      Array.from({ length: 50 }, (_, i) => ({ i })),
    );
  });

  it('finishes a move that was killed half-way, without losing or doubling a message', async () => {
    const { sluice, namespace } = await useSluice();
    await sluice.declareQueue('old');
    await sluice.declareQueue('new');
    const total = 3000;
    for (let start = 0; start < total; start += 1000) {
      await sluice.publishBatch(
        Array.from({ length: 1000 }, (_, i) => ({
          exchange: '',
          routingKey: 'old',
          body: { i: start + i },
        })),
      );
    }
    const first = startCli(namespace, ['move', 'old', 'new', '--yes']);
    // Killed as soon as it has moved some: the rest is in the source or its outbox.
    await waitFor(async () => (await sluice.inspectQueue('new')).messages > 0, {
      timeoutMs: 20_000,
    });
    first.child.kill('SIGKILL');
    // It was killed, not finished: some messages had not been moved yet.
    expect((await first.result).signal).toBe('SIGKILL');
    expect((await sluice.inspectQueue('new')).messages).toBeLessThan(total);
    exited(await sluiceCli(namespace, ['move', 'old', 'new', '--yes']), 0);
    const moved = await sluice.peekQueue('new', { count: total + 10 });
    const bodies = moved.map((m) => ('body' in m ? (m.body as { i: number }).i : -1));
    expect(bodies).toHaveLength(total);
    expect(new Set(bodies).size).toBe(total);
    expect((await sluice.inspectQueue('old')).messages).toBe(0);
  });

  it('inspects a queue with its live consumers: partitions, unacked held, lease left', async () => {
    const { sluice, namespace } = await useSluice();
    await sluice.declareQueue('jobs', { partitions: 2 });
    for (let i = 0; i < 3; i++) await sluice.publish('', 'jobs', i, { partitionKey: `k${i}` });
    const stream = sluice.messages('jobs', { prefetch: 3 });
    const iterator = stream[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) await iterator.next();
    const info = JSON.parse(
      exited(await sluiceCli(namespace, ['queue', 'inspect', 'jobs', '--json']), 0),
    ) as QueueInfo;
    expect(info).toMatchObject({
      unacked: 3,
      consumers: 1,
      consumerDetails: [{ name: stream.name, ordered: false, partitions: [0, 1], unacked: 3 }],
    });
    expect(info.consumerDetails[0]?.leaseRemainingMs).toBeGreaterThan(0);
    const text = exited(await sluiceCli(namespace, ['queue', 'inspect', 'jobs']), 0);
    expect(text).toMatch(/^consumer +ordered +partitions +unacked +lease ends in$/mu);
    expect(text).toContain(stream.name);
    expect(text.split('\n').find((line) => line.startsWith(stream.name))).toMatch(
      / +no +0,1 +3 +[\d.]+s$/u,
    );
    await stream.close();
    const after = exited(await sluiceCli(namespace, ['queue', 'inspect', 'jobs']), 0);
    expect(after).not.toContain('lease ends in');
  });
});
