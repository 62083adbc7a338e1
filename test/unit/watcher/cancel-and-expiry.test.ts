/**
 * The watcher's side of approvals and cancel: a waiting job expires, an approved one is created, and a
 * cancelled one has its image removed exactly once, whatever came in between (a CreateImage in flight,
 * a crash after the DeregisterImage call).
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { WatcherSettings } from "../../../src/config.js";
import type { Job } from "../../../src/domain/job.js";
import type { NewJob } from "../../../src/domain/ports.js";
import { AwsRefusedError } from "../../../src/errors.js";
import type { SqliteJobStore } from "../../../src/store/sqlite-job-store.js";
import { createImageWatcher, type ImageWatcher } from "../../../src/watcher/image-watcher.js";
import { FixedClock } from "../../fakes/fixed-clock.js";
import {
  memoryStore,
  newJob,
  placeFor,
  REQUESTER,
  silentLogger,
  testTarget,
  watcherSettings,
} from "../../fakes/job-fixtures.js";
import { MemoryImageService } from "../../fakes/memory-image-service.js";

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const SETTINGS: WatcherSettings = watcherSettings({
  pollIntervalMs: 10 * SECOND,
  slowAfterMs: 30 * MINUTE,
  slowPollIntervalMs: 5 * MINUTE,
  giveUpAfterMs: 2 * HOUR,
});
const APPROVER = "U0APPROVER";
const prod = testTarget({
  name: "prod",
  regions: ["eu-west-1"],
  approval: { approvers: { users: [APPROVER], usergroups: [] }, expiresAfterMs: 4 * HOUR },
});
const PROD_EU = placeFor(prod, "eu-west-1");

let clock: FixedClock;
let images: MemoryImageService;
let store: SqliteJobStore;
let watcher: ImageWatcher;

beforeEach(() => {
  clock = new FixedClock();
  images = new MemoryImageService();
  store = memoryStore();
  watcher = createImageWatcher({
    store,
    images,
    targets: [prod],
    settings: SETTINGS,
    clock,
    logger: silentLogger(),
  });
});

function submit(overrides: Partial<NewJob> = {}): Job {
  images.addInstance(PROD_EU, { instanceId: "i-0123456789abcdef0", name: "web-1" });
  const job = newJob({ targetName: prod.name, roleArn: prod.roleArn, region: "eu-west-1", ...overrides });
  store.insert(job, clock.now());
  return store.get(job.id) as Job;
}

const keys = (jobId: string) => store.outboxForJob(jobId).map((m) => m.key);

describe("a job waiting for approval", () => {
  it("asks nothing of AWS while it waits, and expires when nobody decides", async () => {
    const job = submit({ approvalExpiresAt: clock.now() + 4 * HOUR });
    await watcher.tick();
    clock.advance(4 * HOUR - 1);
    await watcher.tick();
    expect(images.calls).toEqual([]);
    expect(store.get(job.id)?.state).toBe("awaiting_approval");
    clock.advance(1);
    await watcher.tick();
    expect(store.get(job.id)).toMatchObject({ state: "expired", finishedAt: clock.now() });
    expect(keys(job.id)).toContain("expired");
    expect(images.calls).toEqual([]);
  });

  it("is created once approved, with the watcher's clock starting at the approval", async () => {
    const job = submit({ approvalExpiresAt: clock.now() + 4 * HOUR });
    clock.advance(3 * HOUR);
    store.decide(job.id, { type: "approved", by: APPROVER }, clock.now());
    await watcher.tick();
    expect(images.callsTo("createImage")).toHaveLength(1);
    expect(store.get(job.id)?.state).toBe("pending");
    // Three hours of waiting do not count toward the two-hour limit on making the image.
    clock.advance(HOUR);
    await watcher.tick();
    expect(store.get(job.id)?.state).not.toBe("timed_out");
  });
});

describe("cancel", () => {
  it("calls nothing when a queued job is cancelled before CreateImage", async () => {
    const job = submit();
    const hold = images.hold("describeInstance");
    const tick = watcher.tick();
    store.decide(job.id, { type: "cancel_requested", by: REQUESTER }, clock.now());
    hold();
    await tick;
    expect(images.callsTo("createImage")).toEqual([]);
    expect(store.get(job.id)?.state).toBe("cancelled");
  });

  it("deregisters a pending image once, as the person who cancelled", async () => {
    const job = submit();
    await watcher.tick();
    const imageId = store.get(job.id)?.imageId as string;
    store.decide(job.id, { type: "cancel_requested", by: APPROVER }, clock.now());
    await watcher.tick();
    const calls = images.callsTo("deregisterImage");
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args).toEqual([{ jobId: job.id, imageId }]);
    expect(calls[0]?.requester?.userId).toBe(APPROVER);
    expect(store.get(job.id)).toMatchObject({ state: "cancelled", imageId, cancelledBy: APPROVER });
    expect(keys(job.id).map((k) => k.split(":")[0])).toEqual(
      expect.arrayContaining(["cancelling", "cancelled"]),
    );
    await watcher.tick();
    expect(images.callsTo("deregisterImage")).toHaveLength(1);
  });

  it("removes the image of a CreateImage that was in flight when the cancel came", async () => {
    const job = submit();
    const hold = images.hold("createImage");
    const tick = watcher.tick();
    await new Promise((r) => setTimeout(r, 10));
    const cancelled = store.decide(job.id, { type: "cancel_requested", by: REQUESTER }, clock.now());
    expect(cancelled?.job.state).toBe("cancelling");
    hold();
    await tick;
    const imageId = store.get(job.id)?.imageId as string;
    expect(imageId).toMatch(/^ami-/);
    await watcher.tick();
    expect(images.callsTo("deregisterImage").map((c) => c.args[0])).toEqual([{ jobId: job.id, imageId }]);
    expect(store.get(job.id)?.state).toBe("cancelled");
  });

  it("does not deregister twice after a crash between the call and storing its result", async () => {
    const job = submit();
    await watcher.tick();
    const imageId = store.get(job.id)?.imageId as string;
    store.decide(job.id, { type: "cancel_requested", by: REQUESTER }, clock.now());
    // The call went through, then the process died before the job was marked cancelled.
    store.markDeregisterAttempted(job.id, clock.now());
    await images.deregisterImage(
      PROD_EU,
      { userId: REQUESTER, channelId: "C0UPDATES" },
      { jobId: job.id, imageId },
    );
    const before = images.callsTo("deregisterImage").length;
    await watcher.tick();
    expect(images.callsTo("deregisterImage")).toHaveLength(before);
    expect(store.get(job.id)?.state).toBe("cancelled");
  });

  it("puts the job back to pending, and says why, when AWS refuses to deregister", async () => {
    const job = submit();
    await watcher.tick();
    store.decide(job.id, { type: "cancel_requested", by: REQUESTER }, clock.now());
    images.failNext(
      "deregisterImage",
      new AwsRefusedError("access_denied", "The target role does not allow DeregisterImage.", false),
    );
    await watcher.tick();
    expect(store.get(job.id)).toMatchObject({
      state: "pending",
      cancelledBy: undefined,
      finalReason: "The target role does not allow DeregisterImage.",
    });
    expect(keys(job.id).some((k) => k.startsWith("cancel_failed:"))).toBe(true);
  });

  it("deregisters only an image AWS already shows, waiting for one made moments ago", async () => {
    const job = submit();
    store.markCreateAttempted(job.id, clock.now());
    // CreateImage answered with an id that DescribeImages does not show yet.
    store.apply(job.id, { type: "image_created", imageId: "ami-0123456789abcdef0" }, clock.now());
    store.decide(job.id, { type: "cancel_requested", by: REQUESTER }, clock.now());
    await watcher.tick();
    clock.advance(SETTINGS.pollIntervalMs);
    await watcher.tick();
    expect(images.callsTo("deregisterImage")).toEqual([]);
    expect(store.get(job.id)?.state).toBe("cancelling");
    // Ten minutes on, an image AWS has never shown is taken as gone.
    clock.advance(11 * MINUTE);
    await watcher.tick();
    expect(store.get(job.id)?.state).toBe("cancelled");
    expect(images.callsTo("deregisterImage")).toEqual([]);
  });
});
