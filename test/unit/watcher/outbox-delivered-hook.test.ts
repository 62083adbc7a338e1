import { describe, expect, it } from "vitest";
import { SlackRetryableError } from "../../../src/errors.js";
import { newJob } from "../../fakes/job-fixtures.js";
import { recordingRelay } from "../../support/recording-relay.js";

describe("the outbox relay's onDelivered hook", () => {
  it("is called with the job after each message is delivered and recorded", async () => {
    const seen: { id: string; rootTs: string | undefined }[] = [];
    const { store, relay, clock } = recordingRelay({
      onDelivered: (job) => seen.push({ id: job.id, rootTs: job.rootTs }),
    });
    const job = newJob();
    store.insert(job, clock.now());
    store.markCreateAttempted(job.id, clock.now());
    await relay.drain();
    // The root, then "creating": each announced once, with the root's ts known.
    expect(seen.map((s) => s.id)).toEqual([job.id, job.id]);
    expect(seen.every((s) => s.rootTs !== undefined)).toBe(true);
  });

  it("is not called for a message that failed", async () => {
    const seen: string[] = [];
    const { store, relay, clock, notifier } = recordingRelay({ onDelivered: (job) => seen.push(job.id) });
    notifier.failNext("postRoot", new SlackRetryableError("rate limited", 60_000));
    store.insert(newJob(), clock.now());
    await relay.drain();
    expect(seen).toEqual([]);
  });

  it("never lets the hook's failure into the relay: delivery goes on", async () => {
    let calls = 0;
    const { store, relay, clock, notifier } = recordingRelay({
      onDelivered: () => {
        calls++;
        throw new Error("home tabs broke");
      },
    });
    const job = newJob();
    store.insert(job, clock.now());
    store.markCreateAttempted(job.id, clock.now());
    await expect(relay.drain()).resolves.toBeUndefined();
    expect(calls).toBe(2);
    expect(notifier.of(job.id).map((d) => d.op)).toEqual(["root", "reply"]);
    expect(store.pendingOutbox(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
  });
});
