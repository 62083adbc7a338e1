import { describe, expect, it } from "vitest";
import { createWindowLimiter } from "../../../src/domain/window-limiter.js";
import { CLOCK_START, createFixedClock } from "../../fakes/fixed-clock.js";

function setup(limit = 3, windowMs = 1000) {
  const clock = createFixedClock();
  return { clock, limiter: createWindowLimiter({ limit, windowMs, clock }) };
}

describe("createWindowLimiter", () => {
  it("allows up to the limit and then refuses with the time the oldest take leaves the window", () => {
    const { clock, limiter } = setup();
    expect(limiter.take("u1")).toEqual({ ok: true });
    clock.advance(100);
    expect(limiter.take("u1")).toEqual({ ok: true });
    clock.advance(100);
    expect(limiter.take("u1")).toEqual({ ok: true });
    clock.advance(100);
    expect(limiter.take("u1")).toEqual({ ok: false, retryAt: CLOCK_START + 1000 });
  });

  it("allows again once the oldest take is a whole window old, and not a millisecond before", () => {
    const { clock, limiter } = setup();
    for (let i = 0; i < 3; i++) limiter.take("u1");
    clock.set(CLOCK_START + 999);
    expect(limiter.take("u1")).toEqual({ ok: false, retryAt: CLOCK_START + 1000 });
    clock.set(CLOCK_START + 1000);
    expect(limiter.take("u1")).toEqual({ ok: true });
    expect(limiter.take("u1")).toEqual({ ok: true });
    expect(limiter.take("u1")).toEqual({ ok: true });
    expect(limiter.take("u1")).toEqual({ ok: false, retryAt: CLOCK_START + 2000 });
  });

  it("does not count refused takes when someone keeps trying", () => {
    const { clock, limiter } = setup(2, 1000);
    limiter.take("u1");
    limiter.take("u1");
    for (let i = 0; i < 10; i++) {
      clock.advance(50);
      expect(limiter.take("u1").ok).toBe(false);
    }
    clock.set(CLOCK_START + 1000);
    expect(limiter.take("u1")).toEqual({ ok: true });
  });

  it("keeps each key's count apart when one key is over its limit", () => {
    const { limiter } = setup(1, 1000);
    expect(limiter.take("u1").ok).toBe(true);
    expect(limiter.take("u1").ok).toBe(false);
    expect(limiter.take("u2").ok).toBe(true);
  });

  it("forgets keys idle for a window when many keys come and go", () => {
    const { clock, limiter } = setup(5, 1000);
    for (let i = 0; i < 1000; i++) limiter.take(`user-${i}`);
    expect(limiter.trackedKeys()).toBe(1000);
    clock.advance(1000);
    limiter.take("someone-new");
    expect(limiter.trackedKeys()).toBe(1);
    // A forgotten key starts afresh.
    expect(limiter.take("user-0")).toEqual({ ok: true });
  });

  it("keeps a key that took something within the window when others are forgotten", () => {
    const { clock, limiter } = setup(1, 1000);
    limiter.take("idle");
    clock.advance(500);
    limiter.take("busy");
    clock.advance(500);
    limiter.take("trigger");
    expect(limiter.trackedKeys()).toBe(2);
    expect(limiter.take("busy")).toEqual({ ok: false, retryAt: CLOCK_START + 1500 });
  });

  it.each([
    [0, 1000],
    [1.5, 1000],
    [1, 0],
    [1, Number.NaN],
  ])("refuses limit %s and window %s ms", (limit, windowMs) => {
    expect(() => createWindowLimiter({ limit, windowMs, clock: createFixedClock() })).toThrow(RangeError);
  });
});
