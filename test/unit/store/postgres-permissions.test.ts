/**
 * The Postgres user the bot runs as needs CREATE only for the first start: after that, a user that may only
 * read and write the bot's tables starts the store and works (as a least-privilege deployment has it).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPostgresJobStore } from "../../../src/store/postgres-job-store.js";
import { CLOCK_START } from "../../fakes/fixed-clock.js";
import { newJob } from "../../fakes/job-fixtures.js";
import { postgresForTest, type TestDatabase } from "../../support/postgres.js";

describe("the postgres store's permissions", () => {
  let database: TestDatabase;
  let role: string;
  beforeAll(async () => {
    database = await postgresForTest("store_permissions");
    role = `ami_rw_${Math.random().toString(36).slice(2, 8)}`;
    // The first start, as the database's owner: the tables are made.
    await (await openPostgresJobStore(database.url, { owner: "first", leaseMs: 30_000 })).close();
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE ${role} LOGIN;
        REVOKE CREATE ON SCHEMA public FROM PUBLIC;
        GRANT USAGE ON SCHEMA public TO ${role};
        GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO ${role};
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${role};`);
    } finally {
      await admin.end();
    }
  });
  afterAll(async () => {
    await database?.drop();
    const admin = new pg.Client({ connectionString: database.url.replace(/\/[^/]+$/, "/postgres") });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${role}`).finally(() => admin.end());
  });

  it("starts and stores a job as a user without CREATE once the schema is made", async () => {
    const url = new URL(database.url);
    url.username = role;
    const store = await openPostgresJobStore(url.toString(), { owner: "rw", leaseMs: 30_000 });
    try {
      expect(await store.insert(newJob({ id: "job-rw" }), CLOCK_START)).toBe(true);
      expect((await store.due(CLOCK_START, 10)).map((j) => j.id)).toEqual(["job-rw"]);
    } finally {
      await store.close();
    }
  });
});
