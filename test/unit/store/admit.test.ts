/**
 * Admission on a database an earlier SQLite version left (migrations exist only there). Admission itself is
 * in the contract suite (contract/admit.test.ts), which runs against SQLite and Postgres alike.
 */
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import type { AdmissionRules } from "../../../src/domain/ports.js";
import { MIGRATIONS, migrate } from "../../../src/store/database.js";
import { SqliteJobStore } from "../../../src/store/sqlite-job-store.js";
import { CLOCK_START } from "../../fakes/fixed-clock.js";
import { newJob } from "../../fakes/job-fixtures.js";

const T0 = CLOCK_START;
const RULES: AdmissionRules = { jobsPerHour: 3 };

describe("a database from the version before admission rules", () => {
  /** A database as version 1 left it: two unfinished jobs for one instance, and no request hashes. */
  function versionOneDatabase(): Database.Database {
    const db = new Database(":memory:");
    db.exec(MIGRATIONS[0] as string);
    db.pragma("user_version = 1");
    const insert = db.prepare(
      `INSERT INTO jobs (id, idempotency_key, requested_by, origin_channel_id, target_name, role_arn, region,
         instance_id, image_name, no_reboot, tags, channel_id, state, next_check_at, created_at, updated_at)
       VALUES (?, ?, 'U0REQUESTER', 'C0UPDATES', 'prod', 'arn:aws:iam::123456789012:role/ami-bot', 'eu-west-1',
         'i-0123456789abcdef0', ?, 0, '[]', 'C0UPDATES', 'queued', ?, ?, ?)`,
    );
    insert.run("old-1", "view:OLD1", "old one", T0, T0, T0);
    insert.run("old-2", "view:OLD2", "old two", T0 + 1, T0 + 1, T0 + 1);
    return db;
  }

  it("migrates, keeping both unfinished jobs of one instance, and refuses a third", () => {
    const db = versionOneDatabase();
    migrate(db);
    expect(db.pragma("user_version", { simple: true })).toBe(MIGRATIONS.length);
    const migrated = new SqliteJobStore(db);
    expect(migrated.due(T0 + 10, 10).map((j) => j.id)).toEqual(["old-1", "old-2"]);
    const third = newJob({ instanceId: "i-0123456789abcdef0" });
    expect(migrated.admit(third, RULES, T0 + 10)).toMatchObject({
      status: "instance_busy",
      job: { id: "old-1" },
    });
    db.close();
  });

  it("treats a job stored without a hash as the same request when its view is submitted again", () => {
    const db = versionOneDatabase();
    migrate(db);
    const migrated = new SqliteJobStore(db);
    expect(migrated.admit(newJob({ idempotencyKey: "view:OLD1" }), RULES, T0 + 10)).toEqual({
      status: "duplicate",
      sameRequest: true,
    });
    db.close();
  });
});
