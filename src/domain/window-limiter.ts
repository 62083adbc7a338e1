/**
 * A sliding-window rate limit per key: at most `limit` takes in any `windowMs`. Pure apart from the
 * injected clock, so tests move time by hand.
 */
import type { Clock } from "./ports.js";

export type TakeResult = { readonly ok: true } | { readonly ok: false; readonly retryAt: number };

export interface WindowLimiter {
  /** Counts one use by `key`, or refuses it (counting nothing) with the time the next one will be allowed. */
  take(key: string): TakeResult;
  /** How many keys the limiter remembers: only those that took something within about two windows. */
  trackedKeys(): number;
}

export interface WindowLimiterOptions {
  readonly limit: number;
  readonly windowMs: number;
  readonly clock: Clock;
}

export function createWindowLimiter({ limit, windowMs, clock }: WindowLimiterOptions): WindowLimiter {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`limit must be a whole number ≥ 1: ${limit}`);
  if (!(windowMs > 0)) throw new RangeError(`windowMs must be above 0: ${windowMs}`);
  // Per key, the times of its takes within the window, oldest first: never more than `limit` of them.
  const takes = new Map<string, number[]>();
  let lastSweep = clock.now();

  // Forgets keys idle for a whole window, at most once per window, so memory follows recent users only
  // and each take stays O(limit) on average.
  function sweep(now: number): void {
    if (now - lastSweep < windowMs) return;
    lastSweep = now;
    for (const [key, times] of takes) {
      const newest = times[times.length - 1];
      if (newest === undefined || newest <= now - windowMs) takes.delete(key);
    }
  }

  return {
    take(key) {
      const now = clock.now();
      sweep(now);
      const times = (takes.get(key) ?? []).filter((t) => t > now - windowMs);
      const oldest = times[0];
      if (times.length >= limit && oldest !== undefined) {
        takes.set(key, times);
        return { ok: false, retryAt: oldest + windowMs };
      }
      times.push(now);
      takes.set(key, times);
      return { ok: true };
    },
    trackedKeys() {
      return takes.size;
    },
  };
}
