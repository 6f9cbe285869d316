import { Redis, ReplyError } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { classifyFailure } from '../../src/connection/connection.js';
import { ConnectionError, TimeoutError } from '../../src/errors/index.js';

/** ioredis types its ReplyError (an error reply of the server) as `any`. */
const RedisReply = ReplyError as new (message: string) => Error;

/** An error with a Node.js system error code, as a socket emits it. */
function socketError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:6379`), { code });
}

/** An error as ioredis builds it, without a class of its own: a name and a message. */
function ioredisError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name });
}

describe('classifyFailure (may a failed command be retried?)', () => {
  // Never connected: classifyFailure only reads the client's status.
  const open = new Redis({ lazyConnect: true });
  afterAll(() => open.disconnect());

  describe('error replies: unsent when Redis did not run the command, else fatal', () => {
    const replies = [
      ['LOADING Redis is loading the dataset in memory', 'unsent'],
      ['TRYAGAIN Multiple keys request during rehashing of slot', 'unsent'],
      ["READONLY You can't write against a read only replica.", 'unsent'],
      ['MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no', 'unsent'],
      ['BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN.', 'unsent'],
      ['CLUSTERDOWN The cluster is down', 'unsent'],
      ['NOREPLICAS Not enough good replicas to write.', 'unsent'],
      ["OOM command not allowed when used memory > 'maxmemory'.", 'fatal'],
      ["NOPERM User default has no permissions to run the 'evalsha' command", 'fatal'],
      ['WRONGTYPE Operation against a key holding the wrong kind of value', 'fatal'],
      ['ERR user_script:12: Script attempted to access nonexistent global variable', 'fatal'],
      ['BUSYGROUP Consumer Group name already exists', 'fatal'],
      ['NOSCRIPT No matching script. Please use EVAL.', 'fatal'],
    ] as const;
    it.for(replies)('"%s" is %s', ([message, kind]) => {
      expect(classifyFailure(new RedisReply(message), open)).toBe(kind);
    });

    it("recognises another ioredis copy's error reply by its name", () => {
      const foreign = ioredisError('ReplyError', 'LOADING Redis is loading the dataset in memory');
      expect(classifyFailure(foreign, open)).toBe('unsent');
    });

    it('a transaction discarded because its commands met transient replies is unsent', () => {
      const discarded = (previous: string[]): Error =>
        Object.assign(
          new RedisReply('EXECABORT Transaction discarded because of previous errors.'),
          {
            previousErrors: previous.map((message) => new RedisReply(message)),
          },
        );
      expect(classifyFailure(discarded(['BUSY Redis is busy', 'BUSY Redis is busy']), open)).toBe(
        'unsent',
      );
      expect(classifyFailure(discarded(['BUSY Redis is busy', 'WRONGTYPE no']), open)).toBe(
        'fatal',
      );
      expect(classifyFailure(discarded([]), open)).toBe('fatal');
    });

    it('reads only the first word, as written: LOADINGX and loading are fatal', () => {
      expect(classifyFailure(new RedisReply('LOADINGX not a real reply'), open)).toBe('fatal');
      expect(classifyFailure(new RedisReply('loading lower case'), open)).toBe('fatal');
    });
  });

  const socketErrors = [
    ['ECONNRESET', 'the server or a proxy reset the connection'],
    ['ECONNREFUSED', 'nothing listens: the server is restarting'],
    ['ECONNABORTED', 'the connection was aborted'],
    ['EPIPE', 'written to a connection the server had closed'],
    ['ETIMEDOUT', 'the network stopped answering'],
    ['EHOSTUNREACH', 'no route to the host'],
    ['ENETUNREACH', 'no route to the network'],
    ['ENOTCONN', 'the socket is not connected'],
  ] as const;
  it.for(socketErrors)(
    'a socket error %s (%s) is uncertain: the command may have run',
    ([code]) => {
      expect(classifyFailure(socketError(code), open)).toBe('uncertain');
    },
  );

  it('a connection loss that sluice noticed (ConnectionError) is uncertain', () => {
    const lost = new ConnectionError('the connection was lost with the command in flight');
    expect(classifyFailure(lost, open)).toBe('uncertain');
  });

  it('ioredis giving up on a command in flight is uncertain', () => {
    const gaveUp = [
      ioredisError('MaxRetriesPerRequestError', 'Reached the max retries per request limit'),
      ioredisError('AbortError', 'Command aborted due to connection close'),
      new Error('Connection is closed.'),
      new Error('Command timed out'),
    ];
    for (const error of gaveUp) {
      expect(classifyFailure(error, open), error.message).toBe('uncertain');
    }
  });

  it('ioredis refusing to queue a command while offline is unsent', () => {
    const offline = new Error("Stream isn't writeable and enableOfflineQueue options is false");
    expect(classifyFailure(offline, open)).toBe('unsent');
  });

  it('anything else is fatal: programming errors, unknown codes, values that are not errors', () => {
    const others: unknown[] = [
      new TypeError('Cannot read properties of undefined'),
      socketError('ENOENT'),
      new TimeoutError('INFO did not finish within 10 ms'),
      'a string',
      undefined,
    ];
    for (const error of others) {
      expect(classifyFailure(error, open), String(error)).toBe('fatal');
    }
  });

  it('every failure of a closed client is closed, a transient reply included', () => {
    const closed = new Redis({ lazyConnect: true });
    closed.disconnect();
    expect(closed.status).toBe('end');
    for (const error of [
      new RedisReply('LOADING Redis is loading the dataset in memory'),
      new Error('Connection is closed.'),
      socketError('ECONNRESET'),
      new RedisReply('OOM command not allowed'),
    ]) {
      expect(classifyFailure(error, closed), error.message).toBe('closed');
    }
  });
});
