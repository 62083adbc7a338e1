/**
 * The jobs and outbox rows as both stores keep them (the same columns on SQLite and Postgres: times in epoch
 * ms, flags as 0/1, JSON as text), and their mapping to the domain's types.
 */
import type { Tag } from "../domain/image-request.js";
import type { Decision, Job, JobState, Notice } from "../domain/job.js";
import type { OutboxMessage } from "../domain/ports.js";

/** The unfinished states as SQL, written once: partial indexes are used only by queries with the same text. */
export const UNFINISHED = "('awaiting_approval','queued','pending','cancelling')";

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
