/** Approvals and cancel in the job store: waiting jobs, decisions made once, and the rebuilt table. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { MIGRATIONS, migrate, openDatabase } from "../../../src/store/database.js";
import { SqliteJobStore } from "../../../src/store/sqlite-job-store.js";
import { CLOCK_START } from "../../fakes/fixed-clock.js";
import { newJob, REQUESTER } from "../../fakes/job-fixtures.js";

const T0 = CLOCK_START;
const HOUR = 3_600_000;
const APPROVER = "U0APPROVER";

function storeWithWaitingJob(overrides: Parameters<typeof newJob>[0] = {}) {
  const store = new SqliteJobStore(openDatabase(":memory:"));
  const job = newJob({ approvalExpiresAt: T0 + 4 * HOUR, approverDms: [APPROVER, "U0OTHER"], ...overrides });
  expect(store.admit(job, { jobsPerHour: 10 }, T0)).toEqual({ status: "accepted" });
  return { store, job };
}

describe("a job for a target with approvals", () => {
  it("waits for approval, due only when its wait runs out, with the approvers' notices queued", () => {
    const { store, job } = storeWithWaitingJob();
    const stored = store.get(job.id);
    expect(stored).toMatchObject({ state: "awaiting_approval", approvalExpiresAt: T0 + 4 * HOUR });
    expect(store.due(T0 + HOUR, 10)).toEqual([]);
    expect(store.due(T0 + 4 * HOUR, 10).map((j) => j.id)).toEqual([job.id]);
    expect(store.outboxForJob(job.id).map((m) => m.key)).toEqual([
      "root",
      "approval_request",
      `approver_dm:${APPROVER}`,
      "approver_dm:U0OTHER",
    ]);
    expect(store.unfinishedCount()).toBe(1);
  });

  it("holds its instance: a second request for it is refused while it waits", () => {
    const { store, job } = storeWithWaitingJob();
    const again = newJob({ instanceId: job.instanceId });
    expect(store.admit(again, { jobsPerHour: 10 }, T0 + 1)).toMatchObject({ status: "instance_busy" });
  });

  it("is listed for its target's approvers, oldest first", () => {
    const { store, job } = storeWithWaitingJob();
    const later = newJob({ instanceId: "i-0fedcba9876543210", approvalExpiresAt: T0 + 5 * HOUR });
    store.admit(later, { jobsPerHour: 10 }, T0 + 1000);
    expect(store.awaitingApproval([job.targetName], 20).map((j) => j.id)).toEqual([job.id, later.id]);
    expect(store.awaitingApproval(["another-target"], 20)).toEqual([]);
    expect(store.awaitingApproval([], 20)).toEqual([]);
  });

  it("is approved once: the approval is stored with who and when, and the job is due at once", () => {
    const { store, job } = storeWithWaitingJob();
    const first = store.decide(job.id, { type: "approved", by: APPROVER }, T0 + 60_000);
    expect(first?.applied).toBe(true);
    expect(first?.job).toMatchObject({
      state: "queued",
      decision: "approved",
      decidedBy: APPROVER,
      decidedAt: T0 + 60_000,
    });
    expect(store.due(T0 + 60_000, 10).map((j) => j.id)).toEqual([job.id]);
    const second = store.decide(job.id, { type: "approved", by: "U0OTHER" }, T0 + 61_000);
    expect(second).toMatchObject({ applied: false, job: { decidedBy: APPROVER } });
    // A cancel after the approval still stops the job before anything is asked of AWS.
    const cancel = store.decide(job.id, { type: "cancel_requested", by: REQUESTER }, T0 + 61_000);
    expect(cancel?.applied).toBe(true);
    expect(cancel?.job.state).toBe("cancelled");
  });

  it("cannot be approved by its requester", () => {
    const { store, job } = storeWithWaitingJob();
    expect(store.decide(job.id, { type: "approved", by: REQUESTER }, T0)).toMatchObject({
      applied: false,
      job: { state: "awaiting_approval", decidedBy: undefined },
    });
  });

  it("keeps everything across a reopen (a restart while it waits)", () => {
    const dir = mkdtempSync(join(tmpdir(), "ami-bot-approvals-"));
    const path = join(dir, "bot.db");
    const db = openDatabase(path);
    const job = newJob({ approvalExpiresAt: T0 + HOUR });
    new SqliteJobStore(db).admit(job, { jobsPerHour: 10 }, T0);
    db.close();
    const reopened = new SqliteJobStore(openDatabase(path));
    expect(reopened.get(job.id)?.state).toBe("awaiting_approval");
    expect(reopened.decide(job.id, { type: "approved", by: APPROVER }, T0 + 1)?.applied).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("cancel in the store", () => {
  it("refuses to mark CreateImage attempted once the job was cancelled", () => {
    const store = new SqliteJobStore(openDatabase(":memory:"));
    const job = newJob();
    store.insert(job, T0);
    store.decide(job.id, { type: "cancel_requested", by: REQUESTER }, T0 + 1);
    expect(store.markCreateAttempted(job.id, T0 + 2)).toBe(false);
    expect(store.get(job.id)?.createAttemptedAt).toBeUndefined();
    expect(store.outboxForJob(job.id).map((m) => m.key)).not.toContain("creating");
  });

  it("marks a deregister attempted only while cancelling, and only the first time", () => {
    const store = new SqliteJobStore(openDatabase(":memory:"));
    const job = newJob();
    store.insert(job, T0);
    expect(store.markDeregisterAttempted(job.id, T0)).toBe(false);
    store.markCreateAttempted(job.id, T0);
    store.apply(job.id, { type: "image_created", imageId: "ami-0abc" }, T0 + 1);
    const cancelling = store.decide(job.id, { type: "cancel_requested", by: REQUESTER }, T0 + 2);
    expect(cancelling?.job).toMatchObject({
      state: "cancelling",
      cancelledBy: REQUESTER,
      nextCheckAt: T0 + 2,
    });
    expect(store.markDeregisterAttempted(job.id, T0 + 3)).toBe(true);
    expect(store.markDeregisterAttempted(job.id, T0 + 4)).toBe(true);
    expect(store.get(job.id)?.deregisterAttemptedAt).toBe(T0 + 3);
  });
});

describe("the migration that adds approvals and cancel", () => {
  it("rebuilds the jobs table with its rows, outbox links and indexes intact", () => {
    const before = MIGRATIONS.findIndex((m) => m.includes("awaiting_approval"));
    expect(before).toBeGreaterThan(0);
    const db = new Database(":memory:");
    db.pragma("foreign_keys = ON");
    for (const m of MIGRATIONS.slice(0, before)) db.exec(m);
    db.pragma(`user_version = ${before}`);
    db.prepare(
      `INSERT INTO jobs (id, idempotency_key, requested_by, origin_channel_id, target_name, role_arn, region,
         instance_id, image_name, no_reboot, tags, channel_id, state, next_check_at, created_at, updated_at,
         excluded_devices)
       VALUES ('old-1', 'view:OLD1', 'U0REQUESTER', 'C0UPDATES', 'prod', 'arn:aws:iam::123456789012:role/ami-bot',
         'eu-west-1', 'i-0123456789abcdef0', 'old one', 1, '[]', 'C0UPDATES', 'pending', ?, ?, ?, '["/dev/sdf"]')`,
    ).run(T0, T0, T0);
    db.prepare(
      "INSERT INTO outbox (job_id, kind, key, next_attempt_at, created_at) VALUES ('old-1', 'root', 'root', ?, ?)",
    ).run(T0, T0);
    migrate(db);
    expect(db.pragma("user_version", { simple: true })).toBe(MIGRATIONS.length);
    expect(db.pragma("foreign_keys", { simple: true })).toBe(1);
    const store = new SqliteJobStore(db);
    expect(store.get("old-1")).toMatchObject({
      state: "pending",
      excludedDevices: ["/dev/sdf"],
      approvalExpiresAt: undefined,
      decision: undefined,
    });
    expect(store.outboxForJob("old-1").map((m) => m.key)).toEqual(["root"]);
    const indexes = (
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'index'").all() as { name: string }[]
    )
      .map((r) => r.name)
      .filter((n) => n.startsWith("jobs_"));
    expect(indexes.sort()).toEqual([
      "jobs_awaiting_approval",
      "jobs_due",
      "jobs_requester_recent",
      "jobs_unfinished_instance",
    ]);
    // The due query still uses its partial index after the rebuild.
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE state IN ('awaiting_approval','queued','pending','cancelling')
         AND next_check_at <= 1 ORDER BY next_check_at, created_at LIMIT 10`,
      )
      .all() as { detail: string }[];
    expect(plan.map((p) => p.detail).join(" ")).toContain("jobs_due");
    db.close();
  });
});
