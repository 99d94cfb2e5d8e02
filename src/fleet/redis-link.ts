import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

export interface RedisLinkOptions {
  readonly url: string;
  readonly password: string | undefined;
  /** PEM; with a rediss:// URL and no CA the system's CAs verify the server. */
  readonly ca: string | undefined;
  /** Bounds every command (and each connection attempt). */
  readonly timeoutMs: number;
  /** The pub/sub channel this link listens on. */
  readonly channel: string;
  readonly logger: Logger;
  /** Called with each message of `channel`. */
  readonly onMessage: (message: string) => void;
  /** Called when both connections are up (again), and when either goes down. */
  readonly onState: (connected: boolean) => void;
}

/** The Redis commands the fleet uses, on the command connection. */
export type RedisCommands = Pick<Redis, 'eval' | 'publish' | 'zrangebyscore' | 'mget' | 'set' | 'get' | 'del'>;

export interface RedisLink {
  readonly commands: RedisCommands;
  readonly connected: boolean;
  /** The last connection error's message (names host and port at most), until connected again. */
  readonly lastError: string | undefined;
  close(): Promise<void>;
}

/** Reconnects within about a second of Redis coming back (ioredis' default backs off to 5 s). */
function retryStrategy(times: number): number {
  return Math.min(100 * 2 ** (times - 1), 1_000) + Math.floor(Math.random() * 100);
}

/**
 * Two connections to one Redis: commands, and a subscriber (RESP2 pub/sub takes a connection of its
 * own). ioredis is imported here, on first use, so a proxy without `fleet` never loads it. Commands
 * fail at once while a connection is down (no offline queue): the callers queue their own events.
 * `connected` is true while both are ready.
 */
export async function openRedisLink(o: RedisLinkOptions): Promise<RedisLink> {
  // ioredis is CommonJS: its module.exports is `default` under Node's own loader and in the bundle's
  // separate chunk alike, where named exports are not.
  const { Redis } = (await import('ioredis')).default;
  const options = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResubscribe: false,
    connectTimeout: o.timeoutMs,
    commandTimeout: o.timeoutMs,
    retryStrategy,
    connectionName: 'delegate-proxy',
    ...(o.password !== undefined ? { password: o.password } : {}),
    ...(o.url.startsWith('rediss://') ? { tls: o.ca !== undefined ? { ca: o.ca } : {} } : {}),
  } satisfies RedisOptions;
  const commands = new Redis(o.url, options);
  const subscriber = new Redis(o.url, options);
  let connected = false;
  let closed = false;
  // One warning per outage, not one per reconnect attempt.
  let warned = false;
  let lastError: string | undefined;
  const update = (): void => {
    const now = !closed && commands.status === 'ready' && subscriber.status === 'ready' && subscribed;
    if (now === connected) return;
    connected = now;
    if (now) {
      warned = false;
      lastError = undefined;
    }
    o.onState(now);
  };
  let subscribed = false;
  const onError = (err: Error): void => {
    if (closed) return;
    lastError = err.message.slice(0, 200);
    if (warned) return;
    warned = true;
    // The message names host and port at most; the password is never part of it.
    o.logger.warn({ err: err.message }, 'fleet: Redis unavailable; serving with local state, retrying');
  };
  commands.on('error', onError);
  subscriber.on('error', onError);
  commands.on('ready', update);
  commands.on('close', update);
  subscriber.on('close', () => {
    subscribed = false;
    update();
  });
  subscriber.on('ready', () => {
    // Subscribed again on every connection: a reconnected subscriber has no subscription.
    subscriber.subscribe(o.channel).then(
      () => {
        subscribed = true;
        update();
      },
      (err: unknown) => {
        onError(err as Error);
        subscriber.disconnect(true);
      },
    );
  });
  subscriber.on('message', (_channel: string, message: string) => o.onMessage(message));
  // Connection attempts continue in the background (retryStrategy) when the first one fails.
  for (const c of [commands, subscriber]) c.connect().catch(() => undefined);
  return {
    commands,
    get connected() {
      return connected;
    },
    get lastError() {
      return lastError;
    },
    async close() {
      closed = true;
      connected = false;
      commands.disconnect();
      subscriber.disconnect();
    },
  };
}
