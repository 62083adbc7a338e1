/** The job store contract: what a restart finds, and a second store on the same database. */
import { describe, expect, it } from "vitest";
import { CLOCK_START } from "../../../fakes/fixed-clock.js";
import { newJob } from "../../../fakes/job-fixtures.js";
import { JOB_STORES, useJobStore } from "./job-stores.js";

const T0 = CLOCK_START;
const HOUR = 3_600_000;

describe.each(JOB_STORES)("the $name job store across a restart", (kind) => {
  const stores = useJobStore(kind);

  it("still has unfinished jobs and undelivered messages when the store is closed and reopened", async () => {
    const store = stores.store;
    await store.insert(newJob({ id: "job-a" }), T0);
    await store.insert(newJob({ id: "job-b" }), T0);
    await store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0 + 1);
    await store.apply("job-b", { type: "create_refused", reason: "no" }, T0 + 1);
    const [first] = await store.pendingOutbox(T0 + 1, 10);
    await store.markSending(first?.id ?? -1, T0 + 1);
    await stores.close(store);

    const reopened = await stores.open();
    expect((await reopened.due(T0 + 1, 10)).map((j) => [j.id, j.state, j.imageId])).toEqual([
      ["job-a", "pending", "ami-1"],
    ]);
    expect(await reopened.unfinishedCount()).toBe(1);
    expect(await reopened.pendingOutbox(T0 + 1, 10)).toEqual([
      expect.objectContaining({ jobId: "job-a", key: "root", sending: true }),
      expect.objectContaining({ jobId: "job-b", key: "root", sending: false }),
    ]);
    expect((await reopened.outboxForJob("job-b")).map((m) => `${m.jobId}:${m.key}`)).toEqual([
      "job-b:root",
      "job-b:refused",
      "job-b:requester_note",
      "job-b:root_update",
    ]);
  });

  it("keeps the data and opens cleanly when the same database is opened twice", async () => {
    await stores.store.insert(newJob({ id: "job-a" }), T0);
    const second = await stores.open();
    expect((await second.get("job-a"))?.state).toBe("queued");
    expect(await second.insert(newJob({ id: "job-b" }), T0)).toBe(true);
    expect((await stores.store.get("job-b"))?.id).toBe("job-b");
  });

  it("keeps the devices to leave out, so a restart still sends them to CreateImage", async () => {
    const job = newJob({ excludedDevices: ["/dev/sdf", "/dev/sdg"] });
    expect(await stores.store.admit(job, { jobsPerHour: 10 }, T0)).toEqual({ status: "accepted" });
    await stores.close(stores.store);

    const reopened = await stores.open();
    expect((await reopened.get(job.id))?.excludedDevices).toEqual(["/dev/sdf", "/dev/sdg"]);
    expect((await reopened.due(T0, 10)).map((j) => [j.id, j.excludedDevices])).toEqual([
      [job.id, ["/dev/sdf", "/dev/sdg"]],
    ]);
  });

  it("keeps a job waiting for approval, which can still be decided after a restart", async () => {
    const job = newJob({ approvalExpiresAt: T0 + HOUR });
    await stores.store.admit(job, { jobsPerHour: 10 }, T0);
    await stores.close(stores.store);

    const reopened = await stores.open();
    expect((await reopened.get(job.id))?.state).toBe("awaiting_approval");
    expect((await reopened.decide(job.id, { type: "approved", by: "U0APPROVER" }, T0 + 1))?.applied).toBe(
      true,
    );
  });
});
