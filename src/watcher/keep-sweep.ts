/**
 * The keep rule's sweep: for each target with a rule, in each of its regions and those its images are
 * copied into, list the images ami-bot made, keep only those of this target's finished jobs (by their
 * `ami-bot:job-id` tag, looked up in this bot's store), choose what goes (domain/keep-rule.ts), keep those a
 * launch template uses, deregister the rest with their snapshots, and post one summary per target. Once a day per
 * target: an hourly check claims the target's day in the store, so of several replicas one sweeps. A region
 * or a target failing never stops the others; the summary says what went wrong.
 */

import { isFinal } from "../domain/job.js";
import {
  type BotImage,
  type FailedImage,
  type KeepDecision,
  type RemovedImage,
  type SweepReport,
  selectRemovals,
  sweepWorthTelling,
} from "../domain/keep-rule.js";
import type { Clock, ImageCleanup, JobStore, Place, Requester } from "../domain/ports.js";
import type { KeepRule, Target } from "../domain/target.js";
import { AwsRefusedError } from "../errors.js";
import type { Logger } from "../logger.js";

/**
 * The daily sweep's SourceIdentity (CloudTrail's name for its removals). deploy/target-role.yaml repeats it
 * as a literal: with AllowCleanup=true, the role's BotReadersNeverDelete Deny exempts exactly this name, so
 * the daily sweep may deregister what ami-bot made while every other ami-bot-* identity (watcher, picker,
 * doctor, the sweep's reads) stays refused. Change both together.
 */
export const KEEP_RULE_IDENTITY = "ami-bot-keep-rule";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/**
 * A day less this counts as a day: hourly checks drift by a few ms each, and a claim refused for 1 ms would
 * push the sweep an hour later every day.
 */
const CLAIM_SLACK_MS = 10 * 60_000;

export interface KeepSweepDeps {
  /** Claims each target's day, and tells which job an image's `ami-bot:job-id` tag names. */
  readonly store: Pick<JobStore, "claimSweep" | "get">;
  readonly cleanup: ImageCleanup;
  readonly targets: readonly Target[];
  readonly clock: Clock;
  readonly logger: Logger;
  /** Posts a sweep's summary to the rule's channel; throws when Slack refuses. */
  readonly postSummary: (channel: string, report: SweepReport) => Promise<void>;
  /** How often each target is swept (default a day). */
  readonly everyMs?: number;
  /** How often the timer looks for targets whose day has come (default an hour). */
  readonly checkEveryMs?: number;
  /** The first look after start (default a minute, so a bot starting up is not also sweeping). */
  readonly firstCheckMs?: number;
  /**
   * Who the daily sweep's removal sessions name in CloudTrail (SourceIdentity); default KEEP_RULE_IDENTITY,
   * the one ami-bot-* name the target role lets remove images (only with AllowCleanup=true).
   */
  readonly identity?: string;
}

export interface SweepOptions {
  /** Touch nothing: list and choose only. */
  readonly preview: boolean;
  /** Whom the removal sessions name (an admin's own user id for `/ami cleanup run`); default the sweep's identity. */
  readonly requester?: Requester;
  /** Post the summary to the rule's channel: always, never, or only when it has something to tell. */
  readonly post: "always" | "never" | "when_worth_telling";
}

export interface SweepResult {
  readonly report: SweepReport;
  /** Why the summary could not be posted to the rule's channel, when it was to be and was not. */
  readonly postError: string | undefined;
}

export interface KeepSweep {
  start(): void;
  /** Stops the timer; a sweep in progress starts no further removal and gets `graceMs` (default 5 s) to end. */
  stop(options?: { graceMs?: number; cutShort?: () => void }): Promise<void>;
  /** Sweeps one target now (the `/ami cleanup` command). Throws when its rule is gone. */
  sweep(target: Target, options: SweepOptions): Promise<SweepResult>;
  /** A sweep of this target is running in this process. */
  isRunning(targetName: string): boolean;
  /** One look: claims and sweeps every target whose day has come. Exposed for tests. */
  check(): Promise<void>;
}

/** Where a target's images live: its regions, then those it copies into, each once. */
export function sweepRegions(target: Target): string[] {
  return [...new Set([...target.regions, ...target.after.copyTo.map((c) => c.region)])];
}

function plainError(error: unknown): string {
  return error instanceof AwsRefusedError ? error.userMessage : "unexpected error (see ami-bot's log)";
}

interface RegionResult {
  readonly removed: RemovedImage[];
  readonly keptProtected: KeepDecision[];
  readonly keptInUse: KeepDecision[];
  readonly failed: FailedImage[];
  /** Images tagged `ami-bot:job-id` that are not this target's finished jobs, so neither weighed nor removed. */
  leftAlone: number;
  error?: string;
}

/** Whether a job id names a job of this target that has ended; each id is looked up once per sweep. */
type JobCheck = (jobId: string) => Promise<boolean>;

export function createKeepSweep(deps: KeepSweepDeps): KeepSweep {
  const { store, cleanup, clock, logger } = deps;
  const everyMs = deps.everyMs ?? DAY_MS;
  const checkEveryMs = deps.checkEveryMs ?? HOUR_MS;
  const identity = deps.identity ?? KEEP_RULE_IDENTITY;
  const running = new Map<string, Promise<SweepResult>>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = true;
  /** Set by stop(): sweeps in progress start no further DeregisterImage. */
  let stopping = false;

  async function sweepRegion(
    target: Target,
    rule: KeepRule,
    region: string,
    options: SweepOptions & { requester: Requester },
    now: number,
    finishedJobOfTarget: JobCheck,
  ): Promise<RegionResult> {
    const out: RegionResult = { removed: [], keptProtected: [], keptInUse: [], failed: [], leftAlone: 0 };
    const place: Place = { target, region };
    const log = logger.child({ target: target.name, region });
    let step = "list the images";
    try {
      const listed = await cleanup.listBotImages(place);
      step = "look up the jobs that made the images";
      // Only this target's finished jobs: the tag alone does not say whose image it is (another target on
      // the same role, another ami-bot on the account), and an unfinished job's image may still be copied.
      // Copies carry their source's job id, so they follow their job.
      const images: BotImage[] = [];
      for (const image of listed) {
        if (!image.jobId) continue;
        if (await finishedJobOfTarget(image.jobId)) images.push(image);
        else out.leftAlone++;
      }
      const first = selectRemovals(images, rule, now);
      step = "check which images launch templates use";
      const inUse =
        first.remove.length > 0
          ? await cleanup.inLaunchTemplates(
              place,
              first.remove.map((d) => d.image.imageId),
            )
          : new Set<string>();
      const chosen = selectRemovals(images, rule, now, inUse);
      out.keptProtected.push(...chosen.keptProtected);
      out.keptInUse.push(...chosen.keptInUse);
      for (const d of chosen.remove) {
        // Defence in depth: the listing filters by the tag, and the session policy requires it too.
        if (!d.image.jobId) continue;
        if (options.preview) {
          out.removed.push({ ...d, alreadyGone: false, snapshotsLeft: [] });
          continue;
        }
        if (stopping) {
          out.failed.push({ ...d, error: "ami-bot was shutting down; the next sweep removes it." });
          continue;
        }
        try {
          const done = await cleanup.deregister(
            place,
            options.requester,
            d.image.imageId,
            d.image.snapshotIds,
          );
          log.info(
            {
              audit: true,
              action: "cleanup_deregister",
              user: options.requester.userId,
              imageId: d.image.imageId,
              jobId: d.image.jobId,
              reasons: d.reasons,
              snapshotsLeft: done.snapshotsLeft,
            },
            done.notFound ? "keep rule: image already gone" : "keep rule: image deregistered",
          );
          out.removed.push({ ...d, alreadyGone: done.notFound, snapshotsLeft: done.snapshotsLeft });
        } catch (error) {
          log.warn({ err: error, imageId: d.image.imageId }, "keep rule: could not deregister an image");
          out.failed.push({ ...d, error: plainError(error) });
        }
      }
    } catch (error) {
      log.warn({ err: error }, `keep rule: could not ${step}`);
      out.error = `could not ${step}: ${plainError(error)}`;
    }
    return out;
  }

  async function run(target: Target, options: SweepOptions): Promise<SweepResult> {
    const rule = target.after.keep;
    if (!rule) throw new Error(`target ${target.name} has no keep rule`);
    const requester = options.requester ?? { userId: identity, channelId: rule.channel };
    const regions = sweepRegions(target);
    const now = clock.now();
    const looked = new Map<string, Promise<boolean>>();
    const isFinishedJobOfTarget = async (jobId: string): Promise<boolean> => {
      // Always awaited: the store is SQLite (answers at once) or Postgres (a promise).
      const job = await store.get(jobId);
      return (
        job !== undefined &&
        job.targetName === target.name &&
        job.roleArn === target.roleArn &&
        isFinal(job.state)
      );
    };
    const finishedJobOfTarget: JobCheck = (jobId) => {
      let answer = looked.get(jobId);
      if (!answer) {
        answer = isFinishedJobOfTarget(jobId);
        looked.set(jobId, answer);
      }
      return answer;
    };
    const results = await Promise.all(
      regions.map((region) =>
        sweepRegion(target, rule, region, { ...options, requester }, now, finishedJobOfTarget),
      ),
    );
    const report: SweepReport = {
      targetName: target.name,
      partition: target.partition,
      rule,
      preview: options.preview,
      regions,
      removed: results.flatMap((r) => r.removed),
      keptProtected: results.flatMap((r) => r.keptProtected),
      keptInUse: results.flatMap((r) => r.keptInUse),
      failed: results.flatMap((r) => r.failed),
      leftAlone: results.reduce((sum, r) => sum + r.leftAlone, 0),
      regionErrors: results.flatMap((r, i) =>
        r.error === undefined ? [] : [{ region: regions[i] as string, error: r.error }],
      ),
    };
    logger.info(
      {
        target: target.name,
        preview: options.preview,
        removed: report.removed.length,
        keptProtected: report.keptProtected.length,
        keptInUse: report.keptInUse.length,
        failed: report.failed.length,
        leftAlone: report.leftAlone,
        regionErrors: report.regionErrors.length,
      },
      options.preview ? "keep rule previewed" : "keep rule swept",
    );
    const post =
      options.post === "always" || (options.post === "when_worth_telling" && sweepWorthTelling(report));
    if (!post) return { report, postError: undefined };
    try {
      await deps.postSummary(rule.channel, report);
      return { report, postError: undefined };
    } catch (error) {
      logger.error(
        { err: error, target: target.name, channel: rule.channel },
        "could not post a cleanup summary",
      );
      return { report, postError: (error as { message?: string })?.message ?? String(error) };
    }
  }

  /** One sweep per target at a time in this process (the daily one and a command's). */
  function sweep(target: Target, options: SweepOptions): Promise<SweepResult> {
    const key = target.name;
    const ongoing = running.get(key);
    if (ongoing && !options.preview) return ongoing;
    const task = run(target, options);
    if (!options.preview) {
      running.set(key, task);
      void task.finally(() => running.delete(key)).catch(() => undefined);
    }
    return task;
  }

  async function check(): Promise<void> {
    const due = deps.targets.filter((t) => t.after.keep !== undefined && !running.has(t.name));
    await Promise.all(
      due.map(async (target) => {
        try {
          if (stopping || !(await store.claimSweep(target.name, clock.now(), everyMs - CLAIM_SLACK_MS)))
            return;
          // Stopped while claiming: today's sweep is skipped rather than cut short half way.
          if (stopping) return;
          await sweep(target, { preview: false, post: "when_worth_telling" });
        } catch (error) {
          logger.error({ err: error, target: target.name }, "keep rule sweep failed");
        }
      }),
    );
  }

  function schedule(ms: number): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      void check().finally(() => schedule(checkEveryMs));
    }, ms);
    timer.unref?.();
  }

  /** True when every sweep in progress ended within `ms`. */
  async function settledWithin(ms: number): Promise<boolean> {
    let wait: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => {
      wait = setTimeout(() => resolve(false), ms);
    });
    const done = await Promise.race([Promise.allSettled([...running.values()]).then(() => true), late]);
    clearTimeout(wait);
    return done;
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      stopping = false;
      schedule(deps.firstCheckMs ?? 60_000);
    },
    async stop({ graceMs = 5_000, cutShort } = {}) {
      stopped = true;
      stopping = true;
      clearTimeout(timer);
      if (await settledWithin(graceMs)) return;
      logger.warn({ targets: [...running.keys()] }, "cutting short a keep rule sweep to stop");
      cutShort?.();
      await settledWithin(2_000);
    },
    sweep,
    isRunning: (name) => running.has(name),
    check,
  };
}
