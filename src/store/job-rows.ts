/**
 * The jobs and outbox rows as both stores keep them (the same columns on SQLite and Postgres: times in epoch
 * ms, flags as 0/1, JSON as text), their mapping to the domain's types, and the rules both stores apply
 * when they write them, so the two cannot drift apart.
 */

import { type AfterSteps, planAfterSteps } from "../domain/after-steps.js";
import type { Tag } from "../domain/image-request.js";
import {
  BUSY_STATES,
  type Decision,
  type Job,
  type JobState,
  type Notice,
  UNFINISHED_STATES,
} from "../domain/job.js";
import type { Admission, AdmissionRules, NewJob, OutboxMessage } from "../domain/ports.js";

/**
 * The unfinished states as SQL, from the domain's list: partial indexes are used only by queries with the
 * same text, so every query and index takes this one string.
 */
export const UNFINISHED = `(${UNFINISHED_STATES.map((s) => `'${s}'`).join(",")})`;
/** The states that hold an instance (one job per instance), as SQL, for the admission check and its index. */
export const BUSY = `(${BUSY_STATES.map((s) => `'${s}'`).join(",")})`;

/** The hourly limit counts jobs started within this window before now. */
export const RATE_WINDOW_MS = 3_600_000;

export interface JobRow {
  id: string;
  idempotency_key: string;
  requested_by: string;
  origin_channel_id: string;
  target_name: string;
  role_arn: string;
  region: string;
  instance_id: string;
  instance_name: string | null;
  image_name: string;
  description: string | null;
  no_reboot: number;
  tags: string;
  channel_id: string;
  root_channel_id: string | null;
  root_ts: string | null;
  state: JobState;
  image_id: string | null;
  create_attempted_at: number | null;
  attempts: number;
  last_error: string | null;
  final_reason: string | null;
  progress: number;
  slow_notified: number;
  next_check_at: number;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  request_hash: string | null;
  excluded_devices: string;
  approval_expires_at: number | null;
  decision: Decision | null;
  decided_by: string | null;
  decided_at: number | null;
  cancelled_by: string | null;
  cancelled_at: number | null;
  deregister_attempted_at: number | null;
  /** JSON of AfterSteps; null when the person chose no copies or sharing. */
  after_steps: string | null;
}

export interface OutboxRow {
  id: number;
  job_id: string;
  kind: Notice["kind"];
  key: string;
  attempts: number;
  state: string;
}

export function toJob(r: JobRow): Job {
  return {
    id: r.id,
    idempotencyKey: r.idempotency_key,
    requestedBy: r.requested_by,
    originChannelId: r.origin_channel_id,
    targetName: r.target_name,
    roleArn: r.role_arn,
    region: r.region,
    instanceId: r.instance_id,
    instanceName: r.instance_name ?? undefined,
    imageName: r.image_name,
    description: r.description ?? undefined,
    noReboot: r.no_reboot === 1,
    tags: JSON.parse(r.tags) as Tag[],
    excludedDevices: JSON.parse(r.excluded_devices) as string[],
    channelId: r.channel_id,
    rootChannelId: r.root_channel_id ?? undefined,
    rootTs: r.root_ts ?? undefined,
    state: r.state,
    imageId: r.image_id ?? undefined,
    createAttemptedAt: r.create_attempted_at ?? undefined,
    attempts: r.attempts,
    lastError: r.last_error ?? undefined,
    finalReason: r.final_reason ?? undefined,
    progress: r.progress,
    slowNotified: r.slow_notified === 1,
    nextCheckAt: r.next_check_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at ?? undefined,
    approvalExpiresAt: r.approval_expires_at ?? undefined,
    decision: r.decision ?? undefined,
    decidedBy: r.decided_by ?? undefined,
    decidedAt: r.decided_at ?? undefined,
    cancelledBy: r.cancelled_by ?? undefined,
    cancelledAt: r.cancelled_at ?? undefined,
    deregisterAttemptedAt: r.deregister_attempted_at ?? undefined,
    after: r.after_steps ? (JSON.parse(r.after_steps) as AfterSteps) : undefined,
  };
}

export function toMessage(r: OutboxRow): OutboxMessage {
  return {
    id: r.id,
    jobId: r.job_id,
    kind: r.kind,
    key: r.key,
    attempts: r.attempts,
    sending: r.state === "sending",
  };
}

/** The columns of a new job that are not the request's own fields as they are. */
export function newJobValues(job: NewJob, now: number) {
  return {
    state: job.approvalExpiresAt !== undefined ? "awaiting_approval" : "queued",
    // A job waiting for approval is next due when its wait runs out (it then ends as expired).
    nextCheckAt: job.approvalExpiresAt ?? now,
    approvalExpiresAt: job.approvalExpiresAt ?? null,
    instanceName: job.instanceName ?? null,
    description: job.description ?? null,
    noReboot: job.noReboot ? 1 : 0,
    tags: JSON.stringify(job.tags),
    excludedDevices: JSON.stringify(job.excludedDevices),
    afterSteps: afterStepsJson(planAfterSteps(job.copyTo ?? [], job.shareWith ?? [])),
  } as const;
}

function afterStepsJson(steps: AfterSteps | undefined): string | null {
  return steps ? JSON.stringify(steps) : null;
}

/** The notices a new job owes from the start: its root, and for an approval its request and approver DMs. */
export function initialNotices(job: NewJob): Notice[] {
  if (job.approvalExpiresAt === undefined) return [{ kind: "root", key: "root" }];
  return [
    { kind: "root", key: "root" },
    { kind: "approval_request", key: "approval_request" },
    ...(job.approverDms ?? []).map((user): Notice => ({ kind: "approver_dm", key: `approver_dm:${user}` })),
  ];
}

/**
 * A submission whose view was already stored: `storedHash` undefined when none was. Rows from before
 * request hashes were stored have none (null): they count as the same request.
 */
export function repeatedSubmission(
  storedHash: string | null | undefined,
  job: NewJob,
): Admission | undefined {
  if (storedHash === undefined) return undefined;
  return { status: "duplicate", sameRequest: storedHash === null || storedHash === job.requestHash };
}

/** The hourly limit, from the person's jobs in the target within the window before now. */
export function overHourlyLimit(
  recent: { n: number; oldest: number | null } | undefined,
  rules: AdmissionRules,
  now: number,
): Admission | undefined {
  if (!recent || recent.n < rules.jobsPerHour) return undefined;
  return {
    status: "rate_limited",
    retryAt: (recent.oldest ?? now) + RATE_WINDOW_MS,
    limit: rules.jobsPerHour,
  };
}

/** The columns a transition may change, as stored. */
export function changedValues(next: Job, changes: Partial<Job>) {
  return {
    state: next.state,
    imageId: next.imageId ?? null,
    finalReason: next.finalReason ?? null,
    progress: next.progress,
    slowNotified: next.slowNotified ? 1 : 0,
    finishedAt: next.finishedAt ?? null,
    decision: next.decision ?? null,
    decidedBy: next.decidedBy ?? null,
    decidedAt: next.decidedAt ?? null,
    cancelledBy: next.cancelledBy ?? null,
    cancelledAt: next.cancelledAt ?? null,
    afterSteps: afterStepsJson(next.after),
    // A job that has just become the watcher's work (approved, cancelling, copies to start) is due at once.
    checkNow: changes.state === "queued" || changes.state === "cancelling" || changes.state === "finishing",
  } as const;
}
