/**
 * A job is one requested image, from acceptance to a final state. Every state change goes through
 * `transition`, a pure function, so the rules live in one place and are tested exhaustively.
 */
import type { Tag } from "./image-request.js";

export const JOB_STATES = ["queued", "pending", "available", "failed", "refused", "timed_out"] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINAL_STATES: ReadonlySet<JobState> = new Set(["available", "failed", "refused", "timed_out"]);

/** Image states EC2 reports (DescribeImages State). */
export type ImageState =
  | "pending"
  | "available"
  | "invalid"
  | "deregistered"
  | "transient"
  | "failed"
  | "error"
  | "disabled";

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
  | "requester_note";

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
  | { readonly type: "gave_up" };

export interface Transition {
  readonly changes: Partial<
    Pick<Job, "state" | "imageId" | "finalReason" | "progress" | "slowNotified" | "finishedAt">
  >;
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
): Transition {
  return {
    changes: { state, finishedAt: now, finalReason },
    notices: [{ kind: notice, key: notice }, ...extra, { kind: "root_update", key: "root_update" }],
  };
}

/** The one place that decides what an event does to a job, and what the thread must be told. */
export function transition(job: Job, event: JobEvent, now: number): Transition {
  if (isFinal(job.state)) return NO_CHANGE;
  switch (event.type) {
    case "image_created":
      if (job.state !== "queued") return NO_CHANGE;
      return {
        changes: { state: "pending", imageId: event.imageId },
        notices: [{ kind: "pending", key: "pending" }],
      };
    case "create_refused":
      if (job.state !== "queued") return NO_CHANGE;
      return finish("refused", now, event.reason, "refused", [
        { kind: "requester_note", key: "requester_note" },
      ]);
    case "image_state":
      if (job.state !== "pending") return NO_CHANGE;
      if (event.state === "available") return finish("available", now, undefined, "available");
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
      if (job.slowNotified) return NO_CHANGE;
      return { changes: { slowNotified: true }, notices: [{ kind: "slow", key: "slow" }] };
    case "gave_up":
      return finish(
        "timed_out",
        now,
        job.state === "queued"
          ? "AWS could not be reached to create the image in time."
          : "The image was still not available when ami-bot stopped watching.",
        "timed_out",
        [{ kind: "requester_note", key: "requester_note" }],
      );
  }
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
