import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Job } from "../../../src/domain/job.js";
import type { NewJob } from "../../../src/domain/ports.js";
import { SlackDeliveryError, SlackRetryableError } from "../../../src/errors.js";
import type { SqliteJobStore } from "../../../src/store/sqlite-job-store.js";
import { createOutboxRelay, type OutboxRelay } from "../../../src/watcher/outbox-relay.js";
import { FixedClock } from "../../fakes/fixed-clock.js";
import { CHANNEL, memoryStore, newJob, REQUESTER, silentLogger } from "../../fakes/job-fixtures.js";
import { RecordingNotifier } from "../../fakes/recording-notifier.js";

const GAP = 1_100;

let clock: FixedClock;
let store: SqliteJobStore;
let notifier: RecordingNotifier;
let sleeps: number[];
let relay: OutboxRelay;

function makeRelay(channelGapMs = GAP): OutboxRelay {
  return createOutboxRelay({
    store,
    notifier,
    clock,
    logger: silentLogger(),
    channelGapMs,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock.advance(ms);
    },
  });
}

beforeEach(() => {
  clock = new FixedClock();
  store = memoryStore();
  notifier = new RecordingNotifier(clock);
  sleeps = [];
  relay = makeRelay();
});

function submit(overrides: Partial<NewJob> = {}): string {
  const job = newJob(overrides);
  store.insert(job, clock.now());
  return job.id;
}

/** Takes a job through creation to an available image, queuing every notice that brings. */
function runToAvailable(jobId: string): void {
  store.markCreateAttempted(jobId, clock.now());
  store.apply(jobId, { type: "image_created", imageId: "ami-0abc" }, clock.now());
  store.apply(jobId, { type: "progress", percent: 50 }, clock.now());
  store.apply(jobId, { type: "image_state", state: "available" }, clock.now());
}

const jobOf = (id: string) => store.get(id) as Job;
const undelivered = (jobId: string) =>
  store.pendingOutbox(Number.MAX_SAFE_INTEGER, 100).filter((m) => m.jobId === jobId);

/** An error like SlackNotifier's retryable one: Slack asked us to come back later. */
function rateLimited(retryAfterMs: number): Error {
  return new SlackRetryableError("rate limited", retryAfterMs);
}

describe("delivering a thread", () => {
  it("posts the root first and every reply in its thread, in order, when a job runs to the end", async () => {
    const id = submit();
    runToAvailable(id);
    await relay.drain();

    const [root, ...rest] = notifier.of(id);
    expect(root).toMatchObject({ op: "root", channel: CHANNEL, threadTs: undefined });
    expect(rest.map((d) => [d.op, d.key, d.channel, d.threadTs])).toEqual([
      ["reply", "creating", CHANNEL, root?.ts],
      ["reply", "pending", CHANNEL, root?.ts],
      ["reply", "progress:50", CHANNEL, root?.ts],
      ["reply", "available", CHANNEL, root?.ts],
      ["update", "root", CHANNEL, root?.ts],
    ]);
    expect(notifier.of(id).at(-1)?.state).toBe("available");
    expect(jobOf(id)).toMatchObject({ rootChannelId: CHANNEL, rootTs: root?.ts });
    expect(undelivered(id)).toEqual([]);
  });

  it("posts nothing more when drained again after everything went out", async () => {
    const id = submit();
    runToAvailable(id);
    await relay.drain();
    const count = notifier.deliveries.length;
    await relay.drain();
    await makeRelay().drain();
    expect(notifier.deliveries).toHaveLength(count);
  });

  it("keeps each job's messages in order when several jobs share the outbox", async () => {
    const a = submit({ channelId: "C0AAA" });
    const b = submit({ channelId: "C0BBB" });
    runToAvailable(a);
    runToAvailable(b);
    await relay.drain();
    for (const id of [a, b])
      expect(notifier.summary(id)).toEqual([
        "root:root",
        "reply:creating",
        "reply:pending",
        "reply:progress:50",
        "reply:available",
        "update:root",
      ]);
  });
});

describe("failures", () => {
  it("retries later without posting twice when Slack asks to retry", async () => {
    const id = submit();
    store.markCreateAttempted(id, clock.now());
    notifier.failNext("postReply", rateLimited(30_000));
    await relay.drain();
    expect(notifier.summary(id)).toEqual(["root:root"]);

    clock.advance(29_999);
    await relay.drain();
    expect(notifier.summary(id)).toEqual(["root:root"]);

    clock.advance(1);
    await relay.drain();
    expect(notifier.summary(id)).toEqual(["root:root", "reply:creating"]);
    expect(undelivered(id)).toEqual([]);
  });

  it("holds a job's later messages back when an earlier one is waiting to retry", async () => {
    const slow = submit({ channelId: "C0AAA" });
    const other = submit({ channelId: "C0BBB" });
    runToAvailable(slow);
    runToAvailable(other);
    notifier.failNext("postReply", rateLimited(60_000), {
      when: (job, key) => job.id === slow && key === "creating",
    });
    await relay.drain();

    expect(notifier.summary(slow)).toEqual(["root:root"]);
    expect(notifier.summary(other)).toHaveLength(6);

    clock.advance(60_000);
    await relay.drain();
    expect(notifier.summary(slow)).toEqual([
      "root:root",
      "reply:creating",
      "reply:pending",
      "reply:progress:50",
      "reply:available",
      "update:root",
    ]);
  });

  it("backs off on its own when a retryable error gives no retry time", async () => {
    const id = submit();
    notifier.failNext("postRoot", new Error("socket hang up"));
    await relay.drain();
    expect(notifier.of(id)).toEqual([]);
    clock.advance(999);
    await relay.drain();
    expect(notifier.of(id)).toEqual([]);
    clock.advance(1);
    await relay.drain();
    expect(notifier.summary(id)).toEqual(["root:root"]);
  });

  it("moves the thread to the requester's DM and tells them why when the channel refuses the root", async () => {
    const id = submit({ channelId: "C0PRIVATE" });
    store.markCreateAttempted(id, clock.now());
    notifier.failNext("postRoot", new SlackDeliveryError("not_in_channel", false));
    await relay.drain();

    expect(jobOf(id)).toMatchObject({ channelId: REQUESTER, rootChannelId: REQUESTER });
    const [root, ...rest] = notifier.of(id);
    expect(root).toMatchObject({ op: "root", channel: REQUESTER });
    expect(rest.map((d) => [d.op, d.key, d.channel, d.threadTs])).toEqual([
      ["reply", "creating", REQUESTER, root?.ts],
      ["note", "channel_unusable:C0PRIVATE", REQUESTER, undefined],
    ]);
    expect(undelivered(id)).toEqual([]);
  });

  it("drops the message and carries on when even the DM refuses it", async () => {
    const id = submit({ channelId: "C0PRIVATE" });
    store.markCreateAttempted(id, clock.now());
    notifier.failNext("postRoot", new SlackDeliveryError("not_in_channel", false));
    notifier.failNext("postRoot", new SlackDeliveryError("user_not_found", false));
    await relay.drain();
    await relay.drain();
    expect(notifier.summary(id)).toContain("note:channel_unusable:C0PRIVATE");
    expect(undelivered(id)).toEqual([]);
  });

  it("drops only the refused message, and keeps the thread where it is, when Slack rejects its content", async () => {
    const id = submit();
    store.markCreateAttempted(id, clock.now());
    notifier.failNext("postReply", new SlackDeliveryError("invalid_blocks", false));
    await relay.drain();
    expect(jobOf(id).channelId).toBe(CHANNEL);
    expect(notifier.summary(id)).toEqual(["root:root"]);
    expect(notifier.summary(id).some((k) => k.startsWith("note:"))).toBe(false);
    expect(undelivered(id)).toEqual([]);
  });

  it("drops a requester note and delivers the rest when Slack will not take the note", async () => {
    const id = submit();
    store.apply(id, { type: "create_refused", reason: "Instance is terminated." }, clock.now());
    notifier.failNext("noteRequester", new SlackDeliveryError("user_not_found", false));
    await relay.drain();
    expect(notifier.summary(id)).toEqual(["root:root", "reply:refused", "update:root"]);
    expect(jobOf(id).channelId).toBe(CHANNEL);
    expect(undelivered(id)).toEqual([]);
  });
});

describe("after a crash", () => {
  it("finds the root instead of posting it again when it was sending when the bot stopped", async () => {
    const id = submit();
    const { ts } = await notifier.postRoot(jobOf(id)); // reached Slack…
    const [message] = store.pendingOutbox(clock.now(), 10);
    store.markSending(message?.id ?? -1); // …but the bot died before recording it

    await makeRelay().drain();
    expect(notifier.lookups).toEqual([{ jobId: id, key: "root", rootTs: undefined }]);
    expect(notifier.summary(id)).toEqual(["root:root"]);
    expect(jobOf(id).rootTs).toBe(ts);
    expect(undelivered(id)).toEqual([]);
  });

  it("finds a reply instead of posting it again when it was sending when the bot stopped", async () => {
    const id = submit();
    await relay.drain();
    store.markCreateAttempted(id, clock.now());
    const [creating] = store.pendingOutbox(clock.now(), 10);
    const job = jobOf(id);
    await notifier.postReply(job, job.rootTs as string, creating ?? never());
    store.markSending(creating?.id ?? -1);
    store.apply(id, { type: "image_created", imageId: "ami-0abc" }, clock.now());

    await makeRelay().drain();
    expect(notifier.summary(id)).toEqual(["root:root", "reply:creating", "reply:pending"]);
  });

  it("posts the message once when it was sending but never reached Slack", async () => {
    const id = submit();
    const [message] = store.pendingOutbox(clock.now(), 10);
    store.markSending(message?.id ?? -1);
    await makeRelay().drain();
    expect(notifier.summary(id)).toEqual(["root:root"]);
    expect(notifier.lookups).toHaveLength(1);
  });
});

describe("pacing", () => {
  it("spaces posts to one channel at least channelGapMs apart when two jobs share it", async () => {
    const a = submit();
    const b = submit();
    await relay.drain();
    const roots = notifier.deliveries.filter((d) => d.op === "root");
    expect(roots.map((d) => d.jobId)).toEqual([a, b]);
    expect((roots[1]?.at ?? 0) - (roots[0]?.at ?? 0)).toBeGreaterThanOrEqual(GAP);
    expect(sleeps.length).toBeGreaterThan(0);
  });

  it("never posts to one channel faster than channelGapMs when many messages are queued", async () => {
    const a = submit();
    const b = submit();
    runToAvailable(a);
    runToAvailable(b);
    await relay.drain();
    const posts = notifier.deliveries.filter((d) => d.op === "root" || d.op === "reply");
    expect(posts).toHaveLength(10);
    for (const [i, post] of posts.entries())
      if (i > 0) expect(post.at - (posts[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(GAP);
  });

  it("does not wait when the jobs post to different channels", async () => {
    submit({ channelId: "C0AAA" });
    submit({ channelId: "C0BBB" });
    await relay.drain();
    expect(notifier.deliveries).toHaveLength(2);
    expect(sleeps).toEqual([]);
  });
});

describe("the loop", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("delivers queued messages when started and when woken, and nothing after it stops", async () => {
    vi.useFakeTimers();
    relay = makeRelay(0);
    const a = submit();
    relay.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(notifier.summary(a)).toEqual(["root:root"]);

    store.markCreateAttempted(a, clock.now());
    relay.wake();
    await vi.advanceTimersByTimeAsync(0);
    expect(notifier.summary(a)).toEqual(["root:root", "reply:creating"]);

    await relay.stop();
    const b = submit();
    relay.wake();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(notifier.of(b)).toEqual([]);
  });
});

function never(): never {
  throw new Error("expected an outbox message");
}
