/** The job store contract: an image event making its job due (push mode), and the counts for metrics. */
import { beforeEach, describe, expect, it } from "vitest";
import type { JobStore } from "../../../../src/domain/ports.js";
import { CLOCK_START } from "../../../fakes/fixed-clock.js";
import { newJob, REQUESTER } from "../../../fakes/job-fixtures.js";
import { imageEvent as event, JOB_STORES, useJobStore } from "./job-stores.js";

const T0 = CLOCK_START;

const MINUTE = 60_000;

describe.each(JOB_STORES)("the $name job store", (kind) => {
  const stores = useJobStore(kind);
  let store: JobStore;
  beforeEach(() => {
    store = stores.store;
  });

  /** A job whose image is being made, next checked in ten minutes. */
  async function pendingJob(id: string, imageId: string, instanceId: string): Promise<void> {
    await store.insert(newJob({ id, instanceId }), T0);
    await store.apply(id, { type: "image_created", imageId }, T0);
    await store.scheduleNext(id, T0 + 10 * MINUTE, T0);
  }

  describe("checkImageSoon", () => {
    it("makes the pending job with that image due now and returns it", async () => {
      await pendingJob("job-a", "ami-1", "i-0aaaaaaaaaaaaaaaa");
      await pendingJob("job-b", "ami-2", "i-0bbbbbbbbbbbbbbbb");
      expect(await store.due(T0 + MINUTE, 10)).toEqual([]);
      const job = await store.checkImageSoon(event("ami-1"), T0 + MINUTE);
      expect(job).toMatchObject({
        id: "job-a",
        state: "pending",
        imageId: "ami-1",
        nextCheckAt: T0 + MINUTE,
      });
      expect(await store.get("job-a")).toEqual(job);
      expect((await store.due(T0 + MINUTE, 10)).map((j) => j.id)).toEqual(["job-a"]);
    });

    it("keeps an earlier check when the job was already due sooner", async () => {
      await pendingJob("job-a", "ami-1", "i-0aaaaaaaaaaaaaaaa");
      await store.scheduleNext("job-a", T0 + MINUTE, T0);
      expect(await store.checkImageSoon(event("ami-1"), T0 + 2 * MINUTE)).toMatchObject({
        nextCheckAt: T0 + MINUTE,
      });
    });

    it("makes a cancelling job with that image due", async () => {
      await pendingJob("job-a", "ami-1", "i-0aaaaaaaaaaaaaaaa");
      await store.decide("job-a", { type: "cancel_requested", by: REQUESTER }, T0 + 1);
      await store.scheduleNext("job-a", T0 + 10 * MINUTE, T0 + 1);
      expect(await store.checkImageSoon(event("ami-1"), T0 + MINUTE)).toMatchObject({
        state: "cancelling",
        nextCheckAt: T0 + MINUTE,
      });
    });

    it("returns undefined and changes nothing when the image's job has finished", async () => {
      await pendingJob("job-a", "ami-1", "i-0aaaaaaaaaaaaaaaa");
      await store.apply("job-a", { type: "image_state", state: "available" }, T0 + 1);
      const before = await store.get("job-a");
      expect(await store.checkImageSoon(event("ami-1"), T0 + MINUTE)).toBeUndefined();
      expect(await store.get("job-a")).toEqual(before);
    });

    it("makes nothing due for an event naming the image in another region or account", async () => {
      await pendingJob("job-a", "ami-1", "i-0aaaaaaaaaaaaaaaa");
      expect(await store.checkImageSoon(event("ami-1", "us-east-1"), T0 + MINUTE)).toBeUndefined();
      expect(
        await store.checkImageSoon(event("ami-1", "eu-west-1", "210987654321"), T0 + MINUTE),
      ).toBeUndefined();
      // A look-alike account that only contains the job's: the match is on the whole account field.
      expect(
        await store.checkImageSoon(event("ami-1", "eu-west-1", "23456789012"), T0 + MINUTE),
      ).toBeUndefined();
      expect(await store.due(T0 + MINUTE, 10)).toEqual([]);
    });

    it("returns undefined when no job has the image", async () => {
      await pendingJob("job-a", "ami-1", "i-0aaaaaaaaaaaaaaaa");
      expect(await store.checkImageSoon(event("ami-foreign"), T0 + MINUTE)).toBeUndefined();
      expect(await store.due(T0 + MINUTE, 10)).toEqual([]);
    });
  });

  describe("stats", () => {
    it("counts nothing when the store is empty", async () => {
      expect(await store.stats()).toEqual({
        jobsByState: {},
        outboxBacklog: 0,
        oldestOutboxCreatedAt: undefined,
      });
    });

    it("counts jobs by state and the undelivered messages with the oldest one's time", async () => {
      await store.insert(newJob({ id: "queued-1", instanceId: "i-0000000000000001" }), T0);
      await store.insert(newJob({ id: "queued-2", instanceId: "i-0000000000000002" }), T0 + 1);
      await pendingJob("pending", "ami-1", "i-0000000000000003");
      await store.insert(newJob({ id: "refused", instanceId: "i-0000000000000004" }), T0 + 2);
      await store.apply("refused", { type: "create_refused", reason: "no" }, T0 + 3);
      // Delivered and dropped messages are not backlog; one being sent still is.
      const [first, second, third] = await store.pendingOutbox(T0 + 3, 3);
      await store.markSending(first?.id ?? -1, T0 + 3);
      await store.markDelivered(first?.id ?? -1, "1.0001", T0 + 4);
      await store.markDropped(second?.id ?? -1, "channel_not_found", T0 + 4);
      await store.markSending(third?.id ?? -1, T0 + 4);
      expect([first, second, third].map((m) => m?.jobId)).toEqual(["queued-1", "queued-2", "pending"]);
      // Left: pending's root (sending) and "pending" reply (T0), refused's four messages (T0+2, T0+3).
      expect(await store.stats()).toEqual({
        jobsByState: { queued: 2, pending: 1, refused: 1 },
        outboxBacklog: 6,
        oldestOutboxCreatedAt: T0,
      });
      expect(await store.unfinishedCount()).toBe(3);
    });
  });
});
