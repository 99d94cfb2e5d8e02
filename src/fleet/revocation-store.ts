import type { RedisCommands } from './redis-link.js';

/** One active revocation as stored: `id` names the subject; `value` is the JSON the pods exchange. */
export interface StoredRevocation {
  readonly id: string;
  /** Epoch ms: tokens issued at or before it are refused. */
  readonly revokedAt: number;
  /** Epoch ms: the key's TTL ends here (the revocation's retention). */
  readonly expiresAt: number;
  readonly value: string;
}

/**
 * Stores an entry unless a later (or equal) revocation of the subject is stored, or a lift covers
 * it; keeps the index of active ids (score: expiry) and drops expired ones from it. Then, in the
 * same script, marks the SSF event as applied (when given) and publishes the message: a pod that
 * dies after sending it leaves all of it done or none.
 * KEYS: entry, index, lift marker[, applied-event marker]. ARGV: value, revokedAt, expiresAt, now,
 * id, store (1/0), channel, message, marker value, marker ttl ms.
 */
const STORE_AND_PUBLISH = `
local function store()
  local now = tonumber(ARGV[4])
  local at = tonumber(ARGV[2])
  local exp = tonumber(ARGV[3])
  if exp <= now then return 0 end
  local lifted = redis.call('GET', KEYS[3])
  if lifted and tonumber(lifted) >= at then return 0 end
  local cur = redis.call('GET', KEYS[1])
  if cur then
    local ok, c = pcall(cjson.decode, cur)
    if ok and type(c) == 'table' and tonumber(c.revokedAt) and tonumber(c.revokedAt) >= at then return 0 end
  end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', math.floor(exp - now))
  redis.call('ZADD', KEYS[2], exp, ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  return 1
end
local stored = 0
if ARGV[6] == '1' then stored = store() end
if #KEYS >= 4 then redis.call('SET', KEYS[4], ARGV[9], 'PX', ARGV[10], 'NX') end
if ARGV[7] ~= '' then redis.call('PUBLISH', ARGV[7], ARGV[8]) end
return stored`;

/**
 * Lifts a subject's revocations issued up to `liftedAt`: deletes the entry and leaves a marker that
 * refuses to store older ones again (a pod republishing after an outage cannot bring it back).
 * KEYS: entry, index, lift marker. ARGV: id, liftedAt, marker ttl ms.
 */
const LIFT = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, c = pcall(cjson.decode, cur)
  if ok and type(c) == 'table' and tonumber(c.revokedAt) and tonumber(c.revokedAt) > tonumber(ARGV[2]) then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local lifted = redis.call('GET', KEYS[3])
if not lifted or tonumber(lifted) < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
end
return 1`;

/** Ids read per MGET when loading the list. */
const LOAD_BATCH = 500;

/**
 * The fleet's revocation list in Redis (docs/fleet.md "What is in Redis"): one key per revoked
 * subject with the retention as its TTL, a sorted set of active ids, and lift markers.
 */
export class RevocationStore {
  readonly #redis: RedisCommands;
  readonly #prefix: string;

  constructor(redis: RedisCommands, keyPrefix: string) {
    this.#redis = redis;
    this.#prefix = keyPrefix;
  }

  #keys(id: string): [string, string, string] {
    return [`${this.#prefix}revocation:${id}`, `${this.#prefix}revocations`, `${this.#prefix}lifted:${id}`];
  }

  /** True when stored; false when a later revocation or a lift already covers it. */
  async store(entry: StoredRevocation, now: number): Promise<boolean> {
    return this.storeAndPublish(entry, now, undefined, undefined);
  }

  /**
   * Stores `entry` (when given), marks `applied` (when given) and publishes `publish` (when given),
   * in one script. True when the entry was stored.
   */
  async storeAndPublish(
    entry: StoredRevocation | undefined,
    now: number,
    publish: { readonly channel: string; readonly message: string } | undefined,
    applied: { readonly key: string; readonly value: string; readonly ttlMs: number } | undefined,
    id = entry?.id ?? '',
  ): Promise<boolean> {
    const keys = [...this.#keys(entry?.id ?? id), ...(applied ? [applied.key] : [])];
    const result = await this.#redis.eval(
      STORE_AND_PUBLISH,
      keys.length,
      ...keys,
      entry?.value ?? '',
      String(entry?.revokedAt ?? 0),
      String(entry?.expiresAt ?? 0),
      String(now),
      entry?.id ?? id,
      entry === undefined ? '0' : '1',
      publish?.channel ?? '',
      publish?.message ?? '',
      applied?.value ?? '',
      String(Math.max(1, Math.floor(applied?.ttlMs ?? 1))),
    );
    return result === 1;
  }

  /** False when a revocation later than `liftedAt` is stored (it stays). */
  async lift(id: string, liftedAt: number, markerTtlMs: number): Promise<boolean> {
    const result = await this.#redis.eval(
      LIFT,
      3,
      ...this.#keys(id),
      id,
      String(liftedAt),
      String(Math.max(1, Math.floor(markerTtlMs))),
    );
    return result === 1;
  }

  /** The values of every active entry. */
  async load(now: number): Promise<string[]> {
    const ids = await this.#redis.zrangebyscore(`${this.#prefix}revocations`, `(${now}`, '+inf');
    const values: string[] = [];
    for (let i = 0; i < ids.length; i += LOAD_BATCH) {
      const batch = ids.slice(i, i + LOAD_BATCH).map((id) => this.#keys(id)[0]);
      for (const v of await this.#redis.mget(...batch)) if (v !== null) values.push(v);
    }
    return values;
  }
}
