import Database from "better-sqlite3";
import { beforeEach, describe, expect, it } from "vitest";
import type { AdmissionRules, NewJob } from "../../../src/domain/ports.js";
import { MIGRATIONS, migrate, openDatabase } from "../../../src/store/database.js";
import { SqliteJobStore } from "../../../src/store/sqlite-job-store.js";
import { CLOCK_START } from "../../fakes/fixed-clock.js";
import { memoryStore, newJob } from "../../fakes/job-fixtures.js";

const T0 = CLOCK_START;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const RULES: AdmissionRules = { jobsPerHour: 3 };

let store: SqliteJobStore;
beforeEach(() => {
  store = memoryStore();
});

let instances = 0;
/** A job for an instance no other job uses, so only the rule under test can refuse it. */
function jobOnFreshInstance(overrides: Partial<NewJob> = {}): NewJob {
  instances++;
  return newJob({ instanceId: `i-${instances.toString(16).padStart(17, "0")}`, ...overrides });
}

describe("admit", () => {
  it("stores the job and its root message as insert does when no rule refuses it", () => {
    const job = newJob({ id: "job-a" });
    expect(store.admit(job, RULES, T0)).toEqual({ status: "accepted" });
    expect(store.get("job-a")).toMatchObject({ state: "queued", createdAt: T0, nextCheckAt: T0 });
    expect(store.outboxForJob("job-a").map((m) => m.key)).toEqual(["root"]);
  });

  describe("a view submitted again", () => {
    it("answers duplicate with the same request and stores nothing when the values are the same", () => {
      store.admit(newJob({ id: "job-a", idempotencyKey: "view:V1", requestHash: "h1" }), RULES, T0);
      const again = newJob({ id: "job-b", idempotencyKey: "view:V1", requestHash: "h1" });
      expect(store.admit(again, RULES, T0 + 5)).toEqual({ status: "duplicate", sameRequest: true });
      expect(store.get("job-b")).toBeUndefined();
      expect(store.outboxForJob("job-a").map((m) => m.key)).toEqual(["root"]);
      expect(store.unfinishedCount()).toBe(1);
    });

    it("answers duplicate with another request when the values differ", () => {
      store.admit(newJob({ idempotencyKey: "view:V1", requestHash: "h1" }), RULES, T0);
      const forged = newJob({ idempotencyKey: "view:V1", requestHash: "h2", imageName: "something else" });
      expect(store.admit(forged, RULES, T0 + 5)).toEqual({ status: "duplicate", sameRequest: false });
      expect(store.unfinishedCount()).toBe(1);
    });

    it("compares with the hash insert stored when the first job was inserted directly", () => {
      store.insert(newJob({ idempotencyKey: "view:V1", requestHash: "h1" }), T0);
      expect(store.admit(newJob({ idempotencyKey: "view:V1", requestHash: "h2" }), RULES, T0)).toEqual({
        status: "duplicate",
        sameRequest: false,
      });
    });

    it("answers duplicate rather than busy when the repeated view's own job holds the instance", () => {
      const first = newJob({ idempotencyKey: "view:V1", requestHash: "h1" });
      store.admit(first, RULES, T0);
      expect(store.admit({ ...first, id: "job-other" }, RULES, T0 + 1)).toEqual({
        status: "duplicate",
        sameRequest: true,
      });
    });
  });

  describe("one unfinished job per instance", () => {
    it("answers instance_busy with the unfinished job and stores nothing when the instance has a queued job", () => {
      store.admit(newJob({ id: "job-a", instanceId: "i-0aaaaaaaaaaaaaaaa" }), RULES, T0);
      const second = newJob({ id: "job-b", instanceId: "i-0aaaaaaaaaaaaaaaa", requestedBy: "U0SOMEONE" });
      const answer = store.admit(second, RULES, T0 + 5);
      expect(answer).toEqual({ status: "instance_busy", job: store.get("job-a") });
      expect(store.get("job-b")).toBeUndefined();
      expect(store.outboxForJob("job-b")).toEqual([]);
    });

    it("answers instance_busy when the instance's image is still pending", () => {
      store.admit(newJob({ id: "job-a", instanceId: "i-0aaaaaaaaaaaaaaaa" }), RULES, T0);
      store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0 + 1);
      const answer = store.admit(newJob({ instanceId: "i-0aaaaaaaaaaaaaaaa" }), RULES, T0 + 5);
      expect(answer).toMatchObject({ status: "instance_busy", job: { id: "job-a", state: "pending" } });
    });

    it.each([
      ["refused", { type: "create_refused", reason: "no" }],
      ["timed out", { type: "gave_up" }],
    ] as const)("admits the instance again when its job has %s", (_, event) => {
      store.admit(newJob({ id: "job-a", instanceId: "i-0aaaaaaaaaaaaaaaa" }), RULES, T0);
      expect(store.admit(newJob({ instanceId: "i-0aaaaaaaaaaaaaaaa" }), RULES, T0 + 1).status).toBe(
        "instance_busy",
      );
      store.apply("job-a", event, T0 + 2);
      expect(store.admit(newJob({ instanceId: "i-0aaaaaaaaaaaaaaaa" }), RULES, T0 + 3)).toEqual({
        status: "accepted",
      });
    });

    it("admits the instance again when its image became available", () => {
      store.admit(newJob({ id: "job-a", instanceId: "i-0aaaaaaaaaaaaaaaa" }), RULES, T0);
      store.apply("job-a", { type: "image_created", imageId: "ami-1" }, T0 + 1);
      store.apply("job-a", { type: "image_state", state: "available" }, T0 + 2);
      expect(store.admit(newJob({ instanceId: "i-0aaaaaaaaaaaaaaaa" }), RULES, T0 + 3).status).toBe(
        "accepted",
      );
    });

    it("admits the same instance id in another region or behind another role", () => {
      const base = { instanceId: "i-0aaaaaaaaaaaaaaaa", region: "eu-west-1" };
      store.admit(newJob({ ...base, roleArn: "arn:aws:iam::111111111111:role/ami-bot" }), RULES, T0);
      const otherRegion = newJob({
        ...base,
        region: "us-east-1",
        roleArn: "arn:aws:iam::111111111111:role/ami-bot",
      });
      const otherRole = newJob({ ...base, roleArn: "arn:aws:iam::222222222222:role/ami-bot" });
      expect(store.admit(otherRegion, RULES, T0 + 1).status).toBe("accepted");
      expect(store.admit(otherRole, RULES, T0 + 2).status).toBe("accepted");
    });
  });

  describe("the hourly limit", () => {
    /** Three jobs by the requester in prod, ten minutes apart from T0. */
    function fillTheHour(): void {
      for (let i = 0; i < 3; i++)
        expect(store.admit(jobOnFreshInstance(), RULES, T0 + i * 10 * MINUTE).status).toBe("accepted");
    }

    it("answers rate_limited with when the oldest job leaves the window when the limit is reached", () => {
      fillTheHour();
      const fourth = jobOnFreshInstance({ id: "job-fourth" });
      expect(store.admit(fourth, RULES, T0 + 30 * MINUTE)).toEqual({
        status: "rate_limited",
        retryAt: T0 + HOUR,
        limit: 3,
      });
      expect(store.get("job-fourth")).toBeUndefined();
    });

    it("admits again once the oldest job has left the window, and counts from the next oldest", () => {
      fillTheHour();
      expect(store.admit(jobOnFreshInstance(), RULES, T0 + HOUR - 1).status).toBe("rate_limited");
      expect(store.admit(jobOnFreshInstance(), RULES, T0 + HOUR).status).toBe("accepted");
      // Now T0+10m, T0+20m and T0+60m are in the window.
      expect(store.admit(jobOnFreshInstance(), RULES, T0 + HOUR + 1)).toEqual({
        status: "rate_limited",
        retryAt: T0 + 10 * MINUTE + HOUR,
        limit: 3,
      });
    });

    it("counts jobs that already finished, since each one was started", () => {
      const first = jobOnFreshInstance({ id: "job-done" });
      store.admit(first, RULES, T0);
      store.apply("job-done", { type: "create_refused", reason: "no" }, T0 + 1);
      store.admit(jobOnFreshInstance(), RULES, T0 + 2);
      store.admit(jobOnFreshInstance(), RULES, T0 + 3);
      expect(store.admit(jobOnFreshInstance(), RULES, T0 + 4).status).toBe("rate_limited");
    });

    it("counts each person in each target apart", () => {
      fillTheHour();
      const now = T0 + 30 * MINUTE;
      expect(store.admit(jobOnFreshInstance({ requestedBy: "U0OTHER" }), RULES, now).status).toBe("accepted");
      expect(store.admit(jobOnFreshInstance({ targetName: "staging" }), RULES, now).status).toBe("accepted");
    });

    it("applies the limit it is given", () => {
      fillTheHour();
      expect(store.admit(jobOnFreshInstance(), { jobsPerHour: 4 }, T0 + 30 * MINUTE).status).toBe("accepted");
      expect(store.admit(jobOnFreshInstance(), { jobsPerHour: 4 }, T0 + 31 * MINUTE)).toMatchObject({
        status: "rate_limited",
        limit: 4,
      });
    });
  });

  it("stores neither the job nor its root message when queuing the root fails", () => {
    const db = openDatabase(":memory:");
    const local = new SqliteJobStore(db);
    db.exec("CREATE TRIGGER refuse_root BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    expect(() => local.admit(newJob({ id: "job-a" }), RULES, T0)).toThrow(/disk full/);
    expect(local.get("job-a")).toBeUndefined();
    db.close();
  });
});

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
