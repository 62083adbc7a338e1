/** The job store contract: approvals and cancel, waiting jobs and decisions made once. */
import { beforeEach, describe, expect, it } from "vitest";
import type { JobStore, NewJob } from "../../../../src/domain/ports.js";
import { CLOCK_START } from "../../../fakes/fixed-clock.js";
import { newJob, REQUESTER } from "../../../fakes/job-fixtures.js";
import { JOB_STORES, useJobStore } from "./job-stores.js";

const T0 = CLOCK_START;
const HOUR = 3_600_000;
const APPROVER = "U0APPROVER";

describe.each(JOB_STORES)("approvals and cancel on the $name job store", (kind) => {
  const stores = useJobStore(kind);
  let store: JobStore;
  beforeEach(() => {
    store = stores.store;
  });

  async function admitWaitingJob(overrides: Partial<NewJob> = {}): Promise<NewJob> {
    const job = newJob({
      approvalExpiresAt: T0 + 4 * HOUR,
      approverDms: [APPROVER, "U0OTHER"],
      ...overrides,
    });
    expect(await store.admit(job, { jobsPerHour: 10 }, T0)).toEqual({ status: "accepted" });
    return job;
  }

  describe("a job for a target with approvals", () => {
    it("waits for approval, due only when its wait runs out, with the approvers' notices queued", async () => {
      const job = await admitWaitingJob();
      expect(await store.get(job.id)).toMatchObject({
        state: "awaiting_approval",
        approvalExpiresAt: T0 + 4 * HOUR,
      });
      expect(await store.due(T0 + HOUR, 10)).toEqual([]);
      expect((await store.due(T0 + 4 * HOUR, 10)).map((j) => j.id)).toEqual([job.id]);
      expect((await store.outboxForJob(job.id)).map((m) => m.key)).toEqual([
        "root",
        "approval_request",
        `approver_dm:${APPROVER}`,
        "approver_dm:U0OTHER",
      ]);
      expect(await store.unfinishedCount()).toBe(1);
    });

    it("holds its instance: a second request for it is refused while it waits", async () => {
      const job = await admitWaitingJob();
      const again = newJob({ instanceId: job.instanceId });
      expect(await store.admit(again, { jobsPerHour: 10 }, T0 + 1)).toMatchObject({
        status: "instance_busy",
      });
    });

    it("is listed for its target's approvers, oldest first", async () => {
      const job = await admitWaitingJob();
      const later = newJob({ instanceId: "i-0fedcba9876543210", approvalExpiresAt: T0 + 5 * HOUR });
      await store.admit(later, { jobsPerHour: 10 }, T0 + 1000);
      expect((await store.awaitingApproval([job.targetName], 20)).map((j) => j.id)).toEqual([
        job.id,
        later.id,
      ]);
      expect(await store.awaitingApproval(["another-target"], 20)).toEqual([]);
      expect(await store.awaitingApproval([], 20)).toEqual([]);
    });

    it("is approved once: the approval is stored with who and when, and the job is due at once", async () => {
      const job = await admitWaitingJob();
      const first = await store.decide(job.id, { type: "approved", by: APPROVER }, T0 + 60_000);
      expect(first?.applied).toBe(true);
      expect(first?.job).toMatchObject({
        state: "queued",
        decision: "approved",
        decidedBy: APPROVER,
        decidedAt: T0 + 60_000,
      });
      expect((await store.due(T0 + 60_000, 10)).map((j) => j.id)).toEqual([job.id]);
      const second = await store.decide(job.id, { type: "approved", by: "U0OTHER" }, T0 + 61_000);
      expect(second).toMatchObject({ applied: false, job: { decidedBy: APPROVER } });
      // A cancel after the approval still stops the job before anything is asked of AWS.
      const cancel = await store.decide(job.id, { type: "cancel_requested", by: REQUESTER }, T0 + 61_000);
      expect(cancel?.applied).toBe(true);
      expect(cancel?.job.state).toBe("cancelled");
    });

    it("cannot be approved by its requester", async () => {
      const job = await admitWaitingJob();
      expect(await store.decide(job.id, { type: "approved", by: REQUESTER }, T0)).toMatchObject({
        applied: false,
        job: { state: "awaiting_approval", decidedBy: undefined },
      });
    });

    it("answers undefined when the job to decide does not exist", async () => {
      expect(await store.decide("nope", { type: "approved", by: APPROVER }, T0)).toBeUndefined();
    });
  });

  describe("cancel in the store", () => {
    it("refuses to mark CreateImage attempted once the job was cancelled", async () => {
      const job = newJob();
      await store.insert(job, T0);
      // Claimed first, so only the cancel can be why the mark is refused.
      await store.due(T0, 10);
      await store.decide(job.id, { type: "cancel_requested", by: REQUESTER }, T0 + 1);
      expect(await store.markCreateAttempted(job.id, T0 + 2)).toBe(false);
      expect((await store.get(job.id))?.createAttemptedAt).toBeUndefined();
      expect((await store.outboxForJob(job.id)).map((m) => m.key)).not.toContain("creating");
    });

    it("marks a deregister attempted only while cancelling, and only the first time", async () => {
      const job = newJob();
      await store.insert(job, T0);
      await store.due(T0, 10);
      expect(await store.markDeregisterAttempted(job.id, T0)).toBe(false);
      expect(await store.markCreateAttempted(job.id, T0)).toBe(true);
      await store.apply(job.id, { type: "image_created", imageId: "ami-0abc" }, T0 + 1);
      const cancelling = await store.decide(job.id, { type: "cancel_requested", by: REQUESTER }, T0 + 2);
      expect(cancelling?.job).toMatchObject({
        state: "cancelling",
        cancelledBy: REQUESTER,
        nextCheckAt: T0 + 2,
      });
      // The cancelling job is the watcher's work at once.
      expect((await store.due(T0 + 2, 10)).map((j) => j.id)).toEqual([job.id]);
      expect(await store.markDeregisterAttempted(job.id, T0 + 3)).toBe(true);
      expect(await store.markDeregisterAttempted(job.id, T0 + 4)).toBe(true);
      expect((await store.get(job.id))?.deregisterAttemptedAt).toBe(T0 + 3);
    });
  });
});
