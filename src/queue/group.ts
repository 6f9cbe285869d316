import type { RedisClient } from '../connection/client.js';
import { CONSUMER_GROUP } from '../keys/index.js';

/**
 * Creates a queue's stream and consumer group when they are missing (declaring a queue, and
 * a consumer that finds them gone after a FLUSH or a failover); true when it had to.
 */
export async function ensureConsumerGroup(redis: RedisClient, stream: string): Promise<boolean> {
  try {
    await redis.xgroup('CREATE', stream, CONSUMER_GROUP, '0', 'MKSTREAM');
    return true;
  } catch (error) {
    if ((error as Error).message.startsWith('BUSYGROUP')) return false;
    throw error;
  }
}
