/**
 * What one person's Home tab shows now: their latest jobs in the places they may use, the jobs waiting for
 * their decision where they approve, and the threads' links (remembered, since a thread's link never changes).
 */
import type { types, webApi } from "@slack/bolt";
import type { Config } from "../../config.js";
import { allowedTargets, decideAccess, isApprover, type Principal } from "../../domain/access.js";
import type { Job } from "../../domain/job.js";
import type { Clock, JobStore } from "../../domain/ports.js";
import type { Logger } from "../../logger.js";
import { HOME_LIST_LIMIT, homeView } from "../blocks/home-view.js";
import type { PeopleDirectory } from "../people-directory.js";
import { threadPermalinks } from "../thread-links.js";

export interface HomeContentDeps {
  readonly client: webApi.WebClient;
  readonly store: JobStore;
  readonly config: Pick<Config, "targets">;
  readonly directory: Pick<PeopleDirectory, "groupsOf" | "standingOf">;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How long a view waits for the threads' permalinks; links not in by then are left out. */
  readonly permalinkBudgetMs: number;
}

export interface HomeFor {
  readonly userId: string;
  /** Their App Home DM, when they opened the tab since start. */
  readonly channelId: string | undefined;
  /**
   * Whether to ask Slack for links not yet known. Someone who has not opened the tab since start is not
   * looking at it: their refresh asks Slack for none, which are looked up once they open it.
   */
  readonly lookUpLinks: boolean;
}

const MAX_PERMALINKS = 5_000;

/**
 * Renders a person's tab; `render` resolves undefined when `stopped()` turns true on the way, and then reads
 * the store no more (it may be closed).
 */
export function createHomeContent(deps: HomeContentDeps, stopped: () => boolean) {
  const { client, store, config, directory, clock, logger } = deps;
  /** Permalinks by root message (`channel:ts`), the oldest forgotten first past MAX_PERMALINKS. */
  const permalinks = new Map<string, string>();

  async function principal(who: HomeFor): Promise<Principal> {
    const [usergroupIds, standing] = await Promise.all([
      directory.groupsOf(who.userId),
      directory.standingOf(who.userId),
    ]);
    // A DM is never a channel for access rules: only the person's own standing and groups count.
    return {
      userId: who.userId,
      channelId: who.channelId,
      usergroupIds,
      standing,
      channelPrivate: undefined,
    };
  }

  async function links(jobs: readonly Job[], lookUp: boolean): Promise<Map<string, string>> {
    const keyOf = (job: Job) => `${job.rootChannelId}:${job.rootTs}`;
    const missing = jobs.filter((j) => j.rootChannelId && j.rootTs && !permalinks.has(keyOf(j)));
    if (lookUp && missing.length > 0) {
      const found = await threadPermalinks(client, missing, logger, deps.permalinkBudgetMs);
      for (const job of missing) {
        const link = found.get(job.id);
        if (link) permalinks.set(keyOf(job), link);
      }
      for (const key of permalinks.keys()) {
        if (permalinks.size <= MAX_PERMALINKS) break;
        permalinks.delete(key);
      }
    }
    const byJob = new Map<string, string>();
    for (const job of jobs) {
      const link = permalinks.get(keyOf(job));
      if (link) byJob.set(job.id, link);
    }
    return byJob;
  }

  return async function render(person: HomeFor): Promise<types.HomeView | undefined> {
    const { userId } = person;
    const who = await principal(person);
    if (stopped()) return undefined;
    // The places they may use now, as `/ami list mine` computes them: nothing from an account they cannot use.
    const places = allowedTargets(config.targets, who).flatMap((t) =>
      t.regions.map((region) => ({ targetName: t.name, roleArn: t.roleArn, region })),
    );
    const recent =
      places.length > 0 ? await store.recentJobs({ requestedBy: userId, places }, HOME_LIST_LIMIT) : [];
    // They can decide only where they approve and may use the target now (as the buttons check again), and
    // never on their own jobs; a job of a target since moved to another role is nobody's to decide here.
    const deciding = config.targets.filter((t) => isApprover(t, who) && decideAccess(t, who).allowed);
    const awaiting =
      deciding.length > 0
        ? (
            await store.awaitingApproval(
              deciding.map((t) => t.name),
              HOME_LIST_LIMIT * 2,
            )
          )
            .filter(
              (j) =>
                j.requestedBy !== userId &&
                deciding.some((t) => t.name === j.targetName && t.roleArn === j.roleArn),
            )
            .slice(0, HOME_LIST_LIMIT)
        : [];
    const found = await links([...recent, ...awaiting], person.lookUpLinks);
    if (stopped()) return undefined;
    return homeView({
      userId,
      channelId: person.channelId,
      now: clock.now(),
      recent: recent.map((job) => ({ job, permalink: found.get(job.id) })),
      approver: deciding.length > 0,
      awaiting: awaiting.map((job) => ({ job, permalink: found.get(job.id) })),
      targets: config.targets,
    });
  };
}
