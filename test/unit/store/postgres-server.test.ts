import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresForTest, type TestDatabase } from "../../support/postgres.js";

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe("the test PostgreSQL server", () => {
  let first: TestDatabase;
  let second: TestDatabase;

  beforeAll(async () => {
    first = await postgresForTest("server_test");
    second = await postgresForTest("server_test");
  });

  afterAll(async () => {
    await first?.drop();
    await second?.drop();
  });

  it("answers queries when a test asks for a database", async () => {
    const [row] = await query<{ version: string }>(first.url, "SELECT version()");
    expect(row?.version).toMatch(/^PostgreSQL \d+/);
  });

  it("keeps tables and rows when they are written", async () => {
    await query(first.url, "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)");
    await query(first.url, "INSERT INTO notes (body) VALUES ('one'), ('two')");
    const rows = await query<{ body: string }>(first.url, "SELECT body FROM notes ORDER BY id");
    expect(rows.map((row) => row.body)).toEqual(["one", "two"]);
  });

  it("isolates two databases when each comes from its own call", async () => {
    expect(second.url).not.toBe(first.url);
    for (const [database, body] of [
      [first, "here"],
      [second, "elsewhere"],
    ] as const) {
      await query(database.url, "CREATE TABLE places (body text NOT NULL)");
      await query(database.url, `INSERT INTO places (body) VALUES ('${body}')`);
    }
    expect(await query(first.url, "SELECT body FROM places")).toEqual([{ body: "here" }]);
    expect(await query(second.url, "SELECT body FROM places")).toEqual([{ body: "elsewhere" }]);
  });

  it("ends open connections when a database is dropped", async () => {
    const extra = await postgresForTest("server_test");
    const client = new pg.Client({ connectionString: extra.url });
    client.on("error", () => {});
    await client.connect();
    await extra.drop();
    await expect(client.query("SELECT 1")).rejects.toThrow();
    await client.end().catch(() => {});
    await expect(query(extra.url, "SELECT 1")).rejects.toThrow(/does not exist/);
  });
});
