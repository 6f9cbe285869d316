/**
 * An ack applied by Redis whose reply is lost (the proxy resets the connection between the two):
 * ioredis sends the script again, which finds the entry settled. The ack resolves; it is not
 * reported as taken by another consumer (issue 9, item 13).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { scriptBodies } from '../../src/connection/scripts.js';
import { Sluice, StaleDeliveryError } from '../../src/index.js';
import { connectRedis, startExtraRedis, testNamespace } from '../support/index.js';
import { startProxy } from '../support/proxy.js';
import { streamKey } from '../support/sluice.js';

const ACK_SHA = createHash('sha1')
  .update(scriptBodies.get('ack') as string)
  .digest('hex');

describe('an ack whose reply is lost after Redis applied it', () => {
  it('resolves once ioredis has sent it again, and leaves nothing pending', async () => {
    const server = await startExtraRedis();
    const proxy = await startProxy(server.port);
    const namespace = testNamespace();
    const sluice = await Sluice.connect({ url: proxy.url, namespace });
    try {
      await sluice.declareQueue('jobs');
      await sluice.publish('', 'jobs', { n: 1 });
      await sluice.publish('', 'jobs', { n: 2 });
      let seen = 0;
      for await (const msg of sluice.messages('jobs', { prefetch: 1 })) {
        // The first ack loads the script on the server: the second is one EVALSHA.
        if (++seen === 1) {
          await msg.ack();
          continue;
        }
        // Its request goes through and is applied; the connection is reset before the reply.
        const reset = proxy.resetAfterRequest({ match: (request) => request.includes(ACK_SHA) });
        const acked = msg.ack();
        await reset;
        await expect(acked).resolves.toBeUndefined();
        break;
      }
      const redis = connectRedis({}, server.url);
      const key = streamKey(namespace, 'jobs');
      expect(await redis.xlen(key)).toBe(0);
      expect(((await redis.xpending(key, 'sluice')) as [number])[0]).toBe(0);
    } finally {
      await sluice.close();
      await proxy.close();
    }
  });

  it('still refuses with StaleDeliveryError an entry that another consumer holds', async () => {
    const server = await startExtraRedis();
    const namespace = testNamespace();
    const sluice = await Sluice.connect({ url: server.url, namespace });
    try {
      await sluice.declareQueue('jobs');
      await sluice.publish('', 'jobs', { n: 1 });
      const redis = connectRedis({}, server.url);
      const key = streamKey(namespace, 'jobs');
      for await (const msg of sluice.messages('jobs', { prefetch: 1 })) {
        await redis.xclaim(key, 'sluice', 'someone-else', 0, msg.streamId);
        await expect(msg.ack()).rejects.toBeInstanceOf(StaleDeliveryError);
        break;
      }
    } finally {
      await sluice.close();
    }
  });
});
