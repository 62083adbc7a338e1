import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { OutboxMessage } from "../../../src/domain/ports.js";
import { type Db, openDatabase } from "../../../src/store/database.js";
import { SqliteJobStore } from "../../../src/store/sqlite-job-store.js";
import { CLOCK_START } from "../../fakes/fixed-clock.js";
import { newJob } from "../../fakes/job-fixtures.js";

const T0 = CLOCK_START;

let dir: string;
let path: string;
let db: Db;
let store: SqliteJobStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ami-bot-store-"));
  path = join(dir, "data", "ami-bot.db");
  db = openDatabase(path);
  store = new SqliteJobStore(db);
});

afterEach(() => {
  if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

const keys = (messages: OutboxMessage[]) => messages.map((m) => `${m.jobId}:${m.key}`);

/** Delivers whatever the outbox offers, like a relay that always succeeds, and returns what went out. */
function deliverAll(now: number): string[] {
  const out: string[] = [];
  for (;;) {
    const batch = store.pendingOutbox(now, 100);
    if (batch.length === 0) return out;
    for (const m of batch) {
      store.markSending(m.id);
      store.markDelivered(m.id, `ts-${m.id}`, now);
      out.push(`${m.jobId}:${m.key}`);
    }
  }
}

describe("insert", () => {
  it("stores the job as queued and queues its root message when the job is new", () => {
    const { requestHash: _, ...job } = newJob({
      id: "job-a",
      tags: [{ key: "team", value: "web" }],
      description: "pre-upgrade",
    });
    expect(store.insert({ ...job, requestHash: "hash-a" }, T0)).toBe(true);
    expect(store.get("job-a")).toEqual({
      ...job,
      rootChannelId: undefined,
      rootTs: undefined,
      state: "queued",
      imageId: undefined,
      createAttemptedAt: undefined,
      attempts: 0,
      lastError: undefined,
      finalReason: undefined,
      progress: 0,
      slowNotified: false,
      nextCheckAt: T0,
      createdAt: T0,
      updatedAt: T0,
      finishedAt: undefined,
    });
    expect(keys(store.outboxForJob("job-a"))).toEqual(["job-a:root"]);
  });

  it("stores nothing and returns false when the idempotency key was already used", () => {
    store.insert(newJob({ id: "job-a", idempotencyKey: "view-1" }), T0);
    expect(store.insert(newJob({ id: "job-b", idempotencyKey: "view-1" }), T0 + 5)).toBe(false);
    expect(store.get("job-b")).toBeUndefined();
    expect(store.outboxForJob("job-b")).toEqual([]);
    expect(store.unfinishedCount()).toBe(1);
  });

  it("keeps no-reboot and an absent instance name when it stores them", () => {
    store.insert(newJob({ id: "job-a", noReboot: true, instanceName: undefined }), T0);
    expect(store.get("job-a")).toMatchObject({ noReboot: true, instanceName: undefined });
  });
});

describe("due", () => {
  it("returns unfinished jobs whose check is due, soonest first, then oldest first", () => {
    store.insert(newJob({ id: "late" }), T0 + 30);
    store.insert(newJob({ id: "first" }), T0 + 10);
    store.insert(newJob({ id: "tie-old" }), T0 + 20);
    store.insert(newJob({ id: "tie-new" }), T0 + 21);
    store.scheduleNext("tie-new", T0 + 25, T0 + 21);
    store.scheduleNext("tie-old", T0 + 25, T0 + 21);
    store.insert(newJob({ id: "future" }), T0);
    store.scheduleNext("future", T0 + 1_000, T0);
    expect(store.due(T0 + 100, 10).map((j) => j.id)).toEqual(["first", "tie-old", "tie-new", "late"]);
  });

  it("returns at most `limit` jobs when more are due", () => {
    for (const id of ["a", "b", "c"]) store.insert(newJob({ id }), T0);
    expect(store.due(T0, 2)).toHaveLength(2);
  });

  it("leaves finished jobs out when they would otherwise be due", () => {
    store.insert(newJob({ id: "done" }), T0);
    store.insert(newJob({ id: "open" }), T0);
    store.apply("done", { type: "create_refused", reason: "no" }, T0);
    expect(store.due(T0 + 1, 10).map((j) => j.id)).toEqual(["open"]);
    expect(store.unfinishedCount()).toBe(1);
  });
});

describe("apply", () => {
  it("stores the change and queues its notices when the event moves the job", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    const job = store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0 + 5);
    expect(job).toMatchObject({ state: "pending", imageId: "ami-1", updatedAt: T0 + 5 });
    expect(store.get("job-a")).toMatchObject({ state: "pending", imageId: "ami-1" });
    expect(keys(store.outboxForJob("job-a"))).toEqual(["job-a:root", "job-a:pending"]);
  });

  it("stores the final state, reason and time when the job finishes", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0 + 5);
    store.apply("job-a", { type: "image_state", state: "failed", reason: "disk" }, T0 + 50);
    expect(store.get("job-a")).toMatchObject({
      state: "failed",
      finishedAt: T0 + 50,
      finalReason: expect.stringContaining("“disk”"),
    });
    expect(keys(store.outboxForJob("job-a")).slice(2)).toEqual([
      "job-a:failed",
      "job-a:requester_note",
      "job-a:root_update",
    ]);
  });

  it("changes nothing and queues nothing when the event does not apply", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    const job = store.apply("job-a", { type: "progress", percent: 80 }, T0 + 5);
    expect(job).toMatchObject({ state: "queued", progress: 0, updatedAt: T0 });
    expect(keys(store.outboxForJob("job-a"))).toEqual(["job-a:root"]);
  });

  it("returns undefined when the job does not exist", () => {
    expect(store.apply("nope", { type: "gave_up" }, T0)).toBeUndefined();
  });

  it("keeps the old state when queuing its notices fails", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    // A real failure inside the transaction: the outbox refuses the insert.
    db.exec(
      "CREATE TRIGGER refuse_pending BEFORE INSERT ON outbox WHEN NEW.key = 'pending' BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    );
    expect(() => store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0 + 5)).toThrow(
      /disk full/,
    );
    expect(store.get("job-a")).toMatchObject({ state: "queued", imageId: undefined });
    expect(keys(store.outboxForJob("job-a"))).toEqual(["job-a:root"]);
  });

  it("clears the failed-check count when the job moves on", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    store.recordError("job-a", "throttled", T0 + 30_000, T0);
    store.recordError("job-a", "throttled again", T0 + 60_000, T0 + 30_000);
    expect(store.get("job-a")).toMatchObject({
      attempts: 2,
      lastError: "throttled again",
      nextCheckAt: T0 + 60_000,
    });
    store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0 + 60_000);
    expect(store.get("job-a")).toMatchObject({ attempts: 0, lastError: undefined });
  });
});

describe("scheduleNext", () => {
  it("sets the next check and ends the run of failures when a check succeeds", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    store.recordError("job-a", "throttled", T0 + 30_000, T0);
    store.scheduleNext("job-a", T0 + 45_000, T0 + 30_000);
    expect(store.get("job-a")).toMatchObject({
      attempts: 0,
      lastError: undefined,
      nextCheckAt: T0 + 45_000,
      updatedAt: T0 + 30_000,
    });
    expect(store.due(T0 + 44_999, 10)).toEqual([]);
  });
});

describe("markCreateAttempted", () => {
  it("records the first attempt time and queues the creating reply once when called twice", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    store.markCreateAttempted("job-a", T0 + 1);
    store.markCreateAttempted("job-a", T0 + 2);
    expect(store.get("job-a")?.createAttemptedAt).toBe(T0 + 1);
    expect(keys(store.outboxForJob("job-a"))).toEqual(["job-a:root", "job-a:creating"]);
  });
});

describe("setInstanceName", () => {
  it("replaces the stored name and records the time when AWS reports another", () => {
    store.insert(newJob({ id: "job-a", instanceName: "claimed-by-form" }), T0);
    store.setInstanceName("job-a", "web-1", T0 + 7);
    expect(store.get("job-a")).toMatchObject({ instanceName: "web-1", updatedAt: T0 + 7 });
  });

  it("clears the name when AWS reports none", () => {
    store.insert(newJob({ id: "job-a", instanceName: "claimed-by-form" }), T0);
    store.setInstanceName("job-a", undefined, T0 + 7);
    expect(store.get("job-a")?.instanceName).toBeUndefined();
  });
});

describe("thread bookkeeping", () => {
  it("stores where the root was posted and where the thread moved", () => {
    store.insert(newJob({ id: "job-a", channelId: "C0UPDATES" }), T0);
    store.markRootPosted("job-a", "C0UPDATES", "1790000000.000100", T0 + 1);
    expect(store.get("job-a")).toMatchObject({ rootChannelId: "C0UPDATES", rootTs: "1790000000.000100" });
    store.moveThread("job-a", "U0REQUESTER", T0 + 2);
    // A moved thread starts over with a new root where it now lives.
    expect(store.get("job-a")).toMatchObject({
      rootChannelId: undefined,
      rootTs: undefined,
      channelId: "U0REQUESTER",
      updatedAt: T0 + 2,
    });
  });
});

describe("outbox", () => {
  it("queues a notice once when the same key is enqueued twice", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    store.enqueue("job-a", { kind: "checks_failing", key: "checks_failing" }, T0);
    store.enqueue("job-a", { kind: "checks_failing", key: "checks_failing" }, T0 + 1);
    expect(keys(store.outboxForJob("job-a"))).toEqual(["job-a:root", "job-a:checks_failing"]);
  });

  it("offers only each job's oldest undelivered message when a job has several", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    store.insert(newJob({ id: "job-b" }), T0);
    store.markCreateAttempted("job-a", T0);
    store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0);
    expect(keys(store.pendingOutbox(T0, 10))).toEqual(["job-a:root", "job-b:root"]);
  });

  it("delivers a job's messages in the order they were written when drained", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    store.insert(newJob({ id: "job-b" }), T0);
    store.markCreateAttempted("job-a", T0);
    store.markCreateAttempted("job-b", T0);
    store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0);
    store.apply("job-a", { type: "image_state", state: "available" }, T0);
    const sent = deliverAll(T0);
    expect(sent.filter((k) => k.startsWith("job-a:"))).toEqual([
      "job-a:root",
      "job-a:creating",
      "job-a:pending",
      "job-a:available",
      "job-a:root_update",
    ]);
    expect(sent.filter((k) => k.startsWith("job-b:"))).toEqual(["job-b:root", "job-b:creating"]);
    expect(store.pendingOutbox(T0, 10)).toEqual([]);
  });

  it("respects the limit when more messages are due", () => {
    for (const id of ["a", "b", "c"]) store.insert(newJob({ id }), T0);
    expect(keys(store.pendingOutbox(T0, 2))).toEqual(["a:root", "b:root"]);
  });

  it("shows a message as sending and counts the attempt when sending starts", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    const [root] = store.pendingOutbox(T0, 10);
    store.markSending(root?.id ?? -1);
    expect(store.pendingOutbox(T0, 10)).toEqual([{ ...root, sending: true, attempts: 1 }]);
  });

  it("offers the next message when the current one is delivered", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    store.markCreateAttempted("job-a", T0);
    const [root] = store.pendingOutbox(T0, 10);
    store.markSending(root?.id ?? -1);
    store.markDelivered(root?.id ?? -1, "1790000000.000100", T0 + 1);
    expect(keys(store.pendingOutbox(T0 + 1, 10))).toEqual(["job-a:creating"]);
  });

  it("holds back the message and the job's later ones until the retry time when delivery fails", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    store.insert(newJob({ id: "job-b" }), T0);
    store.markCreateAttempted("job-a", T0);
    const [root] = store.pendingOutbox(T0, 10);
    store.markSending(root?.id ?? -1);
    store.markDeliveryFailed(root?.id ?? -1, "rate limited", T0 + 5_000);
    expect(keys(store.pendingOutbox(T0 + 4_999, 10))).toEqual(["job-b:root"]);
    expect(store.pendingOutbox(T0 + 5_000, 10)).toEqual([
      expect.objectContaining({ jobId: "job-a", key: "root", attempts: 1, sending: false }),
      expect.objectContaining({ jobId: "job-b", key: "root" }),
    ]);
  });

  it("moves on to the next message when one is dropped", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    store.markCreateAttempted("job-a", T0);
    const [root] = store.pendingOutbox(T0, 10);
    store.markDropped(root?.id ?? -1, "channel_not_found", T0);
    expect(keys(store.pendingOutbox(T0, 10))).toEqual(["job-a:creating"]);
  });
});

describe("durability", () => {
  it("still has unfinished jobs and undelivered messages when the file is closed and reopened", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    store.insert(newJob({ id: "job-b" }), T0);
    store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0 + 1);
    store.apply("job-b", { type: "create_refused", reason: "no" }, T0 + 1);
    const [first] = store.pendingOutbox(T0 + 1, 10);
    store.markSending(first?.id ?? -1);
    db.close();

    db = openDatabase(path);
    store = new SqliteJobStore(db);
    expect(store.due(T0 + 1, 10).map((j) => [j.id, j.state, j.imageId])).toEqual([
      ["job-a", "pending", "ami-1"],
    ]);
    expect(store.unfinishedCount()).toBe(1);
    expect(store.pendingOutbox(T0 + 1, 10)).toEqual([
      expect.objectContaining({ jobId: "job-a", key: "root", sending: true }),
      expect.objectContaining({ jobId: "job-b", key: "root", sending: false }),
    ]);
    expect(keys(store.outboxForJob("job-b"))).toEqual([
      "job-b:root",
      "job-b:refused",
      "job-b:requester_note",
      "job-b:root_update",
    ]);
  });

  it("keeps the data and opens cleanly when the same file is opened twice", () => {
    store.insert(newJob({ id: "job-a" }), T0);
    const again = openDatabase(path);
    try {
      const second = new SqliteJobStore(again);
      expect(second.get("job-a")?.state).toBe("queued");
      expect(second.insert(newJob({ id: "job-b" }), T0)).toBe(true);
      expect(store.get("job-b")?.id).toBe("job-b");
    } finally {
      again.close();
    }
  });

  it("creates the database's folder when it does not exist yet", () => {
    const nested = openDatabase(join(dir, "a", "b", "c.db"));
    try {
      expect(new SqliteJobStore(nested).unfinishedCount()).toBe(0);
    } finally {
      nested.close();
    }
  });
});
