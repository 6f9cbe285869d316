import type { Command } from 'commander';
import type { DeadLetter, ForeignEntry } from '../../dead-letter/tools.js';
import { confirm, type ConfirmFlags } from '../confirm.js';
import { nameOf, positiveInteger, print, withSluice, type JsonFlag } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { toJson } from '../json.js';
import { progressBar } from '../progress.js';

/** The options of `dlq replay` as commander parses them. */
interface ReplayFlags extends ConfirmFlags {
  readonly viaExchange?: true;
  readonly toQueue?: string;
  readonly limit?: number;
}

/** One line of `dlq list` (and `peek`): ids, last death, route, last handler error. */
function summary(message: DeadLetter | ForeignEntry): string {
  if (!('messageId' in message)) return `${message.streamId}  (not a sluice message)`;
  const last = message.deathHistory?.deaths[0];
  const death = last === undefined ? '-' : `${last.reason} in ${last.queue} x${last.count}`;
  // One line per message: the error's message quoted, so that a newline in it stays escaped.
  const why =
    last?.lastError === undefined ? '' : `  last error: ${JSON.stringify(last.lastError.message)}`;
  return `${message.streamId}  ${message.messageId}  ${death}  ${message.exchange || '(default)'} ${message.routingKey}${why}`;
}

/** `sluice dlq list|show|replay|purge`. */
export function registerDlq(program: Command): void {
  const dlq = program.command('dlq').description('inspect, replay and purge dead-letter queues');
  const queueName = nameOf('queue');

  dlq
    .command('list')
    .description('list messages, oldest first')
    .argument('<queue>', 'the dead-letter queue', queueName)
    .option('--count <n>', 'page size', positiveInteger, 20)
    .option('--after <streamId>', 'start after this stream id (the "next" of the previous page)')
    .option('--json', 'one JSON object per line')
    .action(async (queue: string, options: JsonFlag & { count: number; after?: string }) => {
      await withSluice(program, async (sluice) => {
        const page = await sluice.dlq.list(queue, {
          count: options.count,
          ...(options.after === undefined ? {} : { after: options.after }),
        });
        for (const message of page.messages)
          print(options.json === true ? toJson(message) : summary(message));
        if (page.next !== undefined)
          print(options.json === true ? toJson({ next: page.next }) : `next: ${page.next}`);
      });
    });

  dlq
    .command('show')
    .description(
      'show one message (by stream id or message id) with its death history and last handler error',
    )
    .argument('<queue>', 'the dead-letter queue', queueName)
    .argument('<id>', 'a stream id (1700000000000-0) or a message id')
    .option('--json', 'on one line')
    .action(async (queue: string, id: string, options: JsonFlag) => {
      await withSluice(program, async (sluice) => {
        const message = await sluice.dlq.show(queue, id);
        print(options.json === true ? toJson(message) : toJson(message, 2));
      });
    });

  dlq
    .command('replay')
    .description(
      'send messages back to the queue each one died in, and only there; --via-exchange ' +
        'publishes them to their original exchange instead',
    )
    .argument('<queue>', 'the dead-letter queue', queueName)
    .option(
      '--via-exchange',
      'publish each message to the exchange it was first published to, with its routing key: ' +
        'every queue bound there now gets a copy, not only the one it died in',
    )
    .option('--to-queue <queue>', 'send every message to this queue instead', queueName)
    .option('--limit <n>', 'replay at most this many', positiveInteger)
    .option('-y, --yes', 'do not ask for confirmation')
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
        const { messages } = await sluice.inspectQueue(queue);
        const where =
          options.toQueue === undefined
            ? options.viaExchange === true
              ? 'through their original exchanges'
              : 'to the queues they died in'
            : `to queue '${options.toQueue}'`;
        const count = Math.min(messages, options.limit ?? messages);
        await confirm(`replay ${count} messages of '${queue}' ${where}?`, options);
        const progress = progressBar();
        const result = await sluice.dlq
          .replay(queue, {
            viaExchange: options.viaExchange,
            toQueue: options.toQueue,
            limit: options.limit,
            onProgress: progress.onProgress,
          })
          .finally(progress.stop);
        print(`replayed ${result.replayed}, skipped ${result.skipped}, failed ${result.failed}`);
        for (const { messages: left, error } of result.failures)
          console.error(`error: ${error.code}: ${error.message}; ${left} stay in '${queue}'`);
        if (result.failed > 0) process.exitCode = EXIT.error;
      });
    });

  dlq
    .command('purge')
    .description('delete the ready messages of the queue')
    .argument('<queue>', 'the dead-letter queue', queueName)
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (queue: string, options: ConfirmFlags) => {
      await withSluice(program, async (sluice) => {
        const { messages } = await sluice.inspectQueue(queue);
        await confirm(`purge ${messages} ready messages of '${queue}'?`, options);
        print(`purged ${await sluice.dlq.purge(queue)}`);
      });
    });
}
