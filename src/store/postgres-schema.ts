/**
 * The Postgres schema: the same tables and meanings as SQLite's (times in epoch ms, flags 0/1, JSON as text,
 * so one row mapping serves both), plus the lease columns replicas claim work with. Migrations run once each,
 * in order, under an advisory lock, so replicas starting together never race to apply one.
 */
import type pg from "pg";
import { BUSY, UNFINISHED } from "./job-rows.js";

export const POSTGRES_MIGRATIONS: readonly string[] = [
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
     state TEXT NOT NULL CHECK (state IN ('awaiting_approval','queued','pending','cancelling','available',
       'failed','refused','timed_out','denied','expired','cancelled')),
     image_id TEXT,
     create_attempted_at BIGINT,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_error TEXT,
     final_reason TEXT,
     progress INTEGER NOT NULL DEFAULT 0,
     slow_notified INTEGER NOT NULL DEFAULT 0,
     next_check_at BIGINT NOT NULL,
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL,
     finished_at BIGINT,
     request_hash TEXT,
     excluded_devices TEXT NOT NULL DEFAULT '[]',
     approval_expires_at BIGINT,
     decision TEXT CHECK (decision IN ('approved','denied')),
     decided_by TEXT,
     decided_at BIGINT,
     cancelled_by TEXT,
     cancelled_at BIGINT,
     deregister_attempted_at BIGINT,
     -- Which replica works on the job until when; the token grows with every claim (a fencing token).
     lease_owner TEXT,
     lease_until BIGINT,
     lease_token BIGINT NOT NULL DEFAULT 0,
     -- Insertion order, for ties in created_at (SQLite's rowid).
     seq BIGSERIAL NOT NULL
   );
   CREATE INDEX jobs_due ON jobs (next_check_at) WHERE state IN ${UNFINISHED};
   -- Admission enforces one unfinished job per instance, under an advisory lock (as SQLite's store does).
   CREATE INDEX jobs_unfinished_instance ON jobs (role_arn, region, instance_id) WHERE state IN ${UNFINISHED};
   CREATE INDEX jobs_requester_recent ON jobs (requested_by, target_name, created_at);
   CREATE INDEX jobs_awaiting_approval ON jobs (target_name, created_at) WHERE state = 'awaiting_approval';
   CREATE INDEX jobs_unfinished_image ON jobs (image_id) WHERE state IN ${UNFINISHED};
   CREATE TABLE outbox (
     id BIGSERIAL PRIMARY KEY,
     job_id TEXT NOT NULL REFERENCES jobs(id),
     kind TEXT NOT NULL,
     key TEXT NOT NULL,
     state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued','sending','delivered','dropped')),
     ts TEXT,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_error TEXT,
     next_attempt_at BIGINT NOT NULL,
     created_at BIGINT NOT NULL,
     delivered_at BIGINT,
     lease_owner TEXT,
     lease_until BIGINT,
     UNIQUE (job_id, key)
   );
   CREATE INDEX outbox_undelivered ON outbox (job_id, id) WHERE state IN ('queued','sending');`,
  // Copies and sharing after the image: a new unfinished state (finishing), which does not hold the instance.
  `ALTER TABLE jobs ADD COLUMN after_steps TEXT;
   ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
   ALTER TABLE jobs ADD CONSTRAINT jobs_state_check CHECK (state IN ('awaiting_approval','queued','pending',
     'cancelling','finishing','available','failed','refused','timed_out','denied','expired','cancelled'));
   DROP INDEX jobs_due;
   CREATE INDEX jobs_due ON jobs (next_check_at) WHERE state IN ${UNFINISHED};
   DROP INDEX jobs_unfinished_instance;
   CREATE INDEX jobs_unfinished_instance ON jobs (role_arn, region, instance_id) WHERE state IN ${BUSY};
   DROP INDEX jobs_unfinished_image;
   CREATE INDEX jobs_unfinished_image ON jobs (image_id) WHERE state IN ${UNFINISHED};`,
  // The keep rule's daily sweep: when each target was last swept (claimSweep), shared by the replicas.
  `CREATE TABLE keep_sweeps (
     target_name TEXT PRIMARY KEY,
     last_run_at BIGINT NOT NULL
   );`,
];

/** An arbitrary constant: the advisory lock replicas take while migrating. */
const MIGRATION_LOCK = 7_461_337_001;

/** Brings the schema up to date; safe to call from several replicas at once. */
export async function migratePostgres(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
    try {
      // Only when missing: CREATE TABLE IF NOT EXISTS still needs CREATE on the schema, which a user that
      // only reads and writes the bot's tables (after the first start) does not have.
      const { rows: found } = await client.query<{ t: string | null }>(
        "SELECT to_regclass('ami_bot_schema')::text AS t",
      );
      if (!found[0]?.t)
        await client.query(
          "CREATE TABLE IF NOT EXISTS ami_bot_schema (version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)",
        );
      const { rows } = await client.query<{ v: number | null }>(
        "SELECT MAX(version) AS v FROM ami_bot_schema",
      );
      for (let version = rows[0]?.v ?? 0; version < POSTGRES_MIGRATIONS.length; version++) {
        await client.query("BEGIN");
        try {
          await client.query(POSTGRES_MIGRATIONS[version] as string);
          await client.query("INSERT INTO ami_bot_schema (version, applied_at) VALUES ($1, now())", [
            version + 1,
          ]);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK");
          throw error;
        }
      }
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]);
    }
  } finally {
    client.release();
  }
}
