/**
 * The watcher's side of the steps after the image: copies made once each and followed to their end, shares
 * made once each image is available, one step failing while the rest go on, and a restart in the middle
 * copying nothing twice.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { WatcherSettings } from "../../../src/config.js";
import type { Job, JobEvent } from "../../../src/domain/job.js";
import type { CopyImageParams, NewJob, ShareImageParams } from "../../../src/domain/ports.js";
import { AwsRefusedError, PartialShareError } from "../../../src/errors.js";
import type { SqliteJobStore } from "../../../src/store/sqlite-job-store.js";
import {
  createImageWatcher,
  type ImageWatcher,
  type ImageWatcherDeps,
} from "../../../src/watcher/image-watcher.js";
import { FixedClock } from "../../fakes/fixed-clock.js";
import {
  memoryStore,
  newJob,
  placeFor,
  silentLogger,
  testTarget,
  watcherSettings,
} from "../../fakes/job-fixtures.js";
import { MemoryImageService } from "../../fakes/memory-image-service.js";

const SECOND = 1_000;
const HOUR = 3_600 * SECOND;
const SETTINGS: WatcherSettings = watcherSettings({ pollIntervalMs: 10 * SECOND, giveUpAfterMs: 2 * HOUR });
const ACCOUNTS = ["210987654321", "345678901234"];
const prod = testTarget({
  name: "prod",
  regions: ["eu-west-1"],
  after: {
    copyTo: [
      { region: "us-east-1", kmsKeyId: undefined },
      {
        region: "eu-central-1",
        kmsKeyId: "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
      },
    ],
    shareWith: ACCOUNTS,
    keep: undefined,
  },
});
const EU = placeFor(prod, "eu-west-1");
const US = placeFor(prod, "us-east-1");
const DE = placeFor(prod, "eu-central-1");

let clock: FixedClock;
let images: MemoryImageService;
let store: SqliteJobStore;
let watcher: ImageWatcher;
let steps: string[];

/** A watcher on the test's store, fakes and clock; `overrides` replace any of its parts (another target list, a failing store). */
function makeWatcher(overrides: Partial<ImageWatcherDeps> = {}): ImageWatcher {
  return createImageWatcher({
    store,
    images,
    targets: [prod],
    settings: SETTINGS,
    clock,
    logger: silentLogger(),
    onStep: (s) => steps.push(s),
    ...overrides,
  });
}

beforeEach(() => {
  clock = new FixedClock();
  images = new MemoryImageService();
  store = memoryStore();
  steps = [];
  watcher = makeWatcher();
});

/** A job whose image is made and available after the first ticks. */
async function availableJob(overrides: Partial<NewJob> = {}): Promise<Job> {
  images.addInstance(EU, { instanceId: "i-0123456789abcdef0", name: "web-1" });
  const job = newJob({
    targetName: prod.name,
    roleArn: prod.roleArn,
    region: "eu-west-1",
    copyTo: ["us-east-1", "eu-central-1"],
    shareWith: ACCOUNTS,
    ...overrides,
  });
  store.insert(job, clock.now());
  await watcher.tick(); // CreateImage
  const imageId = store.get(job.id)?.imageId as string;
  images.setImageState(imageId, "available");
  clock.advance(SETTINGS.pollIntervalMs);
  await watcher.tick(); // available → finishing, due at once
  return store.get(job.id) as Job;
}

const copyCalls = (place = US) => images.callsTo("copyImage", place).map((c) => c.args[0] as CopyImageParams);
const shareCalls = () => images.calls.filter((c) => c.method === "shareImage");
const keys = (jobId: string) => store.outboxForJob(jobId).map((m) => m.key);

describe("steps after the image", () => {
  it("copies into each chosen region once, shares each image once available, then ends with a summary", async () => {
    const job = await availableJob();
    expect(job.state).toBe("finishing");
    await watcher.tick(); // share the source, start both copies
    expect(copyCalls(US)).toEqual([
      {
        jobId: job.id,
        sourceRegion: "eu-west-1",
        sourceImageId: job.imageId,
        instanceId: "i-0123456789abcdef0",
        imageName: job.imageName,
        description: undefined,
        tags: [],
        kmsKeyId: undefined,
      },
    ]);
    expect(copyCalls(DE)[0]?.kmsKeyId).toBe(prod.after.copyTo[1]?.kmsKeyId);
    const copies = store.get(job.id)?.after?.copies ?? [];
    expect(copies.map((c) => c.state)).toEqual(["pending", "pending"]);
    for (const c of copies) images.setImageState(c.imageId as string, "available");
    clock.advance(SETTINGS.pollIntervalMs);
    await watcher.tick(); // both copies available and shared
    const shared = shareCalls().map((c) => [c.place, (c.args[0] as ShareImageParams).imageId]);
    expect(shared).toEqual([
      ["prod|eu-west-1", job.imageId],
      ["prod|us-east-1", copies[0]?.imageId],
      ["prod|eu-central-1", copies[1]?.imageId],
    ]);
    for (const c of shareCalls()) expect((c.args[0] as ShareImageParams).accounts).toEqual(ACCOUNTS);
    expect(store.get(job.id)?.state).toBe("available");
    expect(keys(job.id)).toEqual(
      expect.arrayContaining([
        "available",
        "shared:eu-west-1",
        "copy_started:us-east-1",
        "copy_started:eu-central-1",
        "copy_available:us-east-1",
        "copy_available:eu-central-1",
        "shared:us-east-1",
        "shared:eu-central-1",
        "after_done",
      ]),
    );
    // Nothing more is asked of AWS once the job has ended.
    const calls = images.calls.length;
    clock.advance(HOUR);
    await watcher.tick();
    expect(images.calls.length).toBe(calls);
  });

  it("checks every finishing job's copies in one DescribeImages per place, not one per copy", async () => {
    images.addInstance(EU, { instanceId: "i-0123456789abcdef0", name: "web-1" });
    const jobs = ["i-00000000000000001", "i-00000000000000002", "i-00000000000000003"].map((instanceId) => {
      images.addInstance(EU, { instanceId, name: instanceId });
      const job = newJob({
        targetName: prod.name,
        roleArn: prod.roleArn,
        region: "eu-west-1",
        instanceId,
        copyTo: ["us-east-1", "eu-central-1"],
        shareWith: [],
      });
      store.insert(job, clock.now());
      return job.id;
    });
    await watcher.tick();
    for (const id of jobs) images.setImageState(store.get(id)?.imageId as string, "available");
    clock.advance(SETTINGS.pollIntervalMs);
    await watcher.tick(); // available → finishing
    await watcher.tick(); // copies started
    images.calls.length = 0;
    clock.advance(SETTINGS.pollIntervalMs);
    await watcher.tick(); // every copy still pending
    const describes = images.calls.filter((c) => c.method === "describeImages");
    expect(describes.map((c) => [c.place, (c.args[0] as string[]).length]).sort()).toEqual([
      ["prod|eu-central-1", 3],
      ["prod|us-east-1", 3],
    ]);
  });

  it("starts no copy or share for a requester whose access was withdrawn since, and says why", async () => {
    const job = await availableJob();
    const calls = images.calls.length;
    await makeWatcher({
      accessNow: async () => ({ allowed: false, reason: "no longer in the allowed user group" }),
    }).tick();
    expect(images.calls.slice(calls).filter((c) => c.method !== "describeImages")).toEqual([]);
    const done = store.get(job.id);
    expect(done?.state).toBe("available");
    const reason =
      "Your access to target prod changed since you asked (no longer in the allowed user group), so ami-bot did not start this step.";
    expect(done?.after?.share).toEqual({ state: "failed", reason });
    expect(done?.after?.copies.map((c) => [c.state, c.reason])).toEqual([
      ["failed", reason],
      ["failed", reason],
    ]);
  });

  it("waits, starting nothing, while Slack cannot say whether the requester is still allowed", async () => {
    const job = await availableJob();
    await makeWatcher({
      accessNow: async () => {
        throw new Error("Slack is down");
      },
    }).tick();
    expect(copyCalls(US)).toEqual([]);
    expect(shareCalls()).toEqual([]);
    // No try is used up: Slack's trouble is not the step's.
    expect(store.get(job.id)).toMatchObject({
      state: "finishing",
      attempts: 0,
      nextCheckAt: clock.now() + SETTINGS.pollIntervalMs,
    });
  });

  it("goes on following copies already under way when access is withdrawn, and only refuses what would start", async () => {
    const job = await availableJob({ copyTo: ["us-east-1"] });
    await watcher.tick(); // source shared, copy started
    const copyId = store.get(job.id)?.after?.copies[0]?.imageId as string;
    images.setImageState(copyId, "available");
    clock.advance(SETTINGS.pollIntervalMs);
    const shares = shareCalls().length;
    await makeWatcher({ accessNow: async () => ({ allowed: false, reason: "deactivated account" }) }).tick();
    const done = store.get(job.id);
    expect(done?.state).toBe("available");
    expect(done?.after?.copies[0]).toMatchObject({
      state: "available",
      imageId: copyId,
      share: { state: "failed", reason: expect.stringContaining("(deactivated account)") },
    });
    expect(shareCalls()).toHaveLength(shares);
    expect(keys(job.id)).toContain("copy_available:us-east-1");
  });

  it("takes a last look at pending copies before giving up on an overdue job", async () => {
    const job = await availableJob({ copyTo: ["us-east-1"], shareWith: [] });
    await watcher.tick(); // copy started
    const copyId = store.get(job.id)?.after?.copies[0]?.imageId as string;
    images.setImageState(copyId, "available");
    clock.advance(2 * SETTINGS.giveUpAfterMs);
    await watcher.tick();
    expect(store.get(job.id)?.after?.copies[0]).toMatchObject({ state: "available", imageId: copyId });
    expect(store.get(job.id)?.state).toBe("available");
  });

  it("ends a refused copy with AWS's plain reason while the other region and the shares go on", async () => {
    const job = await availableJob();
    images.failAlways(
      "copyImage",
      new AwsRefusedError("kms_key_unusable", "AWS could not use the KMS key to encrypt the copy.", false),
      DE,
    );
    await watcher.tick();
    const after = store.get(job.id)?.after;
    expect(after?.copies[1]).toMatchObject({
      region: "eu-central-1",
      state: "failed",
      reason: "AWS could not use the KMS key to encrypt the copy.",
      share: { state: "skipped" },
    });
    expect(after?.copies[0]?.state).toBe("pending");
    images.setImageState(after?.copies[0]?.imageId as string, "available");
    clock.advance(SETTINGS.pollIntervalMs);
    await watcher.tick();
    expect(store.get(job.id)).toMatchObject({ state: "available", imageId: job.imageId });
    expect(keys(job.id)).toContain("copy_failed:eu-central-1");
    expect(keys(job.id)).toContain("after_done");
  });

  it("retries a throttled share with backoff, then ends that step with the reason after six tries", async () => {
    const job = await availableJob({ copyTo: [] });
    images.failAlways(
      "shareImage",
      new AwsRefusedError("throttled", "AWS is throttling requests in this account.", true),
    );
    for (let i = 0; i < 6; i++) {
      clock.advance(10 * 60 * SECOND);
      await watcher.tick();
    }
    expect(shareCalls()).toHaveLength(6);
    expect(store.get(job.id)?.state).toBe("available");
    expect(store.get(job.id)?.after?.share).toEqual({
      state: "failed",
      reason:
        "AWS is throttling requests in this account: ami-bot tried 6 times without success and stopped this step.",
    });
  });

  it("marks a share refused after its launch permission went through as shared for launch only", async () => {
    const job = await availableJob({ copyTo: [] });
    const denied = new AwsRefusedError("access_denied", "AWS denied sharing the snapshot.", false);
    images.failAlways("shareImage", new PartialShareError(denied, "snap-0one"));
    await watcher.tick();
    expect(store.get(job.id)?.after?.share).toEqual({
      state: "failed",
      reason: "AWS denied sharing the snapshot.",
      launchOnly: true,
    });
    expect(keys(job.id)).toContain("share_failed:eu-west-1");
  });

  it("ends whatever is still open once twice the time limit has passed, and the job with it", async () => {
    const job = await availableJob({ copyTo: [] });
    images.failAlways(
      "shareImage",
      new AwsRefusedError("throttled", "AWS is throttling requests in this account.", true),
    );
    await watcher.tick();
    clock.advance(2 * SETTINGS.giveUpAfterMs);
    await watcher.tick();
    expect(store.get(job.id)).toMatchObject({ state: "available", after: { share: { state: "failed" } } });
    expect(keys(job.id)).toContain("after_done");
  });

  it("shares with no one when the account owner withdrew a ticked account since, and says so", async () => {
    const job = await availableJob({ copyTo: [] });
    const narrowed = testTarget({ ...prod, after: { ...prod.after, shareWith: [ACCOUNTS[0] as string] } });
    await makeWatcher({ targets: [narrowed] }).tick();
    expect(shareCalls()).toEqual([]);
    expect(store.get(job.id)?.after?.share).toEqual({
      state: "failed",
      reason: `Sharing with ${ACCOUNTS[1]} is no longer offered for target prod, so ami-bot shared the image with no one.`,
    });
  });

  it("ends the open steps of a copy region the target no longer offers, a copy's share included", async () => {
    const job = await availableJob({ copyTo: ["us-east-1"] });
    images.failNext(
      "shareImage",
      new AwsRefusedError("throttled", "AWS is throttling requests in this account.", true),
      { place: US },
    );
    await watcher.tick(); // source shared, copy started
    const copyId = store.get(job.id)?.after?.copies[0]?.imageId as string;
    images.setImageState(copyId, "available");
    clock.advance(SETTINGS.pollIntervalMs);
    await watcher.tick(); // copy available, its share throttled
    expect(store.get(job.id)?.after?.copies[0]?.share).toEqual({ state: "waiting" });
    const withoutUs = testTarget({ ...prod, after: { ...prod.after, copyTo: [] } });
    clock.advance(HOUR);
    await makeWatcher({ targets: [withoutUs] }).tick();
    expect(store.get(job.id)?.state).toBe("available");
    expect(store.get(job.id)?.after?.copies[0]?.share?.state).toBe("failed");
  });

  it("adopts a copy AWS made rather than fail it when CopyImage's answers keep getting lost", async () => {
    const job = await availableJob({ copyTo: ["us-east-1"], shareWith: [] });
    // Every answer is lost, though the first call made the copy.
    let made = false;
    const losing = new Proxy(images, {
      get(target, name) {
        if (name === "copyImage")
          return async (...args: Parameters<MemoryImageService["copyImage"]>) => {
            if (!made) {
              made = true;
              await target.copyImage(...args);
            }
            throw new AwsRefusedError("aws_unavailable", "AWS did not answer in time.", true);
          };
        if (name === "findCopy") return async () => undefined; // tag filters lagging all along
        const value = Reflect.get(target, name);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const stubborn = makeWatcher({ images: losing });
    for (let i = 0; i < 5; i++) {
      await stubborn.tick();
      clock.advance(10 * 60 * SECOND);
    }
    expect(store.get(job.id)?.after?.copies[0]?.state).toBe("waiting");
    // The sixth try fails too, and the last look (tags caught up by now) finds the copy.
    await makeWatcher({
      images: new Proxy(images, {
        get(target, name) {
          if (name === "copyImage")
            return async () => {
              throw new AwsRefusedError("aws_unavailable", "AWS did not answer in time.", true);
            };
          const value = Reflect.get(target, name);
          return typeof value === "function" ? value.bind(target) : value;
        },
      }),
    }).tick();
    const copy = store.get(job.id)?.after?.copies[0];
    expect(copy?.state).toBe("pending");
    expect(images.imagesIn(US).map((i) => i.imageId)).toEqual([copy?.imageId]);
  });

  it("copies nothing twice when the copy's id was never stored: it finds the copy by its tags", async () => {
    const job = await availableJob({ copyTo: ["us-east-1"], shareWith: [] });
    // A store that fails to record the copy's id once, as a crash right after CopyImage returned would.
    let lose = true;
    const losing = new Proxy(store, {
      get(target, name) {
        if (name === "apply")
          return (id: string, event: JobEvent, now: number) => {
            if (event.type === "copy_created" && lose) {
              lose = false;
              throw new Error("the process died here");
            }
            return target.apply(id, event, now);
          };
        const value = Reflect.get(target, name);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    await makeWatcher({ store: losing }).tick();
    expect(store.get(job.id)?.after?.copies[0]).toMatchObject({ state: "waiting", attemptedAt: clock.now() });
    expect(store.get(job.id)?.after?.copies[0]?.imageId).toBeUndefined();
    clock.advance(HOUR);
    await makeWatcher().tick();
    expect(copyCalls(US)).toHaveLength(1);
    expect(images.callsTo("findCopy", US)).toHaveLength(1);
    const copyId = store.get(job.id)?.after?.copies[0]?.imageId as string;
    expect(images.imagesIn(US).map((i) => i.imageId)).toEqual([copyId]);
    images.setImageState(copyId, "available");
    clock.advance(SETTINGS.pollIntervalMs);
    await makeWatcher().tick();
    expect(store.get(job.id)?.state).toBe("available");
    expect(copyCalls(US)).toHaveLength(1);
  });
});
