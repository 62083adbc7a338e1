import { describe, expect, it } from "vitest";
import {
  type BotImage,
  describeAge,
  describeKeepRule,
  type SweepReport,
  selectRemovals,
  sweepWorthTelling,
} from "../../../src/domain/keep-rule.js";
import type { KeepRule } from "../../../src/domain/target.js";

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 1);
const I1 = "i-0aaaaaaaaaaaaaaaa";
const I2 = "i-0bbbbbbbbbbbbbbbb";

let n = 0;
function image(overrides: Partial<BotImage> & { ageDays: number }): BotImage {
  const { ageDays, ...rest } = overrides;
  n++;
  return {
    imageId: `ami-${String(n).padStart(17, "0")}`,
    region: "eu-west-1",
    name: `web-1 ${n}`,
    createdAt: NOW - ageDays * DAY,
    instanceId: I1,
    jobId: `job-${n}`,
    state: "available",
    protected: false,
    snapshotIds: [`snap-${n}`],
    ...rest,
  };
}

const rule = (r: Partial<KeepRule>): KeepRule => ({
  lastPerInstance: undefined,
  maxAgeMs: undefined,
  channel: "C0CLEANUP",
  ...r,
});
const ids = (decisions: readonly { image: BotImage }[]) => decisions.map((d) => d.image.imageId);

describe("selectRemovals", () => {
  it("removes what is beyond the newest N of each instance, oldest first, naming instance and region", () => {
    const imgs = [1, 5, 3, 2, 4].map((ageDays) => image({ ageDays }));
    const byAge = (d: number) => imgs.find((i) => i.createdAt === NOW - d * DAY) as BotImage;
    const s = selectRemovals(imgs, rule({ lastPerInstance: 2 }), NOW);
    expect(ids(s.remove)).toEqual([byAge(5), byAge(4), byAge(3)].map((i) => i.imageId));
    expect(s.remove[0]?.reasons).toEqual([`beyond the newest 2 of ${I1} in eu-west-1`]);
    expect(s.keptProtected).toEqual([]);
    expect(s.keptInUse).toEqual([]);
  });

  it("counts each instance and each region on its own", () => {
    const imgs = [
      image({ ageDays: 1 }),
      image({ ageDays: 2 }),
      image({ ageDays: 3, instanceId: I2 }),
      image({ ageDays: 4, region: "us-east-1" }),
    ];
    expect(selectRemovals(imgs, rule({ lastPerInstance: 1 }), NOW).remove.map((d) => d.image)).toEqual([
      imgs[1],
    ]);
  });

  it("removes images older than the maximum age, whatever their rank", () => {
    const imgs = [image({ ageDays: 91 }), image({ ageDays: 89 }), image({ ageDays: 100, instanceId: I2 })];
    const s = selectRemovals(imgs, rule({ maxAgeMs: 90 * DAY }), NOW);
    expect(ids(s.remove)).toEqual([imgs[2], imgs[0]].map((i) => i?.imageId));
    expect(s.remove[0]?.reasons).toEqual(["older than 90 days"]);
  });

  it("gives both reasons when both apply", () => {
    const imgs = [image({ ageDays: 1 }), image({ ageDays: 100 })];
    const s = selectRemovals(imgs, rule({ lastPerInstance: 1, maxAgeMs: 90 * DAY }), NOW);
    expect(s.remove[0]?.reasons).toEqual(["older than 90 days", `beyond the newest 1 of ${I1} in eu-west-1`]);
  });

  it("never weighs an image without the job-id tag, nor counts it among the newest", () => {
    const foreign = image({ ageDays: 500, jobId: undefined });
    const blank = image({ ageDays: 400, jobId: "" });
    const newest = image({ ageDays: 0, jobId: undefined });
    const ours = [image({ ageDays: 1 }), image({ ageDays: 2 })];
    const s = selectRemovals(
      [foreign, blank, newest, ...ours],
      rule({ lastPerInstance: 2, maxAgeMs: DAY * 30 }),
      NOW,
    );
    expect(s.remove).toEqual([]);
  });

  it("leaves images that are not available alone and out of the count", () => {
    const pending = image({ ageDays: 0, state: "pending" });
    const failed = image({ ageDays: 200, state: "failed" });
    const ours = [image({ ageDays: 1 }), image({ ageDays: 2 })];
    const s = selectRemovals([pending, failed, ...ours], rule({ lastPerInstance: 2, maxAgeMs: DAY }), NOW);
    expect(ids(s.remove)).toEqual([ours[1]?.imageId]);
  });

  it("keeps an image with no known creation time, and one with no known instance is weighed by age only", () => {
    const undated = image({ ageDays: 0, createdAt: undefined });
    const orphanOld = image({ ageDays: 200, instanceId: undefined });
    const orphanNew = image({ ageDays: 3, instanceId: undefined });
    const s = selectRemovals(
      [undated, orphanOld, orphanNew, image({ ageDays: 1 })],
      rule({ lastPerInstance: 1, maxAgeMs: 100 * DAY }),
      NOW,
    );
    expect(ids(s.remove)).toEqual([orphanOld.imageId]);
  });

  it("keeps protected images and those in launch templates, saying so, and removes no newer one instead", () => {
    const imgs = [1, 2, 3, 4].map((ageDays) => image({ ageDays }));
    const [, , third, fourth] = imgs as [BotImage, BotImage, BotImage, BotImage];
    const guarded = imgs.map((i) => (i === fourth ? { ...i, protected: true } : i));
    const s = selectRemovals(guarded, rule({ lastPerInstance: 2 }), NOW, new Set([third.imageId]));
    expect(s.remove).toEqual([]);
    expect(ids(s.keptProtected)).toEqual([fourth.imageId]);
    expect(ids(s.keptInUse)).toEqual([third.imageId]);
    expect(s.keptInUse[0]?.reasons).toEqual([`beyond the newest 2 of ${I1} in eu-west-1`]);
  });

  it("orders equal creation times by image id, whatever the listing's order", () => {
    const a = image({ ageDays: 1, imageId: "ami-0000000000000000a" });
    const b = image({ ageDays: 1, imageId: "ami-0000000000000000b" });
    const r = rule({ lastPerInstance: 1 });
    expect(ids(selectRemovals([a, b], r, NOW).remove)).toEqual([b.imageId]);
    expect(ids(selectRemovals([b, a], r, NOW).remove)).toEqual([b.imageId]);
  });

  it("removes nothing under a rule with no limit", () => {
    expect(selectRemovals([image({ ageDays: 1000 })], rule({}), NOW).remove).toEqual([]);
  });
});

describe("describing the rule", () => {
  it("says the age in days, hours or minutes", () => {
    expect(describeAge(90 * DAY)).toBe("90 days");
    expect(describeAge(DAY)).toBe("1 day");
    expect(describeAge(36 * 3_600_000)).toBe("36 hours");
    expect(describeAge(90 * 60_000)).toBe("90 minutes");
  });

  it("says the rule in one phrase", () => {
    expect(describeKeepRule(rule({ lastPerInstance: 5, maxAgeMs: 90 * DAY }))).toBe(
      "the newest 5 per instance and region, none older than 90 days",
    );
    expect(describeKeepRule(rule({ maxAgeMs: DAY }))).toBe("none older than 1 day");
  });
});

describe("sweepWorthTelling", () => {
  const empty: SweepReport = {
    targetName: "prod",
    partition: "aws",
    rule: rule({ lastPerInstance: 1 }),
    preview: false,
    regions: ["eu-west-1"],
    removed: [],
    keptProtected: [],
    keptInUse: [],
    failed: [],
    leftAlone: 0,
    regionErrors: [],
  };
  const decision = { image: image({ ageDays: 1 }), reasons: ["older than 1 day"] };

  it("is silent when nothing was removed or failed", () => {
    expect(sweepWorthTelling(empty)).toBe(false);
    expect(sweepWorthTelling({ ...empty, keptInUse: [decision] })).toBe(false);
    // The same protected image would otherwise post every day; it is told alongside a removal.
    expect(sweepWorthTelling({ ...empty, keptProtected: [decision] })).toBe(false);
    // Other targets' images, or those of jobs still running, would otherwise post every day.
    expect(sweepWorthTelling({ ...empty, leftAlone: 12 })).toBe(false);
  });

  it("tells removals and failures", () => {
    expect(
      sweepWorthTelling({ ...empty, removed: [{ ...decision, alreadyGone: false, snapshotsLeft: [] }] }),
    ).toBe(true);
    expect(sweepWorthTelling({ ...empty, failed: [{ ...decision, error: "denied" }] })).toBe(true);
    expect(sweepWorthTelling({ ...empty, regionErrors: [{ region: "eu-west-1", error: "denied" }] })).toBe(
      true,
    );
  });
});
