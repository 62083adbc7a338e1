/**
 * Leases, which only the Postgres store has (SQLite is one process per database): replicas claim disjoint
 * work, take over what a silent replica let run out, and a replica that lost its claim cannot make the calls
 * the claim guards.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { JobStore } from "../../../../src/domain/ports.js";
import { CLOCK_START } from "../../../fakes/fixed-clock.js";
import { newJob, REQUESTER } from "../../../fakes/job-fixtures.js";
import { POSTGRES, useJobStore } from "./job-stores.js";

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
});
