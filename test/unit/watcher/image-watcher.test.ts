import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Target, WatcherSettings } from "../../../src/config.js";
import type { AccessDecision } from "../../../src/domain/access.js";
import type { Job } from "../../../src/domain/job.js";
import type { JobStore, NewJob, Place } from "../../../src/domain/ports.js";
import { AwsRefusedError } from "../../../src/errors.js";
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
const MINUTE = 60 * SECOND;
const SETTINGS: WatcherSettings = watcherSettings({
  pollIntervalMs: 10 * SECOND,
  slowAfterMs: 30 * MINUTE,
  slowPollIntervalMs: 5 * MINUTE,
  giveUpAfterMs: 2 * 60 * MINUTE,
});

const prod = testTarget({ name: "prod", regions: ["eu-west-1", "us-east-1"] });
const staging = testTarget({ name: "staging", accountId: "210987654321", regions: ["eu-west-1"] });
const PROD_EU = placeFor(prod, "eu-west-1");
const PROD_US = placeFor(prod, "us-east-1");
const STAGING_EU = placeFor(staging, "eu-west-1");

let clock: FixedClock;
let images: MemoryImageService;
let store: SqliteJobStore;
let watcher: ImageWatcher;
let instanceCount = 0;

function makeWatcher(
  targets: readonly Target[] = [prod, staging],
  extra: Partial<ImageWatcherDeps> = {},
): ImageWatcher {
  return createImageWatcher({
    store,
    images,
    targets,
    settings: SETTINGS,
    clock,
    logger: silentLogger(),
    ...extra,
  });
}

beforeEach(() => {
  clock = new FixedClock();
  images = new MemoryImageService();
  store = memoryStore();
  watcher = makeWatcher();
});

/** Submits a job for an instance that exists in `place`. */
function submit(place: Place = PROD_EU, overrides: Partial<NewJob> = {}): Job {
  instanceCount++;
  const instanceId = `i-${instanceCount.toString(16).padStart(17, "0")}`;
  images.addInstance(place, { instanceId, name: `web-${instanceCount}` });
  const job = newJob({
    targetName: place.target.name,
    roleArn: place.target.roleArn,
    region: place.region,
    instanceId,
    ...overrides,
  });
  store.insert(job, clock.now());
  return store.get(job.id) as Job;
}

const notices = (jobId: string) => store.outboxForJob(jobId).map((m) => m.key);
const jobOf = (id: string) => store.get(id) as Job;

/** Moves time on by `ms` and runs one pass. */
async function passTime(ms: number): Promise<void> {
  clock.advance(ms);
  await watcher.tick();
}

/** A job whose image is already being created. */
async function pendingJob(place: Place = PROD_EU): Promise<Job> {
  const job = submit(place);
  await watcher.tick();
  return jobOf(job.id);
}

describe("creating images", () => {
  it("checks the instance, creates the image once and follows it when a job is queued", async () => {
    const job = submit(PROD_EU, {
      imageName: "web nightly",
      description: "before upgrade",
      noReboot: true,
      tags: [{ key: "team", value: "web" }],
    });
    await watcher.tick();

    expect(images.callsTo("describeInstance")).toHaveLength(1);
    expect(images.callsTo("createImage", PROD_EU).map((c) => c.args[0])).toEqual([
      {
        jobId: job.id,
        instanceId: job.instanceId,
        imageName: "web nightly",
        description: "before upgrade",
        noReboot: true,
        tags: [{ key: "team", value: "web" }],
        excludedDevices: [],
      },
    ]);
    expect(images.callsTo("createImage")[0]?.requester).toEqual({
      userId: job.requestedBy,
      channelId: job.channelId,
    });
    const [image] = images.imagesIn(PROD_EU);
    expect(jobOf(job.id)).toMatchObject({
      state: "pending",
      imageId: image?.imageId,
      createAttemptedAt: clock.now(),
      nextCheckAt: clock.now() + SETTINGS.pollIntervalMs,
    });
    expect(notices(job.id)).toEqual(["root", "creating", "pending"]);

    await watcher.tick();
    expect(images.callsTo("createImage")).toHaveLength(1);
  });

  it("refuses the job with a reason when the instance is not found", async () => {
    const job = newJob({ targetName: "prod", region: "eu-west-1", instanceId: "i-0000000000000dead" });
    store.insert(job, clock.now());
    await watcher.tick();

    expect(images.callsTo("createImage")).toHaveLength(0);
    expect(jobOf(job.id)).toMatchObject({
      state: "refused",
      finalReason: expect.stringContaining("Instance i-0000000000000dead was not found in prod (eu-west-1)"),
    });
    expect(notices(job.id)).toEqual(["root", "refused", "requester_note", "root_update"]);
  });

  it("refuses the job with AWS's words when AWS refuses for good", async () => {
    const job = submit();
    images.failNext(
      "createImage",
      new AwsRefusedError("access_denied", "The role does not allow ec2:CreateImage.", false),
    );
    await watcher.tick();

    expect(jobOf(job.id)).toMatchObject({
      state: "refused",
      finalReason: "The role does not allow ec2:CreateImage.",
    });
    expect(notices(job.id)).toEqual(["root", "creating", "refused", "requester_note", "root_update"]);
    await passTime(MINUTE);
    expect(images.callsTo("createImage")).toHaveLength(1);
  });

  it("refuses the job when its target is no longer configured", async () => {
    const job = submit(STAGING_EU);
    watcher = makeWatcher([prod]);
    await watcher.tick();

    expect(images.calls).toEqual([]);
    expect(jobOf(job.id)).toMatchObject({
      state: "refused",
      finalReason: "Target staging in eu-west-1 is no longer configured.",
    });
  });

  it("backs off and succeeds later when AWS fails in a way worth retrying", async () => {
    const job = submit();
    const throttled = new AwsRefusedError("throttled", "AWS is throttling requests.", true);
    images.failNext("createImage", throttled, { times: 2 });
    const t0 = clock.now();

    await watcher.tick();
    expect(jobOf(job.id)).toMatchObject({
      state: "queued",
      attempts: 1,
      lastError: "AWS is throttling requests.",
      nextCheckAt: t0 + SETTINGS.pollIntervalMs,
    });

    await passTime(SETTINGS.pollIntervalMs - 1);
    expect(images.callsTo("createImage")).toHaveLength(1);

    await passTime(1);
    expect(jobOf(job.id)).toMatchObject({
      attempts: 2,
      nextCheckAt: clock.now() + 2 * SETTINGS.pollIntervalMs,
    });

    await passTime(2 * SETTINGS.pollIntervalMs);
    expect(images.callsTo("createImage")).toHaveLength(3);
    expect(jobOf(job.id)).toMatchObject({ state: "pending", attempts: 0, lastError: undefined });
    expect(notices(job.id)).toEqual(["root", "creating", "pending"]);
  });

  it("backs off when an unexpected error is thrown", async () => {
    const job = submit();
    images.failNext("describeInstance", new TypeError("socket hang up"));
    await watcher.tick();
    expect(jobOf(job.id)).toMatchObject({
      state: "queued",
      attempts: 1,
      lastError: "unexpected error (see the bot's log)",
    });
  });

  it("adopts the image and does not call CreateImage again when a crash came after the call", async () => {
    const job = submit();
    store.markCreateAttempted(job.id, clock.now());
    const image = images.addImage(PROD_EU, { name: job.imageName, jobId: job.id });
    watcher = makeWatcher();

    await watcher.tick();
    expect(images.callsTo("findImageByJob").map((c) => c.args[0])).toEqual([job.id]);
    expect(images.callsTo("createImage")).toHaveLength(0);
    expect(jobOf(job.id)).toMatchObject({ state: "pending", imageId: image.imageId });
    expect(notices(job.id)).toEqual(["root", "creating", "pending"]);
  });

  it("creates the image when a crash came before the call and AWS has no image for the job", async () => {
    const job = submit();
    store.markCreateAttempted(job.id, clock.now());
    await watcher.tick();
    expect(images.callsTo("createImage")).toHaveLength(1);
    expect(jobOf(job.id).state).toBe("pending");
    expect(notices(job.id)).toEqual(["root", "creating", "pending"]);
  });

  it("adopts the image when its name is taken by an image carrying this job's tag", async () => {
    const job = submit();
    const image = images.addImage(PROD_EU, { name: job.imageName, jobId: job.id });
    await watcher.tick();
    expect(images.callsTo("createImage")).toHaveLength(1);
    expect(jobOf(job.id)).toMatchObject({ state: "pending", imageId: image.imageId });
  });

  it("refuses the job when its name is taken by someone else's image", async () => {
    const job = submit();
    images.addImage(PROD_EU, { name: job.imageName, jobId: "another-job" });
    await watcher.tick();
    expect(jobOf(job.id)).toMatchObject({
      state: "refused",
      finalReason: expect.stringContaining("already exists"),
    });
  });

  it("looks again later, rather than blame the name, when an earlier call may have made the image", async () => {
    const job = submit();
    store.markCreateAttempted(job.id, clock.now()); // the bot died with CreateImage unanswered
    // AWS says the name is taken, and the tag filter does not show our image yet.
    images.failNext(
      "createImage",
      new AwsRefusedError("name_taken", "An image named x already exists.", false),
    );
    await watcher.tick();
    expect(jobOf(job.id)).toMatchObject({ state: "queued", attempts: 1 });
    const image = images.addImage(PROD_EU, { name: job.imageName, jobId: job.id }); // now it shows
    clock.advance(SETTINGS.pollIntervalMs);
    await watcher.tick();
    expect(jobOf(job.id)).toMatchObject({ state: "pending", imageId: image.imageId });
  });

  it("treats a target pointed at another role since the job began as no longer configured", async () => {
    const job = submit(PROD_EU, { roleArn: "arn:aws:iam::999999999999:role/ami-bot" });
    await watcher.tick();
    expect(images.callsTo("createImage")).toHaveLength(0);
    expect(jobOf(job.id)).toMatchObject({
      state: "refused",
      finalReason: "Target prod in eu-west-1 is no longer configured.",
    });
  });

  it("refuses a queued job with the cause after six failed tries when AWS keeps throttling", async () => {
    const job = submit();
    images.failAlways("createImage", new AwsRefusedError("throttled", "AWS is throttling requests.", true));
    for (let i = 0; i < 6; i++) {
      await watcher.tick();
      clock.advance(60 * SETTINGS.pollIntervalMs);
    }
    expect(images.callsTo("createImage")).toHaveLength(6);
    expect(jobOf(job.id)).toMatchObject({
      state: "refused",
      finalReason: "AWS is throttling requests. ami-bot tried 6 times without success; run /ami again later.",
    });
    expect(notices(job.id)).toEqual(["root", "creating", "refused", "requester_note", "root_update"]);
    await watcher.tick();
    expect(images.callsTo("createImage")).toHaveLength(6);
  });

  it("gives up on a queued job when AWS stays unreachable past giveUpAfterMs", async () => {
    const job = submit();
    images.failAlways(
      "describeInstance",
      new AwsRefusedError("aws_unavailable", "EC2 is unavailable.", true),
    );
    await watcher.tick();
    clock.advance(SETTINGS.giveUpAfterMs);
    await watcher.tick();
    expect(jobOf(job.id)).toMatchObject({
      state: "timed_out",
      finalReason: "AWS could not be reached to create the image in time.",
    });
    expect(notices(job.id)).toEqual(["root", "timed_out", "requester_note", "root_update"]);
  });
});

describe("the image name", () => {
  const malformed = "web:1 nightly"; // EC2 allows no colon in an image name

  it("refuses the job with AWS's words and looks for no image of its own when the name is malformed", async () => {
    const job = submit(PROD_EU, { imageName: malformed });
    await watcher.tick();
    expect(jobOf(job.id)).toMatchObject({
      state: "refused",
      finalReason: expect.stringContaining("AWS rejected the image name"),
    });
    expect(images.callsTo("findImageByJob")).toHaveLength(0);
    expect(notices(job.id)).toEqual(["root", "creating", "refused", "requester_note", "root_update"]);
  });

  it("refuses a malformed name at once, not later, even when an earlier call may have made an image", async () => {
    const job = submit(PROD_EU, { imageName: malformed });
    store.markCreateAttempted(job.id, clock.now()); // the case where a taken name is looked at again later
    await watcher.tick();
    expect(jobOf(job.id)).toMatchObject({ state: "refused", attempts: 0 });
    // Only the look a restart always takes before calling again; none after AWS's answer.
    expect(images.callsTo("findImageByJob")).toHaveLength(1);
    await passTime(SETTINGS.pollIntervalMs);
    expect(images.callsTo("createImage")).toHaveLength(1);
  });
});

describe("the instance's name", () => {
  it("stores the Name tag AWS reports when the job says otherwise", async () => {
    const job = submit(PROD_EU, { instanceName: "name-from-the-form" });
    await watcher.tick();
    // submit() names the instance web-<n> in AWS.
    expect(jobOf(job.id)).toMatchObject({ instanceName: `web-${instanceCount}`, state: "pending" });
  });

  it("clears the name when the instance has no Name tag", async () => {
    images.addInstance(PROD_EU, { instanceId: "i-0000000000000aaaa", name: undefined });
    const job = newJob({ instanceId: "i-0000000000000aaaa", instanceName: "name-from-the-form" });
    store.insert(job, clock.now());
    await watcher.tick();
    expect(jobOf(job.id)).toMatchObject({ instanceName: undefined, state: "pending" });
  });

  it("clears the name when AWS does not know the instance, so the refusal shows only its id", async () => {
    const job = newJob({ instanceId: "i-0000000000000dead", instanceName: "name-from-the-form" });
    store.insert(job, clock.now());
    await watcher.tick();
    expect(jobOf(job.id)).toMatchObject({ instanceName: undefined, state: "refused" });
  });
});

describe("re-checking access before CreateImage", () => {
  const allowed: AccessDecision = { allowed: true, reason: "user is listed" };
  const denied: AccessDecision = { allowed: false, reason: "not listed for target prod" };

  it("asks about the job's requester after the instance check and before CreateImage, then creates", async () => {
    const asked: { jobId: string; describes: number; creates: number }[] = [];
    watcher = makeWatcher([prod, staging], {
      accessNow: async (j) => {
        asked.push({
          jobId: j.id,
          describes: images.callsTo("describeInstance").length,
          creates: images.callsTo("createImage").length,
        });
        return allowed;
      },
    });
    const job = submit();
    await watcher.tick();
    expect(asked).toEqual([{ jobId: job.id, describes: 1, creates: 0 }]);
    expect(jobOf(job.id).state).toBe("pending");
  });

  it("refuses the job in plain words and creates nothing when access was withdrawn", async () => {
    watcher = makeWatcher([prod, staging], { accessNow: async () => denied });
    const job = submit();
    await watcher.tick();
    expect(images.callsTo("createImage")).toHaveLength(0);
    expect(jobOf(job.id)).toMatchObject({
      state: "refused",
      createAttemptedAt: undefined,
      finalReason:
        "Your access to target prod changed since you asked (not listed for target prod), so nothing was created. " +
        "Ask ami-bot's admins if you still need this image.",
    });
    // No "creating" reply: nothing was started.
    expect(notices(job.id)).toEqual(["root", "refused", "requester_note", "root_update"]);
  });

  it("does not ask when the instance check already refused the job", async () => {
    let asked = 0;
    watcher = makeWatcher([prod, staging], {
      accessNow: async () => {
        asked++;
        return allowed;
      },
    });
    const job = newJob({ instanceId: "i-0000000000000dead" });
    store.insert(job, clock.now());
    await watcher.tick();
    expect(jobOf(job.id).state).toBe("refused");
    expect(asked).toBe(0);
  });

  it("backs off, creates nothing, and creates once the question is answered when Slack cannot be asked", async () => {
    let slackDown = true;
    watcher = makeWatcher([prod, staging], {
      accessNow: async () => {
        if (slackDown) throw new Error("connect ECONNREFUSED slack.com");
        return allowed;
      },
    });
    const job = submit();
    await watcher.tick();
    expect(images.callsTo("createImage")).toHaveLength(0);
    expect(jobOf(job.id)).toMatchObject({
      state: "queued",
      attempts: 1,
      createAttemptedAt: undefined,
      lastError: "ami-bot could not re-check your access with Slack.",
      nextCheckAt: clock.now() + SETTINGS.pollIntervalMs,
    });
    slackDown = false;
    await passTime(SETTINGS.pollIntervalMs);
    expect(images.callsTo("createImage")).toHaveLength(1);
    expect(jobOf(job.id)).toMatchObject({ state: "pending", attempts: 0 });
  });

  it("refuses the job without ever creating it when Slack stays unreachable for six tries", async () => {
    watcher = makeWatcher([prod, staging], {
      accessNow: async () => {
        throw new Error("connect ECONNREFUSED slack.com");
      },
    });
    const job = submit();
    for (let i = 0; i < 6; i++) {
      await watcher.tick();
      clock.advance(60 * SETTINGS.pollIntervalMs);
    }
    expect(images.callsTo("createImage")).toHaveLength(0);
    expect(jobOf(job.id)).toMatchObject({
      state: "refused",
      finalReason:
        "ami-bot could not re-check your access with Slack. ami-bot tried 6 times without success; run /ami again later.",
    });
  });
});

describe("checking pending images", () => {
  it("asks DescribeImages once per target and region when many jobs are pending", async () => {
    const jobs = [
      ...Array.from({ length: 5 }, () => submit(PROD_EU)),
      ...Array.from({ length: 5 }, () => submit(PROD_US)),
    ];
    // A tick starts as many as it has CreateImage slots (8) and gives the rest back; the next tick takes them.
    await watcher.tick();
    expect(images.callsTo("createImage")).toHaveLength(8);
    await watcher.tick();
    expect(images.callsTo("createImage")).toHaveLength(10);

    await passTime(SETTINGS.pollIntervalMs);
    const calls = images.callsTo("describeImages");
    expect(calls.map((c) => c.place).sort()).toEqual(["prod|eu-west-1", "prod|us-east-1"]);
    for (const call of calls) expect(call.args[0]).toHaveLength(5);
    expect(new Set(calls.flatMap((c) => c.args[0] as string[]))).toEqual(
      new Set(jobs.map((j) => jobOf(j.id).imageId)),
    );
  });

  it("marks the job available and updates the root when the image is available", async () => {
    const job = await pendingJob();
    images.setImageState(job.imageId as string, "available");
    await passTime(SETTINGS.pollIntervalMs);
    expect(jobOf(job.id)).toMatchObject({ state: "available", finishedAt: clock.now() });
    expect(notices(job.id)).toEqual(["root", "creating", "pending", "available", "root_update"]);
    expect(store.unfinishedCount()).toBe(0);
  });

  it("marks the job failed with AWS's reason when the image fails", async () => {
    const job = await pendingJob();
    images.setImageState(job.imageId as string, "failed", "Snapshot of /dev/xvda failed");
    await passTime(SETTINGS.pollIntervalMs);
    expect(jobOf(job.id)).toMatchObject({
      state: "failed",
      finalReason: expect.stringContaining("AWS says: “Snapshot of /dev/xvda failed”."),
    });
    expect(notices(job.id).slice(-3)).toEqual(["failed", "requester_note", "root_update"]);
  });

  it("does not check the image again before the poll interval has passed", async () => {
    await pendingJob();
    await passTime(SETTINGS.pollIntervalMs - 1);
    expect(images.callsTo("describeImages")).toHaveLength(0);
    await passTime(1);
    expect(images.callsTo("describeImages")).toHaveLength(1);
  });

  it("posts only the highest progress milestone reached and never one twice", async () => {
    const job = await pendingJob();
    images.setAllProgress(30);
    await passTime(SETTINGS.pollIntervalMs);
    images.setAllProgress(40);
    await passTime(SETTINGS.pollIntervalMs);
    images.setAllProgress(90);
    await passTime(SETTINGS.pollIntervalMs);
    images.setAllProgress(100);
    await passTime(SETTINGS.pollIntervalMs);
    expect(notices(job.id).filter((k) => k.startsWith("progress"))).toEqual(["progress:25", "progress:75"]);
    expect(jobOf(job.id).progress).toBe(75);
  });

  it("averages the snapshots of an image when it has several", async () => {
    const job = submit();
    images.addImage(PROD_EU, { name: job.imageName, jobId: job.id, snapshotIds: ["snap-a", "snap-b"] });
    await watcher.tick(); // name taken by our own image: adopted
    images.setSnapshotProgress("snap-a", 100);
    images.setSnapshotProgress("snap-b", 0);
    await passTime(SETTINGS.pollIntervalMs);
    expect(notices(job.id).filter((k) => k.startsWith("progress"))).toEqual(["progress:50"]);
  });

  it("keeps following the image when snapshot progress cannot be read", async () => {
    const job = await pendingJob();
    images.failAlways("snapshotProgress", new AwsRefusedError("access_denied", "no", false));
    await passTime(SETTINGS.pollIntervalMs);
    expect(jobOf(job.id)).toMatchObject({ state: "pending", attempts: 0 });
    images.setImageState(job.imageId as string, "available");
    await passTime(SETTINGS.pollIntervalMs);
    expect(jobOf(job.id).state).toBe("available");
  });

  it("posts the slow notice once and checks less often when the image takes longer than slowAfterMs", async () => {
    const job = await pendingJob();
    clock.advance(SETTINGS.slowAfterMs - SETTINGS.pollIntervalMs);
    await watcher.tick();
    expect(notices(job.id)).not.toContain("slow");
    expect(jobOf(job.id).nextCheckAt).toBe(clock.now() + SETTINGS.pollIntervalMs);

    await passTime(SETTINGS.pollIntervalMs);
    expect(notices(job.id).filter((k) => k === "slow")).toHaveLength(1);
    expect(jobOf(job.id).nextCheckAt).toBe(clock.now() + SETTINGS.slowPollIntervalMs);

    const checks = images.callsTo("describeImages").length;
    await passTime(SETTINGS.slowPollIntervalMs - 1);
    expect(images.callsTo("describeImages")).toHaveLength(checks);
    await passTime(1);
    expect(images.callsTo("describeImages")).toHaveLength(checks + 1);
    expect(notices(job.id).filter((k) => k === "slow")).toHaveLength(1);
  });

  it("reports the image available, not timed out, when it turned available just before the limit", async () => {
    const job = await pendingJob();
    clock.advance(SETTINGS.giveUpAfterMs);
    images.setImageState(job.imageId as string, "available");
    await watcher.tick();
    expect(jobOf(job.id).state).toBe("available");
  });

  it("gives up on a pending job when it is still pending after giveUpAfterMs", async () => {
    const job = await pendingJob();
    clock.advance(SETTINGS.giveUpAfterMs);
    await watcher.tick();
    expect(jobOf(job.id)).toMatchObject({
      state: "timed_out",
      finalReason: "The image was still not available when ami-bot stopped watching.",
    });
    expect(notices(job.id).slice(-3)).toEqual(["timed_out", "requester_note", "root_update"]);
    // One last look first: it was still pending, so it timed out.
    expect(images.callsTo("describeImages")).toHaveLength(1);
  });

  it("keeps the other place's jobs moving when one place's DescribeImages fails", async () => {
    const broken = await pendingJob(PROD_EU);
    const healthy = await pendingJob(STAGING_EU);
    images.failAlways(
      "describeImages",
      new AwsRefusedError("access_denied", "Role cannot be assumed.", true),
      PROD_EU,
    );
    images.setImageState(healthy.imageId as string, "available");
    await passTime(SETTINGS.pollIntervalMs);

    expect(jobOf(healthy.id).state).toBe("available");
    expect(jobOf(broken.id)).toMatchObject({
      state: "pending",
      attempts: 1,
      lastError: "Role cannot be assumed.",
      nextCheckAt: clock.now() + SETTINGS.pollIntervalMs,
    });
  });

  it("tells the thread checks are failing when three checks in a row fail", async () => {
    const job = await pendingJob();
    images.failNext("describeImages", new AwsRefusedError("throttled", "Throttled.", true), { times: 3 });
    await passTime(SETTINGS.pollIntervalMs);
    await passTime(2 * SETTINGS.pollIntervalMs);
    expect(notices(job.id)).not.toContain("checks_failing");
    await passTime(4 * SETTINGS.pollIntervalMs);
    expect(notices(job.id)).toContain("checks_failing");
  });

  it("does not say checks are failing when a failure follows a successful check", async () => {
    const job = await pendingJob();
    const throttled = new AwsRefusedError("throttled", "Throttled.", true);
    images.failNext("describeImages", throttled, { times: 2 });
    await passTime(SETTINGS.pollIntervalMs);
    await passTime(2 * SETTINGS.pollIntervalMs);
    await passTime(4 * SETTINGS.pollIntervalMs); // succeeds
    expect(jobOf(job.id)).toMatchObject({ attempts: 0, nextCheckAt: clock.now() + SETTINGS.pollIntervalMs });
    images.failNext("describeImages", throttled);
    await passTime(SETTINGS.pollIntervalMs);
    expect(notices(job.id)).not.toContain("checks_failing");
  });

  it("keeps waiting when the image is not visible yet shortly after creation", async () => {
    const job = await pendingJob();
    images.removeImage(job.imageId as string);
    await passTime(SETTINGS.pollIntervalMs);
    expect(jobOf(job.id)).toMatchObject({
      state: "pending",
      nextCheckAt: clock.now() + SETTINGS.pollIntervalMs,
    });
  });

  it("fails the job as deregistered when the image is missing long after creation", async () => {
    const job = await pendingJob();
    images.removeImage(job.imageId as string);
    await passTime(10 * MINUTE + 1);
    expect(jobOf(job.id)).toMatchObject({
      state: "failed",
      finalReason: expect.stringMatching(/deregistered .*The image no longer exists/),
    });
  });
});

describe("the loop", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("keeps checking other places and creating other images while one place's call is never answered", async () => {
    const stuck = await pendingJob(PROD_US);
    const release = images.hold("describeImages", PROD_US);
    clock.advance(SETTINGS.pollIntervalMs);
    // This pass's check of us-east-1 hangs; it is not awaited.
    const hungPass = watcher.tick();
    await vi.waitFor(() => expect(images.callsTo("describeImages")).toHaveLength(1));

    const moving = await pendingJob(PROD_EU);
    images.setImageState(moving.imageId as string, "available");
    await passTime(SETTINGS.pollIntervalMs);
    expect(jobOf(moving.id).state).toBe("available");
    // The hung job is left to the call in flight: later passes do not ask about it again.
    expect(images.callsTo("describeImages").filter((c) => c.place === "prod|us-east-1")).toHaveLength(1);
    expect(jobOf(stuck.id).state).toBe("pending");

    release();
    await hungPass;
    await passTime(SETTINGS.pollIntervalMs);
    expect(images.callsTo("describeImages").filter((c) => c.place === "prod|us-east-1")).toHaveLength(2);
  });

  it("stops within its grace period and cuts short a call AWS never answers", async () => {
    const job = submit(PROD_EU);
    images.hold("createImage", PROD_EU);
    // The pass never ends (the hold is never released): nothing awaits it.
    void watcher.tick();
    await vi.waitFor(() => expect(images.callsTo("createImage")).toHaveLength(1));
    const cutShort = vi.fn();
    await watcher.stop({ graceMs: 50, cutShort });
    expect(cutShort).toHaveBeenCalledOnce();
    // The job stays as it was, marked attempted, to look for its image on the next start.
    expect(jobOf(job.id)).toMatchObject({ state: "queued", attempts: 0 });
    expect(jobOf(job.id).createAttemptedAt).toBeDefined();
  });

  it("creates queued images without a manual tick when started, and stops cleanly", async () => {
    vi.useFakeTimers();
    const onNotices = vi.fn();
    watcher = createImageWatcher({
      store,
      images,
      targets: [prod],
      settings: SETTINGS,
      clock,
      logger: silentLogger(),
      onNotices,
    });
    const job = submit();
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(jobOf(job.id).state).toBe("pending");
    expect(onNotices).toHaveBeenCalled();

    const second = submit();
    watcher.wake();
    await vi.advanceTimersByTimeAsync(0);
    expect(jobOf(second.id).state).toBe("pending");

    await watcher.stop();
    const third = submit();
    watcher.wake();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(jobOf(third.id).state).toBe("queued");
  });
});

describe("ticks that overlap", () => {
  it("never start one job twice when a tick begins while another is still deciding (a slow database)", async () => {
    // A store whose release answers late, as Postgres over the network may: a second tick starts meanwhile.
    let releaseAnswered: () => void = () => {};
    const slowRelease = new Promise<void>((resolve) => {
      releaseAnswered = resolve;
    });
    const slowStore = Object.create(store) as JobStore;
    slowStore.release = () => slowRelease;
    const overlapping = makeWatcher([prod, staging], { store: slowStore, createConcurrency: 2 });
    // EU's CreateImage is slow to answer; US's answers at once and frees its slot while EU's is in flight.
    const answerEu = images.hold("createImage", PROD_EU);
    const jobs = [submit(PROD_EU), submit(PROD_US), submit(PROD_US), submit(PROD_US)];
    // Four queued jobs and two slots: the first tick launches two and gives two back, slowly.
    const first = overlapping.tick();
    const second = overlapping.tick();
    releaseAnswered();
    await Promise.all([first, second].map((t) => Promise.race([t, new Promise((r) => setTimeout(r, 50))])));
    answerEu();
    await Promise.all([first, second]);
    await overlapping.tick();
    await overlapping.tick();
    const created = images.callsTo("createImage").map((c) => (c.args[0] as { jobId: string }).jobId);
    expect(created.sort()).toEqual(jobs.map((j) => j.id).sort());
  });
});

describe("a job taken over while CreateImage was out", () => {
  it("leaves AWS's refusal to the replica that holds the job now, instead of ending the job refused", async () => {
    // This replica stalled past its lease: another holds the job now, and may have made its image.
    const tookOver = Object.create(store) as JobStore;
    tookOver.holds = () => false;
    const stale = makeWatcher([prod, staging], { store: tookOver });
    const job = submit(PROD_EU);
    images.failNext(
      "createImage",
      new AwsRefusedError("name_taken", "An image named x already exists.", false),
    );
    await stale.tick();
    expect(images.callsTo("createImage")).toHaveLength(1);
    expect(jobOf(job.id).state).toBe("queued");
    expect(notices(job.id)).not.toContain("refused");
  });
});
