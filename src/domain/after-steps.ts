/**
 * What follows a job's image once it is available: a copy into each region the person ticked, and launch
 * and create-volume permission on each image (the source and every copy) for each account they ticked.
 * Pure: the job's transition applies these, and the watcher asks them what is left to do.
 */
import type { ImageState } from "./job.js";

/** A copy: waiting to be asked for, pending at AWS, or ended. */
export type CopyState = "waiting" | "pending" | "available" | "failed";

/** Sharing one image: waiting for it to be available, done, failed, or skipped (its copy failed). */
export type ShareState = "waiting" | "shared" | "failed" | "skipped";

export interface ImageShare {
  readonly state: ShareState;
  readonly reason?: string | undefined;
  /** Failed after the launch permission went through: the accounts can launch it, not copy its snapshots. */
  readonly launchOnly?: boolean | undefined;
}

export interface CopyStep {
  readonly region: string;
  readonly state: CopyState;
  /** Set just before CopyImage: after a crash the copy may exist without its id stored, and is looked up. */
  readonly attemptedAt?: number | undefined;
  readonly imageId?: string | undefined;
  /** Why the copy failed, in plain words. */
  readonly reason?: string | undefined;
  /** Sharing of this copy, when accounts were chosen. */
  readonly share?: ImageShare | undefined;
  /** AWS made the copy (it has an id) but ami-bot stopped following it: it may yet become available. */
  readonly abandoned?: boolean | undefined;
}

/** The steps chosen for one job, and how far each got. */
export interface AfterSteps {
  /** Accounts every image of the job is shared with (launch + create-volume permission). */
  readonly shareWith: readonly string[];
  readonly copies: readonly CopyStep[];
  /** Sharing of the source image, when accounts were chosen. */
  readonly share?: ImageShare | undefined;
}

/** The steps a person chose in the form, before any ran; undefined when they chose none. */
export function planAfterSteps(
  copyTo: readonly string[],
  shareWith: readonly string[],
): AfterSteps | undefined {
  if (copyTo.length === 0 && shareWith.length === 0) return undefined;
  const share = shareWith.length > 0 ? { state: "waiting" as const } : undefined;
  return {
    shareWith: [...shareWith],
    copies: copyTo.map((region) => ({ region, state: "waiting" as const, ...(share && { share }) })),
    ...(share && { share }),
  };
}

const FAILED_COPY_STATES: ReadonlySet<ImageState> = new Set([
  "failed",
  "invalid",
  "error",
  "deregistered",
  "disabled",
]);

/** Events of the steps after the image, each naming the region it is about. */
export type AfterStepEvent =
  /** CopyImage is about to be called into `region` (stored first, so a crash is known afterwards). */
  | { readonly type: "copy_attempted"; readonly region: string }
  | { readonly type: "copy_created"; readonly region: string; readonly imageId: string }
  | {
      readonly type: "copy_state";
      readonly region: string;
      readonly state: ImageState;
      readonly reason?: string | undefined;
    }
  /** AWS refused the copy, or it could not be made in time: that region's copy ends failed. */
  | {
      readonly type: "copy_refused";
      readonly region: string;
      readonly reason: string;
      /** CopyImage was called with no answer and the copy was not looked for: it may exist. */
      readonly mayExist?: boolean;
    }
  /** The image in `region` (the source's region, or a copy's) is shared with every chosen account. */
  | { readonly type: "image_shared"; readonly region: string }
  | {
      readonly type: "share_refused";
      readonly region: string;
      readonly reason: string;
      /** The launch permission went through; create-volume permission on a snapshot did not. */
      readonly launchOnly?: boolean;
    };

export type AfterStepNoticeKind =
  | "copy_started"
  | "copy_available"
  | "copy_failed"
  | "shared"
  | "share_failed";

export interface AfterStepResult {
  readonly steps: AfterSteps;
  /** Notice kinds to post, each keyed by kind and region. */
  readonly notices: readonly AfterStepNoticeKind[];
}

function withCopy(steps: AfterSteps, region: string, change: (c: CopyStep) => CopyStep): AfterSteps {
  return { ...steps, copies: steps.copies.map((c) => (c.region === region ? change(c) : c)) };
}

/** Applies one step event; undefined when it changes nothing (a repeat, or a region not chosen). */
export function applyAfterStep(
  steps: AfterSteps,
  sourceRegion: string,
  event: AfterStepEvent,
  now: number,
): AfterStepResult | undefined {
  const copy = steps.copies.find((c) => c.region === event.region);
  switch (event.type) {
    case "copy_attempted":
      if (!copy || copy.state !== "waiting") return undefined;
      // A retry after an unanswered call keeps the first attempt's time (its copy may exist): no new notice.
      if (copy.attemptedAt !== undefined) return undefined;
      return {
        steps: withCopy(steps, event.region, (c) => ({ ...c, attemptedAt: now })),
        notices: ["copy_started"],
      };
    case "copy_created":
      if (!copy || copy.state !== "waiting") return undefined;
      return {
        steps: withCopy(steps, event.region, (c) => ({ ...c, state: "pending", imageId: event.imageId })),
        notices: [],
      };
    case "copy_state": {
      if (!copy || copy.state !== "pending") return undefined;
      if (event.state === "available")
        return {
          steps: withCopy(steps, event.region, (c) => ({ ...c, state: "available" })),
          notices: ["copy_available"],
        };
      if (!FAILED_COPY_STATES.has(event.state)) return undefined;
      const reason = event.reason?.trim()
        ? `AWS says: “${event.reason.trim()}”.`
        : `AWS ended the copy as ${event.state}.`;
      return failCopy(steps, event.region, reason);
    }
    case "copy_refused":
      if (!copy || (copy.state !== "waiting" && copy.state !== "pending")) return undefined;
      // A copy AWS made (pending), or may have made, is abandoned, not failed.
      return failCopy(steps, event.region, event.reason, copy.state === "pending" || event.mayExist === true);
    case "image_shared":
    case "share_refused": {
      const share = event.region === sourceRegion ? steps.share : copy?.share;
      if (!share || share.state !== "waiting") return undefined;
      // A copy is shared once it is available, never before.
      if (event.region !== sourceRegion && copy?.state !== "available") return undefined;
      const next: ImageShare =
        event.type === "image_shared"
          ? { state: "shared" }
          : { state: "failed", reason: event.reason, ...(event.launchOnly && { launchOnly: true }) };
      return {
        steps:
          event.region === sourceRegion
            ? { ...steps, share: next }
            : withCopy(steps, event.region, (c) => ({ ...c, share: next })),
        notices: [event.type === "image_shared" ? "shared" : "share_failed"],
      };
    }
  }
}

function failCopy(steps: AfterSteps, region: string, reason: string, abandoned = false): AfterStepResult {
  return {
    steps: withCopy(steps, region, (c) => ({
      ...c,
      state: "failed",
      reason,
      ...(abandoned && { abandoned: true }),
      // There is no copy to share.
      ...(c.share && { share: { state: "skipped" as const } }),
    })),
    notices: ["copy_failed"],
  };
}

/** Every step has ended (each copy available or failed, each share done, failed or skipped). */
export function afterStepsDone(steps: AfterSteps): boolean {
  const shareOpen = (s: ImageShare | undefined) => s?.state === "waiting";
  return (
    !shareOpen(steps.share) &&
    steps.copies.every((c) => (c.state === "available" || c.state === "failed") && !shareOpen(c.share))
  );
}

/** Ends every step still open, with the reason (ami-bot stopped following them). */
export function abandonAfterSteps(steps: AfterSteps, reason: string): AfterSteps {
  const end = (s: ImageShare | undefined): ImageShare | undefined =>
    s?.state === "waiting" ? { state: "failed", reason } : s;
  return {
    ...steps,
    share: end(steps.share),
    copies: steps.copies.map((c) =>
      c.state === "waiting" || c.state === "pending"
        ? {
            ...c,
            state: "failed",
            reason,
            ...((c.state === "pending" || c.attemptedAt !== undefined) && { abandoned: true }),
            ...(c.share && { share: { state: "skipped" as const } }),
          }
        : { ...c, share: end(c.share) },
    ),
  };
}

/** A step's region from its notice key (`copy_available:eu-west-1`). */
export function regionOfKey(key: string): string {
  return key.slice(key.indexOf(":") + 1);
}
