/**
 * What only the SQLite store does: it lives in a file of its own. Its behaviour as a JobStore is in the
 * contract suite (contract/), which runs against SQLite and Postgres alike.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase } from "../../../src/store/database.js";
import { SqliteJobStore } from "../../../src/store/sqlite-job-store.js";

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ami-bot-store-"));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("the SQLite database file", () => {
  it("creates the database's folder when it does not exist yet", () => {
    const nested = openDatabase(join(dir, "a", "b", "c.db"));
    try {
      expect(new SqliteJobStore(nested).unfinishedCount()).toBe(0);
    } finally {
      nested.close();
    }
  });
});
