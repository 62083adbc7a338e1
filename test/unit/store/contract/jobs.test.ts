/** The job store contract: storing jobs, finding due ones, applying events and the job's bookkeeping. */
import { beforeEach, describe, expect, it } from "vitest";
import type { JobStore } from "../../../../src/domain/ports.js";
import { CLOCK_START } from "../../../fakes/fixed-clock.js";
import { newJob } from "../../../fakes/job-fixtures.js";
import { attempt, JOB_STORES, useJobStore } from "./job-stores.js";

const T0 = CLOCK_START;

describe.each(JOB_STORES)("the $name job store", (kind) => {
  const stores = useJobStore(kind);
  let store: JobStore;
  beforeEach(() => {
    store = stores.store;
  });

  const keys = async (jobId: string) => (await store.outboxForJob(jobId)).map((m) => `${m.jobId}:${m.key}`);

  describe("insert", () => {
    it("stores the job as queued and queues its root message when the job is new", async () => {
      const { requestHash: _, ...job } = newJob({
        id: "job-a",
        tags: [{ key: "team", value: "web" }],
        description: "pre-upgrade",
      });
      expect(await store.insert({ ...job, requestHash: "hash-a" }, T0)).toBe(true);
      expect(await store.get("job-a")).toEqual({
        ...job,
        rootChannelId: undefined,
        rootTs: undefined,
        state: "queued",
        imageId: undefined,
        createAttemptedAt: undefined,
        attempts: 0,
        lastError: undefined,
        finalReason: undefined,
        progress: 0,
        slowNotified: false,
        nextCheckAt: T0,
        createdAt: T0,
        updatedAt: T0,
        finishedAt: undefined,
      });
      expect(await keys("job-a")).toEqual(["job-a:root"]);
    });

    it("stores nothing and returns false when the idempotency key was already used", async () => {
      await store.insert(newJob({ id: "job-a", idempotencyKey: "view-1" }), T0);
      expect(await store.insert(newJob({ id: "job-b", idempotencyKey: "view-1" }), T0 + 5)).toBe(false);
      expect(await store.get("job-b")).toBeUndefined();
      expect(await store.outboxForJob("job-b")).toEqual([]);
      expect(await store.unfinishedCount()).toBe(1);
    });

    it("keeps no-reboot and an absent instance name when it stores them", async () => {
      await store.insert(newJob({ id: "job-a", noReboot: true, instanceName: undefined }), T0);
      expect(await store.get("job-a")).toMatchObject({ noReboot: true, instanceName: undefined });
    });

    it("keeps the devices to leave out, and none for a job that images the whole instance", async () => {
      await store.insert(newJob({ id: "some", excludedDevices: ["/dev/sdf", "/dev/sdg"] }), T0);
      await store.insert(newJob({ id: "whole", instanceId: "i-0fedcba9876543210" }), T0);
      expect((await store.get("some"))?.excludedDevices).toEqual(["/dev/sdf", "/dev/sdg"]);
      expect((await store.get("whole"))?.excludedDevices).toEqual([]);
    });
  });

  describe("due", () => {
    it("returns unfinished jobs whose check is due, soonest first, then oldest first", async () => {
      await store.insert(newJob({ id: "late" }), T0 + 30);
      await store.insert(newJob({ id: "first" }), T0 + 10);
      await store.insert(newJob({ id: "tie-old" }), T0 + 20);
      await store.insert(newJob({ id: "tie-new" }), T0 + 21);
      await store.scheduleNext("tie-new", T0 + 25, T0 + 21);
      await store.scheduleNext("tie-old", T0 + 25, T0 + 21);
      await store.insert(newJob({ id: "future" }), T0);
      await store.scheduleNext("future", T0 + 1_000, T0);
      expect((await store.due(T0 + 100, 10)).map((j) => j.id)).toEqual([
        "first",
        "tie-old",
        "tie-new",
        "late",
      ]);
    });

    it("returns at most `limit` jobs when more are due", async () => {
      for (const id of ["a", "b", "c"]) await store.insert(newJob({ id }), T0);
      expect(await store.due(T0, 2)).toHaveLength(2);
    });

    it("leaves finished jobs out when they would otherwise be due", async () => {
      await store.insert(newJob({ id: "done" }), T0);
      await store.insert(newJob({ id: "open" }), T0);
      await store.apply("done", { type: "create_refused", reason: "no" }, T0);
      expect((await store.due(T0 + 1, 10)).map((j) => j.id)).toEqual(["open"]);
      expect(await store.unfinishedCount()).toBe(1);
    });
  });

  describe("apply", () => {
    it("stores the change and queues its notices when the event moves the job", async () => {
      await store.insert(newJob({ id: "job-a" }), T0);
      const job = await store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0 + 5);
      expect(job).toMatchObject({ state: "pending", imageId: "ami-1", updatedAt: T0 + 5 });
      expect(await store.get("job-a")).toMatchObject({ state: "pending", imageId: "ami-1" });
      expect(await keys("job-a")).toEqual(["job-a:root", "job-a:pending"]);
    });

    it("stores the final state, reason and time when the job finishes", async () => {
      await store.insert(newJob({ id: "job-a" }), T0);
      await store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0 + 5);
      await store.apply("job-a", { type: "image_state", state: "failed", reason: "disk" }, T0 + 50);
      expect(await store.get("job-a")).toMatchObject({
        state: "failed",
        finishedAt: T0 + 50,
        finalReason: expect.stringContaining("“disk”"),
      });
      expect((await keys("job-a")).slice(2)).toEqual([
        "job-a:failed",
        "job-a:requester_note",
        "job-a:root_update",
      ]);
    });

    it("changes nothing and queues nothing when the event does not apply", async () => {
      await store.insert(newJob({ id: "job-a" }), T0);
      const job = await store.apply("job-a", { type: "progress", percent: 80 }, T0 + 5);
      expect(job).toMatchObject({ state: "queued", progress: 0, updatedAt: T0 });
      expect(await keys("job-a")).toEqual(["job-a:root"]);
    });

    it("returns undefined when the job does not exist", async () => {
      expect(await store.apply("nope", { type: "gave_up" }, T0)).toBeUndefined();
    });

    it("keeps the old state when queuing its notices fails", async () => {
      await store.insert(newJob({ id: "job-a" }), T0);
      // A real failure inside the transaction: the outbox refuses the insert.
      await stores.refuseOutboxKey("pending");
      await expect(
        attempt(() => store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0 + 5)),
      ).rejects.toThrow(/disk full/);
      expect(await store.get("job-a")).toMatchObject({ state: "queued", imageId: undefined });
      expect(await keys("job-a")).toEqual(["job-a:root"]);
    });

    it("clears the failed-check count when the job moves on", async () => {
      await store.insert(newJob({ id: "job-a" }), T0);
      await store.recordError("job-a", "throttled", T0 + 30_000, T0);
      await store.recordError("job-a", "throttled again", T0 + 60_000, T0 + 30_000);
      expect(await store.get("job-a")).toMatchObject({
        attempts: 2,
        lastError: "throttled again",
        nextCheckAt: T0 + 60_000,
      });
      await store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0 + 60_000);
      expect(await store.get("job-a")).toMatchObject({ attempts: 0, lastError: undefined });
    });
  });

  describe("scheduleNext", () => {
    it("sets the next check and ends the run of failures when a check succeeds", async () => {
      await store.insert(newJob({ id: "job-a" }), T0);
      await store.recordError("job-a", "throttled", T0 + 30_000, T0);
      await store.scheduleNext("job-a", T0 + 45_000, T0 + 30_000);
      expect(await store.get("job-a")).toMatchObject({
        attempts: 0,
        lastError: undefined,
        nextCheckAt: T0 + 45_000,
        updatedAt: T0 + 30_000,
      });
      expect(await store.due(T0 + 44_999, 10)).toEqual([]);
    });
  });

  describe("markCreateAttempted", () => {
    it("records the first attempt time and queues the creating reply once when called twice", async () => {
      await store.insert(newJob({ id: "job-a" }), T0);
      // The watcher's claim (Postgres marks only what this replica claimed).
      await store.due(T0, 10);
      expect(await store.markCreateAttempted("job-a", T0 + 1)).toBe(true);
      expect(await store.markCreateAttempted("job-a", T0 + 2)).toBe(true);
      expect((await store.get("job-a"))?.createAttemptedAt).toBe(T0 + 1);
      expect(await keys("job-a")).toEqual(["job-a:root", "job-a:creating"]);
    });
  });

  describe("setInstanceName", () => {
    it("replaces the stored name and records the time when AWS reports another", async () => {
      await store.insert(newJob({ id: "job-a", instanceName: "claimed-by-form" }), T0);
      await store.setInstanceName("job-a", "web-1", T0 + 7);
      expect(await store.get("job-a")).toMatchObject({ instanceName: "web-1", updatedAt: T0 + 7 });
    });

    it("clears the name when AWS reports none", async () => {
      await store.insert(newJob({ id: "job-a", instanceName: "claimed-by-form" }), T0);
      await store.setInstanceName("job-a", undefined, T0 + 7);
      expect((await store.get("job-a"))?.instanceName).toBeUndefined();
    });
  });

  describe("thread bookkeeping", () => {
    it("stores where the root was posted and where the thread moved", async () => {
      await store.insert(newJob({ id: "job-a", channelId: "C0UPDATES" }), T0);
      await store.markRootPosted("job-a", "C0UPDATES", "1790000000.000100", T0 + 1);
      expect(await store.get("job-a")).toMatchObject({
        rootChannelId: "C0UPDATES",
        rootTs: "1790000000.000100",
      });
      await store.moveThread("job-a", "U0REQUESTER", T0 + 2);
      // A moved thread starts over with a new root where it now lives.
      expect(await store.get("job-a")).toMatchObject({
        rootChannelId: undefined,
        rootTs: undefined,
        channelId: "U0REQUESTER",
        updatedAt: T0 + 2,
      });
    });
  });
});
