import type { RedisCommands } from './redis-link.js';

/** Takes the lease if free, or renews it if this holder has it. KEYS: lease. ARGV: holder, ttl ms. */
const HOLD = `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/** Gives the lease up if this holder has it. KEYS: lease. ARGV: holder. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export interface LeaseOptions {
  readonly redis: () => RedisCommands | undefined;
  readonly connected: () => boolean;
  readonly key: string;
  /** This process (unique per start). */
  readonly holder: string;
  readonly ttlMs: number;
}

/**
 * A lease in Redis with an expiry (docs/fleet.md "SSF polling"): one holder at a time; taken with SET
 * NX PX, renewed only by its holder (compare and renew in one script), free again `ttlMs` after the
 * holder's last renewal (a holder that dies loses it within one lease period). While Redis is
 * unavailable the last known answer stands: the holder goes on, the others wait.
 */
export class Lease {
  readonly #o: LeaseOptions;
  #held = false;

  constructor(options: LeaseOptions) {
    this.#o = options;
  }

  get held(): boolean {
    return this.#held;
  }

  /** Takes or renews the lease; true while this process holds it. */
  async hold(): Promise<boolean> {
    const redis = this.#o.redis();
    if (redis === undefined || !this.#o.connected()) return this.#held;
    try {
      this.#held = (await redis.eval(HOLD, 1, this.#o.key, this.#o.holder, String(this.#o.ttlMs))) === 1;
    } catch {
      // Unknown: keep the last answer, as while disconnected.
    }
    return this.#held;
  }

  async release(): Promise<void> {
    const redis = this.#o.redis();
    const held = this.#held;
    this.#held = false;
    if (!held || redis === undefined || !this.#o.connected()) return;
    await redis.eval(RELEASE, 1, this.#o.key, this.#o.holder).catch(() => undefined);
  }
}
