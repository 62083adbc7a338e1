import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { BotImage, SweepReport } from "../../../src/domain/keep-rule.js";
import type { NewJob } from "../../../src/domain/ports.js";
import type { KeepRule, Target } from "../../../src/domain/target.js";
import type { SqliteJobStore } from "../../../src/store/sqlite-job-store.js";
import {
  createKeepSweep,
  KEEP_RULE_IDENTITY,
  type KeepSweepDeps,
  sweepRegions,
} from "../../../src/watcher/keep-sweep.js";
import { CLOCK_START, createFixedClock, type FixedClock } from "../../fakes/fixed-clock.js";
import { memoryStore, newJob, silentLogger, testTarget } from "../../fakes/job-fixtures.js";
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
  let store: SqliteJobStore;

  beforeEach(() => {
    clock = createFixedClock();
    cleanup = new MemoryImageCleanup();
    posted = [];
    store = memoryStore();
  });

  /** The job that made an image, stored as the bot stores it; by default a finished job of target prod. */
  function storeJob(
    jobId: string,
    job: Partial<NewJob> = {},
    end: "available" | "pending" | "queued" = "available",
  ): void {
    store.insert(newJob({ ...job, id: jobId }), clock.now());
    if (end === "queued") return;
    store.apply(jobId, { type: "image_created", imageId: `ami-of-${jobId}` }, clock.now());
    if (end === "available") store.apply(jobId, { type: "image_state", state: "available" }, clock.now());
  }

  /** An image in the fake EC2, with a finished job of prod behind it unless `job` says otherwise. */
  function add(img: BotImage, job: Partial<NewJob> | "unknown" = {}): BotImage {
    if (job !== "unknown" && img.jobId) storeJob(img.jobId, job);
    return cleanup.add(img);
  }

  function sweeper(targets: Target[], overrides: Partial<KeepSweepDeps> = {}) {
    return createKeepSweep({
      store,
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
    const newest = add(image("eu-west-1", 1));
    const old = add(image("eu-west-1", 2, { snapshotIds: ["snap-0aaaaaaaaaaaaaaaa"] }));
    const guarded = add(image("eu-west-1", 3, { protected: true }));
    const used = add(image("eu-west-1", 4));
    cleanup.inTemplates.add(used.imageId);
    const copyNewest = add(image("us-east-1", 1));
    const copyOld = add(image("us-east-1", 5));
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
    add(image("eu-west-1", 1));
    const old = add(image("eu-west-1", 2));
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
    add(image("eu-west-1", 1));
    add(image("eu-west-1", 2));
    await sweeper([target]).sweep(target, {
      preview: false,
      requester: { userId: ADMIN, channelId: "C0OPS" },
      post: "always",
    });
    expect(cleanup.deregistered[0]?.requester).toEqual({ userId: ADMIN, channelId: "C0OPS" });
  });

  describe("weighs only this target's finished jobs", () => {
    it("never removes or counts another target's images, another ami-bot's or unknown ones", async () => {
      const target = keepTarget("prod", rule({ maxAgeMs: 30 * DAY }));
      // Another target on the same role, and one of the same name on another role (another account).
      const otherTarget = add(image("eu-west-1", 1), { targetName: "staging" });
      const otherRole = add(image("eu-west-1", 1, { imageId: "ami-0otherrole000000" }), {
        roleArn: "arn:aws:iam::210987654321:role/ami-bot",
      });
      // A job id this bot's store does not know: another ami-bot on the account.
      const unknown = add(image("eu-west-1", 1), "unknown");
      const otherOld = add(image("eu-west-1", 90), { targetName: "staging" });
      const unknownOld = add(image("eu-west-1", 90), "unknown");
      const ours = add(image("eu-west-1", 2));
      const oursOld = add(image("eu-west-1", 3));

      const { report } = await sweeper([target]).sweep(target, { preview: false, post: "always" });

      // Were the others counted among the newest 1, `ours` would have gone too.
      expect(report.removed.map((r) => r.image.imageId)).toEqual([oursOld.imageId]);
      expect(cleanup.deregistered.map((d) => d.imageId)).toEqual([oursOld.imageId]);
      for (const kept of [otherTarget, otherRole, unknown, otherOld, unknownOld, ours])
        expect(cleanup.images.has(kept.imageId)).toBe(true);
      expect(report.leftAlone).toBe(5);
      expect(report.keptProtected).toEqual([]);
      expect(report.keptInUse).toEqual([]);
    });

    it("never removes the image of a job still running, even beyond the rule, nor its copies", async () => {
      const target = keepTarget("prod", rule({ maxAgeMs: 30 * DAY }), ["us-east-1"]);
      add(image("eu-west-1", 1));
      // Its image is available and its copy is still being made: removing the source would break the copy.
      const finishing = add(image("eu-west-1", 40, { jobId: "job-finishing" }), "unknown");
      storeJob("job-finishing", { copyTo: ["us-east-1"] });
      expect((await store.get("job-finishing"))?.state).toBe("finishing");
      const finishingCopy = add(image("us-east-1", 40, { jobId: "job-finishing" }), "unknown");
      // Made, not yet seen available by the watcher; and one not yet made (an old tag reused, say).
      const pending = add(image("eu-west-1", 50, { jobId: "job-pending" }), "unknown");
      storeJob("job-pending", {}, "pending");
      const queued = add(image("eu-west-1", 60, { jobId: "job-queued" }), "unknown");
      storeJob("job-queued", {}, "queued");
      expect((await store.get("job-pending"))?.state).toBe("pending");
      expect((await store.get("job-queued"))?.state).toBe("queued");
      const finishedOld = add(image("eu-west-1", 45));

      for (const preview of [true, false]) {
        const { report } = await sweeper([target]).sweep(target, { preview, post: "never" });
        expect(report.removed.map((r) => r.image.imageId)).toEqual([finishedOld.imageId]);
        expect(report.leftAlone).toBe(4);
      }
      for (const kept of [finishing, finishingCopy, pending, queued])
        expect(cleanup.images.has(kept.imageId)).toBe(true);
      expect(cleanup.deregistered.map((d) => d.imageId)).toEqual([finishedOld.imageId]);
    });

    it("looks each job up once per sweep, awaiting a store that answers later (Postgres)", async () => {
      const target = keepTarget("prod", rule(), ["us-east-1"]);
      const asked: string[] = [];
      const asyncStore: KeepSweepDeps["store"] = {
        claimSweep: () => true,
        get: async (id) => {
          asked.push(id);
          await new Promise((resolve) => setTimeout(resolve, 1));
          return store.get(id);
        },
      };
      // A source and its copy carry one job id, so the copy follows its job.
      add(image("eu-west-1", 1, { jobId: "job-new" }));
      add(image("us-east-1", 1, { jobId: "job-new" }), "unknown");
      const old = add(image("eu-west-1", 2, { jobId: "job-old" }));
      const oldCopy = add(image("us-east-1", 2, { jobId: "job-old" }), "unknown");

      const { report } = await sweeper([target], { store: asyncStore }).sweep(target, {
        preview: false,
        post: "never",
      });

      expect(asked.sort()).toEqual(["job-new", "job-old"]);
      expect(report.removed.map((r) => r.image.imageId)).toEqual([old.imageId, oldCopy.imageId]);
      expect(report.leftAlone).toBe(0);
    });

    it("tells a store that cannot answer as the region's error, removing nothing", async () => {
      const target = keepTarget();
      add(image("eu-west-1", 1));
      add(image("eu-west-1", 2));
      const { report } = await sweeper([target], {
        store: {
          claimSweep: () => true,
          get: () => {
            throw new Error("database locked");
          },
        },
      }).sweep(target, { preview: false, post: "never" });
      expect(cleanup.deregistered).toEqual([]);
      expect(report.regionErrors).toEqual([
        {
          region: "eu-west-1",
          error: "could not look up the jobs that made the images: unexpected error (see ami-bot's log)",
        },
      ]);
    });
  });

  it("goes on past a region that fails and an image AWS refuses, telling both", async () => {
    const target = keepTarget("prod", rule(), ["us-east-1", "ap-south-1"]);
    cleanup.listFails.set("us-east-1", denied("listing images"));
    cleanup.templateFails.set("ap-south-1", denied("reading launch templates"));
    add(image("ap-south-1", 1));
    const untouched = add(image("ap-south-1", 2));
    add(image("eu-west-1", 1));
    const refused = add(image("eu-west-1", 2));
    const removed = add(image("eu-west-1", 3));
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
      add(image("eu-west-1", 1));
      add(image("eu-west-1", 2));
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
      add(image("eu-west-1", 1));
      add(image("eu-west-1", 2));
      // Both replicas on the one database the jobs are in.
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
          get: (id) => store.get(id),
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
      add(image("eu-west-1", 1));
      add(image("eu-west-1", 2));
      add(image("eu-west-1", 3));
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
