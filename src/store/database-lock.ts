/**
 * One bot per database. Two processes on one file would each claim the same due jobs and call CreateImage
 * twice, and the admission rules (one unfinished job per instance) hold only within one writer.
 *
 * The lock is an exclusive SQLite transaction held on a sibling file, `<db>.lock`, for the life of the
 * process. SQLite takes it with POSIX advisory locks, which the kernel drops when the process ends however
 * it ends (SIGKILL included), so a crash never leaves a stale lock behind as a pid file would. SQLite also
 * tracks its locks within a process, so a second bot started in the same process is refused too.
 * The database itself is not locked: tools and tests may still read it while the bot runs.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

export interface DatabaseLock {
  /** The file that holds the lock. */
  readonly path: string;
  /** Lets another bot take the database; calling it again does nothing. */
  release(): void;
}

/** The lock file of a database: beside it, so every process pointed at the database looks at the same one. */
export function lockPathOf(databasePath: string): string {
  return `${databasePath}.lock`;
}

/**
 * Takes the database for this bot, or returns undefined when another bot holds it. Throws when the lock
 * file cannot be made or opened at all (a folder that is not writable, say).
 *
 * Nothing else in the process may open the lock file: closing any descriptor of a file drops the process's
 * POSIX locks on it (SQLite guards against this only for its own connections).
 */
export function lockDatabase(databasePath: string): DatabaseLock | undefined {
  // An in-memory database belongs to its connection: no other process can reach it.
  if (databasePath === ":memory:") return { path: databasePath, release: () => {} };
  mkdirSync(dirname(databasePath), { recursive: true });
  const path = lockPathOf(databasePath);
  // timeout 0: a held lock is an answer, not something to wait for.
  const conn = new Database(path, { timeout: 0 });
  try {
    // The journal stays in memory: no file beside the lock, nothing to roll back after a SIGKILL.
    conn.pragma("journal_mode = MEMORY");
    conn.pragma("locking_mode = EXCLUSIVE");
    conn.exec("BEGIN EXCLUSIVE");
  } catch (error) {
    conn.close();
    if (isBusy(error)) return undefined;
    throw error;
  }
  return {
    path,
    release() {
      // Closing the connection ends the transaction, and with it the lock.
      if (conn.open) conn.close();
    },
  };
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}
