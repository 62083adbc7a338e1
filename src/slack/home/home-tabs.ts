/**
 * Keeps people's Home tabs current. Opening the tab publishes it at once; a job changing marks its
 * requester and its target's approvers "dirty", and a background loop publishes them: one person at most
 * once per `perUserGapMs` (changes in between are shown together), everyone together at most once per
 * `minGapMs` (views.publish is Tier 4, about 100 a minute), and nothing at all while Slack's Retry-After
 * runs. `jobChanged` only notes who is dirty and returns: the watcher and the relay never wait on Slack here.
 */
import type { webApi } from "@slack/bolt";
import type { Config } from "../../config.js";
import type { Clock, JobStore } from "../../domain/ports.js";
import { SlackDeliveryError, SlackRetryableError } from "../../errors.js";
import type { Logger } from "../../logger.js";
import { DEFAULT_SLACK_BUDGETS } from "../budgets.js";
import type { HomeTabsPort } from "../deps.js";
import type { PeopleDirectory } from "../people-directory.js";
import { translateSlackError } from "../slack-notifier.js";
import { createHomeContent } from "./home-content.js";

export interface HomeTabsDeps {
  /** A client without hidden retries (the background one): this loop decides when to try again. */
  readonly client: webApi.WebClient;
  readonly store: JobStore;
  readonly config: Pick<Config, "targets">;
  readonly directory: Pick<PeopleDirectory, "groupsOf" | "standingOf">;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Least time between two publishes, whoever they are for (default 700 ms: ~85 a minute). */
  readonly minGapMs?: number;
  /** Least time between two publishes for one person (default 2 s). */
  readonly perUserGapMs?: number;
  /** How long a publish waits for the threads' permalinks (default: production's); later links are left out. */
  readonly permalinkBudgetMs?: number;
  /** How many people who opened the tab are remembered (default 10,000), the longest unseen forgotten first. */
  readonly maxKnownUsers?: number;
}

export interface HomeTabs extends HomeTabsPort {
  /** Publishes nothing more and never touches the store again; call it before the store closes. */
  stop(): void;
}

/** An App Home DM, as app_home_opened names it: the only kind of channel the tab hands on to the form. */
export function isHomeChannel(value: string | undefined): value is string {
  return value !== undefined && /^D[A-Z0-9]{2,20}$/.test(value);
}

const MAX_ATTEMPTS = 5;
const MAX_BACKOFF_MS = 5 * 60_000;
/** Opening the tab waits this long at most for a free slot; beyond that it is left to the loop. */
const MAX_OPEN_WAIT_MS = 5_000;

export function createHomeTabs(deps: HomeTabsDeps): HomeTabs {
  const { client, store, config, directory, clock, logger } = deps;
  const minGapMs = deps.minGapMs ?? 700;
  const perUserGapMs = deps.perUserGapMs ?? 2_000;
  const maxKnown = deps.maxKnownUsers ?? 10_000;

  /** People who opened the tab since start, with their App Home DM; the most recent last. */
  const known = new Map<string, string>();
  /** People whose tab is out of date, in the order they became so. */
  const dirty = new Set<string>();
  /** Targets whose user-group approvers (among `known`) must still be found and marked dirty. */
  const groupTargets = new Set<string>();
  const lastPublished = new Map<string, number>();
  /** After a failed publish: when the person's next may go, and how many have failed in a row. */
  const backoff = new Map<string, { until: number; attempts: number }>();
  /** The publish in flight for a person, so two never race (an older view landing last). */
  const inflight = new Map<string, Promise<void>>();
  let nextSlot = Number.NEGATIVE_INFINITY;
  let heldUntil = Number.NEGATIVE_INFINITY;
  let stopped = false;
  let running = false;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  const render = createHomeContent(
    {
      client,
      store,
      config,
      directory,
      clock,
      logger,
      permalinkBudgetMs: deps.permalinkBudgetMs ?? DEFAULT_SLACK_BUDGETS.permalinkMs,
    },
    () => stopped,
  );

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      t.unref?.();
    });

  /** Takes the next free moment for a publish; returns how long to wait for it. */
  function reserveSlot(): number {
    const now = clock.now();
    const at = Math.max(now, nextSlot, heldUntil);
    nextSlot = at + minGapMs;
    return at - now;
  }

  /** One publish for one person, after any still in flight for them; failures are handled here, never thrown. */
  function publish(userId: string): Promise<void> {
    const before = inflight.get(userId) ?? Promise.resolve();
    const attempt = before.then(() => publishNow(userId));
    const tracked = attempt.finally(() => {
      if (inflight.get(userId) === tracked) inflight.delete(userId);
    });
    inflight.set(userId, tracked);
    return tracked;
  }

  async function publishNow(userId: string): Promise<void> {
    if (stopped) return;
    lastPublished.set(userId, clock.now());
    try {
      const view = await render({
        userId,
        channelId: known.get(userId),
        lookUpLinks: known.has(userId),
      });
      if (!view || stopped) return;
      await client.views.publish({ user_id: userId, view });
      backoff.delete(userId);
    } catch (error) {
      failed(userId, error);
    }
  }

  function failed(userId: string, error: unknown): void {
    const now = clock.now();
    const e = translateSlackError(error);
    if (!(e instanceof SlackRetryableError)) {
      // Slack will not take it (a user it does not know, a view it refuses): trying again will not help.
      backoff.delete(userId);
      const code = e instanceof SlackDeliveryError ? e.code : undefined;
      logger.warn({ err: error, user: userId, code }, "Slack refused a Home tab; not trying again");
      return;
    }
    // Slack's limit is the app's, not the person's: hold every publish until it passes.
    if (e.retryAfterMs !== undefined) heldUntil = Math.max(heldUntil, now + e.retryAfterMs);
    const attempts = (backoff.get(userId)?.attempts ?? 0) + 1;
    if (attempts > MAX_ATTEMPTS) {
      backoff.delete(userId);
      logger.warn({ err: error, user: userId, attempts }, "gave up publishing a Home tab for now");
      return;
    }
    const delay = e.retryAfterMs ?? Math.min(1_000 * 2 ** attempts, MAX_BACKOFF_MS);
    backoff.set(userId, { until: now + delay, attempts });
    dirty.add(userId);
    logger.info({ err: error, user: userId, retryInMs: delay }, "Home tab publish failed; will retry");
    wake(delay);
  }

  /** Marks those of the remembered people who approve these targets through a user group. */
  async function expandGroups(): Promise<void> {
    if (groupTargets.size === 0) return;
    const groups = new Set(
      config.targets
        .filter((t) => groupTargets.has(t.name))
        .flatMap((t) => t.approval?.approvers.usergroups ?? []),
    );
    groupTargets.clear();
    if (groups.size === 0) return;
    await Promise.all(
      [...known.keys()].map(async (userId) => {
        const theirs = await directory.groupsOf(userId);
        if ([...groups].some((g) => theirs.has(g))) dirty.add(userId);
      }),
    );
  }

  /** When a dirty person's next publish may go. */
  function readyAt(userId: string): number {
    return Math.max(
      (lastPublished.get(userId) ?? Number.NEGATIVE_INFINITY) + perUserGapMs,
      backoff.get(userId)?.until ?? Number.NEGATIVE_INFINITY,
    );
  }

  async function drain(): Promise<void> {
    while (!stopped) {
      await expandGroups();
      if (stopped) return;
      const now = clock.now();
      let next: string | undefined;
      let soonest = Number.POSITIVE_INFINITY;
      for (const userId of dirty) {
        const at = readyAt(userId);
        if (at <= now) {
          next = userId;
          break;
        }
        soonest = Math.min(soonest, at);
      }
      if (next === undefined) {
        if (Number.isFinite(soonest)) wake(soonest - now);
        return;
      }
      const wait = Math.max(0, Math.max(nextSlot, heldUntil) - now);
      if (wait > 0) {
        wake(wait);
        return;
      }
      reserveSlot();
      dirty.delete(next);
      await publish(next);
      forgetOld();
    }
  }

  /** Keeps memory to the people seen lately: publish times older than the gap decide nothing. */
  function forgetOld(): void {
    if (lastPublished.size <= maxKnown) return;
    const cutoff = clock.now() - perUserGapMs;
    for (const [userId, at] of lastPublished) if (at < cutoff) lastPublished.delete(userId);
  }

  function run(): void {
    timer = undefined;
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    drain()
      .catch((error) => logger.error({ err: error }, "Home tab refresh failed"))
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          wake(0);
        }
      });
  }

  /** Runs the loop in `ms` (or sooner, if it is already due sooner). */
  let wakeAt = Number.POSITIVE_INFINITY;
  function wake(ms: number): void {
    if (stopped) return;
    // A loop running now looks again before it ends; a later time is kept by the timer below.
    if (running && ms <= 0) again = true;
    const at = clock.now() + Math.max(0, ms);
    if (timer && wakeAt <= at) return;
    clearTimeout(timer);
    wakeAt = at;
    timer = setTimeout(run, Math.max(0, ms));
    timer.unref?.();
  }

  function remember(userId: string, channelId: string): void {
    known.delete(userId);
    known.set(userId, channelId);
    for (const key of known.keys()) {
      if (known.size <= maxKnown) break;
      known.delete(key);
    }
  }

  return {
    async opened(userId, channelId) {
      if (stopped) return;
      if (isHomeChannel(channelId)) remember(userId, channelId);
      const wait = Math.max(0, Math.max(nextSlot, heldUntil) - clock.now());
      if (wait > MAX_OPEN_WAIT_MS) {
        dirty.add(userId);
        wake(wait);
        return;
      }
      dirty.delete(userId);
      await sleep(reserveSlot());
      await publish(userId);
    },
    jobChanged(job) {
      if (stopped) return;
      dirty.add(job.requestedBy);
      const approvers = config.targets.find((t) => t.name === job.targetName)?.approval?.approvers;
      for (const userId of approvers?.users ?? []) dirty.add(userId);
      if (approvers && approvers.usergroups.length > 0) groupTargets.add(job.targetName);
      wake(0);
    },
    channelOf(userId) {
      return known.get(userId);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
