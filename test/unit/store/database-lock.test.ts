import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase } from "../../../src/store/database.js";
import { type DatabaseLock, lockDatabase, lockPathOf } from "../../../src/store/database-lock.js";
import { SqliteJobStore } from "../../../src/store/sqlite-job-store.js";

let dir: string;
let path: string;
const held: DatabaseLock[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ami-bot-lock-"));
  path = join(dir, "data", "bot.db");
});

afterEach(() => {
  for (const lock of held.splice(0)) lock.release();
  rmSync(dir, { recursive: true, force: true });
});

function take(p: string = path): DatabaseLock | undefined {
  const lock = lockDatabase(p);
  if (lock) held.push(lock);
  return lock;
}

/** Whether a separate Node.js process can take the lock (POSIX locks are per process). */
function otherProcessCanLock(p: string): boolean {
  const script = `
    const Database = require("better-sqlite3");
    const db = new Database(process.argv[1], { timeout: 0 });
    try { db.pragma("locking_mode = EXCLUSIVE"); db.exec("BEGIN EXCLUSIVE"); process.exit(0); }
    catch (e) { process.exit(e.code && e.code.startsWith("SQLITE_BUSY") ? 3 : 1); }`;
  const run = spawnSync(process.execPath, ["-e", script, lockPathOf(p)], { encoding: "utf8" });
  if (run.status !== 0 && run.status !== 3) throw new Error(`the probe failed: ${run.stderr}`);
  return run.status === 0;
}

describe("lockDatabase", () => {
  it("refuses a second holder in this process and in another when the database is taken", () => {
    expect(take()).toBeDefined();
    expect(take()).toBeUndefined();
    expect(otherProcessCanLock(path)).toBe(false);
  });

  it("lets the database be taken again when the lock is released", () => {
    const first = take();
    first?.release();
    expect(otherProcessCanLock(path)).toBe(true);
    expect(take()).toBeDefined();
  });

  it("does nothing when released twice", () => {
    const first = take();
    first?.release();
    const second = take();
    first?.release();
    expect(second).toBeDefined();
    expect(otherProcessCanLock(path)).toBe(false);
  });

  it("keeps databases apart when two sit in one folder", () => {
    expect(take(join(dir, "a.db"))).toBeDefined();
    expect(take(join(dir, "b.db"))).toBeDefined();
  });

  it("leaves the database itself open to readers and writers when it is taken", () => {
    take();
    const db = openDatabase(path);
    try {
      expect(new SqliteJobStore(db).unfinishedCount()).toBe(0);
    } finally {
      db.close();
    }
  });

  it("makes the database's folder, and leaves only the lock file beside it, when it is taken", () => {
    expect(take()?.path).toBe(join(dir, "data", "bot.db.lock"));
    expect(readdirSync(join(dir, "data"))).toEqual(["bot.db.lock"]);
  });

  it("always succeeds for an in-memory database, which no other process can reach", () => {
    expect(take(":memory:")).toBeDefined();
    expect(take(":memory:")).toBeDefined();
    expect(existsSync(":memory:.lock")).toBe(false);
  });

  it("throws when the lock file cannot be made", () => {
    const file = join(dir, "not-a-folder");
    writeFileSync(file, "");
    expect(() => lockDatabase(join(file, "bot.db"))).toThrow();
  });
});
