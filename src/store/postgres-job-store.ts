/**
 * The job store on Postgres, for several replicas sharing one database. It keeps SQLite's semantics (see
 * sqlite-job-store.ts) and adds leases: `due` and `pendingOutbox` claim what they return with
 * `FOR UPDATE SKIP LOCKED` for a lease period, so two replicas never take the same row, and a replica that
 * dies has its work taken over once its lease runs out. The marks that guard a call to AWS or Slack
 * (`markCreateAttempted`, `markDeregisterAttempted`, `markSending`) succeed only while this replica's lease
 * holds: a replica that lost its lease (paused, partitioned) cannot make the call after the new owner.
 * Lease times use the callers' clock (epoch ms), so replicas' clocks must agree to well within a lease.
 */
import pg from "pg";
import { type Job, type JobEvent, type Notice, transition } from "../domain/job.js";
import type {
  Admission,
  AdmissionRules,
  ImageEventPlace,
  JobStore,
  NewJob,
  OutboxMessage,
  RecentJobsFilter,
  StoreStats,
} from "../domain/ports.js";
import {
  BUSY,
  changedValues,
  initialNotices,
  type JobRow,
  newJobValues,
  type OutboxRow,
  overHourlyLimit,
  RATE_WINDOW_MS,
  repeatedSubmission,
  toJob,
  toMessage,
  UNFINISHED,
} from "./job-rows.js";
import { migratePostgres } from "./postgres-schema.js";

const INT8_OID = 20;

export interface PostgresJobStoreOptions {
  /** This replica's name in lease columns (host, pid and a random part, say). */
  readonly owner: string;
  /** How long a claim on a job or a message lasts unless renewed (each tick renews its own). */
  readonly leaseMs: number;
  /** Called when this replica takes over a job or message whose lease another replica let run out. */
  readonly onTakeover?: (kind: "job" | "message", count: number) => void;
  readonly maxConnections?: number;
  /** An idle connection failed (the server restarted): told, never thrown; the next query reconnects. */
  readonly onPoolError?: (error: Error) => void;
  /** Told once when a change ends a job (metrics: how long jobs take, by how they ended). */
  readonly onFinished?: (job: Job) => void;
}

type Queryable = pg.Pool | pg.PoolClient;

/** The job made in one of the places ($n: target names, $n+1: role ARNs, $n+2: regions, as arrays). */
const inPlaces = (n: number) =>
  `EXISTS (SELECT 1 FROM unnest($${n}::text[], $${n + 1}::text[], $${n + 2}::text[]) AS p(t, r, g)
     WHERE p.t = target_name AND p.r = role_arn AND p.g = region)`;

/** Opens a pool on `url`, brings the schema up to date and returns the store; close() ends the pool. */
export async function openPostgresJobStore(
  url: string,
  options: PostgresJobStoreOptions,
): Promise<PostgresJobStore> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    // A database that stops answering must not hold a tick, a health check or a shutdown for long.
    connectionTimeoutMillis: 5_000,
    query_timeout: 15_000,
    statement_timeout: 15_000,
    // Epoch-ms columns are BIGINT; every value the bot keeps fits a double exactly.
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === INT8_OID
          ? (value: string) => Number(value)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  try {
    await migratePostgres(pool);
  } catch (error) {
    await pool.end();
    throw error;
  }
  return new PostgresJobStore(pool, options);
}

export class PostgresJobStore implements JobStore {
  /**
   * The fencing token of this replica's latest claim of each job. A guarded mark must carry it: a claim
   * made since (by another replica, or by a later tick here) makes an older holder's mark fail.
   */
  private readonly tokens = new Map<string, number>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: PostgresJobStoreOptions,
  ) {
    // An idle client's error (the server restarted) must not crash the process; the next query reconnects.
    pool.on("error", (error) => options.onPoolError?.(error));
  }

  /**
   * Gives back this replica's claims, so the others take its jobs and messages at once rather than a lease
   * later, then ends the pool. Called once the watcher and the relay have stopped.
   */
  async close(): Promise<void> {
    try {
      await this.pool.query("UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1", [
        this.options.owner,
      ]);
      await this.pool.query(
        "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
        [this.options.owner],
      );
    } catch {
      // The database is out of reach: the claims simply run out.
    } finally {
      await this.pool.end();
    }
  }

  private async tx<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  private async enqueueOn(db: Queryable, jobId: string, kind: string, key: string, now: number) {
    await db.query(
      `INSERT INTO outbox (job_id, kind, key, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $4)
       ON CONFLICT (job_id, key) DO NOTHING`,
      [jobId, kind, key, now],
    );
  }

  private async insertRows(db: Queryable, job: NewJob, now: number): Promise<boolean> {
    const v = newJobValues(job, now);
    const result = await db.query(
      `INSERT INTO jobs (id, idempotency_key, requested_by, origin_channel_id, target_name, role_arn, region,
         instance_id, instance_name, image_name, description, no_reboot, tags, channel_id, request_hash, state,
         next_check_at, created_at, updated_at, excluded_devices, approval_expires_at, after_steps)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18, $19, $20, $21)
       ON CONFLICT (idempotency_key) DO NOTHING`,
      [
        job.id,
        job.idempotencyKey,
        job.requestedBy,
        job.originChannelId,
        job.targetName,
        job.roleArn,
        job.region,
        job.instanceId,
        v.instanceName,
        job.imageName,
        v.description,
        v.noReboot,
        v.tags,
        job.channelId,
        job.requestHash,
        v.state,
        v.nextCheckAt,
        now,
        v.excludedDevices,
        v.approvalExpiresAt,
        v.afterSteps,
      ],
    );
    if (result.rowCount === 0) return false;
    for (const n of initialNotices(job)) await this.enqueueOn(db, job.id, n.kind, n.key, now);
    return true;
  }

  insert(job: NewJob, now: number): Promise<boolean> {
    return this.tx((c) => this.insertRows(c, job, now));
  }

  admit(job: NewJob, rules: AdmissionRules, now: number): Promise<Admission> {
    return this.tx(async (c) => {
      // Submissions for one instance, and one person's in one target, are admitted one at a time across
      // replicas (transaction-scoped locks, always taken in this order so two admissions cannot deadlock).
      await c.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
        `instance|${job.roleArn}|${job.region}|${job.instanceId}`,
      ]);
      await c.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
        `requester|${job.requestedBy}|${job.targetName}`,
      ]);
      const repeated = async () => {
        const stored = await c.query<{ request_hash: string | null }>(
          "SELECT request_hash FROM jobs WHERE idempotency_key = $1",
          [job.idempotencyKey],
        );
        return repeatedSubmission(stored.rows[0]?.request_hash, job);
      };
      const earlier = await repeated();
      if (earlier) return earlier;
      const busy = await c.query<JobRow>(
        `SELECT * FROM jobs WHERE role_arn = $1 AND region = $2 AND instance_id = $3 AND state IN ${BUSY}
         ORDER BY created_at LIMIT 1`,
        [job.roleArn, job.region, job.instanceId],
      );
      if (busy.rows[0]) return { status: "instance_busy", job: toJob(busy.rows[0]) };
      const recent = await c.query<{ n: number; oldest: number | null }>(
        `SELECT COUNT(*)::int AS n, MIN(created_at) AS oldest FROM jobs
         WHERE requested_by = $1 AND target_name = $2 AND created_at > $3`,
        [job.requestedBy, job.targetName, now - RATE_WINDOW_MS],
      );
      const limited = overHourlyLimit(recent.rows[0], rules, now);
      if (limited) return limited;
      // The same view submitted to two replicas at once: the key is taken by the other one's insert.
      if (!(await this.insertRows(c, job, now))) return (await repeated()) as Admission;
      return { status: "accepted" };
    });
  }

  async setInstanceName(jobId: string, name: string | undefined, now: number): Promise<void> {
    await this.pool.query("UPDATE jobs SET instance_name = $1, updated_at = $2 WHERE id = $3", [
      name ?? null,
      now,
      jobId,
    ]);
  }

  async get(id: string): Promise<Job | undefined> {
    const { rows } = await this.pool.query<JobRow>("SELECT * FROM jobs WHERE id = $1", [id]);
    return rows[0] ? toJob(rows[0]) : undefined;
  }

  async recentJobs(filter: RecentJobsFilter, limit: number): Promise<Job[]> {
    const places = [
      filter.places.map((p) => p.targetName),
      filter.places.map((p) => p.roleArn),
      filter.places.map((p) => p.region),
    ];
    const { rows } =
      "channelId" in filter
        ? await this.pool.query<JobRow>(
            `SELECT * FROM jobs WHERE (channel_id = $1 OR origin_channel_id = $1 OR root_channel_id = $1)
               AND ${inPlaces(2)} ORDER BY created_at DESC, seq DESC LIMIT $5`,
            [filter.channelId, ...places, limit],
          )
        : await this.pool.query<JobRow>(
            `SELECT * FROM jobs WHERE requested_by = $1 AND ${inPlaces(2)}
             ORDER BY created_at DESC, seq DESC LIMIT $5`,
            [filter.requestedBy, ...places, limit],
          );
    return rows.map(toJob);
  }

  /** Claims due jobs for this replica: free ones, its own, and those whose lease ran out. */
  async due(now: number, limit: number): Promise<Job[]> {
    const { owner, leaseMs } = this.options;
    const { rows } = await this.pool.query<
      JobRow & { previous_owner: string | null; seq: number; lease_token: number }
    >(
      `WITH claimed AS (
         -- A takeover only when the job fell due while still leased (its owner stopped working on it),
         -- not when a lease simply ran out before the next check (the normal hand-off between ticks).
         SELECT id, CASE WHEN lease_until > next_check_at THEN lease_owner END AS previous_owner FROM jobs
         WHERE state IN ${UNFINISHED} AND next_check_at <= $1
           AND (lease_until IS NULL OR lease_until <= $1 OR lease_owner = $2)
         ORDER BY next_check_at, created_at, seq LIMIT $3
         FOR UPDATE SKIP LOCKED)
       UPDATE jobs j SET lease_owner = $2, lease_until = $1 + $4, lease_token = j.lease_token + 1
       FROM claimed WHERE j.id = claimed.id
       RETURNING j.*, claimed.previous_owner`,
      [now, owner, limit, leaseMs],
    );
    this.countTakeovers("job", rows);
    for (const row of rows) this.tokens.set(row.id, row.lease_token);
    return rows
      .sort((a, b) => a.next_check_at - b.next_check_at || a.created_at - b.created_at || a.seq - b.seq)
      .map(toJob);
  }

  private countTakeovers(kind: "job" | "message", rows: { previous_owner: string | null }[]): void {
    const taken = rows.filter((r) => r.previous_owner !== null && r.previous_owner !== this.options.owner);
    if (taken.length > 0) this.options.onTakeover?.(kind, taken.length);
  }

  private async applyTx(jobId: string, event: JobEvent, now: number, onlyHeld = false) {
    const result = await this.tx(
      async (c): Promise<{ job: Job; applied: boolean; finished?: boolean } | undefined> => {
        // The row lock serialises every change to one job: two clicks at once are decided one after the other.
        const { rows } = await c.query<JobRow>(
          `SELECT * FROM jobs WHERE id = $1${onlyHeld ? ` AND ${this.leaseHeld(2, 3)} AND lease_token = $4` : ""} FOR UPDATE`,
          onlyHeld ? [jobId, this.options.owner, now, this.tokenOf(jobId)] : [jobId],
        );
        if (!rows[0]) return undefined;
        const job = toJob(rows[0]);
        const { changes, notices } = transition(job, event, now);
        if (Object.keys(changes).length === 0 && notices.length === 0) return { job, applied: false };
        const v = changedValues({ ...job, ...changes }, changes);
        const updated = await c.query<JobRow>(
          `UPDATE jobs SET state = $2, image_id = $3, final_reason = $4, progress = $5, slow_notified = $6,
           finished_at = $7, decision = $8, decided_by = $9, decided_at = $10, cancelled_by = $11,
           cancelled_at = $12, next_check_at = CASE WHEN $13 THEN $14 ELSE next_check_at END, attempts = 0,
           last_error = NULL, updated_at = $14, after_steps = $15
         WHERE id = $1 RETURNING *`,
          [
            jobId,
            v.state,
            v.imageId,
            v.finalReason,
            v.progress,
            v.slowNotified,
            v.finishedAt,
            v.decision,
            v.decidedBy,
            v.decidedAt,
            v.cancelledBy,
            v.cancelledAt,
            v.checkNow,
            now,
            v.afterSteps,
          ],
        );
        for (const n of notices) await this.enqueueOn(c, jobId, n.kind, n.key, now);
        return {
          job: toJob(updated.rows[0] as JobRow),
          applied: true,
          finished: changes.finishedAt !== undefined,
        };
      },
    );
    // After the commit: the hook's failure is not the store's.
    if (result?.finished) {
      this.tokens.delete(jobId);
      try {
        this.options.onFinished?.(result.job);
      } catch {}
    }
    return result && { job: result.job, applied: result.applied };
  }

  async apply(jobId: string, event: JobEvent, now: number): Promise<Job | undefined> {
    return (await this.applyTx(jobId, event, now))?.job;
  }

  decide(jobId: string, event: JobEvent, now: number): Promise<{ job: Job; applied: boolean } | undefined> {
    return this.applyTx(jobId, event, now);
  }

  async applyHeld(jobId: string, event: JobEvent, now: number): Promise<boolean> {
    return (await this.applyTx(jobId, event, now, true))?.applied ?? false;
  }

  async holds(jobId: string, now: number): Promise<boolean> {
    const { rows } = await this.pool.query(
      `SELECT 1 FROM jobs WHERE id = $1 AND ${this.leaseHeld(2, 3)} AND lease_token = $4`,
      [jobId, this.options.owner, now, this.tokenOf(jobId)],
    );
    return rows.length > 0;
  }

  async release(jobIds: readonly string[]): Promise<void> {
    if (jobIds.length === 0) return;
    for (const id of jobIds) this.tokens.delete(id);
    await this.pool.query(
      "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE id = ANY($1::text[]) AND lease_owner = $2",
      [jobIds, this.options.owner],
    );
  }

  async awaitingApproval(targetNames: readonly string[], limit: number): Promise<Job[]> {
    if (targetNames.length === 0) return [];
    const { rows } = await this.pool.query<JobRow>(
      `SELECT * FROM jobs WHERE state = 'awaiting_approval' AND target_name = ANY($1::text[])
       ORDER BY created_at, seq LIMIT $2`,
      [targetNames, limit],
    );
    return rows.map(toJob);
  }

  /** The lease condition for guarded marks: this replica claimed the job and the claim has not run out. */
  private leaseHeld(ownerParam: number, nowParam: number): string {
    return `lease_owner = $${ownerParam} AND lease_until > $${nowParam}`;
  }

  /** This replica's latest claim token for the job; -1 (never matching) when it never claimed it. */
  private tokenOf(jobId: string): number {
    return this.tokens.get(jobId) ?? -1;
  }

  markCreateAttempted(jobId: string, now: number): Promise<boolean> {
    return this.tx(async (c) => {
      // Only while still queued (a cancel that came first wins) and only by the replica holding the job.
      const marked = await c.query(
        `UPDATE jobs SET create_attempted_at = COALESCE(create_attempted_at, $2), updated_at = $2,
           lease_until = GREATEST(lease_until, $2 + $4)
         WHERE id = $1 AND state = 'queued' AND ${this.leaseHeld(3, 2)} AND lease_token = $5`,
        [jobId, now, this.options.owner, this.options.leaseMs, this.tokenOf(jobId)],
      );
      if (marked.rowCount === 0) return false;
      await this.enqueueOn(c, jobId, "creating", "creating", now);
      return true;
    });
  }

  async markDeregisterAttempted(jobId: string, now: number): Promise<boolean> {
    const marked = await this.pool.query(
      `UPDATE jobs SET deregister_attempted_at = COALESCE(deregister_attempted_at, $2), updated_at = $2,
         lease_until = GREATEST(lease_until, $2 + $4)
       WHERE id = $1 AND state = 'cancelling' AND ${this.leaseHeld(3, 2)} AND lease_token = $5`,
      [jobId, now, this.options.owner, this.options.leaseMs, this.tokenOf(jobId)],
    );
    return (marked.rowCount ?? 0) > 0;
  }

  async markRootPosted(jobId: string, channelId: string, ts: string, now: number): Promise<void> {
    await this.pool.query(
      "UPDATE jobs SET root_channel_id = $1, root_ts = $2, updated_at = $3 WHERE id = $4",
      [channelId, ts, now, jobId],
    );
  }

  async recordError(jobId: string, message: string, nextCheckAt: number, now: number): Promise<void> {
    await this.pool.query(
      `UPDATE jobs SET attempts = attempts + 1, last_error = $1, next_check_at = $2, updated_at = $3
       WHERE id = $4`,
      [message, nextCheckAt, now, jobId],
    );
  }

  async scheduleNext(jobId: string, nextCheckAt: number, now: number): Promise<void> {
    await this.pool.query(
      "UPDATE jobs SET next_check_at = $1, attempts = 0, last_error = NULL, updated_at = $2 WHERE id = $3",
      [nextCheckAt, now, jobId],
    );
  }

  async moveThread(jobId: string, channelId: string, now: number): Promise<void> {
    await this.pool.query(
      "UPDATE jobs SET channel_id = $1, root_channel_id = NULL, root_ts = NULL, updated_at = $2 WHERE id = $3",
      [channelId, now, jobId],
    );
  }

  async enqueue(jobId: string, notice: Notice, now: number): Promise<void> {
    await this.enqueueOn(this.pool, jobId, notice.kind, notice.key, now);
  }

  /**
   * Claims the oldest undelivered message of each job (so a job's messages go out in order) for this
   * replica: free ones, its own, and those whose lease ran out.
   */
  async pendingOutbox(now: number, limit: number): Promise<OutboxMessage[]> {
    const { owner, leaseMs } = this.options;
    const { rows } = await this.pool.query<OutboxRow & { previous_owner: string | null }>(
      `WITH claimed AS (
         SELECT o.id, CASE WHEN o.lease_until > o.next_attempt_at THEN o.lease_owner END AS previous_owner
         FROM outbox o
         WHERE o.id IN (SELECT MIN(id) FROM outbox WHERE state IN ('queued','sending') GROUP BY job_id)
           AND o.state IN ('queued','sending') AND o.next_attempt_at <= $1
           AND (o.lease_until IS NULL OR o.lease_until <= $1 OR o.lease_owner = $2)
         ORDER BY o.id LIMIT $3
         FOR UPDATE SKIP LOCKED)
       UPDATE outbox o SET lease_owner = $2, lease_until = $1 + $4
       FROM claimed WHERE o.id = claimed.id
       RETURNING o.id, o.job_id, o.kind, o.key, o.attempts, o.state, claimed.previous_owner`,
      [now, owner, limit, leaseMs],
    );
    // A message taken over while "sending" is looked up in Slack before it is posted again (the relay's rule).
    this.countTakeovers("message", rows);
    return rows.sort((a, b) => a.id - b.id).map(toMessage);
  }

  async outboxForJob(jobId: string): Promise<OutboxMessage[]> {
    const { rows } = await this.pool.query<OutboxRow>(
      "SELECT id, job_id, kind, key, attempts, state FROM outbox WHERE job_id = $1 ORDER BY id",
      [jobId],
    );
    return rows.map(toMessage);
  }

  async markSending(messageId: number, now: number): Promise<boolean> {
    const marked = await this.pool.query(
      // The claim is renewed for the Slack call it now guards.
      `UPDATE outbox SET state = 'sending', attempts = attempts + 1, lease_until = $3 + $4
       WHERE id = $1 AND state IN ('queued','sending') AND ${this.leaseHeld(2, 3)}`,
      [messageId, this.options.owner, now, this.options.leaseMs],
    );
    return (marked.rowCount ?? 0) > 0;
  }

  async markDelivered(messageId: number, ts: string | undefined, now: number): Promise<void> {
    await this.pool.query(
      `UPDATE outbox SET state = 'delivered', ts = $1, delivered_at = $2, lease_owner = NULL, lease_until = NULL
       WHERE id = $3`,
      [ts ?? null, now, messageId],
    );
  }

  async markDeliveryFailed(
    messageId: number,
    error: string,
    nextAttemptAt: number,
    maybeDelivered = false,
  ): Promise<void> {
    // Not over another replica's claim: it may have delivered the message meanwhile.
    await this.pool.query(
      `UPDATE outbox SET state = $1, last_error = $2, next_attempt_at = $3
       WHERE id = $4 AND state IN ('queued','sending') AND (lease_owner = $5 OR lease_owner IS NULL)`,
      [maybeDelivered ? "sending" : "queued", error, nextAttemptAt, messageId, this.options.owner],
    );
  }

  async markDropped(messageId: number, error: string, now: number): Promise<void> {
    await this.pool.query(
      `UPDATE outbox SET state = 'dropped', last_error = $1, delivered_at = $2, lease_owner = NULL,
         lease_until = NULL WHERE id = $3 AND state IN ('queued','sending') AND (lease_owner = $4 OR lease_owner IS NULL)`,
      [error, now, messageId, this.options.owner],
    );
  }

  async unfinishedCount(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT COUNT(*)::int AS n FROM jobs WHERE state IN ${UNFINISHED}`,
    );
    return rows[0]?.n ?? 0;
  }

  async checkImageSoon(image: ImageEventPlace, now: number): Promise<Job | undefined> {
    // A pending job's claim is given up too: the event may have reached a replica other than the holder, and
    // a check guards nothing (it only reads AWS and applies transitions), so whoever is awake checks it now
    // rather than at the holder's next tick. Claims guarding a call (cancelling) are kept.
    const { rows } = await this.pool.query<JobRow>(
      `UPDATE jobs SET next_check_at = LEAST(next_check_at, $1),
         lease_owner = CASE WHEN state = 'pending' THEN NULL ELSE lease_owner END,
         lease_until = CASE WHEN state = 'pending' THEN NULL ELSE lease_until END
       WHERE image_id = $2 AND region = $3 AND role_arn LIKE 'arn:%:iam::' || $4 || ':role/%'
         AND state IN ${UNFINISHED}
       RETURNING *`,
      [now, image.imageId, image.region, image.accountId],
    );
    return rows[0] ? toJob(rows[0]) : undefined;
  }

  async claimSweep(targetName: string, now: number, everyMs: number): Promise<boolean> {
    // INSERT … ON CONFLICT locks the row and checks the WHERE against its latest version: of replicas
    // claiming at once, exactly one moves it forward.
    const { rowCount } = await this.pool.query(
      `INSERT INTO keep_sweeps (target_name, last_run_at) VALUES ($1, $2::bigint)
       ON CONFLICT (target_name) DO UPDATE SET last_run_at = EXCLUDED.last_run_at
       WHERE keep_sweeps.last_run_at <= $2::bigint - $3::bigint`,
      [targetName, now, everyMs],
    );
    return (rowCount ?? 0) > 0;
  }

  async stats(): Promise<StoreStats> {
    const jobs = await this.pool.query<{ state: string; n: number }>(
      "SELECT state, COUNT(*)::int AS n FROM jobs GROUP BY state",
    );
    const outbox = await this.pool.query<{ n: number; oldest: number | null }>(
      "SELECT COUNT(*)::int AS n, MIN(created_at) AS oldest FROM outbox WHERE state IN ('queued','sending')",
    );
    const jobsByState: Record<string, number> = {};
    for (const { state, n } of jobs.rows) jobsByState[state] = n;
    return {
      jobsByState,
      outboxBacklog: outbox.rows[0]?.n ?? 0,
      oldestOutboxCreatedAt: outbox.rows[0]?.oldest ?? undefined,
    };
  }
}
