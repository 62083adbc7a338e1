/**
 * The keep rule: which of the images ami-bot made in one place go. Pure: the sweep lists the images, asks
 * this which are beyond the rule, asks AWS which of those a launch template uses, and asks this again with
 * that answer. What it keeps for a reason (protection, a launch template) is returned too, so the summary
 * can say why an old image is still there.
 */
import type { KeepRule } from "./target.js";

/** The tag every image and snapshot ami-bot makes carries; nothing without it is ever removed. */
export const JOB_ID_TAG = "ami-bot:job-id";
/** The instance an image was made from, as ami-bot tags it (copies carry it too; AWS's SourceInstanceId does not). */
export const INSTANCE_ID_TAG = "ami-bot:instance-id";

/** One image as DescribeImages shows it, with what the rule weighs. */
export interface BotImage {
  readonly imageId: string;
  readonly region: string;
  readonly name: string | undefined;
  /** CreationDate in epoch ms; undefined when AWS gave none that parses (such an image is never removed). */
  readonly createdAt: number | undefined;
  /** The `ami-bot:instance-id` tag, or else AWS's SourceInstanceId; undefined when neither is known. */
  readonly instanceId: string | undefined;
  /** The `ami-bot:job-id` tag; undefined for an image ami-bot did not make (never removed). */
  readonly jobId: string | undefined;
  /** AWS's image state: only `available` images are weighed. */
  readonly state: string;
  /** Deregistration protection is on (or in its cooldown): AWS would refuse to deregister it. */
  readonly protected: boolean;
  readonly snapshotIds: readonly string[];
}

/** An image the rule would remove, and why in plain words ("older than 90 days"). */
export interface KeepDecision {
  readonly image: BotImage;
  readonly reasons: readonly string[];
}

export interface KeepSelection {
  /** Beyond the rule, and nothing stops their removal. Oldest first. */
  readonly remove: readonly KeepDecision[];
  /** Beyond the rule, kept because deregistration protection is on. */
  readonly keptProtected: readonly KeepDecision[];
  /** Beyond the rule, kept because a launch template's $Latest or $Default version names them. */
  readonly keptInUse: readonly KeepDecision[];
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** A rule's age in the words the summary uses: "90 days", "36 hours", "1 day". */
export function describeAge(ms: number): string {
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (ms % DAY_MS === 0) return plural(ms / DAY_MS, "day");
  if (ms % HOUR_MS === 0) return plural(ms / HOUR_MS, "hour");
  return plural(Math.max(1, Math.round(ms / 60_000)), "minute");
}

/** The rule in one sentence: "the newest 5 per instance and region, none older than 90 days". */
export function describeKeepRule(rule: KeepRule): string {
  const parts = [
    rule.lastPerInstance !== undefined && `the newest ${rule.lastPerInstance} per instance and region`,
    rule.maxAgeMs !== undefined && `none older than ${describeAge(rule.maxAgeMs)}`,
  ].filter((p): p is string => typeof p === "string");
  return parts.length > 0 ? parts.join(", ") : "every image (no limit set)";
}

/** Newest first; equal times by id, so the order never depends on how AWS listed them. */
function newestFirst(a: BotImage, b: BotImage): number {
  return (b.createdAt ?? 0) - (a.createdAt ?? 0) || a.imageId.localeCompare(b.imageId);
}

/**
 * Which images go. Weighed: available images carrying the job-id tag with a known creation time; anything
 * else (an image ami-bot did not make, one still pending or failed) is neither removed nor counted. An
 * image goes when it is older than `maxAgeMs`, or when its instance has `lastPerInstance` newer ones in the
 * same region (each region keeps its own newest N, so a copy never stands in for the source). Images whose
 * instance is unknown are weighed only by age. A protected image, or one in `inUse`, still counts among
 * the newest N but is kept: the rule never removes a newer one in its place.
 */
export function selectRemovals(
  images: readonly BotImage[],
  rule: KeepRule,
  now: number,
  inUse: ReadonlySet<string> = new Set(),
): KeepSelection {
  const weighed = images.filter(
    (i) => i.jobId !== undefined && i.jobId !== "" && i.state === "available" && i.createdAt !== undefined,
  );
  const reasons = new Map<string, string[]>();
  const add = (image: BotImage, reason: string) =>
    reasons.set(image.imageId, [...(reasons.get(image.imageId) ?? []), reason]);
  if (rule.maxAgeMs !== undefined) {
    const age = describeAge(rule.maxAgeMs);
    for (const image of weighed)
      if (now - (image.createdAt ?? now) > rule.maxAgeMs) add(image, `older than ${age}`);
  }
  if (rule.lastPerInstance !== undefined) {
    const groups = new Map<string, BotImage[]>();
    for (const image of weighed) {
      if (image.instanceId === undefined) continue;
      const key = `${image.instanceId}|${image.region}`;
      groups.set(key, [...(groups.get(key) ?? []), image]);
    }
    for (const group of groups.values())
      for (const image of [...group].sort(newestFirst).slice(rule.lastPerInstance))
        add(image, `beyond the newest ${rule.lastPerInstance} of ${image.instanceId} in ${image.region}`);
  }
  const decided = weighed
    .filter((i) => reasons.has(i.imageId))
    .sort((a, b) => -newestFirst(a, b))
    .map((image) => ({ image, reasons: reasons.get(image.imageId) ?? [] }));
  return {
    remove: decided.filter((d) => !d.image.protected && !inUse.has(d.image.imageId)),
    keptProtected: decided.filter((d) => d.image.protected),
    keptInUse: decided.filter((d) => !d.image.protected && inUse.has(d.image.imageId)),
  };
}

/** What became of one image the sweep tried to remove. */
export interface RemovedImage extends KeepDecision {
  /** AWS no longer had it (removed meanwhile): nothing to do, nothing left. */
  readonly alreadyGone: boolean;
  /** Snapshots AWS kept when it deregistered the image, with its reason code (`missing-permissions`, …). */
  readonly snapshotsLeft: readonly { readonly snapshotId: string; readonly code: string }[];
}

export interface FailedImage extends KeepDecision {
  /** Why AWS did not remove it, in plain words. */
  readonly error: string;
}

/**
 * One sweep of one target: across its regions (and those its images are copied into), what went, what
 * stayed and why, and what could not be done. A preview lists in `removed` what a run would remove.
 */
export interface SweepReport {
  readonly targetName: string;
  readonly partition: string;
  readonly rule: KeepRule;
  readonly preview: boolean;
  readonly regions: readonly string[];
  readonly removed: readonly RemovedImage[];
  readonly keptProtected: readonly KeepDecision[];
  readonly keptInUse: readonly KeepDecision[];
  readonly failed: readonly FailedImage[];
  /**
   * Images tagged `ami-bot:job-id` neither weighed nor removed because the tag does not name a finished job
   * of this target in this bot's store: another target's, another ami-bot's, or one still running.
   */
  readonly leftAlone: number;
  /** A region where nothing could be weighed or removed at all (listing failed, role refused). */
  readonly regionErrors: readonly { readonly region: string; readonly error: string }[];
}

/**
 * Whether a daily sweep has anything to say: something went, or failed. What it kept (protected, in a launch
 * template, not this target's) is told only alongside: the same protected image would otherwise post every day.
 */
export function sweepWorthTelling(report: SweepReport): boolean {
  return report.removed.length > 0 || report.failed.length > 0 || report.regionErrors.length > 0;
}
