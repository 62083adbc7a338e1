/**
 * The steps after the image, as both stores keep them: the person's choices stored with the job, the steps'
 * progress written with each transition and its notices, a finishing job due again at once yet not holding
 * its instance, and (Postgres) the CopyImage mark refused to a replica that lost its claim.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { JobStore } from "../../../../src/domain/ports.js";
import { CLOCK_START } from "../../../fakes/fixed-clock.js";
import { newJob } from "../../../fakes/job-fixtures.js";
import { JOB_STORES, POSTGRES, useJobStore } from "./job-stores.js";

const T0 = CLOCK_START;
const ACCOUNT = "210987654321";

describe.each(JOB_STORES)("steps after the image on the $name job store", (kind) => {
  const stores = useJobStore(kind);
  let store: JobStore;
  beforeEach(() => {
    store = stores.store;
  });

  /** A job with a copy and sharing chosen, whose image has just become available. */
  async function finishingJob(id = "job-a", instanceId = "i-0123456789abcdef0"): Promise<void> {
    await store.insert(newJob({ id, instanceId, copyTo: ["us-east-1"], shareWith: [ACCOUNT] }), T0);
    await store.apply(id, { type: "image_created", imageId: "ami-1" }, T0 + 1);
    await store.scheduleNext(id, T0 + 60_000, T0 + 1);
    await store.apply(id, { type: "image_state", state: "available" }, T0 + 2);
  }

  it("stores the choices as steps not yet started, and none for a job without them", async () => {
    await store.insert(newJob({ id: "job-a", copyTo: ["us-east-1"], shareWith: [ACCOUNT] }), T0);
    await store.insert(newJob({ id: "job-b", instanceId: "i-0fedcba9876543210" }), T0);
    expect((await store.get("job-a"))?.after).toEqual({
      shareWith: [ACCOUNT],
      copies: [{ region: "us-east-1", state: "waiting", share: { state: "waiting" } }],
      share: { state: "waiting" },
    });
    expect((await store.get("job-b"))?.after).toBeUndefined();
  });

  it("makes an available image's job finishing and due at once, with its notices", async () => {
    await finishingJob();
    const job = await store.get("job-a");
    expect(job).toMatchObject({ state: "finishing", nextCheckAt: T0 + 2, finishedAt: undefined });
    expect((await store.due(T0 + 2, 10)).map((j) => j.id)).toEqual(["job-a"]);
    expect((await store.outboxForJob("job-a")).map((m) => m.key)).toEqual([
      "root",
      "pending",
      "available",
      "root_update:finishing",
    ]);
    expect(await store.unfinishedCount()).toBe(1);
  });

  it("lets a new image of the instance start while the last one's copies run", async () => {
    await finishingJob();
    const next = newJob({ id: "job-b", copyTo: [], shareWith: [] });
    expect(await store.admit(next, { jobsPerHour: 10 }, T0 + 3)).toEqual({ status: "accepted" });
  });

  it("writes each step with its notice, and ends the job with the summary when the last step ends", async () => {
    await finishingJob();
    // The watcher claims the job first (on Postgres the mark needs the claim).
    await store.due(T0 + 2, 10);
    expect(await store.applyHeld("job-a", { type: "copy_attempted", region: "us-east-1" }, T0 + 3)).toBe(
      true,
    );
    // A second mark for the same copy is no change.
    expect(await store.applyHeld("job-a", { type: "copy_attempted", region: "us-east-1" }, T0 + 4)).toBe(
      false,
    );
    await store.apply("job-a", { type: "image_shared", region: "eu-west-1" }, T0 + 5);
    await store.apply("job-a", { type: "copy_created", region: "us-east-1", imageId: "ami-2" }, T0 + 6);
    await store.apply("job-a", { type: "copy_state", region: "us-east-1", state: "available" }, T0 + 7);
    expect((await store.get("job-a"))?.state).toBe("finishing");
    const done = await store.apply("job-a", { type: "image_shared", region: "us-east-1" }, T0 + 8);
    expect(done).toMatchObject({ state: "available", finishedAt: T0 + 8, imageId: "ami-1" });
    expect(done?.after?.copies).toEqual([
      {
        region: "us-east-1",
        state: "available",
        attemptedAt: T0 + 3,
        imageId: "ami-2",
        share: { state: "shared" },
      },
    ]);
    expect((await store.outboxForJob("job-a")).map((m) => m.key).slice(4)).toEqual([
      "copy_started:us-east-1",
      "shared:eu-west-1",
      "copy_available:us-east-1",
      "shared:us-east-1",
      "after_done",
      "root_update",
    ]);
    expect(await store.unfinishedCount()).toBe(0);
  });
});

describe("the CopyImage mark on the postgres job store", () => {
  const stores = useJobStore(POSTGRES);
  const LEASE = 5_000;

  it("is refused to a replica whose claim was taken over, and changes nothing", async () => {
    const [a, b] = await Promise.all([
      stores.open({ owner: "a", leaseMs: LEASE }),
      stores.open({ owner: "b", leaseMs: LEASE }),
    ]);
    await a.insert(newJob({ id: "job-a", copyTo: ["us-east-1"] }), T0);
    await a.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0);
    await a.apply("job-a", { type: "image_state", state: "available" }, T0);
    await a.due(T0, 10);
    await b.due(T0 + LEASE, 10);
    expect(await a.applyHeld("job-a", { type: "copy_attempted", region: "us-east-1" }, T0 + 1)).toBe(false);
    expect((await a.get("job-a"))?.after?.copies[0]?.attemptedAt).toBeUndefined();
    expect(await b.applyHeld("job-a", { type: "copy_attempted", region: "us-east-1" }, T0 + LEASE + 1)).toBe(
      true,
    );
    expect((await b.get("job-a"))?.after?.copies[0]?.attemptedAt).toBe(T0 + LEASE + 1);
  });
});
