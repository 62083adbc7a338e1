/** The job store contract: admission, the rules checked in the transaction that stores a new job. */
import { beforeEach, describe, expect, it } from "vitest";
import type { AdmissionRules, JobStore, NewJob } from "../../../../src/domain/ports.js";
import { CLOCK_START } from "../../../fakes/fixed-clock.js";
import { newJob } from "../../../fakes/job-fixtures.js";
import { attempt, JOB_STORES, useJobStore } from "./job-stores.js";

const T0 = CLOCK_START;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const RULES: AdmissionRules = { jobsPerHour: 3 };
const BUSY = "i-0aaaaaaaaaaaaaaaa";

let instances = 0;
/** A job for an instance no other job uses, so only the rule under test can refuse it. */
function jobOnFreshInstance(overrides: Partial<NewJob> = {}): NewJob {
  instances++;
  return newJob({ instanceId: `i-${instances.toString(16).padStart(17, "0")}`, ...overrides });
}

describe.each(JOB_STORES)("admit on the $name job store", (kind) => {
  const stores = useJobStore(kind);
  let store: JobStore;
  beforeEach(() => {
    store = stores.store;
  });

  const outboxKeys = async (jobId: string) => (await store.outboxForJob(jobId)).map((m) => m.key);
  const status = async (job: NewJob, now: number, rules = RULES) =>
    (await store.admit(job, rules, now)).status;

  it("stores the job and its root message as insert does when no rule refuses it", async () => {
    const job = newJob({ id: "job-a" });
    expect(await store.admit(job, RULES, T0)).toEqual({ status: "accepted" });
    expect(await store.get("job-a")).toMatchObject({ state: "queued", createdAt: T0, nextCheckAt: T0 });
    expect(await outboxKeys("job-a")).toEqual(["root"]);
  });

  it("stores neither the job nor its root message when queuing the root fails", async () => {
    await stores.refuseOutboxKey("root");
    await expect(attempt(() => store.admit(newJob({ id: "job-a" }), RULES, T0))).rejects.toThrow(/disk full/);
    expect(await store.get("job-a")).toBeUndefined();
    expect(await store.outboxForJob("job-a")).toEqual([]);
  });

  describe("a view submitted again", () => {
    it("answers duplicate with the same request and stores nothing when the values are the same", async () => {
      await store.admit(newJob({ id: "job-a", idempotencyKey: "view:V1", requestHash: "h1" }), RULES, T0);
      const again = newJob({ id: "job-b", idempotencyKey: "view:V1", requestHash: "h1" });
      expect(await store.admit(again, RULES, T0 + 5)).toEqual({ status: "duplicate", sameRequest: true });
      expect(await store.get("job-b")).toBeUndefined();
      expect(await outboxKeys("job-a")).toEqual(["root"]);
      expect(await store.unfinishedCount()).toBe(1);
    });

    it("answers duplicate with another request when the values differ", async () => {
      await store.admit(newJob({ idempotencyKey: "view:V1", requestHash: "h1" }), RULES, T0);
      const forged = newJob({ idempotencyKey: "view:V1", requestHash: "h2", imageName: "something else" });
      expect(await store.admit(forged, RULES, T0 + 5)).toEqual({ status: "duplicate", sameRequest: false });
      expect(await store.unfinishedCount()).toBe(1);
    });

    it("compares with the hash insert stored when the first job was inserted directly", async () => {
      await store.insert(newJob({ idempotencyKey: "view:V1", requestHash: "h1" }), T0);
      expect(await store.admit(newJob({ idempotencyKey: "view:V1", requestHash: "h2" }), RULES, T0)).toEqual({
        status: "duplicate",
        sameRequest: false,
      });
    });

    it("answers duplicate rather than busy when the repeated view's own job holds the instance", async () => {
      const first = newJob({ idempotencyKey: "view:V1", requestHash: "h1" });
      await store.admit(first, RULES, T0);
      expect(await store.admit({ ...first, id: "job-other" }, RULES, T0 + 1)).toEqual({
        status: "duplicate",
        sameRequest: true,
      });
    });
  });

  describe("one unfinished job per instance", () => {
    it("answers instance_busy with the unfinished job and stores nothing when the instance has a queued job", async () => {
      await store.admit(newJob({ id: "job-a", instanceId: BUSY }), RULES, T0);
      const second = newJob({ id: "job-b", instanceId: BUSY, requestedBy: "U0SOMEONE" });
      const answer = await store.admit(second, RULES, T0 + 5);
      expect(answer).toEqual({ status: "instance_busy", job: await store.get("job-a") });
      expect(await store.get("job-b")).toBeUndefined();
      expect(await store.outboxForJob("job-b")).toEqual([]);
    });

    it("answers instance_busy when the instance's image is still pending", async () => {
      await store.admit(newJob({ id: "job-a", instanceId: BUSY }), RULES, T0);
      await store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0 + 1);
      const answer = await store.admit(newJob({ instanceId: BUSY }), RULES, T0 + 5);
      expect(answer).toMatchObject({ status: "instance_busy", job: { id: "job-a", state: "pending" } });
    });

    it.each([
      ["refused", { type: "create_refused", reason: "no" }],
      ["timed out", { type: "gave_up" }],
    ] as const)("admits the instance again when its job has %s", async (_, event) => {
      await store.admit(newJob({ id: "job-a", instanceId: BUSY }), RULES, T0);
      expect(await status(newJob({ instanceId: BUSY }), T0 + 1)).toBe("instance_busy");
      await store.apply("job-a", event, T0 + 2);
      expect(await store.admit(newJob({ instanceId: BUSY }), RULES, T0 + 3)).toEqual({ status: "accepted" });
    });

    it("admits the instance again when its image became available", async () => {
      await store.admit(newJob({ id: "job-a", instanceId: BUSY }), RULES, T0);
      await store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0 + 1);
      await store.apply("job-a", { type: "image_state", state: "available" }, T0 + 2);
      expect(await status(newJob({ instanceId: BUSY }), T0 + 3)).toBe("accepted");
    });

    it("admits the same instance id in another region or behind another role", async () => {
      const base = { instanceId: BUSY, region: "eu-west-1" };
      await store.admit(newJob({ ...base, roleArn: "arn:aws:iam::111111111111:role/ami-bot" }), RULES, T0);
      const otherRegion = newJob({
        ...base,
        region: "us-east-1",
        roleArn: "arn:aws:iam::111111111111:role/ami-bot",
      });
      const otherRole = newJob({ ...base, roleArn: "arn:aws:iam::222222222222:role/ami-bot" });
      expect(await status(otherRegion, T0 + 1)).toBe("accepted");
      expect(await status(otherRole, T0 + 2)).toBe("accepted");
    });
  });

  describe("the hourly limit", () => {
    /** Three jobs by the requester in prod, ten minutes apart from T0. */
    async function fillTheHour(): Promise<void> {
      for (let i = 0; i < 3; i++)
        expect(await status(jobOnFreshInstance(), T0 + i * 10 * MINUTE)).toBe("accepted");
    }

    it("answers rate_limited with when the oldest job leaves the window when the limit is reached", async () => {
      await fillTheHour();
      const fourth = jobOnFreshInstance({ id: "job-fourth" });
      expect(await store.admit(fourth, RULES, T0 + 30 * MINUTE)).toEqual({
        status: "rate_limited",
        retryAt: T0 + HOUR,
        limit: 3,
      });
      expect(await store.get("job-fourth")).toBeUndefined();
    });

    it("admits again once the oldest job has left the window, and counts from the next oldest", async () => {
      await fillTheHour();
      expect(await status(jobOnFreshInstance(), T0 + HOUR - 1)).toBe("rate_limited");
      expect(await status(jobOnFreshInstance(), T0 + HOUR)).toBe("accepted");
      // Now T0+10m, T0+20m and T0+60m are in the window.
      expect(await store.admit(jobOnFreshInstance(), RULES, T0 + HOUR + 1)).toEqual({
        status: "rate_limited",
        retryAt: T0 + 10 * MINUTE + HOUR,
        limit: 3,
      });
    });

    it("counts jobs that already finished, since each one was started", async () => {
      await store.admit(jobOnFreshInstance({ id: "job-done" }), RULES, T0);
      await store.apply("job-done", { type: "create_refused", reason: "no" }, T0 + 1);
      await store.admit(jobOnFreshInstance(), RULES, T0 + 2);
      await store.admit(jobOnFreshInstance(), RULES, T0 + 3);
      expect(await status(jobOnFreshInstance(), T0 + 4)).toBe("rate_limited");
    });

    it("counts each person in each target apart", async () => {
      await fillTheHour();
      const now = T0 + 30 * MINUTE;
      expect(await status(jobOnFreshInstance({ requestedBy: "U0OTHER" }), now)).toBe("accepted");
      expect(await status(jobOnFreshInstance({ targetName: "staging" }), now)).toBe("accepted");
    });

    it("applies the limit it is given", async () => {
      await fillTheHour();
      expect(await status(jobOnFreshInstance(), T0 + 30 * MINUTE, { jobsPerHour: 4 })).toBe("accepted");
      expect(await store.admit(jobOnFreshInstance(), { jobsPerHour: 4 }, T0 + 31 * MINUTE)).toMatchObject({
        status: "rate_limited",
        limit: 4,
      });
    });
  });
});
