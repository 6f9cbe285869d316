#!/usr/bin/env node
/**
 * The `sluice` command line: dead-letter queue tools for now.
 *
 *   sluice [--url URL] [--namespace NS] dlq list <queue> [--count N] [--after ID] [--json]
 *   sluice dlq show <queue> <id>
 *   sluice dlq replay <queue> [--via-exchange | --to-queue Q] [--limit N]
 *   sluice dlq purge <queue>
 */
import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import { SingleBar } from 'cli-progress';
import { SluiceError } from '../errors/index.js';
import { Sluice } from '../sluice.js';
import type { DeadLetter, ForeignEntry } from '../dead-letter/tools.js';

interface GlobalOptions {
  url: string;
  namespace: string;
}

/** The options of `dlq replay` as commander parses them. */
interface ReplayFlags {
  viaExchange?: true;
  toQueue?: string;
  limit?: number;
}

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1)
    throw new CommanderArgumentError('expected a positive integer');
  return parsed;
}

/** Runs `action` with a connected client, closing it afterwards. */
async function withSluice(
  program: Command,
  action: (sluice: Sluice) => Promise<void>,
): Promise<void> {
  const { url, namespace } = program.opts<GlobalOptions>();
  const sluice = await Sluice.connect({ url, namespace, connectTimeoutMs: 5000 });
  try {
    await action(sluice);
  } finally {
    await sluice.close();
  }
}

function summary(message: DeadLetter | ForeignEntry): string {
  if (!('messageId' in message)) return `${message.streamId}  (not a sluice message)`;
  const last = message.deathHistory?.deaths[0];
  const death = last === undefined ? '-' : `${last.reason} in ${last.queue} x${last.count}`;
  // One line per message: the error's message quoted, so that a newline in it stays escaped.
  const why =
    last?.lastError === undefined ? '' : `  last error: ${JSON.stringify(last.lastError.message)}`;
  return `${message.streamId}  ${message.messageId}  ${death}  ${message.exchange || '(default)'} ${message.routingKey}${why}`;
}

/** Builds the program; `output` receives what the commands print. */
function buildProgram(output: (line: string) => void = (line) => console.log(line)): Command {
  const program = new Command('sluice')
    .description('Command line for sluice: RabbitMQ semantics on Redis Streams')
    .option(
      '--url <url>',
      'Redis URL',
      process.env.SLUICE_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    )
    .option(
      '--namespace <namespace>',
      'sluice namespace',
      process.env.SLUICE_NAMESPACE ?? 'sluice',
    );

  const dlq = program.command('dlq').description('inspect and replay dead-letter queues');

  dlq
    .command('list <queue>')
    .description('list messages, oldest first')
    .option('--count <n>', 'page size', positiveInteger, 20)
    .option('--after <streamId>', 'start after this stream id (the "next" of the previous page)')
    .option('--json', 'one JSON object per line')
    .action(async (queue: string, options: { count: number; after?: string; json?: boolean }) => {
      await withSluice(program, async (sluice) => {
        const page = await sluice.dlq.list(queue, {
          count: options.count,
          ...(options.after === undefined ? {} : { after: options.after }),
        });
        for (const message of page.messages)
          output(options.json === true ? JSON.stringify(message) : summary(message));
        if (page.next !== undefined)
          output(
            options.json === true ? JSON.stringify({ next: page.next }) : `next: ${page.next}`,
          );
      });
    });

  dlq
    .command('show <queue> <id>')
    .description(
      'show one message (by stream id or message id) with its death history and last handler error',
    )
    .action(async (queue: string, id: string) => {
      await withSluice(program, async (sluice) => {
        output(JSON.stringify(await sluice.dlq.show(queue, id), null, 2));
      });
    });

  dlq
    .command('replay <queue>')
    .description(
      'send messages back to the queue each one died in, and only there; --via-exchange ' +
        'publishes them to their original exchange instead',
    )
    .option(
      '--via-exchange',
      'publish each message to the exchange it was first published to, with its routing key: ' +
        'every queue bound there now gets a copy, not only the one it died in',
    )
    .option('--to-queue <queue>', 'send every message to this queue instead')
    .option('--limit <n>', 'replay at most this many', positiveInteger)
    .addHelpText(
      'after',
      `
By default a message goes back to the queue it died in (the queue of its last
death) and to no other queue bound to its exchange. One whose queue no longer
exists stays in <queue>; it is reported, and the command exits with 1.
Messages that a consumer of <queue> holds, or without a death history, stay too.

  sluice dlq replay orders.dlq                  # back to the queue each died in
  sluice dlq replay orders.dlq --via-exchange   # through the original exchange
  sluice dlq replay orders.dlq --to-queue orders.retry`,
    )
    .action(async (queue: string, options: ReplayFlags) => {
      await withSluice(program, async (sluice) => {
        const bar = process.stderr.isTTY ? new SingleBar({ stream: process.stderr }) : undefined;
        let started = false;
        const result = await sluice.dlq.replay(queue, {
          viaExchange: options.viaExchange,
          toQueue: options.toQueue,
          limit: options.limit,
          onProgress: (done, total) => {
            if (!started) bar?.start(total, 0);
            started = true;
            bar?.update(done);
          },
        });
        bar?.stop();
        output(`replayed ${result.replayed}, skipped ${result.skipped}, failed ${result.failed}`);
        for (const { messages, error } of result.failures)
          console.error(`error: ${error.code}: ${error.message}; ${messages} stay in '${queue}'`);
        if (result.failed > 0) process.exitCode = 1;
      });
    });

  dlq
    .command('purge <queue>')
    .description('delete the ready messages of the queue')
    .action(async (queue: string) => {
      await withSluice(program, async (sluice) => {
        output(`purged ${await sluice.dlq.purge(queue)}`);
      });
    });

  return program;
}

/** Runs the command line; a SluiceError is printed with its code and exits with 1. */
async function main(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync([...argv]);
  } catch (error) {
    if (!(error instanceof SluiceError)) throw error;
    console.error(`error: ${error.code}: ${error.message}`);
    process.exitCode = 1;
  }
}

await main(process.argv);
