import { beforeEach, describe, expect, it } from "vitest";
import type { JobStore } from "../../../../src/domain/ports.js";
import { CLOCK_START } from "../../../fakes/fixed-clock.js";
import { ACCOUNT_ID, newJob } from "../../../fakes/job-fixtures.js";
import { POSTGRES, useJobStore } from "./job-stores.js";

const T0 = CLOCK_START;

/** An image event from the jobs' own account and region (newJob's). */
const event = (imageId: string, region = "eu-west-1", accountId = ACCOUNT_ID) => ({
  imageId,
  region,
  accountId,
});
const LEASE = 5_000;

/** A takeover is counted only when a replica stopped working on what it held, not at the hand-off between ticks. */
describe("takeovers on the postgres job store", () => {
  const stores = useJobStore(POSTGRES);
  let a: JobStore;
  let b: JobStore;
  let takeovers: [string, string, number][];
  beforeEach(async () => {
    takeovers = [];
    const replica = (owner: string) =>
      stores.open({
        owner,
        leaseMs: LEASE,
        onTakeover: (kind, count) => takeovers.push([owner, kind, count]),
      });
    [a, b] = await Promise.all([replica("a"), replica("b")]);
  });

  it("does not count a takeover when the owner checked the job and scheduled its next check past its lease", async () => {
    await a.insert(newJob({ id: "job-x", instanceId: "i-0123456789abcdef0" }), T0);
    expect((await a.due(T0, 10)).map((j) => j.id)).toEqual(["job-x"]);
    // a did its work and is alive; the next check is a slow poll, past the lease.
    await a.scheduleNext("job-x", T0 + 10 * LEASE, T0 + 1);
    const got = await b.due(T0 + 10 * LEASE, 10);
    expect(got.map((j) => j.id)).toEqual(["job-x"]);
    expect(takeovers).toEqual([]);
  });

  it("does not count a takeover when the owner backed a message off past its lease", async () => {
    await a.insert(newJob({ id: "job-y", instanceId: "i-0123456789abcdef1" }), T0);
    const [root] = await a.pendingOutbox(T0, 10);
    await a.markSending(root?.id ?? -1, T0);
    await a.markDeliveryFailed(root?.id ?? -1, "ratelimited", T0 + 10 * LEASE, false);
    expect(await b.pendingOutbox(T0 + 10 * LEASE, 10)).toHaveLength(1);
    expect(takeovers).toEqual([]);
  });

  it("counts a takeover when a job fell due while its owner still held it and the lease ran out", async () => {
    await a.insert(newJob({ id: "job-z", instanceId: "i-0123456789abcdef2" }), T0);
    await a.due(T0, 10);
    // a went silent: the job stays due (next check at T0) and its lease runs out.
    expect(await b.due(T0 + LEASE - 1, 10)).toEqual([]);
    expect((await b.due(T0 + LEASE, 10)).map((j) => j.id)).toEqual(["job-z"]);
    expect(takeovers).toEqual([["b", "job", 1]]);
  });

  it("gives a stopping replica's claims back, so another takes its jobs and messages at once", async () => {
    await a.insert(newJob({ id: "job-w", instanceId: "i-0123456789abcdef3" }), T0);
    await a.due(T0, 10);
    await a.pendingOutbox(T0, 10);
    expect(await b.due(T0 + 1, 10)).toEqual([]);
    await stores.close(a);
    expect((await b.due(T0 + 1, 10)).map((j) => j.id)).toEqual(["job-w"]);
    expect((await b.pendingOutbox(T0 + 1, 10)).map((m) => m.key)).toEqual(["root"]);
    expect(takeovers).toEqual([]);
  });

  it("lets any replica check a pending image at once when its event arrives, while the holder's claim runs", async () => {
    await a.insert(newJob({ id: "job-v", instanceId: "i-0123456789abcdef4" }), T0);
    await a.due(T0, 10);
    await a.markCreateAttempted("job-v", T0);
    await a.apply("job-v", { type: "image_created", imageId: "ami-0aaaaaaaaaaaaaaa1" }, T0);
    await a.scheduleNext("job-v", T0 + 10 * LEASE, T0);
    await a.due(T0, 10);
    // The event reaches b, not a: b may check it now, without waiting for a's claim to run out.
    expect((await b.checkImageSoon(event("ami-0aaaaaaaaaaaaaaa1"), T0 + 1))?.id).toBe("job-v");
    expect((await b.due(T0 + 1, 10)).map((j) => j.id)).toEqual(["job-v"]);
    expect(takeovers).toEqual([]);
  });

  it("keeps the claim of a cancelling job when its event arrives: the claim guards its DeregisterImage", async () => {
    await a.insert(newJob({ id: "job-u", instanceId: "i-0123456789abcdef5" }), T0);
    await a.due(T0, 10);
    await a.markCreateAttempted("job-u", T0);
    await a.apply("job-u", { type: "image_created", imageId: "ami-0aaaaaaaaaaaaaaa2" }, T0);
    await a.apply("job-u", { type: "cancel_requested", by: "U0REQUESTER" }, T0);
    await a.due(T0, 10);
    await b.checkImageSoon(event("ami-0aaaaaaaaaaaaaaa2"), T0 + 1);
    expect(await b.due(T0 + 1, 10)).toEqual([]);
    expect(await a.markDeregisterAttempted("job-u", T0 + 1)).toBe(true);
  });

  it("tells a replica it no longer holds a job once another took it over, and the new holder that it does", async () => {
    await a.insert(newJob({ id: "job-t", instanceId: "i-0123456789abcdef6" }), T0);
    await a.due(T0, 10);
    expect(await a.holds("job-t", T0 + 1)).toBe(true);
    expect(await b.holds("job-t", T0 + 1)).toBe(false);
    expect((await b.due(T0 + LEASE, 10)).map((j) => j.id)).toEqual(["job-t"]);
    expect(await a.holds("job-t", T0 + LEASE + 1)).toBe(false);
    expect(await b.holds("job-t", T0 + LEASE + 1)).toBe(true);
  });
});
