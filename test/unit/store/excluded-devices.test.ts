/**
 * Jobs stored before SQLite had the excluded-devices column. Storing the devices, and keeping them across a
 * restart, is in the contract suite (contract/), which runs against SQLite and Postgres alike.
 */
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { MIGRATIONS, migrate } from "../../../src/store/database.js";
import { SqliteJobStore } from "../../../src/store/sqlite-job-store.js";
import { CLOCK_START } from "../../fakes/fixed-clock.js";

const T0 = CLOCK_START;

describe("excluded devices in the job store", () => {
  it("gives jobs stored before the column existed no devices to leave out", () => {
    const added = MIGRATIONS.findIndex((m) => m.includes("excluded_devices"));
    expect(added).toBeGreaterThan(0);
    const db = new Database(":memory:");
    for (const m of MIGRATIONS.slice(0, added)) db.exec(m);
    db.pragma(`user_version = ${added}`);
    db.prepare(
      `INSERT INTO jobs (id, idempotency_key, requested_by, origin_channel_id, target_name, role_arn, region,
         instance_id, image_name, no_reboot, tags, channel_id, state, next_check_at, created_at, updated_at)
       VALUES ('old-1', 'view:OLD1', 'U0REQUESTER', 'C0UPDATES', 'prod', 'arn:aws:iam::123456789012:role/ami-bot',
         'eu-west-1', 'i-0123456789abcdef0', 'old one', 1, '[]', 'C0UPDATES', 'queued', ?, ?, ?)`,
    ).run(T0, T0, T0);
    migrate(db);
    expect(new SqliteJobStore(db).get("old-1")?.excludedDevices).toEqual([]);
    db.close();
  });
});
