import { describe, expect, it } from "vitest";
import type { Job } from "../../../src/domain/job.js";
import { SlackRetryableError } from "../../../src/errors.js";
import { createOutboxRelay } from "../../../src/watcher/outbox-relay.js";
import { FixedClock } from "../../fakes/fixed-clock.js";
import { memoryStore, newJob, silentLogger } from "../../fakes/job-fixtures.js";
import { RecordingNotifier } from "../../fakes/recording-notifier.js";

function setUp(onDelivered: (job: Job) => void) {
  const clock = new FixedClock();
  const store = memoryStore();
  const notifier = new RecordingNotifier(clock);
  const relay = createOutboxRelay({
    store,
    notifier,
    clock,
    logger: silentLogger(),
    channelGapMs: 0,
    sleep: async (ms) => {
      clock.advance(ms);
    },
    onDelivered,
  });
  return { clock, store, notifier, relay };
}

describe("the outbox relay's onDelivered hook", () => {
  it("is called with the job after each message is delivered and recorded", async () => {
    const seen: { id: string; rootTs: string | undefined }[] = [];
    const { store, relay, clock } = setUp((job) => seen.push({ id: job.id, rootTs: job.rootTs }));
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
    const { store, relay, clock, notifier } = setUp((job) => seen.push(job.id));
    notifier.failNext("postRoot", new SlackRetryableError("rate limited", 60_000));
    store.insert(newJob(), clock.now());
    await relay.drain();
    expect(seen).toEqual([]);
  });

  it("never lets the hook's failure into the relay: delivery goes on", async () => {
    let calls = 0;
    const { store, relay, clock, notifier } = setUp(() => {
      calls++;
      throw new Error("home tabs broke");
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
