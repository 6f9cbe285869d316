import { readFile } from 'node:fs/promises';
import { buffer } from 'node:stream/consumers';
import { InvalidArgumentError as CommanderArgumentError, type Command } from 'commander';
import type { Headers } from '../../message/headers.js';
import { print, withSluice, type JsonFlag } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { toJson } from '../json.js';

/** The options of `publish` as commander parses them. */
interface PublishFlags extends JsonFlag {
  readonly file?: string;
  readonly header: Headers;
  readonly contentType: string;
  readonly messageId?: string;
  readonly mandatory?: true;
}

const TEXT = 'text/plain; charset=utf-8';

/** Collects `--header k=v` into headers; a header without `=` or a name is a usage error. */
function header(value: string, previous: Headers): Headers {
  const equals = value.indexOf('=');
  if (equals < 1) throw new CommanderArgumentError('expected name=value');
  return { ...previous, [value.slice(0, equals)]: value.slice(equals + 1) };
}

/**
 * The body: the argument, the file, or standard input when it is not a terminal (one source
 * only). Without any, there is nothing to publish.
 */
async function readBody(body: string | undefined, flags: PublishFlags): Promise<Buffer> {
  if (body !== undefined && flags.file !== undefined)
    throw new UsageError('give the body as an argument or --file, not both');
  if (body !== undefined) return Buffer.from(body, 'utf8');
  if (flags.file !== undefined) return readFile(flags.file);
  if (process.stdin.isTTY === true)
    throw new UsageError('no body: give it as an argument, with --file, or on stdin');
  return buffer(process.stdin);
}

/** `sluice publish <exchange> <routingKey> [body]`. */
export function registerPublish(program: Command): void {
  program
    .command('publish')
    .description('publish one message and print its confirm')
    .argument('<exchange>', 'the exchange ("" for the default exchange)')
    .argument('<routingKey>', 'the routing key (for the default exchange: the queue)')
    .argument('[body]', 'the body; else --file, else standard input')
    .option('--file <path>', 'read the body from this file')
    .option('--header <name=value>', 'a header (repeat for more)', header, {})
    .option('--content-type <type>', 'content type of the body', TEXT)
    .option('--message-id <id>', 'the message id (default: a new UUID v7)')
    .option('--mandatory', 'fail (exit 1) when no queue is bound to receive it')
    .option('--json', 'print the confirm as JSON')
    .addHelpText(
      'after',
      `
The body is sent as bytes with the content type given; consumers decode it by
that type (text/* as a string, application/json as a value, else bytes). A body
declared as JSON must parse as JSON.

  sluice publish orders order.created '{"id":42}' --content-type application/json
  sluice publish "" work --file job.bin --content-type application/octet-stream
  echo hello | sluice publish events user.signup --header source=cli`,
    )
    .action(
      async (
        exchange: string,
        routingKey: string,
        body: string | undefined,
        flags: PublishFlags,
      ) => {
        const data = await readBody(body, flags);
        if (/^application\/(.+\+)?json$/u.test(flags.contentType)) {
          try {
            JSON.parse(data.toString('utf8'));
          } catch {
            throw new UsageError('the body is not JSON, as --content-type says');
          }
        }
        const confirm = await withSluice(program, (sluice) =>
          sluice.publish(exchange, routingKey, data, {
            contentType: flags.contentType,
            headers: flags.header,
            messageId: flags.messageId,
            mandatory: flags.mandatory === true,
          }),
        );
        if (flags.json === true) print(toJson(confirm));
        else {
          const targets = confirm.targets.map((t) => `${t.queue} ${t.streamId}`).join(', ');
          print(
            `published ${confirm.messageId} to ${targets || 'no queue'}${confirm.duplicate ? ' (duplicate)' : ''}`,
          );
        }
      },
    );
}
