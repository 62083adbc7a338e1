/**
 * Drives every unfinished job to its end: creates the image for queued jobs, and checks pending images
 * with one DescribeImages call per account+region. It polls the database, so a restart resumes everything,
 * and it never stops because one job or one account errs: that job is backed off and retried. Nor does it
 * wait on one call: each job's creation and each place's check runs on its own, so a call AWS is slow to
 * answer holds up only its own job or place while later ticks carry on with the rest.
 */
import type { Config, Target, WatcherSettings } from "../config.js";
import type { AccessDecision } from "../domain/access.js";
import { instanceProblem } from "../domain/access-check.js";
import type { Job } from "../domain/job.js";
import type {
  Clock,
  ImageService,
  ImageStatus,
  JobStore,
  Place,
  Requester,
  StepHook,
} from "../domain/ports.js";
import { excludedDevicesProblem } from "../domain/volumes.js";
import { AwsRefusedError } from "../errors.js";
import type { Logger } from "../logger.js";
import { createAfterStepsRunner, imagesToCheck, type KnownImages } from "./after-steps-runner.js";
import { createSemaphore } from "./semaphore.js";

export interface ImageWatcherDeps {
  readonly store: JobStore;
  readonly images: ImageService;
  readonly targets: Config["targets"];
  readonly settings: WatcherSettings;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Called after a tick that queued messages, so they go out promptly. */
  readonly onNotices?: () => void;
  /** Told how long each tick took to claim its jobs and finish their work, in ms (metrics). */
  readonly onTick?: (ms: number) => void;
  /** Upper bound on jobs handled per tick. */
  readonly batchSize?: number;
  /** CreateImage calls in flight at once. */
  readonly createConcurrency?: number;
  /** Finishing jobs (copies and sharing) worked on at once. */
  readonly afterConcurrency?: number;
  readonly onStep?: StepHook;
  /**
   * The requester's access to the job's target as the rules stand now, asked right before CreateImage: the
   * rules (or the person's groups) may have changed since they asked. Throws when it cannot be told (Slack
   * unreachable); the job is then retried later, never created unchecked. Without it, no re-check is made.
   */
  readonly accessNow?: (job: Job) => Promise<AccessDecision>;
}

export interface ImageWatcher {
  start(): void;
  /**
   * Stops scheduling and lets work in progress finish for `graceMs` (default 5 s); then calls `cutShort`
   * (which should end calls to AWS) and waits at most 2 s more.
   */
  stop(options?: { graceMs?: number; cutShort?: () => void }): Promise<void>;
  /** Asks for a tick as soon as possible (a new job, say). */
  wake(): void;
  /** One pass over due jobs; exposed for tests and benchmarks. */
  tick(): Promise<void>;
}

/**
 * How long a finishing job waits for the tick's shared image check before asking for its own images: one
 * place slow to answer must not hold up every finishing job of the tick.
 */
const PREFETCH_WAIT_MS = 5_000;

/** The promise's value, or undefined when it takes longer than `ms`. */
async function withinMs<T>(promise: Promise<T> | undefined, ms: number): Promise<T | undefined> {
  if (!promise) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    timer.unref?.();
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Images missing this long after CreateImage was called were deregistered, not just not yet visible. */
const VANISHED_AFTER_MS = 10 * 60_000;
const MAX_BACKOFF_MS = 15 * 60_000;
const CHECKS_FAILING_AFTER = 3;
/**
 * A queued job whose CreateImage keeps failing for passing reasons (throttling, outages) is refused after
 * this many tries rather than left waiting for hours: the person is told the cause and can try again.
 */
const MAX_CREATE_ATTEMPTS = 6;

export function createImageWatcher(deps: ImageWatcherDeps): ImageWatcher {
  const { store, images, settings, clock, logger } = deps;
  const batchSize = deps.batchSize ?? 2000;
  const createConcurrency = deps.createConcurrency ?? 8;
  const targets = new Map(deps.targets.map((t) => [t.name, t]));
  const step: StepHook = deps.onStep ?? (() => {});
  let timer: NodeJS.Timeout | undefined;
  /** Work started by ticks and not yet settled, and the jobs it covers. */
  const tasks = new Set<Promise<void>>();
  const inFlight = new Set<string>();
  const createSlots = createSemaphore(createConcurrency);
  // Each finishing job makes a few calls, each under a session of its own: a cap keeps a tick with many of
  // them from sending hundreds of AssumeRole and CopyImage at once into one account's throttle.
  const afterSlots = createSemaphore(deps.afterConcurrency ?? 8);
  let stopped = true;
  /** Set by stop(): ticks in progress start no further CreateImage (unset for ticks driven by hand). */
  let stopping = false;
  /** A tick left queued jobs for lack of a free CreateImage slot. */
  let moreQueued = false;

  const runAfterSteps = createAfterStepsRunner({
    store,
    images,
    targets,
    settings,
    clock,
    logger,
    stopping: () => stopping,
    ...(deps.onStep && { onStep: deps.onStep }),
    ...(deps.accessNow && { accessNow: deps.accessNow }),
  });

  const placeOf = (job: Job): Place | undefined => {
    const target: Target | undefined = targets.get(job.targetName);
    // A target pointed at another role (another account) since the job began is not the job's place.
    return target?.regions.includes(job.region) && target.roleArn === job.roleArn
      ? { target, region: job.region }
      : undefined;
  };
  const requesterOf = (job: Job): Requester => ({ userId: job.requestedBy, channelId: job.channelId });
  /** The watcher's clock for a job starts when it may begin: at approval, or when asked for without one. */
  const startOf = (job: Job) => job.decidedAt ?? job.createdAt;
  const interval = (job: Job, now: number) =>
    now - startOf(job) >= settings.slowAfterMs ? settings.slowPollIntervalMs : settings.pollIntervalMs;
  const backoff = (job: Job) => Math.min(settings.pollIntervalMs * 2 ** job.attempts, MAX_BACKOFF_MS);

  async function recordFailure(job: Job, error: unknown, now: number, what?: string): Promise<void> {
    // A call cut short by shutdown is no failure of the job's: it is tried again on the next start.
    if (stopping) return;
    const message =
      what ?? (error instanceof AwsRefusedError ? error.userMessage : "unexpected error (see the bot's log)");
    // (create() has already looked for an image an earlier, unanswered call may have made.)
    if (job.state === "queued" && job.attempts + 1 >= MAX_CREATE_ATTEMPTS) {
      logger.warn({ jobId: job.id, err: error }, "giving up creating the image");
      await store.apply(
        job.id,
        {
          type: "create_refused",
          reason: `${message} ami-bot tried ${MAX_CREATE_ATTEMPTS} times without success; run /ami again later.`,
        },
        now,
      );
      return;
    }
    logger.warn({ jobId: job.id, err: error }, "job check failed; backing off");
    await store.recordError(job.id, message, now + backoff(job), now);
    if (job.attempts + 1 >= CHECKS_FAILING_AFTER && job.state === "pending")
      await store.enqueue(job.id, { kind: "checks_failing", key: "checks_failing" }, now);
  }

  async function giveUpIfOverdue(job: Job, now: number): Promise<boolean> {
    if (now - startOf(job) < settings.giveUpAfterMs) return false;
    await store.apply(job.id, { type: "gave_up" }, now);
    logger.info({ jobId: job.id }, "job timed out");
    return true;
  }

  async function create(job: Job): Promise<void> {
    const now = clock.now();
    const place = placeOf(job);
    if (now - startOf(job) >= settings.giveUpAfterMs) {
      // One last look before giving up: an earlier CreateImage may have made the image after all.
      const found =
        place && job.createAttemptedAt !== undefined
          ? await images.findImageByJob(place, requesterOf(job), job.id).catch(() => undefined)
          : undefined;
      if (found) {
        await store.apply(job.id, { type: "image_created", imageId: found }, clock.now());
        await store.scheduleNext(job.id, clock.now(), clock.now());
      } else await giveUpIfOverdue(job, clock.now());
      return;
    }
    if (!place) {
      await store.apply(
        job.id,
        {
          type: "create_refused",
          reason: `Target ${job.targetName} in ${job.region} is no longer configured.`,
        },
        now,
      );
      return;
    }
    const requester = requesterOf(job);
    let called = job.createAttemptedAt !== undefined;
    try {
      // A crash may have come between CreateImage and storing its answer: look for our tag before calling again.
      if (job.createAttemptedAt !== undefined) {
        const found = await images.findImageByJob(place, requester, job.id);
        if (found) {
          await store.apply(job.id, { type: "image_created", imageId: found }, clock.now());
          await store.scheduleNext(job.id, clock.now() + settings.pollIntervalMs, clock.now());
          return;
        }
      }
      const instance = await images.describeInstance(place, requester, job.instanceId);
      // The channel is shown the name AWS reports, never one a submitted form claimed (or none, when AWS
      // does not know the instance).
      if (instance?.name !== job.instanceName) {
        await store.setInstanceName(job.id, instance?.name, clock.now());
        // A root already posted shows the name it had: rewrite it (own key, so the final rewrite still comes).
        // One not yet posted is drawn from the job as stored when it goes out.
        if (job.rootTs)
          await store.enqueue(job.id, { kind: "root_update", key: "root_update:instance_name" }, clock.now());
      }
      // The form checks the volumes to leave out when AWS answers in time; when it did not, this is the check.
      const problem =
        instanceProblem(instance, job.instanceId, place) ??
        (instance && job.excludedDevices.length > 0
          ? excludedDevicesProblem(job.excludedDevices, instance)
          : undefined);
      if (problem) {
        await store.apply(job.id, { type: "create_refused", reason: problem }, clock.now());
        return;
      }
      if (!(await stillAllowed(job))) return;
      // False when a cancel came first: nothing is created, and the job has already ended.
      if (!(await store.markCreateAttempted(job.id, clock.now()))) return;
      called = true;
      const imageId = await images.createImage(place, requester, {
        jobId: job.id,
        instanceId: job.instanceId,
        imageName: job.imageName,
        description: job.description,
        noReboot: job.noReboot,
        tags: job.tags,
        excludedDevices: job.excludedDevices,
      });
      step("create_image_returned");
      const next = await store.apply(job.id, { type: "image_created", imageId }, clock.now());
      // Cancelled while AWS was answering: the image is removed on the next tick, not a poll interval later.
      const wait = next?.state === "cancelling" ? 0 : settings.pollIntervalMs;
      await store.scheduleNext(job.id, clock.now() + wait, clock.now());
      step("image_id_stored");
      logger.info(
        { jobId: job.id, imageId, target: job.targetName, region: job.region },
        "image creation started",
      );
    } catch (error) {
      const at = clock.now();
      // Only a duplicate name can be our own earlier image; a malformed one (name_malformed) is refused below.
      if (error instanceof AwsRefusedError && error.code === "name_taken") {
        // Our own earlier call may have made it: adopt the image only if it carries this job's tag.
        const mine = await images.findImageByJob(place, requester, job.id).catch(() => undefined);
        if (mine) {
          await store.apply(job.id, { type: "image_created", imageId: mine }, at);
          await store.scheduleNext(job.id, at + settings.pollIntervalMs, at);
          return;
        }
        // After an earlier attempt the name may be taken by our own image, not yet findable by its tag
        // (tag filters lag): look again later rather than tell the person the name is someone else's.
        if (job.createAttemptedAt !== undefined && at - job.createAttemptedAt < VANISHED_AFTER_MS) {
          await recordFailure(job, error, at);
          return;
        }
      }
      if (error instanceof AwsRefusedError && !error.retryable) {
        // Taken over while the call was out (this replica stalled past its lease): the new holder may have
        // made the image meanwhile (AWS then refuses this call's name), so the outcome is its to decide.
        if (called && !(await store.holds(job.id, at))) {
          logger.warn(
            { jobId: job.id, code: error.code },
            "AWS refused a CreateImage after the job was taken over",
          );
          return;
        }
        logger.info({ jobId: job.id, code: error.code }, "AWS refused the image");
        await store.apply(job.id, { type: "create_refused", reason: error.userMessage }, at);
        return;
      }
      // Before the last try is given up, look once more: an earlier call may have made the image after all.
      if (called && job.attempts + 1 >= MAX_CREATE_ATTEMPTS) {
        const mine = await images.findImageByJob(place, requester, job.id).catch(() => undefined);
        if (mine) {
          await store.apply(job.id, { type: "image_created", imageId: mine }, at);
          await store.scheduleNext(job.id, at + settings.pollIntervalMs, at);
          return;
        }
      }
      await recordFailure(job, error, at);
    }
  }

  /**
   * Asks whether the requester may still use the target. A denial ends the job refused; an unanswered
   * question is recorded as a failure and asked again later. True only when the answer is yes.
   */
  async function stillAllowed(job: Job): Promise<boolean> {
    if (!deps.accessNow) return true;
    let decision: AccessDecision;
    try {
      decision = await deps.accessNow(job);
    } catch (error) {
      await recordFailure(job, error, clock.now(), "ami-bot could not re-check your access with Slack.");
      return false;
    }
    if (decision.allowed) return true;
    logger.info(
      { jobId: job.id, user: job.requestedBy, target: job.targetName, reason: decision.reason },
      "access withdrawn before CreateImage; refusing the job",
    );
    await store.apply(
      job.id,
      {
        type: "create_refused",
        reason:
          `Your access to target ${job.targetName} changed since you asked (${decision.reason}), so nothing was created. ` +
          "Ask ami-bot's admins if you still need this image.",
      },
      clock.now(),
    );
    return false;
  }

  /**
   * When to look again: an interval after the tick that asked (ticks come every interval, so counting from
   * the answer would make each job wait a whole extra tick), but never sooner than half an interval after
   * the answer, so a slow AWS is not asked again at once.
   */
  const nextCheck = (job: Job, askedAt: number, answeredAt: number) =>
    Math.max(askedAt + interval(job, answeredAt), answeredAt + interval(job, answeredAt) / 2);

  async function check(place: Place, live: Job[], askedAt: number): Promise<void> {
    let statuses: Awaited<ReturnType<ImageService["describeImages"]>>;
    try {
      statuses = await images.describeImages(
        place,
        live.map((j) => j.imageId as string),
      );
    } catch (error) {
      for (const job of live)
        await guarded(
          job,
          async () => (await giveUpIfOverdue(job, clock.now())) || recordFailure(job, error, clock.now()),
        );
      return;
    }
    const at = clock.now();
    const stillPending: { job: Job; snapshots: readonly string[] }[] = [];
    for (const job of live)
      await guarded(job, async () => {
        const status = statuses.get(job.imageId as string);
        if (!status) {
          if (at - (job.createAttemptedAt ?? job.createdAt) > VANISHED_AFTER_MS)
            await store.apply(
              job.id,
              { type: "image_state", state: "deregistered", reason: "The image no longer exists." },
              at,
            );
          else if (!(await giveUpIfOverdue(job, at)))
            await store.scheduleNext(job.id, nextCheck(job, askedAt, at), at);
          return;
        }
        const next = await store.apply(
          job.id,
          { type: "image_state", state: status.state, reason: status.reason },
          at,
        );
        if (next && next.state !== job.state) step(`state_stored:${next.state}`);
        if (next?.state === "pending") {
          // The hard limit applies only to an image just seen still unfinished.
          if (await giveUpIfOverdue(job, at)) return;
          stillPending.push({ job: next, snapshots: status.snapshotIds });
          if (at - startOf(job) >= settings.slowAfterMs) await store.apply(job.id, { type: "slow" }, at);
          await store.scheduleNext(job.id, nextCheck(job, askedAt, at), at);
        }
      });
    const snapshotIds = stillPending.flatMap((p) => p.snapshots);
    if (snapshotIds.length === 0) return;
    try {
      const progress = await images.snapshotProgress(place, snapshotIds);
      for (const { job, snapshots } of stillPending) {
        const values = snapshots.map((s) => progress.get(s) ?? 0);
        if (values.length === 0) continue;
        const percent = values.reduce((a, b) => a + b, 0) / values.length;
        await store.apply(job.id, { type: "progress", percent }, clock.now());
      }
    } catch (error) {
      // Progress is a nicety: the image state is what matters, so this failure only gets logged.
      logger.debug(
        { err: error, target: place.target.name, region: place.region },
        "snapshot progress unavailable",
      );
    }
  }

  /**
   * Removes a cancelled job's image: DeregisterImage with DeleteAssociatedSnapshots, under a session allowed
   * only that image and the job's own snapshots. Crash-safe: the attempt is stored before the call, and an
   * attempted job first asks AWS whether the image is already gone, so it is never deregistered twice; a job
   * whose CreateImage had no answer looks for its image by tag first, so none is left behind.
   */
  async function cancel(job: Job): Promise<void> {
    const place = placeOf(job);
    if (!place) {
      await store.apply(
        job.id,
        {
          type: "cancel_refused",
          reason: `target ${job.targetName} in ${job.region} is no longer configured, so ami-bot cannot reach the image.`,
        },
        clock.now(),
      );
      return;
    }
    // The session carries who cancelled, for CloudTrail.
    const canceller: Requester = { userId: job.cancelledBy ?? job.requestedBy, channelId: job.channelId };
    try {
      let imageId = job.imageId;
      if (imageId === undefined) {
        imageId = await images.findImageByJob(place, canceller, job.id);
        if (imageId) await store.apply(job.id, { type: "image_created", imageId }, clock.now());
        // Tag filters lag behind CreateImage: a recent call's image may not be findable yet.
        else if (
          job.createAttemptedAt !== undefined &&
          clock.now() - job.createAttemptedAt < VANISHED_AFTER_MS
        ) {
          await store.scheduleNext(job.id, clock.now() + settings.pollIntervalMs, clock.now());
          return;
        }
      }
      if (imageId === undefined) {
        await store.apply(job.id, { type: "cancel_done", imageExisted: false }, clock.now());
        return;
      }
      // EC2 is eventually consistent: an image made moments ago can look missing. It counts as gone only
      // once it has had time to show up.
      // Only an image AWS already shows is deregistered. EC2 is eventually consistent, and an image made
      // moments ago can look missing; once it has been seen, its absence after our call can only mean the
      // call (or someone) removed it, so a restart after an unanswered call never calls a second time.
      const status = (await images.describeImages(place, [imageId])).get(imageId);
      const attempted = job.deregisterAttemptedAt !== undefined;
      if (!status || status.state === "deregistered") {
        const young = clock.now() - (job.createAttemptedAt ?? job.createdAt) < VANISHED_AFTER_MS;
        if (!attempted && young) {
          await store.scheduleNext(job.id, clock.now() + settings.pollIntervalMs, clock.now());
          return;
        }
        // What AWS said about each snapshot was lost with that call: say where to look.
        const leftBehind = attempted
          ? `It was deregistered, but AWS's answer about its snapshots was lost (ami-bot restarted, or the call went unanswered): look in the EC2 console for snapshots tagged ami-bot:job-id=${job.id} and delete any that are left.`
          : "AWS no longer shows it, so there was nothing left to remove.";
        await store.apply(job.id, { type: "cancel_done", imageExisted: true, leftBehind }, clock.now());
        return;
      }
      if (!(await store.markDeregisterAttempted(job.id, clock.now()))) return;
      step("deregister_attempted");
      const { leftBehind } = await images.deregisterImage(place, canceller, { jobId: job.id, imageId });
      step("deregister_returned");
      await store.apply(job.id, { type: "cancel_done", imageExisted: true, leftBehind }, clock.now());
      logger.info({ jobId: job.id, imageId, by: job.cancelledBy }, "cancelled image deregistered");
    } catch (error) {
      const at = clock.now();
      if (error instanceof AwsRefusedError && !error.retryable) {
        logger.warn({ jobId: job.id, code: error.code }, "AWS refused to deregister a cancelled image");
        await store.apply(job.id, { type: "cancel_refused", reason: error.userMessage }, at);
        return;
      }
      if (!(await giveUpIfOverdue(job, at))) await recordFailure(job, error, at);
    }
  }

  /** A job nobody decided on: it ends as expired when its wait is over. */
  async function expireIfDue(job: Job, now: number): Promise<void> {
    const until = job.approvalExpiresAt ?? now;
    if (now < until) {
      await store.scheduleNext(job.id, until, now);
      return;
    }
    await store.apply(job.id, { type: "approval_expired" }, now);
    logger.info(
      { audit: true, action: "expire", jobId: job.id, user: job.requestedBy, target: job.targetName },
      "job expired: nobody approved or denied it in time",
    );
  }

  /**
   * The states finishing jobs need, one DescribeImages per place for all of them. A place that fails is
   * left out: each job then asks for its own images, and a failure there is that job's to back off from.
   */
  async function checkFinishingImages(jobs: readonly Job[]): Promise<KnownImages> {
    const known = new Map<string, ImageStatus>();
    await Promise.all(
      imagesToCheck(jobs, targets).map(async ({ place, imageIds }) => {
        try {
          for (const [id, status] of await images.describeImages(place, imageIds)) known.set(id, status);
        } catch (error) {
          logger.debug(
            { err: error, target: place.target.name, region: place.region },
            "could not check finishing jobs' images in one call",
          );
        }
      }),
    );
    return known;
  }

  /** One job's bookkeeping failing (a database error) must not stop the others in the group. */
  async function guarded(job: Job, fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (error) {
      logger.error({ jobId: job.id, err: error }, "could not record a job's check");
    }
  }

  /** True when every task settled within `ms`. */
  async function settledWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    const done = await Promise.race([Promise.allSettled([...tasks]).then(() => true), late]);
    clearTimeout(timer);
    return done;
  }

  /** Starts a job's work unless it is already running; the job is skipped by ticks until it settles. */
  function launch(jobs: readonly Job[], work: () => Promise<void>): Promise<void> {
    for (const job of jobs) inFlight.add(job.id);
    const task = work()
      .catch((error: unknown) => logger.error({ err: error }, "watcher step failed"))
      .finally(() => {
        for (const job of jobs) inFlight.delete(job.id);
        tasks.delete(task);
      });
    tasks.add(task);
    return task;
  }

  /**
   * Starts the work every due job needs and resolves when that work is done. Jobs already being worked on
   * (a call AWS is slow to answer) are left to that work: one slow call holds up only its own job or place.
   */
  async function tick(): Promise<void> {
    if (stopping) return;
    const started = performance.now();
    try {
      await runTick();
    } finally {
      deps.onTick?.(performance.now() - started);
    }
  }

  async function runTick(): Promise<void> {
    const startedAt = clock.now();
    const due = (await store.due(startedAt, batchSize)).filter((j) => !inFlight.has(j.id));
    if (due.length === 0) return;
    // Held from now on, before any other await: a tick that starts meanwhile (a wake) must not take the same
    // jobs. Those not launched below are let go once this tick has decided what to do with them.
    for (const job of due) inFlight.add(job.id);
    const launched = new Set<string>();
    let work: Promise<void>[] = [];
    try {
      work = await startWork(due, startedAt, launched);
    } finally {
      for (const job of due) if (!launched.has(job.id)) inFlight.delete(job.id);
    }
    await Promise.all(work);
  }

  /** Decides what each due job needs and launches it; `launched` collects the jobs now in a task. */
  async function startWork(
    due: readonly Job[],
    startedAt: number,
    launched: Set<string>,
  ): Promise<Promise<void>[]> {
    for (const job of due.filter((j) => j.state === "awaiting_approval"))
      await guarded(job, () => expireIfDue(job, clock.now()));
    // Only as many new images as there are free CreateImage slots; the rest are given back, so another
    // replica with free slots starts them now (here, a freed slot asks for the next tick).
    const allQueued = due.filter((j) => j.state === "queued");
    const queued = allQueued.slice(0, createSlots.available());
    const deferred = allQueued.slice(queued.length).map((j) => j.id);
    if (deferred.length > 0) {
      moreQueued = true;
      await store.release(deferred);
    }
    const cancelling = due.filter((j) => j.state === "cancelling");
    const finishing = due.filter((j) => j.state === "finishing");
    const groups = new Map<string, { place: Place; jobs: Job[] }>();
    for (const job of due.filter((j) => j.state === "pending")) {
      const place = placeOf(job);
      if (!place) {
        await guarded(job, async () => {
          await store.recordError(
            job.id,
            `target ${job.targetName}/${job.region} is not configured`,
            clock.now() + MAX_BACKOFF_MS,
            clock.now(),
          );
          await giveUpIfOverdue(job, clock.now());
        });
        continue;
      }
      const key = `${place.target.name}|${place.region}`;
      const group = groups.get(key) ?? { place, jobs: [] };
      group.jobs.push(job);
      groups.set(key, group);
    }
    const work = [
      ...queued.map((job) =>
        launch([job], async () => {
          await createSlots.acquire();
          try {
            // On stop, jobs not yet started wait for the next start rather than hold up the shutdown.
            if (stopping) return;
            await create(job).catch((e: unknown) => guarded(job, () => recordFailure(job, e, clock.now())));
          } finally {
            createSlots.release();
            deps.onNotices?.();
            // Jobs were left for lack of a slot: one is free now.
            if (moreQueued) {
              moreQueued = false;
              if (!stopped) schedule(0);
            }
          }
        }),
      ),
      ...[...groups.values()].map((g) =>
        launch(g.jobs, () => check(g.place, g.jobs, startedAt).finally(() => deps.onNotices?.())),
      ),
      ...cancelling.map((job) =>
        launch([job], () =>
          (stopping ? Promise.resolve() : cancel(job))
            .catch((e: unknown) => guarded(job, () => recordFailure(job, e, clock.now())))
            .finally(() => deps.onNotices?.()),
        ),
      ),
      ...(() => {
        const known = finishing.length > 0 ? checkFinishingImages(finishing) : undefined;
        return finishing.map((job) =>
          launch([job], async () => {
            await afterSlots.acquire();
            try {
              if (stopping) return;
              await runAfterSteps(job, await withinMs(known, PREFETCH_WAIT_MS)).catch((e: unknown) =>
                guarded(job, () => recordFailure(job, e, clock.now())),
              );
            } finally {
              afterSlots.release();
              deps.onNotices?.();
            }
          }),
        );
      })(),
    ];
    for (const job of [
      ...queued,
      ...cancelling,
      ...finishing,
      ...[...groups.values()].flatMap((g) => g.jobs),
    ])
      launched.add(job.id);
    deps.onNotices?.();
    return work;
  }

  function schedule(delayMs: number): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(loop, delayMs);
    timer.unref?.();
  }

  /** Ticks on a timer without waiting for earlier ticks' calls to AWS to finish. */
  function loop(): void {
    if (stopped) return;
    tick().catch((error: unknown) => logger.error({ err: error }, "watcher tick failed"));
    schedule(Math.min(settings.pollIntervalMs, 5_000));
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      stopping = false;
      schedule(0);
    },
    async stop({ graceMs = 5_000, cutShort } = {}) {
      stopped = true;
      stopping = true;
      clearTimeout(timer);
      // Work in flight (a CreateImage AWS is answering) gets a grace period to finish and be stored; then
      // it is cut short, and its job resumes on the next start (a CreateImage in flight is marked attempted,
      // so the next start looks for its image before calling again).
      if (await settledWithin(graceMs)) return;
      logger.warn({ calls: tasks.size }, "cutting short AWS calls still in flight to stop");
      cutShort?.();
      if (!(await settledWithin(2_000)))
        logger.warn({ calls: tasks.size }, "stopped without waiting for AWS calls still in flight");
    },
    wake() {
      if (stopped) return;
      schedule(0);
    },
    tick,
  };
}
