/** The volumes a job leaves out are stored with it, so a restart still sends them to CreateImage. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { MIGRATIONS, migrate, openDatabase } from "../../../src/store/database.js";
import { SqliteJobStore } from "../../../src/store/sqlite-job-store.js";
import { CLOCK_START } from "../../fakes/fixed-clock.js";
import { newJob } from "../../fakes/job-fixtures.js";

const T0 = CLOCK_START;

describe("excluded devices in the job store", () => {
  it("keeps the devices to leave out across a reopen of the database file", () => {
    const dir = mkdtempSync(join(tmpdir(), "ami-bot-excluded-"));
    const path = join(dir, "bot.db");
    const first = openDatabase(path);
    const job = newJob({ excludedDevices: ["/dev/sdf", "/dev/sdg"] });
    expect(new SqliteJobStore(first).admit(job, { jobsPerHour: 10 }, T0)).toEqual({ status: "accepted" });
    first.close();

    const reopened = openDatabase(path);
    const store = new SqliteJobStore(reopened);
    expect(store.get(job.id)?.excludedDevices).toEqual(["/dev/sdf", "/dev/sdg"]);
    expect(store.due(T0, 10).map((j) => [j.id, j.excludedDevices])).toEqual([
      [job.id, ["/dev/sdf", "/dev/sdg"]],
    ]);
    reopened.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("stores no devices for a job that images the whole instance", () => {
    const store = new SqliteJobStore(openDatabase(":memory:"));
    const job = newJob();
    store.insert(job, T0);
    expect(store.get(job.id)?.excludedDevices).toEqual([]);
  });

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
