/** Wall-clock milliseconds; injected so TTL logic is testable without sleeping. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
