/**
 * The SQLite migration that added approvals and cancel (a rebuilt table). Approvals and cancel themselves are
 * in the contract suite (contract/approvals.test.ts), which runs against SQLite and Postgres alike.
 */
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { MIGRATIONS, migrate, UNFINISHED } from "../../../src/store/database.js";
import { SqliteJobStore } from "../../../src/store/sqlite-job-store.js";
import { CLOCK_START } from "../../fakes/fixed-clock.js";

const T0 = CLOCK_START;

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
      "jobs_unfinished_image",
      "jobs_unfinished_instance",
    ]);
    // The due query still uses its partial index after the rebuild.
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE state IN ${UNFINISHED}
         AND next_check_at <= 1 ORDER BY next_check_at, created_at LIMIT 10`,
      )
      .all() as { detail: string }[];
    expect(plan.map((p) => p.detail).join(" ")).toContain("jobs_due");
    db.close();
  });
});
