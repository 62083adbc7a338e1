import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { BotImage, SweepReport } from "../../../src/domain/keep-rule.js";
import type { KeepRule, Target } from "../../../src/domain/target.js";
import {
  createKeepSweep,
  KEEP_RULE_IDENTITY,
  type KeepSweepDeps,
  sweepRegions,
} from "../../../src/watcher/keep-sweep.js";
import { CLOCK_START, createFixedClock, type FixedClock } from "../../fakes/fixed-clock.js";
import { memoryStore, silentLogger, testTarget } from "../../fakes/job-fixtures.js";
import { denied, MemoryImageCleanup } from "../../fakes/memory-image-cleanup.js";

const DAY = 86_400_000;
const HOUR = 3_600_000;
const I1 = "i-0aaaaaaaaaaaaaaaa";
const CLEANUP_CHANNEL = "C0CLEANUP";
const ADMIN = "U0ADMIN";

const rule = (r: Partial<KeepRule> = {}): KeepRule => ({
  lastPerInstance: 1,
  maxAgeMs: undefined,
  channel: CLEANUP_CHANNEL,
  ...r,
});

function keepTarget(name = "prod", keep: KeepRule | undefined = rule(), copyTo: string[] = []): Target {
  return testTarget({
    name,
    regions: ["eu-west-1"],
    admins: [ADMIN],
    after: { copyTo: copyTo.map((region) => ({ region, kmsKeyId: undefined })), shareWith: [], keep },
  });
}

let n = 0;
function image(region: string, ageDays: number, extra: Partial<BotImage> = {}): BotImage {
  n++;
  return {
    imageId: `ami-${String(n).padStart(17, "0")}`,
    region,
    name: `web-1 ${n}`,
    createdAt: CLOCK_START - ageDays * DAY,
    instanceId: I1,
    jobId: `job-${n}`,
    state: "available",
    protected: false,
    snapshotIds: [],
    ...extra,
  };
}

describe("the keep sweep", () => {
  let clock: FixedClock;
  let cleanup: MemoryImageCleanup;
  let posted: { channel: string; report: SweepReport }[];

  beforeEach(() => {
    clock = createFixedClock();
    cleanup = new MemoryImageCleanup();
    posted = [];
  });

  function sweeper(targets: Target[], overrides: Partial<KeepSweepDeps> = {}) {
    return createKeepSweep({
      store: memoryStore(),
      cleanup,
      targets,
      clock,
      logger: silentLogger(),
      postSummary: async (channel, report) => void posted.push({ channel, report }),
      ...overrides,
    });
  }

  it("sweeps the target's regions and those it copies into, each keeping its own newest", () => {
    expect(sweepRegions(keepTarget("prod", rule(), ["us-east-1", "eu-west-1"]))).toEqual([
      "eu-west-1",
      "us-east-1",
    ]);
  });

  it("removes what is beyond the rule in every region, keeps protected and in-use images, and posts once", async () => {
    const target = keepTarget("prod", rule(), ["us-east-1"]);
    const newest = cleanup.add(image("eu-west-1", 1));
    const old = cleanup.add(image("eu-west-1", 2, { snapshotIds: ["snap-0aaaaaaaaaaaaaaaa"] }));
    const guarded = cleanup.add(image("eu-west-1", 3, { protected: true }));
    const used = cleanup.add(image("eu-west-1", 4));
    cleanup.inTemplates.add(used.imageId);
    const copyNewest = cleanup.add(image("us-east-1", 1));
    const copyOld = cleanup.add(image("us-east-1", 5));
    cleanup.keepsSnapshots.set(copyOld.imageId, [{ snapshotId: "snap-kept", code: "missing-permissions" }]);

    const { report, postError } = await sweeper([target]).sweep(target, {
      preview: false,
      post: "always",
    });

    expect(postError).toBeUndefined();
    expect(cleanup.deregistered.map((d) => d.imageId).sort()).toEqual([old.imageId, copyOld.imageId].sort());
    expect(cleanup.images.has(newest.imageId) && cleanup.images.has(copyNewest.imageId)).toBe(true);
    expect(report.removed.map((r) => [r.image.imageId, r.reasons])).toEqual([
      [old.imageId, [`beyond the newest 1 of ${I1} in eu-west-1`]],
      [copyOld.imageId, [`beyond the newest 1 of ${I1} in us-east-1`]],
    ]);
    expect(report.removed[1]?.snapshotsLeft).toEqual([
      { snapshotId: "snap-kept", code: "missing-permissions" },
    ]);
    expect(report.keptProtected.map((d) => d.image.imageId)).toEqual([guarded.imageId]);
    expect(report.keptInUse.map((d) => d.image.imageId)).toEqual([used.imageId]);
    expect(report.regions).toEqual(["eu-west-1", "us-east-1"]);
    // The daily sweep acts under its own name in CloudTrail, the one the target role exempts (AllowCleanup).
    expect(KEEP_RULE_IDENTITY).toBe("ami-bot-keep-rule");
    for (const d of cleanup.deregistered)
      expect(d.requester).toEqual({ userId: KEEP_RULE_IDENTITY, channelId: CLEANUP_CHANNEL });
    // Each removal names exactly that image's snapshots.
    expect(cleanup.snapshotIdsGiven).toEqual(
      new Map<string, readonly string[]>([
        [old.imageId, ["snap-0aaaaaaaaaaaaaaaa"]],
        [copyOld.imageId, []],
      ]),
    );
    expect(posted).toEqual([{ channel: CLEANUP_CHANNEL, report }]);
  });

  it("only lists and chooses in a preview: nothing deregistered, nothing posted", async () => {
    const target = keepTarget();
    cleanup.add(image("eu-west-1", 1));
    const old = cleanup.add(image("eu-west-1", 2));
    const { report } = await sweeper([target]).sweep(target, {
      preview: true,
      requester: { userId: ADMIN, channelId: "C0OPS" },
      post: "never",
    });
    expect(report.preview).toBe(true);
    expect(report.removed.map((r) => r.image.imageId)).toEqual([old.imageId]);
    expect(cleanup.calls.filter((c) => c.startsWith("deregister"))).toEqual([]);
    expect(posted).toEqual([]);
  });

  it("acts for the person who asked when a command runs it", async () => {
    const target = keepTarget();
    cleanup.add(image("eu-west-1", 1));
    cleanup.add(image("eu-west-1", 2));
    await sweeper([target]).sweep(target, {
      preview: false,
      requester: { userId: ADMIN, channelId: "C0OPS" },
      post: "always",
    });
    expect(cleanup.deregistered[0]?.requester).toEqual({ userId: ADMIN, channelId: "C0OPS" });
  });

  it("goes on past a region that fails and an image AWS refuses, telling both", async () => {
    const target = keepTarget("prod", rule(), ["us-east-1", "ap-south-1"]);
    cleanup.listFails.set("us-east-1", denied("listing images"));
    cleanup.templateFails.set("ap-south-1", denied("reading launch templates"));
    cleanup.add(image("ap-south-1", 1));
    const untouched = cleanup.add(image("ap-south-1", 2));
    cleanup.add(image("eu-west-1", 1));
    const refused = cleanup.add(image("eu-west-1", 2));
    const removed = cleanup.add(image("eu-west-1", 3));
    cleanup.deregisterFails.set(refused.imageId, denied("deregistering it"));

    const { report } = await sweeper([target]).sweep(target, { preview: false, post: "always" });

    expect(report.removed.map((r) => r.image.imageId)).toEqual([removed.imageId]);
    expect(report.failed).toEqual([
      expect.objectContaining({ image: refused, error: "AWS denied deregistering it." }),
    ]);
    expect(report.regionErrors).toEqual([
      { region: "us-east-1", error: "could not list the images: AWS denied listing images." },
      {
        region: "ap-south-1",
        error: "could not check which images launch templates use: AWS denied reading launch templates.",
      },
    ]);
    expect(cleanup.images.has(untouched.imageId)).toBe(true);
  });

  it("hides an unexpected error's detail from the summary", async () => {
    const target = keepTarget();
    cleanup.listFails.set("eu-west-1", new Error("socket hang up at 10.0.0.1"));
    const { report } = await sweeper([target]).sweep(target, { preview: false, post: "never" });
    expect(report.regionErrors[0]?.error).toBe(
      "could not list the images: unexpected error (see ami-bot's log)",
    );
  });

  it("returns the summary with the reason when it cannot be posted", async () => {
    const target = keepTarget();
    const sweep = sweeper([target], {
      postSummary: async () => {
        throw new Error("Slack refused the message: not_in_channel");
      },
    });
    const { postError } = await sweep.sweep(target, { preview: false, post: "always" });
    expect(postError).toBe("Slack refused the message: not_in_channel");
  });

  describe("once a day", () => {
    it("sweeps each target with a rule once per day, posting only when there is something to tell", async () => {
      const prod = keepTarget("prod");
      const quiet = { ...keepTarget("quiet"), regions: ["us-east-1"] };
      const none = testTarget({ name: "none" });
      cleanup.add(image("eu-west-1", 1));
      cleanup.add(image("eu-west-1", 2));
      const sweep = sweeper([prod, quiet, none]);
      await sweep.check();
      expect(cleanup.deregistered).toHaveLength(1);
      await sweep.check();
      clock.advance(DAY - 11 * 60_000);
      await sweep.check();
      expect(cleanup.calls.filter((c) => c.startsWith("list"))).toHaveLength(2);
      expect(posted.map((p) => p.report.targetName)).toHaveLength(1);
      clock.advance(10 * 60_000);
      await sweep.check();
      expect(cleanup.calls.filter((c) => c.startsWith("list"))).toHaveLength(4);
      // Nothing removed, protected or failed the second day: nothing posted.
      expect(posted).toHaveLength(1);
    });

    it("lets one of two replicas on one database sweep a target's day", async () => {
      const prod = keepTarget("prod");
      cleanup.add(image("eu-west-1", 1));
      cleanup.add(image("eu-west-1", 2));
      const store = memoryStore();
      const a = sweeper([prod], { store });
      const b = sweeper([prod], { store });
      await Promise.all([a.check(), b.check()]);
      expect(cleanup.calls.filter((c) => c.startsWith("list"))).toHaveLength(1);
      expect(posted).toHaveLength(1);
    });

    it("goes on with other targets when one cannot be claimed", async () => {
      const prod = keepTarget("prod");
      const other = keepTarget("other");
      let claims = 0;
      const sweep = sweeper([prod, other], {
        store: {
          claimSweep: (name) => {
            claims++;
            if (name === "prod") throw new Error("database locked");
            return true;
          },
        },
      });
      await sweep.check();
      expect(claims).toBe(2);
      expect(cleanup.calls).toEqual(["list eu-west-1"]);
    });
  });

  describe("on its timer", () => {
    beforeEach(() => {
      vi.useFakeTimers({ now: CLOCK_START });
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it("first looks a minute after start, then every hour, sweeping when the day has come", async () => {
      const prod = keepTarget("prod");
      const sweep = sweeper([prod], { clock: { now: () => Date.now() } });
      sweep.start();
      await vi.advanceTimersByTimeAsync(59_000);
      expect(cleanup.calls).toEqual([]);
      await vi.advanceTimersByTimeAsync(1_000);
      expect(cleanup.calls).toEqual(["list eu-west-1"]);
      await vi.advanceTimersByTimeAsync(23 * HOUR);
      expect(cleanup.calls).toEqual(["list eu-west-1"]);
      await vi.advanceTimersByTimeAsync(HOUR);
      expect(cleanup.calls).toEqual(["list eu-west-1", "list eu-west-1"]);
      await sweep.stop();
      await vi.advanceTimersByTimeAsync(2 * DAY);
      expect(cleanup.calls).toHaveLength(2);
    });

    it("waits briefly for a sweep in progress on stop, removing nothing more, then cuts it short", async () => {
      const prod = keepTarget("prod");
      cleanup.add(image("eu-west-1", 1));
      cleanup.add(image("eu-west-1", 2));
      cleanup.add(image("eu-west-1", 3));
      let open: () => void = () => {};
      cleanup.gate = new Promise((resolve) => {
        open = resolve;
      });
      const sweep = sweeper([prod], { clock: { now: () => Date.now() } });
      sweep.start();
      await vi.advanceTimersByTimeAsync(60_000);
      expect(sweep.isRunning("prod")).toBe(true);
      let cut = false;
      const stopped = sweep.stop({
        graceMs: 1_000,
        cutShort: () => {
          cut = true;
          open();
        },
      });
      await vi.advanceTimersByTimeAsync(1_000);
      await stopped;
      expect(cut).toBe(true);
      // Stopping: no DeregisterImage was started, and the summary says they wait for the next sweep.
      expect(cleanup.deregistered).toEqual([]);
      expect(posted[0]?.report.failed.map((f) => f.error)).toEqual([
        "ami-bot was shutting down; the next sweep removes it.",
        "ami-bot was shutting down; the next sweep removes it.",
      ]);
    });
  });
});
