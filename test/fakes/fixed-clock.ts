import type { Clock } from "../../src/domain/ports.js";

/** 2026-11-28 02:40:00 UTC: a fixed start so stamps and durations in tests are predictable. */
export const CLOCK_START = Date.UTC(2026, 10, 28, 2, 40, 0);

/** A Clock that only moves when a test moves it. */
export class FixedClock implements Clock {
  private current: number;

  constructor(start: number = CLOCK_START) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  /** Moves time forward by `ms` and returns the new time. */
  advance(ms: number): number {
    this.current += ms;
    return this.current;
  }

  set(at: number): void {
    this.current = at;
  }

  /** A `sleep` for code under test that takes one: it advances this clock instead of waiting. */
  readonly sleep = async (ms: number): Promise<void> => {
    this.advance(ms);
  };
}

export function createFixedClock(start: number = CLOCK_START): FixedClock {
  return new FixedClock(start);
}
