/**
 * Leases, which only the Postgres store has (SQLite is one process per database): replicas claim disjoint
 * work, take over what a silent replica let run out, and a replica that lost its claim cannot make the calls
 * the claim guards.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { JobStore } from "../../../../src/domain/ports.js";
import { CLOCK_START } from "../../../fakes/fixed-clock.js";
import { newJob, REQUESTER } from "../../../fakes/job-fixtures.js";
import { imageEvent as event, POSTGRES, useJobStore } from "./job-stores.js";

const T0 = CLOCK_START;
const LEASE = 5_000;

describe("leases on the postgres job store", () => {
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

  async function insertJobs(count: number): Promise<string[]> {
    const ids = Array.from({ length: count }, (_, i) => `job-${String(i).padStart(2, "0")}`);
    for (const id of ids) await a.insert(newJob({ id, instanceId: `i-${id}` }), T0);
    return ids;
  }

  /** Jobs stored at one time are due in no particular order among themselves. */
  const sorted = (values: string[]) => [...values].sort();

  describe("two replicas claiming at once", () => {
    it("get disjoint jobs, together all that are due, when both ask for due jobs", async () => {
      const ids = await insertJobs(20);
      const [mine, theirs] = await Promise.all([a.due(T0, 10), b.due(T0, 10)]);
      expect(mine).toHaveLength(10);
      expect(theirs).toHaveLength(10);
      expect(sorted([...mine, ...theirs].map((j) => j.id))).toEqual(ids);
      expect(takeovers).toEqual([]);
    });

    it("get disjoint messages, together all that are due, when both ask for the outbox", async () => {
      const ids = await insertJobs(20);
      const [mine, theirs] = await Promise.all([a.pendingOutbox(T0, 10), b.pendingOutbox(T0, 10)]);
      expect(mine).toHaveLength(10);
      expect(theirs).toHaveLength(10);
      expect(sorted([...mine, ...theirs].map((m) => m.jobId))).toEqual(ids);
      expect(takeovers).toEqual([]);
    });
  });

  describe("a claim", () => {
    it("keeps jobs from another replica until the lease runs out, then lets it take them over", async () => {
      const ids = await insertJobs(3);
      expect(sorted((await a.due(T0, 10)).map((j) => j.id))).toEqual(ids);
      expect(await b.due(T0 + LEASE - 1, 10)).toEqual([]);
      expect(takeovers).toEqual([]);
      expect(sorted((await b.due(T0 + LEASE, 10)).map((j) => j.id))).toEqual(ids);
      expect(takeovers).toEqual([["b", "job", 3]]);
      // Now b's: a gets them back only once b's lease runs out in turn.
      expect(await a.due(T0 + LEASE + 1, 10)).toEqual([]);
    });

    it("is renewed when its owner claims again, and still keeps the others out", async () => {
      const ids = await insertJobs(2);
      await a.due(T0, 10);
      expect(sorted((await a.due(T0 + LEASE - 1_000, 10)).map((j) => j.id))).toEqual(ids);
      expect(await b.due(T0 + LEASE, 10)).toEqual([]);
      expect(sorted((await b.due(T0 + 2 * LEASE - 1_000, 10)).map((j) => j.id))).toEqual(ids);
    });

    it("keeps messages from another replica until the lease runs out, then lets it take them over", async () => {
      await insertJobs(2);
      const claimed = await a.pendingOutbox(T0, 10);
      expect(claimed).toHaveLength(2);
      expect(await b.pendingOutbox(T0 + LEASE - 1, 10)).toEqual([]);
      expect(await b.pendingOutbox(T0 + LEASE, 10)).toEqual(claimed);
      expect(takeovers).toEqual([["b", "message", 2]]);
    });

    it("frees a message for any replica once it is delivered, offering the job's next one", async () => {
      await insertJobs(1);
      await a.due(T0, 10);
      await a.markCreateAttempted("job-00", T0);
      const [root] = await a.pendingOutbox(T0, 10);
      await a.markSending(root?.id ?? -1, T0);
      await a.markDelivered(root?.id ?? -1, "1.0001", T0 + 1);
      expect((await b.pendingOutbox(T0 + 1, 10)).map((m) => m.key)).toEqual(["creating"]);
      expect(takeovers).toEqual([]);
    });
  });

  describe("after another replica took over", () => {
    it("refuses the old owner's CreateImage mark and changes nothing, and grants the new owner's", async () => {
      await insertJobs(1);
      await a.due(T0, 10);
      await b.due(T0 + LEASE, 10);
      // A paused replica whose clock says its lease still holds is refused as well.
      expect(await a.markCreateAttempted("job-00", T0 + 1)).toBe(false);
      expect(await a.markCreateAttempted("job-00", T0 + LEASE + 1)).toBe(false);
      expect((await a.get("job-00"))?.createAttemptedAt).toBeUndefined();
      expect((await a.outboxForJob("job-00")).map((m) => m.key)).toEqual(["root"]);
      expect(await b.markCreateAttempted("job-00", T0 + LEASE + 2)).toBe(true);
      expect((await b.get("job-00"))?.createAttemptedAt).toBe(T0 + LEASE + 2);
      expect((await b.outboxForJob("job-00")).map((m) => m.key)).toEqual(["root", "creating"]);
    });

    it("refuses the old owner's deregister mark and changes nothing, and grants the new owner's", async () => {
      await insertJobs(1);
      await a.due(T0, 10);
      await a.markCreateAttempted("job-00", T0);
      await a.apply("job-00", { type: "image_created", imageId: "ami-1" }, T0 + 1);
      await a.decide("job-00", { type: "cancel_requested", by: REQUESTER }, T0 + 2);
      await a.due(T0 + 2, 10);
      await b.due(T0 + 2 + LEASE, 10);
      expect(await a.markDeregisterAttempted("job-00", T0 + 3)).toBe(false);
      expect((await a.get("job-00"))?.deregisterAttemptedAt).toBeUndefined();
      expect(await b.markDeregisterAttempted("job-00", T0 + 3 + LEASE)).toBe(true);
      expect((await a.get("job-00"))?.deregisterAttemptedAt).toBe(T0 + 3 + LEASE);
    });

    it("refuses the old owner's sending mark and changes nothing, and grants the new owner's", async () => {
      await insertJobs(1);
      const [root] = await a.pendingOutbox(T0, 10);
      const [taken] = await b.pendingOutbox(T0 + LEASE, 10);
      expect(taken?.id).toBe(root?.id);
      expect(await a.markSending(root?.id ?? -1, T0 + 1)).toBe(false);
      expect(await a.outboxForJob("job-00")).toEqual([root]);
      expect(await b.markSending(root?.id ?? -1, T0 + LEASE)).toBe(true);
      expect(await a.outboxForJob("job-00")).toEqual([{ ...root, attempts: 1, sending: true }]);
    });
  });

  describe("without a claim", () => {
    it("refuses every guarded mark when this replica never claimed the job or message", async () => {
      await insertJobs(1);
      expect(await a.markCreateAttempted("job-00", T0)).toBe(false);
      const [root] = await a.outboxForJob("job-00");
      expect(await a.markSending(root?.id ?? -1, T0)).toBe(false);
      expect(await a.get("job-00")).toMatchObject({ createAttemptedAt: undefined });
      expect(await a.outboxForJob("job-00")).toEqual([root]);
    });

    it("refuses the marks once the replica's own lease ran out, until it claims again", async () => {
      await insertJobs(1);
      await a.due(T0, 10);
      const [root] = await a.pendingOutbox(T0, 10);
      expect(await a.markCreateAttempted("job-00", T0 + LEASE)).toBe(false);
      expect(await a.markSending(root?.id ?? -1, T0 + LEASE)).toBe(false);
      await a.due(T0 + LEASE, 10);
      await a.pendingOutbox(T0 + LEASE, 10);
      expect(await a.markCreateAttempted("job-00", T0 + LEASE)).toBe(true);
      expect(await a.markSending(root?.id ?? -1, T0 + LEASE)).toBe(true);
    });
  });

  /** A takeover is counted only when a replica stopped working on what it held, not at the hand-off between ticks. */
  describe("takeovers and given-back claims", () => {
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
});
