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
import { type Db, UNFINISHED } from "./database.js";
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
} from "./job-rows.js";

/** The job was made in one of the places in @places (a JSON array of [target, role ARN, region]). */
const IN_PLACES = `EXISTS (SELECT 1 FROM json_each(@places) p WHERE json_extract(p.value, '$[0]') = target_name
  AND json_extract(p.value, '$[1]') = role_arn AND json_extract(p.value, '$[2]') = region)`;

/** A change applied to a job; `finished` when it ended the job. */
interface Applied {
  readonly job: Job;
  readonly applied: boolean;
  readonly finished?: boolean;
}

/** The job store on SQLite: one prepared statement per intent, multi-step writes in a transaction. */
export class SqliteJobStore implements JobStore {
  private readonly s;
  private readonly applyTx;
  private readonly insertTx;
  private readonly admitTx;
  private readonly createAttemptTx;

  constructor(
    db: Db,
    /** Told once when a change ends a job (metrics: how long jobs take, by how they ended). */
    private readonly onFinished?: (job: Job) => void,
  ) {
    this.s = {
      insertJob: db.prepare(
        `INSERT INTO jobs (id, idempotency_key, requested_by, origin_channel_id, target_name, role_arn, region,
           instance_id, instance_name, image_name, description, no_reboot, tags, channel_id, request_hash, state,
           next_check_at, created_at, updated_at, excluded_devices, approval_expires_at, after_steps)
         VALUES (@id, @idempotencyKey, @requestedBy, @originChannelId, @targetName, @roleArn, @region, @instanceId,
           @instanceName, @imageName, @description, @noReboot, @tags, @channelId, @requestHash, @state,
           @nextCheckAt, @now, @now, @excludedDevices, @approvalExpiresAt, @afterSteps)
         ON CONFLICT (idempotency_key) DO NOTHING`,
      ),
      hashByKey: db.prepare<[string], { request_hash: string | null }>(
        "SELECT request_hash FROM jobs WHERE idempotency_key = ?",
      ),
      // The same `state IN (…)` as the partial index jobs_unfinished_instance, so SQLite can use it.
      unfinishedForInstance: db.prepare<[string, string, string], JobRow>(
        `SELECT * FROM jobs WHERE role_arn = ? AND region = ? AND instance_id = ? AND state IN ${BUSY}
         ORDER BY created_at LIMIT 1`,
      ),
      startedSince: db.prepare<[string, string, number], { n: number; oldest: number | null }>(
        `SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM jobs
         WHERE requested_by = ? AND target_name = ? AND created_at > ?`,
      ),
      setInstanceName: db.prepare("UPDATE jobs SET instance_name = ?, updated_at = ? WHERE id = ?"),
      get: db.prepare<[string], JobRow>("SELECT * FROM jobs WHERE id = ?"),
      // No index of their own: with 100,000 jobs either scan takes about 10 ms (measured in memory), and a
      // channel's jobs match on three columns. `places` is a JSON array of [target, role ARN, region].
      recentInChannel: db.prepare<{ channelId: string; places: string; limit: number }, JobRow>(
        `SELECT * FROM jobs WHERE (channel_id = @channelId OR origin_channel_id = @channelId
           OR root_channel_id = @channelId) AND ${IN_PLACES} ORDER BY created_at DESC, rowid DESC LIMIT @limit`,
      ),
      // requested_by leads the index jobs_requester_recent.
      recentByRequester: db.prepare<{ requestedBy: string; places: string; limit: number }, JobRow>(
        `SELECT * FROM jobs WHERE requested_by = @requestedBy AND ${IN_PLACES}
         ORDER BY created_at DESC, rowid DESC LIMIT @limit`,
      ),
      due: db.prepare<[number, number], JobRow>(
        `SELECT * FROM jobs WHERE state IN ${UNFINISHED} AND next_check_at <= ?
         ORDER BY next_check_at, created_at LIMIT ?`,
      ),
      awaitingApproval: db.prepare<{ targets: string; limit: number }, JobRow>(
        `SELECT * FROM jobs WHERE state = 'awaiting_approval' AND target_name IN (SELECT value FROM json_each(@targets))
         ORDER BY created_at, rowid LIMIT @limit`,
      ),
      update: db.prepare(
        `UPDATE jobs SET state = @state, image_id = @imageId, final_reason = @finalReason, progress = @progress,
           slow_notified = @slowNotified, finished_at = @finishedAt, decision = @decision, decided_by = @decidedBy,
           decided_at = @decidedAt, cancelled_by = @cancelledBy, cancelled_at = @cancelledAt, after_steps = @afterSteps,
           next_check_at = CASE WHEN @checkNow THEN @now ELSE next_check_at END, attempts = 0, last_error = NULL,
           updated_at = @now WHERE id = @id`,
      ),
      // Only while still queued: a cancel that came first wins, and CreateImage is then never called.
      markCreateAttempted: db.prepare(
        `UPDATE jobs SET create_attempted_at = COALESCE(create_attempted_at, @now), updated_at = @now
         WHERE id = @id AND state = 'queued'`,
      ),
      markDeregisterAttempted: db.prepare(
        `UPDATE jobs SET deregister_attempted_at = COALESCE(deregister_attempted_at, @now), updated_at = @now
         WHERE id = @id AND state = 'cancelling'`,
      ),
      recordError: db.prepare(
        "UPDATE jobs SET attempts = attempts + 1, last_error = ?, next_check_at = ?, updated_at = ? WHERE id = ?",
      ),
      // A check that succeeded ends any run of failures: the next failure backs off from the start again.
      scheduleNext: db.prepare(
        "UPDATE jobs SET next_check_at = ?, attempts = 0, last_error = NULL, updated_at = ? WHERE id = ?",
      ),
      moveThread: db.prepare(
        "UPDATE jobs SET channel_id = ?, root_channel_id = NULL, root_ts = NULL, updated_at = ? WHERE id = ?",
      ),
      markRootPosted: db.prepare(
        "UPDATE jobs SET root_channel_id = ?, root_ts = ?, updated_at = ? WHERE id = ?",
      ),
      enqueue: db.prepare(
        `INSERT INTO outbox (job_id, kind, key, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (job_id, key) DO NOTHING`,
      ),
      // Only the oldest undelivered message of each job is offered, so a job's messages arrive in order.
      pendingOutbox: db.prepare<[number, number], OutboxRow>(
        `SELECT o.id, o.job_id, o.kind, o.key, o.attempts, o.state FROM outbox o
         WHERE o.id IN (SELECT MIN(id) FROM outbox WHERE state IN ('queued','sending') GROUP BY job_id)
           AND o.next_attempt_at <= ? ORDER BY o.id LIMIT ?`,
      ),
      outboxForJob: db.prepare<[string], OutboxRow>(
        "SELECT id, job_id, kind, key, attempts, state FROM outbox WHERE job_id = ? ORDER BY id",
      ),
      markSending: db.prepare("UPDATE outbox SET state = 'sending', attempts = attempts + 1 WHERE id = ?"),
      markDelivered: db.prepare(
        "UPDATE outbox SET state = 'delivered', ts = ?, delivered_at = ? WHERE id = ?",
      ),
      markDeliveryFailed: db.prepare(
        "UPDATE outbox SET state = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
      ),
      markDropped: db.prepare(
        "UPDATE outbox SET state = 'dropped', last_error = ?, delivered_at = ? WHERE id = ?",
      ),
      // Unfinished jobs only (in practice pending or cancelling: only they have an image); a finished one
      // needs no check.
      // The role ARN names the account the job's image was made in (arn:<partition>:iam::<account>:role/…).
      checkImageSoon: db.prepare<[number, string, string, string], JobRow>(
        `UPDATE jobs SET next_check_at = MIN(next_check_at, ?) WHERE image_id = ? AND region = ?
           AND role_arn LIKE 'arn:%:iam::' || ? || ':role/%' AND state IN ${UNFINISHED} RETURNING *`,
      ),
      jobsByState: db.prepare<[], { state: string; n: number }>(
        "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state",
      ),
      outboxBacklog: db.prepare<[], { n: number; oldest: number | null }>(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE state IN ('queued','sending')",
      ),
      unfinished: db.prepare<[], { n: number }>(
        `SELECT COUNT(*) AS n FROM jobs WHERE state IN ${UNFINISHED}`,
      ),
      // One statement: the row is made, or moved forward only when the last run is at least everyMs old.
      claimSweep: db.prepare<{ target: string; now: number; everyMs: number }>(
        `INSERT INTO keep_sweeps (target_name, last_run_at) VALUES (@target, @now)
         ON CONFLICT (target_name) DO UPDATE SET last_run_at = excluded.last_run_at
         WHERE keep_sweeps.last_run_at <= @now - @everyMs`,
      ),
    };

    const insertRows = (job: NewJob, now: number): boolean => {
      const result = this.s.insertJob.run({ ...job, ...newJobValues(job, now), now });
      if (result.changes === 0) return false;
      for (const n of initialNotices(job)) this.s.enqueue.run(job.id, n.kind, n.key, now, now);
      return true;
    };
    this.insertTx = db.transaction(insertRows);

    this.admitTx = db.transaction((job: NewJob, rules: AdmissionRules, now: number): Admission => {
      const repeated = repeatedSubmission(this.s.hashByKey.get(job.idempotencyKey)?.request_hash, job);
      if (repeated) return repeated;
      const busy = this.s.unfinishedForInstance.get(job.roleArn, job.region, job.instanceId);
      if (busy) return { status: "instance_busy", job: toJob(busy) };
      const limited = overHourlyLimit(
        this.s.startedSince.get(job.requestedBy, job.targetName, now - RATE_WINDOW_MS),
        rules,
        now,
      );
      if (limited) return limited;
      insertRows(job, now);
      return { status: "accepted" };
    });

    this.createAttemptTx = db.transaction((jobId: string, now: number): boolean => {
      if (this.s.markCreateAttempted.run({ now, id: jobId }).changes === 0) return false;
      this.s.enqueue.run(jobId, "creating", "creating", now, now);
      return true;
    });

    this.applyTx = db.transaction((jobId: string, event: JobEvent, now: number): Applied | undefined => {
      const row = this.s.get.get(jobId);
      if (!row) return undefined;
      const job = toJob(row);
      const { changes, notices } = transition(job, event, now);
      if (Object.keys(changes).length === 0 && notices.length === 0) return { job, applied: false };
      const next = { ...job, ...changes };
      const values = changedValues(next, changes);
      this.s.update.run({ id: jobId, ...values, checkNow: values.checkNow ? 1 : 0, now });
      for (const n of notices) this.s.enqueue.run(jobId, n.kind, n.key, now, now);
      const stored = toJob(this.s.get.get(jobId) as JobRow);
      return { job: stored, applied: true, finished: changes.finishedAt !== undefined };
    });
  }

  /** After the commit: a job that has just ended is told to the hook (whose failure is not the store's). */
  private announce(result: Applied | undefined): { job: Job; applied: boolean } | undefined {
    if (result?.finished && this.onFinished) {
      try {
        this.onFinished(result.job);
      } catch {}
    }
    return result && { job: result.job, applied: result.applied };
  }

  insert(job: NewJob, now: number): boolean {
    return this.insertTx(job, now);
  }

  admit(job: NewJob, rules: AdmissionRules, now: number): Admission {
    // IMMEDIATE takes the write lock before the checks read, so no other writer slips in between.
    return this.admitTx.immediate(job, rules, now);
  }

  setInstanceName(jobId: string, name: string | undefined, now: number): void {
    this.s.setInstanceName.run(name ?? null, now, jobId);
  }

  get(id: string): Job | undefined {
    const row = this.s.get.get(id);
    return row ? toJob(row) : undefined;
  }

  recentJobs(filter: RecentJobsFilter, limit: number): Job[] {
    const places = JSON.stringify(filter.places.map((p) => [p.targetName, p.roleArn, p.region]));
    const rows =
      "channelId" in filter
        ? this.s.recentInChannel.all({ channelId: filter.channelId, places, limit })
        : this.s.recentByRequester.all({ requestedBy: filter.requestedBy, places, limit });
    return rows.map(toJob);
  }

  due(now: number, limit: number): Job[] {
    return this.s.due.all(now, limit).map(toJob);
  }

  apply(jobId: string, event: JobEvent, now: number): Job | undefined {
    return this.announce(this.applyTx(jobId, event, now))?.job;
  }

  decide(jobId: string, event: JobEvent, now: number): { job: Job; applied: boolean } | undefined {
    // IMMEDIATE: two clicks at once (Approve and Cancel) are decided one after the other, never both.
    return this.announce(this.applyTx.immediate(jobId, event, now));
  }

  applyHeld(jobId: string, event: JobEvent, now: number): boolean {
    // One process per database file: it always holds its jobs.
    return this.announce(this.applyTx(jobId, event, now))?.applied ?? false;
  }

  holds(_jobId: string, _now: number): boolean {
    return true;
  }

  release(_jobIds: readonly string[]): void {
    // One process per database: nobody else could take them.
  }

  awaitingApproval(targetNames: readonly string[], limit: number): Job[] {
    if (targetNames.length === 0) return [];
    return this.s.awaitingApproval.all({ targets: JSON.stringify(targetNames), limit }).map(toJob);
  }

  markCreateAttempted(jobId: string, now: number): boolean {
    return this.createAttemptTx(jobId, now);
  }

  markDeregisterAttempted(jobId: string, now: number): boolean {
    return this.s.markDeregisterAttempted.run({ now, id: jobId }).changes > 0;
  }

  markRootPosted(jobId: string, channelId: string, ts: string, now: number): void {
    this.s.markRootPosted.run(channelId, ts, now, jobId);
  }

  recordError(jobId: string, message: string, nextCheckAt: number, now: number): void {
    this.s.recordError.run(message, nextCheckAt, now, jobId);
  }

  scheduleNext(jobId: string, nextCheckAt: number, now: number): void {
    this.s.scheduleNext.run(nextCheckAt, now, jobId);
  }

  moveThread(jobId: string, channelId: string, now: number): void {
    this.s.moveThread.run(channelId, now, jobId);
  }

  enqueue(jobId: string, notice: Notice, now: number): void {
    this.s.enqueue.run(jobId, notice.kind, notice.key, now, now);
  }

  pendingOutbox(now: number, limit: number): OutboxMessage[] {
    return this.s.pendingOutbox.all(now, limit).map(toMessage);
  }

  outboxForJob(jobId: string): OutboxMessage[] {
    return this.s.outboxForJob.all(jobId).map(toMessage);
  }

  markSending(messageId: number, _now?: number): boolean {
    // One process holds the database (database-lock.ts), so no other can have taken the message over.
    this.s.markSending.run(messageId);
    return true;
  }

  markDelivered(messageId: number, ts: string | undefined, now: number): void {
    this.s.markDelivered.run(ts ?? null, now, messageId);
  }

  markDeliveryFailed(messageId: number, error: string, nextAttemptAt: number, maybeDelivered = false): void {
    this.s.markDeliveryFailed.run(maybeDelivered ? "sending" : "queued", error, nextAttemptAt, messageId);
  }

  markDropped(messageId: number, error: string, now: number): void {
    this.s.markDropped.run(error, now, messageId);
  }

  unfinishedCount(): number {
    return this.s.unfinished.get()?.n ?? 0;
  }

  checkImageSoon(image: ImageEventPlace, now: number): Job | undefined {
    const row = this.s.checkImageSoon.get(now, image.imageId, image.region, image.accountId);
    return row ? toJob(row) : undefined;
  }

  claimSweep(targetName: string, now: number, everyMs: number): boolean {
    return this.s.claimSweep.run({ target: targetName, now, everyMs }).changes > 0;
  }

  stats(): StoreStats {
    const jobsByState: Record<string, number> = {};
    for (const { state, n } of this.s.jobsByState.all()) jobsByState[state] = n;
    const outbox = this.s.outboxBacklog.get();
    return {
      jobsByState,
      outboxBacklog: outbox?.n ?? 0,
      oldestOutboxCreatedAt: outbox?.oldest ?? undefined,
    };
  }
}
