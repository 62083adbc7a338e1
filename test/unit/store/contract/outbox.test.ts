/** The job store contract: the outbox of thread messages, offered in order and delivered once. */
import { beforeEach, describe, expect, it } from "vitest";
import type { JobStore, OutboxMessage } from "../../../../src/domain/ports.js";
import { CLOCK_START } from "../../../fakes/fixed-clock.js";
import { newJob } from "../../../fakes/job-fixtures.js";
import { JOB_STORES, useJobStore } from "./job-stores.js";

const T0 = CLOCK_START;

const keys = (messages: OutboxMessage[]) => messages.map((m) => `${m.jobId}:${m.key}`);

describe.each(JOB_STORES)("the $name job store's outbox", (kind) => {
  const stores = useJobStore(kind);
  let store: JobStore;
  beforeEach(() => {
    store = stores.store;
  });

  /** Delivers whatever the outbox offers, like a relay that always succeeds, and returns what went out. */
  async function deliverAll(now: number): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const batch = await store.pendingOutbox(now, 100);
      if (batch.length === 0) return out;
      for (const m of batch) {
        expect(await store.markSending(m.id, now)).toBe(true);
        await store.markDelivered(m.id, `ts-${m.id}`, now);
        out.push(`${m.jobId}:${m.key}`);
      }
    }
  }

  /** Inserts the jobs and claims them, as the watcher does before it calls CreateImage. */
  async function insertClaimed(ids: string[], now: number): Promise<void> {
    for (const id of ids) await store.insert(newJob({ id }), now);
    await store.due(now, 100);
  }

  it("queues a notice once when the same key is enqueued twice", async () => {
    await store.insert(newJob({ id: "job-a" }), T0);
    await store.enqueue("job-a", { kind: "checks_failing", key: "checks_failing" }, T0);
    await store.enqueue("job-a", { kind: "checks_failing", key: "checks_failing" }, T0 + 1);
    expect(keys(await store.outboxForJob("job-a"))).toEqual(["job-a:root", "job-a:checks_failing"]);
  });

  it("offers only each job's oldest undelivered message when a job has several", async () => {
    await insertClaimed(["job-a", "job-b"], T0);
    await store.markCreateAttempted("job-a", T0);
    await store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0);
    expect(keys(await store.pendingOutbox(T0, 10))).toEqual(["job-a:root", "job-b:root"]);
  });

  it("delivers a job's messages in the order they were written when drained", async () => {
    await insertClaimed(["job-a", "job-b"], T0);
    await store.markCreateAttempted("job-a", T0);
    await store.markCreateAttempted("job-b", T0);
    await store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0);
    await store.apply("job-a", { type: "image_state", state: "available" }, T0);
    const sent = await deliverAll(T0);
    expect(sent.filter((k) => k.startsWith("job-a:"))).toEqual([
      "job-a:root",
      "job-a:creating",
      "job-a:pending",
      "job-a:available",
      "job-a:root_update",
    ]);
    expect(sent.filter((k) => k.startsWith("job-b:"))).toEqual(["job-b:root", "job-b:creating"]);
    expect(await store.pendingOutbox(T0, 10)).toEqual([]);
  });

  it("respects the limit when more messages are due", async () => {
    for (const id of ["a", "b", "c"]) await store.insert(newJob({ id }), T0);
    expect(keys(await store.pendingOutbox(T0, 2))).toEqual(["a:root", "b:root"]);
  });

  it("shows a message as sending and counts the attempt when sending starts", async () => {
    await store.insert(newJob({ id: "job-a" }), T0);
    const [root] = await store.pendingOutbox(T0, 10);
    expect(await store.markSending(root?.id ?? -1, T0)).toBe(true);
    expect(await store.pendingOutbox(T0, 10)).toEqual([{ ...root, sending: true, attempts: 1 }]);
    expect(await store.outboxForJob("job-a")).toEqual([{ ...root, sending: true, attempts: 1 }]);
  });

  it("offers the next message when the current one is delivered", async () => {
    await insertClaimed(["job-a"], T0);
    await store.markCreateAttempted("job-a", T0);
    const [root] = await store.pendingOutbox(T0, 10);
    await store.markSending(root?.id ?? -1, T0);
    await store.markDelivered(root?.id ?? -1, "1790000000.000100", T0 + 1);
    expect(keys(await store.pendingOutbox(T0 + 1, 10))).toEqual(["job-a:creating"]);
  });

  it("holds back the message and the job's later ones until the retry time when delivery fails", async () => {
    await insertClaimed(["job-a", "job-b"], T0);
    await store.markCreateAttempted("job-a", T0);
    const [root] = await store.pendingOutbox(T0, 10);
    await store.markSending(root?.id ?? -1, T0);
    await store.markDeliveryFailed(root?.id ?? -1, "rate limited", T0 + 5_000);
    expect(keys(await store.pendingOutbox(T0 + 4_999, 10))).toEqual(["job-b:root"]);
    expect(await store.pendingOutbox(T0 + 5_000, 10)).toEqual([
      expect.objectContaining({ jobId: "job-a", key: "root", attempts: 1, sending: false }),
      expect.objectContaining({ jobId: "job-b", key: "root" }),
    ]);
  });

  it("keeps a message sending when a failed delivery may have reached Slack", async () => {
    await store.insert(newJob({ id: "job-a" }), T0);
    const [root] = await store.pendingOutbox(T0, 10);
    await store.markSending(root?.id ?? -1, T0);
    await store.markDeliveryFailed(root?.id ?? -1, "socket hang up", T0 + 5_000, true);
    expect(await store.pendingOutbox(T0 + 5_000, 10)).toEqual([
      expect.objectContaining({ jobId: "job-a", key: "root", attempts: 1, sending: true }),
    ]);
  });

  it("moves on to the next message when one is dropped", async () => {
    await insertClaimed(["job-a"], T0);
    await store.markCreateAttempted("job-a", T0);
    const [root] = await store.pendingOutbox(T0, 10);
    await store.markDropped(root?.id ?? -1, "channel_not_found", T0);
    expect(keys(await store.pendingOutbox(T0, 10))).toEqual(["job-a:creating"]);
  });
});
