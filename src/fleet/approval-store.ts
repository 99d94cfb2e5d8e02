import type { RedisCommands } from './redis-link.js';

/** What a claim decided (the fleet-wide single use of an approval id). */
export type ClaimResult = 'claimed' | 'unknown' | 'already_decided' | 'digest_mismatch';

/**
 * Claims a pending approval for one decision: only if it is stored, not claimed yet, and the digest
 * matches. The claim lives as long as the approval plus a margin. KEYS: approval, claim. ARGV: body
 * digest (lower-case hex), decider, margin ms.
 */
const CLAIM = `
local cur = redis.call('GET', KEYS[1])
if not cur then
  if redis.call('EXISTS', KEYS[2]) == 1 then return 'already_decided' end
  return 'unknown'
end
local ok, a = pcall(cjson.decode, cur)
if not ok or type(a) ~= 'table' then return 'unknown' end
if a.bodySha256 ~= ARGV[1] then return 'digest_mismatch' end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ttl + tonumber(ARGV[3])) then return 'claimed' end
return 'already_decided'`;

const LOAD_BATCH = 200;
/** A claim outlives its approval a little, so a late second decision still finds it. */
const CLAIM_MARGIN_MS = 60_000;

/**
 * Pending step-up approvals of the whole fleet (docs/fleet.md "Approvals"): one key per approval
 * (what the page shows: no token, no body) with its expiry as TTL, a sorted set of ids, and one
 * claim key per decided id.
 */
export class ApprovalStore {
  readonly #redis: RedisCommands;
  readonly #prefix: string;

  constructor(redis: RedisCommands, keyPrefix: string) {
    this.#redis = redis;
    this.#prefix = keyPrefix;
  }

  #key(id: string): string {
    return `${this.#prefix}approval:${id}`;
  }

  async put(id: string, value: string, expiresAt: number, now: number): Promise<void> {
    const ttl = Math.max(1, Math.floor(expiresAt - now));
    await this.#redis.set(this.#key(id), value, 'PX', ttl);
    await this.#redis.eval(
      "redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]); redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3]); return 1",
      1,
      `${this.#prefix}approvals`,
      String(expiresAt),
      id,
      String(now),
    );
  }

  async remove(id: string): Promise<void> {
    await this.#redis.del(this.#key(id));
    await this.#redis.eval("return redis.call('ZREM', KEYS[1], ARGV[1])", 1, `${this.#prefix}approvals`, id);
  }

  async list(now: number): Promise<string[]> {
    const ids = await this.#redis.zrangebyscore(`${this.#prefix}approvals`, `(${now}`, '+inf');
    const values: string[] = [];
    for (let i = 0; i < ids.length; i += LOAD_BATCH) {
      for (const v of await this.#redis.mget(...ids.slice(i, i + LOAD_BATCH).map((id) => this.#key(id))))
        if (v !== null) values.push(v);
    }
    return values;
  }

  /** The claim of `id` (what `claim` stored as `decider`), or undefined. */
  async claimOf(id: string): Promise<string | undefined> {
    return (await this.#redis.get(`${this.#prefix}approval-claim:${id}`)) ?? undefined;
  }

  /** `decider`: what to store as the claim (the decision, for a holding pod that missed it). */
  async claim(id: string, bodySha256: string, decider: string): Promise<ClaimResult> {
    const result = await this.#redis.eval(
      CLAIM,
      2,
      this.#key(id),
      `${this.#prefix}approval-claim:${id}`,
      bodySha256,
      decider,
      String(CLAIM_MARGIN_MS),
    );
    return result as ClaimResult;
  }
}
