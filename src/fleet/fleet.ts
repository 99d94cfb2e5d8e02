import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { FleetConfig } from '../config/fleet-schema.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../pipeline/clock.js';
import { ApprovalStore } from './approval-store.js';
import { Lease } from './lease.js';
import { openRedisLink, type RedisLink } from './redis-link.js';
import { RevocationStore } from './revocation-store.js';

/** Bounded label values of delegate_proxy_fleet_events_total (docs/fleet.md "Metrics"). */
export type FleetEventKind = 'revocation' | 'lift' | 'approval' | 'decision';
const KINDS: ReadonlySet<string> = new Set<FleetEventKind>(['revocation', 'lift', 'approval', 'decision']);

/** One message on the fleet channel. `at` is when the sending pod accepted the event (epoch ms). */
export interface FleetMessage {
  readonly v: 1;
  readonly kind: FleetEventKind;
  /** The sending process (unique per start): a pod ignores its own messages. */
  readonly from: string;
  /** The sending pod's name, for people (approval page, logs). */
  readonly pod: string;
  readonly at: number;
  readonly body: Record<string, unknown>;
}

/** Pause before catching up again after a failed attempt while connected. */
const CATCH_UP_RETRY_MS = 1_000;
/** Largest message read from the channel; fleet messages are a few hundred bytes. */
const MAX_MESSAGE_CHARS = 64 * 1024;

export interface FleetDeps {
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The pod's name; default $POD_NAME, else the host name (a pod's name in Kubernetes). */
  readonly pod?: string | undefined;
}

export interface FleetSecrets {
  readonly fleetRedisPassword?: string | undefined;
  readonly fleetRedisCa?: string | undefined;
}

/**
 * The proxy's link to the other proxies of its fleet (docs/fleet.md): a pub/sub channel for events and
 * the revocation store, both in one Redis. Features subscribe by kind and are told each time the link
 * comes up, to catch up on what they missed.
 */
export class Fleet {
  readonly pod: string;
  readonly instance: string;
  readonly syncTimeoutMs: number;
  readonly #config: FleetConfig;
  readonly #secrets: FleetSecrets;
  readonly #d: FleetDeps;
  readonly #logger: Logger;
  readonly #handlers = new Map<FleetEventKind, (m: FleetMessage) => void>();
  readonly #onUp: Array<() => Promise<void>> = [];
  #link: RedisLink | undefined;
  #store: RevocationStore | undefined;
  #approvals: ApprovalStore | undefined;
  #syncing: Promise<void> | undefined;
  #closed = false;

  constructor(config: FleetConfig, secrets: FleetSecrets, deps: FleetDeps) {
    this.#config = config;
    this.#secrets = secrets;
    this.#d = deps;
    this.pod = deps.pod ?? process.env.POD_NAME ?? hostname();
    this.instance = `${this.pod}/${randomUUID().slice(0, 8)}`;
    this.syncTimeoutMs = config.syncTimeoutMs;
    this.#logger = deps.logger.child({ component: 'fleet' });
  }

  get connected(): boolean {
    return this.#link?.connected === true;
  }

  /** Why the link is down (for /readyz), if known. */
  get lastError(): string | undefined {
    return this.#link?.lastError;
  }

  /** Set once `start()` has opened the link. */
  get revocations(): RevocationStore | undefined {
    return this.#store;
  }

  /** Set once `start()` has opened the link. */
  get approvals(): ApprovalStore | undefined {
    return this.#approvals;
  }

  /** A lease named `name` (e.g. one per SSF poll stream), held by this process when `hold()` says so. */
  lease(name: string, ttlMs: number): Lease {
    return new Lease({
      redis: () => this.#link?.commands,
      connected: () => this.connected,
      key: `${this.#config.redis.keyPrefix}lease:${name}`,
      holder: this.instance,
      ttlMs,
    });
  }

  /** Marks `name` as done for `ttlMs`; false when it already was (by any pod). Throws when Redis is unavailable. */
  async markOnce(name: string, ttlMs: number): Promise<boolean> {
    const link = this.#link;
    if (link === undefined || !link.connected) throw new Error('not connected to Redis');
    const key = this.onceKey(name);
    return (await link.commands.set(key, this.pod, 'PX', Math.max(1, Math.floor(ttlMs)), 'NX')) === 'OK';
  }

  /** Whether `name` was marked done (false when unknown: Redis unavailable). */
  async isMarked(name: string): Promise<boolean> {
    const link = this.#link;
    if (link === undefined || !link.connected) return false;
    try {
      return (await link.commands.get(this.onceKey(name))) !== null;
    } catch {
      return false;
    }
  }

  /** Handles the messages of one kind from the other pods (not this one's own). */
  on(kind: FleetEventKind, handler: (m: FleetMessage) => void): void {
    this.#handlers.set(kind, handler);
  }

  /** Runs each time the link comes up (the first time included), one run at a time. */
  onConnected(task: () => Promise<void>): void {
    this.#onUp.push(task);
  }

  /** Publishes an event; rejects when Redis is unavailable or slower than syncTimeoutMs. */
  async publish(kind: FleetEventKind, at: number, body: Record<string, unknown>): Promise<void> {
    const link = this.#link;
    if (link === undefined || !link.connected) throw new Error('not connected to Redis');
    const { channel, message } = this.envelope(kind, at, body);
    await link.commands.publish(channel, message);
    this.published(kind);
  }

  /** The channel and text of a message, for a script that publishes it with other writes. */
  envelope(kind: FleetEventKind, at: number, body: Record<string, unknown>): { channel: string; message: string } {
    const message: FleetMessage = { v: 1, kind, from: this.instance, pod: this.pod, at, body };
    return { channel: this.#channel, message: JSON.stringify(message) };
  }

  /** Counts a message published by such a script. */
  published(kind: FleetEventKind): void {
    this.#d.metrics.fleetEvents.inc({ kind, direction: 'published' });
  }

  /** The key `markOnce(name)` uses. */
  onceKey(name: string): string {
    return `${this.#config.redis.keyPrefix}once:${name}`;
  }

  get #channel(): string {
    return `${this.#config.redis.keyPrefix}events`;
  }

  /** Opens the link; the connection (and its retries) continue in the background. */
  async start(): Promise<void> {
    this.#d.metrics.fleetConnected.set(0);
    this.#link = await openRedisLink({
      url: this.#config.redis.url,
      password: this.#secrets.fleetRedisPassword,
      ca: this.#secrets.fleetRedisCa,
      timeoutMs: this.#config.syncTimeoutMs,
      channel: this.#channel,
      logger: this.#logger,
      onMessage: (text) => this.#receive(text),
      onState: (up) => this.#state(up),
    });
    this.#store = new RevocationStore(this.#link.commands, this.#config.redis.keyPrefix);
    this.#approvals = new ApprovalStore(this.#link.commands, this.#config.redis.keyPrefix);
  }

  #state(up: boolean): void {
    this.#d.metrics.fleetConnected.set(up ? 1 : 0);
    this.#logger[up ? 'info' : 'warn'](
      { connected: up, pod: this.pod },
      up ? 'fleet: connected to Redis' : 'fleet: disconnected from Redis',
    );
    if (up) void this.#catchUp();
  }

  async #catchUp(): Promise<void> {
    // One run at a time; a reconnect during a run starts another after it.
    const previous = this.#syncing ?? Promise.resolve();
    const run = previous.then(async () => {
      if (this.#closed || !this.connected) return;
      for (const task of this.#onUp) {
        try {
          await task();
        } catch (err) {
          this.#logger.warn({ err: (err as Error).message }, 'fleet: catching up after connecting failed; retrying');
          const retry = setTimeout(() => {
            if (!this.#closed && this.connected) void this.#catchUp();
          }, CATCH_UP_RETRY_MS);
          retry.unref();
          return;
        }
      }
    });
    this.#syncing = run;
    await run;
  }

  #receive(text: string): void {
    const message = parseMessage(text);
    if (message === undefined) {
      this.#logger.warn({ chars: text.length }, 'fleet: malformed message ignored');
      return;
    }
    if (message.from === this.instance) return;
    this.#d.metrics.fleetEvents.inc({ kind: message.kind, direction: 'received' });
    try {
      this.#handlers.get(message.kind)?.(message);
    } catch (err) {
      this.#logger.warn(
        { err: (err as Error).message, kind: message.kind, pod: message.pod },
        'fleet: event not applied',
      );
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#link?.close();
  }
}

function parseMessage(text: string): FleetMessage | undefined {
  if (text.length > MAX_MESSAGE_CHARS) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const m = value as Record<string, unknown>;
  if (m.v !== 1 || typeof m.kind !== 'string' || !KINDS.has(m.kind)) return undefined;
  if (typeof m.from !== 'string' || typeof m.pod !== 'string' || typeof m.at !== 'number') return undefined;
  if (m.body === null || typeof m.body !== 'object' || Array.isArray(m.body)) return undefined;
  return m as unknown as FleetMessage;
}
