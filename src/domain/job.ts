/**
 * A job is one requested image, from acceptance to a final state. Every state change goes through
 * `transition`, a pure function, so the rules live in one place and are tested exhaustively.
 */
import {
  type AfterStepEvent,
  type AfterStepNoticeKind,
  type AfterSteps,
  abandonAfterSteps,
  afterStepsDone,
  applyAfterStep,
} from "./after-steps.js";
import type { Tag } from "./image-request.js";

export const JOB_STATES = [
  "awaiting_approval",
  "queued",
  "pending",
  "cancelling",
  /** The image is available; the copies and sharing the person asked for are still under way. */
  "finishing",
  "available",
  "failed",
  "refused",
  "timed_out",
  "denied",
  "expired",
  "cancelled",
] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINAL_STATES: ReadonlySet<JobState> = new Set([
  "available",
  "failed",
  "refused",
  "timed_out",
  "denied",
  "expired",
  "cancelled",
]);
/** Unfinished states: the job still holds its instance and the watcher still has work for it. */
export const UNFINISHED_STATES: readonly JobState[] = JOB_STATES.filter((s) => !FINAL_STATES.has(s));
/**
 * States that hold the instance: one such job per instance. A finishing job's image is made, so a new image
 * of the instance may start while its copies run.
 */
export const BUSY_STATES: readonly JobState[] = UNFINISHED_STATES.filter((s) => s !== "finishing");

/** A person's decision on a job waiting for approval. */
export type Decision = "approved" | "denied";

/** Image states EC2 reports (DescribeImages State). */
export const IMAGE_STATES = [
  "pending",
  "available",
  "invalid",
  "deregistered",
  "transient",
  "failed",
  "error",
  "disabled",
] as const;
export type ImageState = (typeof IMAGE_STATES)[number];

export interface Job {
  readonly id: string;
  /** One per modal view: a submission delivered twice maps to the same job. */
  readonly idempotencyKey: string;
  readonly requestedBy: string;
  readonly originChannelId: string;
  readonly targetName: string;
  readonly roleArn: string;
  readonly region: string;
  readonly instanceId: string;
  readonly instanceName: string | undefined;
  readonly imageName: string;
  readonly description: string | undefined;
  readonly noReboot: boolean;
  readonly tags: readonly Tag[];
  /** Device names left out of the image (NoDevice); empty for the whole instance. */
  readonly excludedDevices: readonly string[];
  /** Where the thread lives. May change to the requester's DM when the bot cannot post in the chosen channel. */
  readonly channelId: string;
  /** The root message, once posted: every later update is a reply in its thread. */
  readonly rootChannelId: string | undefined;
  readonly rootTs: string | undefined;
  readonly state: JobState;
  readonly imageId: string | undefined;
  /** Set just before the first CreateImage call: after a crash, the image may exist without us knowing its id. */
  readonly createAttemptedAt: number | undefined;
  readonly attempts: number;
  readonly lastError: string | undefined;
  /** Plain-language reason of a failed or refused job. */
  readonly finalReason: string | undefined;
  readonly progress: number;
  readonly slowNotified: boolean;
  readonly nextCheckAt: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly finishedAt: number | undefined;
  /** When a job waiting for approval ends as expired; undefined for targets without approval. */
  readonly approvalExpiresAt: number | undefined;
  /** Who approved or denied the job, and when. */
  readonly decision: Decision | undefined;
  readonly decidedBy: string | undefined;
  readonly decidedAt: number | undefined;
  /** Who cancelled the job, and when they clicked. */
  readonly cancelledBy: string | undefined;
  readonly cancelledAt: number | undefined;
  /** Set just before DeregisterImage: after a crash the image may already be gone, and is looked up first. */
  readonly deregisterAttemptedAt: number | undefined;
  /** Copies and sharing the person chose in the form, and how far each got; undefined when none. */
  readonly after: AfterSteps | undefined;
}

/** A message the job owes the thread. Stored with the state change and delivered later, exactly once. */
export type NoticeKind =
  | "root"
  | "creating"
  | "pending"
  | "progress"
  | "slow"
  | "checks_failing"
  | "available"
  | "failed"
  | "refused"
  | "timed_out"
  | "root_update"
  | "requester_note"
  /** In the thread: who must approve (their user group mentioned, or the listed people). */
  | "approval_request"
  /** A direct message to one listed approver (`approver_dm:U…`), linking the thread. */
  | "approver_dm"
  | "approved"
  | "denied"
  | "expired"
  | "cancelling"
  | "cancelled"
  | "cancel_failed"
  /** Steps after the image, keyed by region (`copy_available:eu-west-1`). */
  | AfterStepNoticeKind
  /** Once every step after the image has ended: what was copied and shared, and what was not. */
  | "after_done";

export interface Notice {
  readonly kind: NoticeKind;
  /** Unique within the job: the same key is never delivered twice. */
  readonly key: string;
}

export type JobEvent =
  | { readonly type: "image_created"; readonly imageId: string }
  | { readonly type: "create_refused"; readonly reason: string }
  | { readonly type: "image_state"; readonly state: ImageState; readonly reason?: string | undefined }
  | { readonly type: "progress"; readonly percent: number }
  | { readonly type: "slow" }
  | { readonly type: "gave_up" }
  | { readonly type: "approved"; readonly by: string }
  | { readonly type: "denied"; readonly by: string; readonly reason: string | undefined }
  | { readonly type: "approval_expired" }
  /** A person asked to stop the job (requester or approver; checked before). */
  | { readonly type: "cancel_requested"; readonly by: string }
  /** The cancelled job's image is gone (deregistered, or never made). */
  | { readonly type: "cancel_done"; readonly imageExisted: boolean; readonly leftBehind?: string | undefined }
  /** AWS refused to deregister: the image goes on being made and watched. */
  | { readonly type: "cancel_refused"; readonly reason: string }
  | AfterStepEvent;

/** The fields a transition may change. */
export type JobChanges = Partial<
  Pick<
    Job,
    | "state"
    | "imageId"
    | "finalReason"
    | "progress"
    | "slowNotified"
    | "finishedAt"
    | "decision"
    | "decidedBy"
    | "decidedAt"
    | "cancelledBy"
    | "cancelledAt"
    | "after"
  >
>;

export interface Transition {
  readonly changes: JobChanges;
  readonly notices: readonly Notice[];
}

export const NO_CHANGE: Transition = { changes: {}, notices: [] };
export const PROGRESS_MILESTONES = [25, 50, 75] as const;

const FAILED_IMAGE_STATES: ReadonlySet<ImageState> = new Set([
  "failed",
  "invalid",
  "error",
  "deregistered",
  "disabled",
]);

export function isFinal(state: JobState): boolean {
  return FINAL_STATES.has(state);
}

function finish(
  state: JobState,
  now: number,
  finalReason: string | undefined,
  notice: NoticeKind,
  extra: Notice[] = [],
  more: JobChanges = {},
): Transition {
  return {
    changes: { ...more, state, finishedAt: now, finalReason },
    notices: [{ kind: notice, key: notice }, ...extra, { kind: "root_update", key: "root_update" }],
  };
}

function isPastDeadline(job: Job, now: number): boolean {
  return job.approvalExpiresAt !== undefined && now >= job.approvalExpiresAt;
}

function expire(now: number): Transition {
  return finish("expired", now, "Nobody approved or denied it in time.", "expired");
}

/** The one place that decides what an event does to a job, and what the thread must be told. */
export function transition(job: Job, event: JobEvent, now: number): Transition {
  if (isFinal(job.state)) return NO_CHANGE;
  switch (event.type) {
    case "image_created":
      // A cancel that came while CreateImage was in flight: keep the id, so that image is the one removed.
      if (job.state === "cancelling" && job.imageId === undefined)
        return { changes: { imageId: event.imageId }, notices: [] };
      if (job.state !== "queued") return NO_CHANGE;
      return {
        changes: { state: "pending", imageId: event.imageId },
        notices: [{ kind: "pending", key: "pending" }],
      };
    case "create_refused":
      // The CreateImage a cancel overtook was refused. An earlier attempt whose answer was lost may still
      // have made an image, so the cancel looks for it by tag (the watcher's cancel) rather than end here.
      if (job.state === "cancelling") return NO_CHANGE;
      if (job.state !== "queued") return NO_CHANGE;
      return finish("refused", now, event.reason, "refused", [
        { kind: "requester_note", key: "requester_note" },
      ]);
    case "image_state":
      if (job.state !== "pending") return NO_CHANGE;
      if (event.state === "available") {
        // Copies and sharing follow: the thread hears the image is ready now, not when they are done.
        if (job.after && !afterStepsDone(job.after))
          return {
            changes: { state: "finishing" },
            notices: [
              { kind: "available", key: "available" },
              { kind: "root_update", key: "root_update:finishing" },
            ],
          };
        return finish("available", now, undefined, "available");
      }
      if (FAILED_IMAGE_STATES.has(event.state))
        return finish("failed", now, describeImageFailure(event.state, event.reason), "failed", [
          { kind: "requester_note", key: "requester_note" },
        ]);
      return NO_CHANGE; // pending, transient: keep watching
    case "progress": {
      if (job.state !== "pending") return NO_CHANGE;
      const reached = PROGRESS_MILESTONES.filter((m) => event.percent >= m && job.progress < m);
      const top = reached.at(-1);
      // Only the highest milestone crossed is posted, so a fast snapshot does not flood the thread.
      if (top === undefined) return NO_CHANGE;
      return { changes: { progress: top }, notices: [{ kind: "progress", key: `progress:${top}` }] };
    }
    case "slow":
      if (job.slowNotified || (job.state !== "queued" && job.state !== "pending")) return NO_CHANGE;
      return { changes: { slowNotified: true }, notices: [{ kind: "slow", key: "slow" }] };
    case "approved":
      if (job.state !== "awaiting_approval" || event.by === job.requestedBy) return NO_CHANGE;
      // A click after the deadline, before the watcher got to it, finds the job expired.
      if (isPastDeadline(job, now)) return expire(now);
      return {
        changes: { state: "queued", decision: "approved", decidedBy: event.by, decidedAt: now },
        notices: [
          { kind: "approved", key: "approved" },
          { kind: "root_update", key: "root_update:approved" },
        ],
      };
    case "denied":
      if (job.state !== "awaiting_approval" || event.by === job.requestedBy) return NO_CHANGE;
      if (isPastDeadline(job, now)) return expire(now);
      return finish("denied", now, event.reason?.trim() || undefined, "denied", [], {
        decision: "denied",
        decidedBy: event.by,
        decidedAt: now,
      });
    case "approval_expired":
      if (job.state !== "awaiting_approval") return NO_CHANGE;
      return expire(now);
    case "cancel_requested": {
      const who = { cancelledBy: event.by, cancelledAt: now };
      // Nothing was asked of AWS yet: the job simply ends.
      if (
        job.state === "awaiting_approval" ||
        (job.state === "queued" && job.createAttemptedAt === undefined)
      )
        return finish("cancelled", now, undefined, "cancelled", [], who);
      // CreateImage was called (its image may exist) or the image is pending: it must be removed first.
      // Keyed by time: a cancel may be asked again after AWS refused the first one.
      if (job.state === "queued" || job.state === "pending")
        return {
          changes: { ...who, state: "cancelling" },
          notices: [
            { kind: "cancelling", key: `cancelling:${now}` },
            { kind: "root_update", key: `root_update:cancelling:${now}` },
          ],
        };
      return NO_CHANGE;
    }
    case "cancel_done":
      if (job.state !== "cancelling") return NO_CHANGE;
      return finish(
        "cancelled",
        now,
        event.imageExisted ? event.leftBehind : "No image had been made yet.",
        "cancelled",
      );
    case "cancel_refused":
      if (job.state !== "cancelling") return NO_CHANGE;
      // Back to what it was: pending with its image, or queued when CreateImage left no image behind.
      return {
        // finalReason carries why, for the thread's reply, until the job really ends.
        changes: {
          state: job.imageId ? "pending" : "queued",
          cancelledBy: undefined,
          cancelledAt: undefined,
          finalReason: event.reason,
        },
        notices: [
          { kind: "cancel_failed", key: `cancel_failed:${now}` },
          { kind: "root_update", key: `root_update:cancel_failed:${now}` },
        ],
      };
    case "copy_attempted":
    case "copy_created":
    case "copy_state":
    case "copy_refused":
    case "image_shared":
    case "share_refused": {
      if (job.state !== "finishing" || !job.after) return NO_CHANGE;
      const result = applyAfterStep(job.after, job.region, event, now);
      if (!result) return NO_CHANGE;
      const notices = result.notices.map((kind) => ({ kind, key: `${kind}:${event.region}` }));
      if (!afterStepsDone(result.steps)) return { changes: { after: result.steps }, notices };
      return finishAfterSteps(result.steps, now, notices);
    }
    case "gave_up":
      if (job.state === "awaiting_approval") return NO_CHANGE;
      // The image is made: only the steps still open end, and the job with them.
      if (job.state === "finishing")
        return job.after
          ? finishAfterSteps(
              abandonAfterSteps(job.after, "It was still not done when ami-bot stopped following it."),
              now,
              [],
            )
          : finish("available", now, undefined, "after_done");
      return finish(
        "timed_out",
        now,
        job.state === "queued"
          ? "AWS could not be reached to create the image in time."
          : job.state === "cancelling"
            ? "ami-bot could not remove the cancelled image in time; deregister it in the EC2 console."
            : "The image was still not available when ami-bot stopped watching.",
        "timed_out",
        [{ kind: "requester_note", key: "requester_note" }],
      );
  }
}

/** Every step after the image has ended: the job is available, and the thread gets the summary. */
function finishAfterSteps(after: AfterSteps, now: number, notices: readonly Notice[]): Transition {
  return {
    changes: { state: "available", finishedAt: now, after },
    notices: [
      ...notices,
      { kind: "after_done", key: "after_done" },
      { kind: "root_update", key: "root_update" },
    ],
  };
}

/** EC2's StateReason in plain words. */
export function describeImageFailure(state: ImageState, reason: string | undefined): string {
  const detail = reason?.trim() ? ` AWS says: “${reason.trim()}”.` : "";
  switch (state) {
    case "deregistered":
      return `The image was deregistered (deleted) before it became available.${detail}`;
    case "disabled":
      return `The image was disabled.${detail}`;
    case "invalid":
      return `AWS marked the image invalid, usually because a volume could not be snapshotted.${detail}`;
    default:
      return `AWS could not finish the image (state: ${state}).${detail} Check the instance's volumes and try again.`;
  }
}
