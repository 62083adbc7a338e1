/**
 * The job store contract under concurrency: two stores on one database (two replicas on Postgres, two
 * connections on SQLite) admitting and deciding at the same moment, so the transactions really overlap.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { JobEvent } from "../../../../src/domain/job.js";
import type { Admission, AdmissionRules, JobStore } from "../../../../src/domain/ports.js";
import { CLOCK_START } from "../../../fakes/fixed-clock.js";
import { newJob, REQUESTER } from "../../../fakes/job-fixtures.js";
import { JOB_STORES, useJobStore } from "./job-stores.js";

const T0 = CLOCK_START;
const HOUR = 3_600_000;
const RULES: AdmissionRules = { jobsPerHour: 5 };
const INSTANCE = "i-0aaaaaaaaaaaaaaaa";
const APPROVER = "U0APPROVER";

const statuses = (answers: Admission[]) => answers.map((a) => a.status).sort();

describe.each(JOB_STORES)("two $name job stores on one database", (kind) => {
  const stores = useJobStore(kind);
  let a: JobStore;
  let b: JobStore;
  beforeEach(async () => {
    a = stores.store;
    b = await stores.open({ owner: "b" });
  });

  it("admit exactly one job when both admit a job for the same instance at once", async () => {
    const answers = await Promise.all([
      a.admit(newJob({ id: "job-a", instanceId: INSTANCE }), RULES, T0),
      // Another person, so only the instance rule (not the hourly count) ties the two together.
      b.admit(newJob({ id: "job-b", instanceId: INSTANCE, requestedBy: "U0SOMEONE" }), RULES, T0),
    ]);
    expect(statuses(answers)).toEqual(["accepted", "instance_busy"]);
    const winner = answers[0]?.status === "accepted" ? "job-a" : "job-b";
    const busy = answers.find((answer) => answer.status === "instance_busy");
    expect(busy).toEqual({ status: "instance_busy", job: await a.get(winner) });
    expect(await a.unfinishedCount()).toBe(1);
    expect(await b.outboxForJob(winner === "job-a" ? "job-b" : "job-a")).toEqual([]);
  });

  it("store one job and call the other a duplicate when the same view reaches both at once", async () => {
    const job = newJob({ id: "job-a", idempotencyKey: "view:V1", requestHash: "h1" });
    const answers = await Promise.all([a.admit(job, RULES, T0), b.admit({ ...job, id: "job-b" }, RULES, T0)]);
    expect(statuses(answers)).toEqual(["accepted", "duplicate"]);
    expect(answers.find((answer) => answer.status === "duplicate")).toEqual({
      status: "duplicate",
      sameRequest: true,
    });
    expect(await a.unfinishedCount()).toBe(1);
  });

  it("store one job and call the other a duplicate with another request when a forged view races", async () => {
    // Other people and instances: nothing but the idempotency key ties the two together.
    const job = newJob({ id: "job-a", idempotencyKey: "view:V1", requestHash: "h1" });
    const forged = newJob({
      id: "job-b",
      idempotencyKey: "view:V1",
      requestHash: "h2",
      requestedBy: "U0SOMEONE",
      instanceId: "i-0bbbbbbbbbbbbbbbb",
    });
    const answers = await Promise.all([a.admit(job, RULES, T0), b.admit(forged, RULES, T0)]);
    expect(statuses(answers)).toEqual(["accepted", "duplicate"]);
    expect(answers.find((answer) => answer.status === "duplicate")).toEqual({
      status: "duplicate",
      sameRequest: false,
    });
    expect(await a.unfinishedCount()).toBe(1);
  });

  it("admit exactly the hourly limit when twenty submissions for one person race", async () => {
    const jobs = Array.from({ length: 20 }, (_, i) =>
      newJob({ id: `job-${i}`, instanceId: `i-${i.toString(16).padStart(17, "0")}` }),
    );
    const answers = await Promise.all(jobs.map((job, i) => (i % 2 === 0 ? a : b).admit(job, RULES, T0 + i)));
    expect(answers.filter((answer) => answer.status === "accepted")).toHaveLength(5);
    expect(answers.filter((answer) => answer.status === "rate_limited")).toHaveLength(15);
    expect(await a.unfinishedCount()).toBe(5);
    expect(await b.stats()).toMatchObject({ jobsByState: { queued: 5 }, outboxBacklog: 5 });
  });

  describe("deciding a job waiting for approval", () => {
    let jobId: string;
    beforeEach(async () => {
      const job = newJob({ approvalExpiresAt: T0 + HOUR });
      expect(await a.admit(job, { jobsPerHour: 10 }, T0)).toEqual({ status: "accepted" });
      jobId = job.id;
    });

    const decideBoth = (first: JobEvent, second: JobEvent) =>
      Promise.all([a.decide(jobId, first, T0 + 1), b.decide(jobId, second, T0 + 1)]);
    const noticeKeys = async () => (await a.outboxForJob(jobId)).map((m) => m.key);

    it("tell exactly one of two approvers at once that the approval took effect", async () => {
      const answers = await decideBoth(
        { type: "approved", by: APPROVER },
        { type: "approved", by: "U0OTHER" },
      );
      expect(answers.filter((answer) => answer?.applied)).toHaveLength(1);
      expect(await a.get(jobId)).toMatchObject({ state: "queued", decision: "approved" });
      expect((await noticeKeys()).filter((key) => key === "approved")).toHaveLength(1);
    });

    it("apply exactly one of an approval and a denial made at once", async () => {
      const answers = await decideBoth(
        { type: "approved", by: APPROVER },
        { type: "denied", by: "U0OTHER", reason: undefined },
      );
      expect(answers.filter((answer) => answer?.applied)).toHaveLength(1);
      const winner = answers[0]?.applied ? answers[0] : answers[1];
      expect(await a.get(jobId)).toEqual(winner?.job);
      expect(["queued", "denied"]).toContain(winner?.job.state);
    });

    it("end the job cancelled when an approval and a cancel are made at once", async () => {
      // A cancel always takes effect (after an approval it stops the job before AWS is asked), so the
      // approval is applied only when it came first.
      const [approval, cancel] = await decideBoth(
        { type: "approved", by: APPROVER },
        { type: "cancel_requested", by: REQUESTER },
      );
      expect(cancel?.applied).toBe(true);
      expect(cancel?.job).toMatchObject({ state: "cancelled", cancelledBy: REQUESTER });
      expect(await a.get(jobId)).toEqual(cancel?.job);
      const keys = await noticeKeys();
      expect(keys.filter((key) => key === "cancelled")).toHaveLength(1);
      expect(keys.includes("approved")).toBe(approval?.applied);
    });
  });
});
