import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

export type Db = Database.Database;

import { BUSY, UNFINISHED } from "./job-rows.js";

export { UNFINISHED };

/**
 * Each migration runs once, in order, inside a transaction; the applied count is PRAGMA user_version.
 * Exported so tests can build a database as an earlier version left it.
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE jobs (
     id TEXT PRIMARY KEY,
     idempotency_key TEXT NOT NULL UNIQUE,
     requested_by TEXT NOT NULL,
     origin_channel_id TEXT NOT NULL,
     target_name TEXT NOT NULL,
     role_arn TEXT NOT NULL,
     region TEXT NOT NULL,
     instance_id TEXT NOT NULL,
     instance_name TEXT,
     image_name TEXT NOT NULL,
     description TEXT,
     no_reboot INTEGER NOT NULL,
     tags TEXT NOT NULL,
     channel_id TEXT NOT NULL,
     root_channel_id TEXT,
     root_ts TEXT,
     state TEXT NOT NULL CHECK (state IN ('queued','pending','available','failed','refused','timed_out')),
     image_id TEXT,
     create_attempted_at INTEGER,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_error TEXT,
     final_reason TEXT,
     progress INTEGER NOT NULL DEFAULT 0,
     slow_notified INTEGER NOT NULL DEFAULT 0,
     next_check_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     finished_at INTEGER
   );
   CREATE INDEX jobs_due ON jobs (next_check_at) WHERE state IN ('queued','pending');
   CREATE TABLE outbox (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     job_id TEXT NOT NULL REFERENCES jobs(id),
     kind TEXT NOT NULL,
     key TEXT NOT NULL,
     state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued','sending','delivered','dropped')),
     ts TEXT,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_error TEXT,
     next_attempt_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     delivered_at INTEGER,
     UNIQUE (job_id, key)
   );
   CREATE INDEX outbox_undelivered ON outbox (job_id, id) WHERE state IN ('queued','sending');`,
  // Not UNIQUE on the instance: a database from an earlier version may already hold two unfinished jobs
  // for one instance, and admission (one transaction, one process per database) enforces the rule instead.
  `ALTER TABLE jobs ADD COLUMN request_hash TEXT;
   CREATE INDEX jobs_unfinished_instance ON jobs (role_arn, region, instance_id)
     WHERE state IN ('queued','pending');
   CREATE INDEX jobs_requester_recent ON jobs (requested_by, target_name, created_at);`,
  // Volumes left out of the image (a JSON array of device names); jobs from before image every volume.
  `ALTER TABLE jobs ADD COLUMN excluded_devices TEXT NOT NULL DEFAULT '[]';`,
  // Approvals and cancel: new states, so the table is rebuilt (SQLite cannot change a CHECK in place), as
  // SQLite's own guide to ALTER TABLE describes; migrate() turns foreign keys off around it.
  `CREATE TABLE jobs_v4 (
     id TEXT PRIMARY KEY,
     idempotency_key TEXT NOT NULL UNIQUE,
     requested_by TEXT NOT NULL,
     origin_channel_id TEXT NOT NULL,
     target_name TEXT NOT NULL,
     role_arn TEXT NOT NULL,
     region TEXT NOT NULL,
     instance_id TEXT NOT NULL,
     instance_name TEXT,
     image_name TEXT NOT NULL,
     description TEXT,
     no_reboot INTEGER NOT NULL,
     tags TEXT NOT NULL,
     channel_id TEXT NOT NULL,
     root_channel_id TEXT,
     root_ts TEXT,
     state TEXT NOT NULL CHECK (state IN ('awaiting_approval','queued','pending','cancelling','available',
       'failed','refused','timed_out','denied','expired','cancelled')),
     image_id TEXT,
     create_attempted_at INTEGER,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_error TEXT,
     final_reason TEXT,
     progress INTEGER NOT NULL DEFAULT 0,
     slow_notified INTEGER NOT NULL DEFAULT 0,
     next_check_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     finished_at INTEGER,
     request_hash TEXT,
     excluded_devices TEXT NOT NULL DEFAULT '[]',
     approval_expires_at INTEGER,
     decision TEXT CHECK (decision IN ('approved','denied')),
     decided_by TEXT,
     decided_at INTEGER,
     cancelled_by TEXT,
     cancelled_at INTEGER,
     deregister_attempted_at INTEGER
   );
   INSERT INTO jobs_v4 (id, idempotency_key, requested_by, origin_channel_id, target_name, role_arn, region,
     instance_id, instance_name, image_name, description, no_reboot, tags, channel_id, root_channel_id, root_ts,
     state, image_id, create_attempted_at, attempts, last_error, final_reason, progress, slow_notified,
     next_check_at, created_at, updated_at, finished_at, request_hash, excluded_devices)
   SELECT id, idempotency_key, requested_by, origin_channel_id, target_name, role_arn, region,
     instance_id, instance_name, image_name, description, no_reboot, tags, channel_id, root_channel_id, root_ts,
     state, image_id, create_attempted_at, attempts, last_error, final_reason, progress, slow_notified,
     next_check_at, created_at, updated_at, finished_at, request_hash, excluded_devices FROM jobs;
   DROP TABLE jobs;
   ALTER TABLE jobs_v4 RENAME TO jobs;
   CREATE INDEX jobs_due ON jobs (next_check_at) WHERE state IN ${UNFINISHED};
   CREATE INDEX jobs_unfinished_instance ON jobs (role_arn, region, instance_id) WHERE state IN ${UNFINISHED};
   CREATE INDEX jobs_requester_recent ON jobs (requested_by, target_name, created_at);
   CREATE INDEX jobs_awaiting_approval ON jobs (target_name, created_at) WHERE state = 'awaiting_approval';`,
  // Push mode finds an image's job by its id (an EventBridge event names only the image).
  `CREATE INDEX jobs_unfinished_image ON jobs (image_id) WHERE state IN ${UNFINISHED};`,
  // Copies and sharing after the image: a new unfinished state (finishing), which does not hold the instance,
  // and the steps' progress. The table is rebuilt for the CHECK, as for approvals; the partial indexes are
  // made with the new predicates (they serve only queries with the same text).
  `CREATE TABLE jobs_v6 (
     id TEXT PRIMARY KEY,
     idempotency_key TEXT NOT NULL UNIQUE,
     requested_by TEXT NOT NULL,
     origin_channel_id TEXT NOT NULL,
     target_name TEXT NOT NULL,
     role_arn TEXT NOT NULL,
     region TEXT NOT NULL,
     instance_id TEXT NOT NULL,
     instance_name TEXT,
     image_name TEXT NOT NULL,
     description TEXT,
     no_reboot INTEGER NOT NULL,
     tags TEXT NOT NULL,
     channel_id TEXT NOT NULL,
     root_channel_id TEXT,
     root_ts TEXT,
     state TEXT NOT NULL CHECK (state IN ('awaiting_approval','queued','pending','cancelling','finishing',
       'available','failed','refused','timed_out','denied','expired','cancelled')),
     image_id TEXT,
     create_attempted_at INTEGER,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_error TEXT,
     final_reason TEXT,
     progress INTEGER NOT NULL DEFAULT 0,
     slow_notified INTEGER NOT NULL DEFAULT 0,
     next_check_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     finished_at INTEGER,
     request_hash TEXT,
     excluded_devices TEXT NOT NULL DEFAULT '[]',
     approval_expires_at INTEGER,
     decision TEXT CHECK (decision IN ('approved','denied')),
     decided_by TEXT,
     decided_at INTEGER,
     cancelled_by TEXT,
     cancelled_at INTEGER,
     deregister_attempted_at INTEGER,
     after_steps TEXT
   );
   INSERT INTO jobs_v6 (id, idempotency_key, requested_by, origin_channel_id, target_name, role_arn, region,
     instance_id, instance_name, image_name, description, no_reboot, tags, channel_id, root_channel_id, root_ts,
     state, image_id, create_attempted_at, attempts, last_error, final_reason, progress, slow_notified,
     next_check_at, created_at, updated_at, finished_at, request_hash, excluded_devices, approval_expires_at,
     decision, decided_by, decided_at, cancelled_by, cancelled_at, deregister_attempted_at)
   SELECT id, idempotency_key, requested_by, origin_channel_id, target_name, role_arn, region,
     instance_id, instance_name, image_name, description, no_reboot, tags, channel_id, root_channel_id, root_ts,
     state, image_id, create_attempted_at, attempts, last_error, final_reason, progress, slow_notified,
     next_check_at, created_at, updated_at, finished_at, request_hash, excluded_devices, approval_expires_at,
     decision, decided_by, decided_at, cancelled_by, cancelled_at, deregister_attempted_at FROM jobs;
   DROP TABLE jobs;
   ALTER TABLE jobs_v6 RENAME TO jobs;
   CREATE INDEX jobs_due ON jobs (next_check_at) WHERE state IN ${UNFINISHED};
   CREATE INDEX jobs_unfinished_instance ON jobs (role_arn, region, instance_id) WHERE state IN ${BUSY};
   CREATE INDEX jobs_requester_recent ON jobs (requested_by, target_name, created_at);
   CREATE INDEX jobs_awaiting_approval ON jobs (target_name, created_at) WHERE state = 'awaiting_approval';
   CREATE INDEX jobs_unfinished_image ON jobs (image_id) WHERE state IN ${UNFINISHED};`,
  // The keep rule's daily sweep: when each target was last swept (claimSweep).
  `CREATE TABLE keep_sweeps (
     target_name TEXT PRIMARY KEY,
     last_run_at INTEGER NOT NULL
   );`,
];

/** Opens (creating if needed) the database with WAL and a busy timeout, and brings its schema up to date. */
export function openDatabase(path: string): Db {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 5000");
  db.pragma("foreign_keys = ON");
  // NORMAL is durable across process crashes in WAL mode; only an OS crash may lose the last commits.
  db.pragma("synchronous = NORMAL");
  migrate(db);
  return db;
}

export function migrate(db: Db): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current >= MIGRATIONS.length) return;
  // A table rebuilt under the outbox's foreign key needs the checks off (it cannot change inside a
  // transaction); each migration checks the keys itself before it commits.
  const enforced = db.pragma("foreign_keys", { simple: true }) === 1;
  db.pragma("foreign_keys = OFF");
  try {
    for (let version = current; version < MIGRATIONS.length; version++) {
      db.transaction(() => {
        db.exec(MIGRATIONS[version] as string);
        const broken = db.pragma("foreign_key_check") as unknown[];
        if (broken.length > 0)
          throw new Error(`migration ${version + 1} broke ${broken.length} foreign keys`);
        db.pragma(`user_version = ${version + 1}`);
      })();
    }
  } finally {
    if (enforced) db.pragma("foreign_keys = ON");
  }
}
