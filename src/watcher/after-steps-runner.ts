/**
 * The steps after a job's image is available: a copy into each chosen region, followed until it is
 * available or failed, and sharing of each image (the source, then each copy once available) with the
 * chosen accounts. Each step runs under its own session and ends on its own: one region failing, or one
 * share refused, does not stop the others, and the job ends once every step has. Crash-safe like
 * CreateImage: the attempt is stored before CopyImage, a restart looks for the copy by its tags before
 * calling again, and the call's ClientToken makes AWS answer a repeat with the first copy.
 */
import type { AccessDecision } from "../domain/access.js";
import type { CopyStep } from "../domain/after-steps.js";
import type { Job, JobEvent } from "../domain/job.js";
import type {
  Clock,
  ImageService,
  ImageStatus,
  JobStore,
  Place,
  Requester,
  StepHook,
} from "../domain/ports.js";
import type { Target, WatcherSettings } from "../domain/target.js";
import { AwsRefusedError, PartialShareError } from "../errors.js";
import type { Logger } from "../logger.js";

export interface AfterStepsDeps {
  readonly store: JobStore;
  readonly images: ImageService;
  readonly targets: ReadonlyMap<string, Target>;
  readonly settings: WatcherSettings;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly onStep?: StepHook;
  /** True once the bot is stopping: a call cut short then is no failure of the step's. */
  readonly stopping?: () => boolean;
  /**
   * The requester's access to the job's target now (as the watcher asks before CreateImage): copies and
   * shares run in their name, so a person whose access was withdrawn starts none. Throws when it cannot
   * be told; the steps then wait. Without it, no re-check is made.
   */
  readonly accessNow?: (job: Job) => Promise<AccessDecision>;
}

/** A step whose calls keep failing for passing reasons (throttling, outages) ends after this many tries. */
const MAX_STEP_ATTEMPTS = 6;
const MAX_BACKOFF_MS = 15 * 60_000;

/** What EC2 said of images, by id, asked once per account and region for many jobs (see imagesToCheck). */
export type KnownImages = ReadonlyMap<string, ImageStatus>;

/**
 * The images whose state the finishing jobs need now, by place: each source waiting to be shared, and each
 * copy pending or waiting to be shared. Asked in one DescribeImages per place (as the watcher asks for pending
 * images) rather than one per image and job.
 */
export function imagesToCheck(
  jobs: readonly Job[],
  targets: ReadonlyMap<string, Target>,
): { place: Place; imageIds: string[] }[] {
  const byPlace = new Map<string, { place: Place; imageIds: string[] }>();
  const add = (target: Target, region: string, imageId: string) => {
    const key = `${target.name}|${region}`;
    const entry = byPlace.get(key) ?? { place: { target, region }, imageIds: [] };
    entry.imageIds.push(imageId);
    byPlace.set(key, entry);
  };
  for (const job of jobs) {
    const target = targets.get(job.targetName);
    if (!target || target.roleArn !== job.roleArn || !job.after) continue;
    if (job.imageId && job.after.share?.state === "waiting") add(target, job.region, job.imageId);
    for (const c of job.after.copies)
      if (c.imageId && (c.state === "pending" || (c.state === "available" && c.share?.state === "waiting")))
        add(target, c.region, c.imageId);
  }
  return [...byPlace.values()];
}

/** Advances one finishing job's steps as far as they go now, then schedules its next look. */
export function createAfterStepsRunner(
  deps: AfterStepsDeps,
): (job: Job, known?: KnownImages) => Promise<void> {
  const { store, images, settings, clock, logger } = deps;
  const step: StepHook = deps.onStep ?? (() => {});

  return async function runAfterSteps(job: Job, known?: KnownImages): Promise<void> {
    /** An image's status: from the batch asked for this tick, or, when it had none, asked now. */
    const statusOf = async (place: Place, imageId: string) =>
      known?.get(imageId) ?? (await images.describeImages(place, [imageId])).get(imageId);
    const after = job.after;
    const sourceImage = job.imageId;
    // The image had giveUpAfter to become available and each copy has as long again: beyond both, whatever
    // is still open (a share retried for ever, say) ends, and the job with it.
    const overdue = clock.now() - (job.decidedAt ?? job.createdAt) >= 2 * settings.giveUpAfterMs;
    const requester: Requester = { userId: job.requestedBy, channelId: job.channelId };
    const target = deps.targets.get(job.targetName);
    const source: Place | undefined =
      target && target.roleArn === job.roleArn ? { target, region: job.region } : undefined;
    if (!after || !sourceImage || overdue) {
      // One last look first: a copy that became available meanwhile is reported as such, not as abandoned.
      for (const copy of after?.copies ?? []) {
        const destination = source && destinationOf(source.target, copy.region);
        if (copy.state !== "pending" || !copy.imageId || !destination) continue;
        const status = await statusOf(destination.place, copy.imageId).catch(() => undefined);
        if (status)
          await store.apply(
            job.id,
            { type: "copy_state", region: copy.region, state: status.state, reason: status.reason },
            clock.now(),
          );
      }
      await store.apply(job.id, { type: "gave_up" }, clock.now());
      return;
    }

    /**
     * Copies and shares act in the requester's name: before the first call that starts one, their access to
     * the target is asked again (once per round), as before CreateImage. Undefined: still allowed.
     */
    let access: Promise<string | undefined> | undefined;
    const withdrawnNow = (): Promise<string | undefined> => {
      access ??= (async () => {
        if (!deps.accessNow) return undefined;
        let decision: AccessDecision;
        try {
          decision = await deps.accessNow(job);
        } catch (error) {
          throw new AccessUnknownError(error);
        }
        if (decision.allowed) return undefined;
        logger.info(
          { jobId: job.id, user: job.requestedBy, target: job.targetName, reason: decision.reason },
          "access withdrawn before a step after the image; not starting it",
        );
        return `Your access to target ${job.targetName} changed since you asked (${decision.reason}), so ami-bot did not start this step.`;
      })();
      return access;
    };
    /** Throws the refusal when the requester may no longer start a step. */
    const stillAllowed = async () => {
      const withdrawn = await withdrawnNow();
      if (withdrawn) throw new AwsRefusedError("access_denied", withdrawn, false);
    };
    /** Slack could not say: the steps wait for the next round, without using up a try. */
    let accessUnknown = false;
    /** Copies whose CopyImage was called this round (their attempt stored). */
    const attempted = new Set<string>();
    /** Passing failures this round: the job backs off, and a step failing too often ends. */
    const passing: { region: string; kind: "copy" | "share"; message: string }[] = [];

    /** Runs one step's calls: a refusal ends that step; a passing failure is retried on a later round. */
    const attempt = async (
      region: string,
      kind: "copy" | "share",
      work: () => Promise<void>,
      /** Before giving up: true when the step turned out done after all (a copy AWS made). */
      lastLook?: () => Promise<boolean>,
    ): Promise<void> => {
      try {
        await work();
      } catch (error) {
        // Cut short by a shutdown: tried again on the next start, without using up a try.
        if (deps.stopping?.()) return;
        if (error instanceof AccessUnknownError) {
          accessUnknown = true;
          logger.warn(
            { jobId: job.id, err: error.cause },
            "could not re-check access for a step after the image",
          );
          return;
        }
        const refused = error instanceof AwsRefusedError && !error.retryable;
        const message =
          error instanceof AwsRefusedError ? error.userMessage : "unexpected error (see the bot's log)";
        logger.warn({ jobId: job.id, region, step: kind, err: error }, "a step after the image failed");
        if (refused || job.attempts + 1 >= MAX_STEP_ATTEMPTS) {
          if (await lastLook?.().catch(() => false)) return;
          // A passing failure's message promises a retry; the give-up says what kept failing instead.
          const reason = refused
            ? message
            : `${message.split(/[;.]/)[0]}: ami-bot tried ${MAX_STEP_ATTEMPTS} times without success and stopped this step.`;
          const event: JobEvent =
            kind === "copy"
              ? { type: "copy_refused", region, reason }
              : {
                  type: "share_refused",
                  region,
                  reason,
                  ...(error instanceof PartialShareError && { launchOnly: true }),
                };
          await store.apply(job.id, event, clock.now());
        } else passing.push({ region, kind, message });
      }
    };

    const share = (place: Place, imageId: string, snapshotIds: readonly string[]) =>
      attempt(place.region, "share", async () => {
        // The account owner may have withdrawn an account since the form was sent: nothing is shared then.
        const withdrawn = after.shareWith.filter((a) => !place.target.after.shareWith.includes(a));
        if (withdrawn.length === 0) await stillAllowed();
        if (withdrawn.length > 0)
          throw new AwsRefusedError(
            "unknown",
            `Sharing with ${withdrawn.join(", ")} is no longer offered for target ${job.targetName}, so ami-bot shared the image with no one.`,
            false,
          );
        await images.shareImage(place, requester, {
          jobId: job.id,
          imageId,
          snapshotIds,
          accounts: after.shareWith,
        });
        step(`image_shared:${place.region}`);
        await store.apply(job.id, { type: "image_shared", region: place.region }, clock.now());
      });

    /** Ends a copy's open step (the copy, or its share once available) without another call to AWS. */
    const stopFollowing = (copy: CopyStep, reason: string) =>
      store.apply(
        job.id,
        copy.state === "available"
          ? { type: "share_refused", region: copy.region, reason }
          : { type: "copy_refused", region: copy.region, reason, mayExist: copy.attemptedAt !== undefined },
        clock.now(),
      );

    if (!source) {
      // The target was removed, or points at another account now: no step can reach the images.
      const reason = `Target ${job.targetName} is no longer configured for this account, so ami-bot cannot reach the image.`;
      for (const copy of after.copies) await stopFollowing(copy, reason);
      await store.apply(job.id, { type: "share_refused", region: job.region, reason }, clock.now());
      return;
    }

    if (after.share?.state === "waiting") {
      await attempt(job.region, "share", async () => {
        const status = await statusOf(source, sourceImage);
        if (!status) throw new AwsRefusedError("aws_unavailable", "AWS did not show the image yet.", true);
        await share(source, sourceImage, status.snapshotIds);
      });
    }

    for (const copy of after.copies) {
      const destination = destinationOf(source.target, copy.region);
      if (!destination) {
        await stopFollowing(
          copy,
          `Copies to ${copy.region} are no longer offered for target ${job.targetName}, so ami-bot stopped following this one.`,
        );
        continue;
      }
      if (copy.state === "waiting")
        await attempt(
          copy.region,
          "copy",
          () => startCopy(copy, destination),
          // An earlier call (or this one, unanswered) may have made the copy: adopt it rather than fail it.
          async () => {
            if (copy.attemptedAt === undefined && !attempted.has(copy.region)) return false;
            const found = await images.findCopy(destination.place, job.id, sourceImage);
            if (found)
              await store.apply(
                job.id,
                { type: "copy_created", region: copy.region, imageId: found },
                clock.now(),
              );
            return found !== undefined;
          },
        );
      else if (copy.state === "pending" && copy.imageId) {
        const copyId = copy.imageId;
        await attempt(copy.region, "copy", async () => {
          const status = await statusOf(destination.place, copyId);
          const now = clock.now();
          if (status) {
            const next = await store.apply(
              job.id,
              { type: "copy_state", region: copy.region, state: status.state, reason: status.reason },
              now,
            );
            const done = next?.after?.copies.find((c) => c.region === copy.region);
            if (done?.state === "available" && done.share?.state === "waiting")
              await share(destination.place, copyId, status.snapshotIds);
            if (done?.state !== "pending") return;
          }
          // Copies of large volumes take hours; past the watcher's limit the step ends, the rest go on.
          if (now - (copy.attemptedAt ?? job.updatedAt) >= settings.giveUpAfterMs)
            await store.apply(
              job.id,
              {
                type: "copy_refused",
                region: copy.region,
                reason: `It was still not available after ${duration(settings.giveUpAfterMs)}; ami-bot stopped following it. Check it in the EC2 console.`,
              },
              now,
            );
        });
      } else if (copy.state === "available" && copy.imageId && copy.share?.state === "waiting") {
        const copyId = copy.imageId;
        await attempt(copy.region, "share", async () => {
          const status = await statusOf(destination.place, copyId);
          if (!status) throw new AwsRefusedError("aws_unavailable", "AWS did not show the copy.", true);
          await share(destination.place, copyId, status.snapshotIds);
        });
      }
    }

    const now = clock.now();
    if (passing.length > 0) {
      const backoff = Math.min(settings.pollIntervalMs * 2 ** job.attempts, MAX_BACKOFF_MS);
      const first = passing[0];
      await store.recordError(
        job.id,
        `${first?.kind} ${first?.region}: ${first?.message ?? ""}`,
        now + backoff,
        now,
      );
    } else if (accessUnknown) {
      await store.scheduleNext(job.id, now + settings.pollIntervalMs, now);
    } else {
      // Copies of large volumes take hours: after slowAfter, they are looked at as seldom as slow images.
      const slow = after.copies.some(
        (c) => c.state === "pending" && now - (c.attemptedAt ?? now) >= settings.slowAfterMs,
      );
      await store.scheduleNext(
        job.id,
        now + (slow ? settings.slowPollIntervalMs : settings.pollIntervalMs),
        now,
      );
    }

    async function startCopy(copy: CopyStep, destination: { place: Place; kmsKeyId: string | undefined }) {
      if (!sourceImage) return;
      if (copy.attemptedAt !== undefined) {
        // An earlier call may have made the copy without its id being stored (a crash, a lost answer).
        const found = await images.findCopy(destination.place, job.id, sourceImage);
        if (found) {
          await store.apply(
            job.id,
            { type: "copy_created", region: copy.region, imageId: found },
            clock.now(),
          );
          return;
        }
        // Not findable yet (tag filters lag): the same ClientToken makes AWS answer with that copy if it exists.
        if (!(await store.holds(job.id, clock.now()))) return;
        await stillAllowed();
      } else {
        await stillAllowed();
        if (!(await store.applyHeld(job.id, { type: "copy_attempted", region: copy.region }, clock.now())))
          return;
        attempted.add(copy.region);
      }
      step(`copy_attempted:${copy.region}`);
      const imageId = await images.copyImage(destination.place, requester, {
        jobId: job.id,
        sourceRegion: job.region,
        sourceImageId: sourceImage,
        instanceId: job.instanceId,
        imageName: job.imageName,
        description: job.description,
        tags: job.tags,
        kmsKeyId: destination.kmsKeyId,
      });
      step("copy_image_returned");
      await store.apply(job.id, { type: "copy_created", region: copy.region, imageId }, clock.now());
      step("copy_id_stored");
      logger.info({ jobId: job.id, imageId, region: copy.region }, "image copy started");
    }
  };
}

/** Slack could not tell whether the requester may still use the target. */
class AccessUnknownError extends Error {
  constructor(cause: unknown) {
    super("ami-bot could not re-check your access with Slack.", { cause });
  }
}

/** "24 h", or "20 min" for limits under an hour. */
function duration(ms: number): string {
  return ms >= 3_600_000 ? `${Math.round(ms / 3_600_000)} h` : `${Math.max(1, Math.round(ms / 60_000))} min`;
}

/** The copy's place and key, while the target still offers that region. */
function destinationOf(
  target: Target,
  region: string,
): { place: Place; kmsKeyId: string | undefined } | undefined {
  const offered = target.after.copyTo.find((d) => d.region === region);
  return offered ? { place: { target, region }, kmsKeyId: offered.kmsKeyId } : undefined;
}
