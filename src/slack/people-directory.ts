/**
 * What Slack says about the people and channels the access rules depend on: which listed user groups a
 * person is in, whether they are a full member of the installing workspace, and whether a listed channel
 * is private. These are read before an ack (Slack allows 3 s in all), so each lookup has a time budget;
 * answers are cached for the configured time and shared by concurrent requests. Whatever Slack does not
 * answer in time, or refuses, grants nothing.
 */
import {
  channelRuleWarning,
  isDirectMessage,
  mentionedChannels,
  mentionedUsergroups,
  type Standing,
} from "../domain/access.js";
import type { Clock } from "../domain/ports.js";
import type { Target } from "../domain/target.js";
import type { Logger } from "../logger.js";
import { DEFAULT_SLACK_BUDGETS } from "./budgets.js";

/** A user as users.info describes one, as far as standing goes. */
export interface SlackUser {
  team_id?: string;
  deleted?: boolean;
  is_restricted?: boolean;
  is_ultra_restricted?: boolean;
  is_stranger?: boolean;
  enterprise_user?: { enterprise_id?: string };
}

/** The Slack Web API calls the directory makes (a WebClient fits). */
export interface DirectorySlack {
  readonly auth: { test(): Promise<{ team_id?: string; enterprise_id?: string }> };
  readonly users: { info(args: { user: string }): Promise<{ user?: SlackUser }> };
  readonly conversations: {
    info(args: { channel: string }): Promise<{ channel?: { is_private?: boolean } }>;
  };
  readonly usergroups: {
    readonly users: { list(args: { usergroup: string }): Promise<{ users?: string[] }> };
  };
}

export interface PeopleDirectory {
  /** The user groups the person belongs to, among those any rule mentions. */
  groupsOf(userId: string): Promise<Set<string>>;
  /** Member, guest, external or deactivated; unknown when Slack does not answer in time or refuses. */
  standingOf(userId: string): Promise<Standing>;
  /**
   * Whether a channel is private, for a channel listed by a target that refuses public channels. Undefined,
   * without asking Slack, for any other channel (its privacy decides nothing) and for DMs; undefined too
   * when Slack does not answer in time or refuses.
   */
  channelPrivacy(channelId: string): Promise<boolean | undefined>;
}

export interface PeopleDirectoryDeps {
  readonly client: DirectorySlack;
  /** Only the user groups and channels these targets' rules mention are ever looked up. */
  readonly targets: readonly Target[];
  /** How long an answer is kept, in ms (0: ask Slack every time). */
  readonly ttlMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How long a request waits for each answer, in ms (default DEFAULT_SLACK_BUDGETS.peopleLookupMs). */
  readonly budgetMs?: number;
}

export function createPeopleDirectory(deps: PeopleDirectoryDeps): PeopleDirectory {
  const { client, clock, logger } = deps;
  const budgetMs = deps.budgetMs ?? DEFAULT_SLACK_BUDGETS.peopleLookupMs;
  const groupIds = mentionedUsergroups(deps.targets);
  // Privacy decides something only for a target that refuses public channels.
  const listedChannels = new Set(mentionedChannels(deps.targets.filter((t) => !t.allowPublicChannels)));

  // The installing workspace never changes while the bot runs: asked once, until Slack answers.
  let home: Promise<Home> | undefined;
  const homeTeam = (): Promise<Home> => {
    home ??= client.auth.test().then(
      (res) => {
        if (!res.team_id) throw new Error("auth.test returned no team_id");
        return { teamId: res.team_id, enterpriseId: res.enterprise_id };
      },
      (error: unknown) => {
        home = undefined;
        throw error;
      },
    );
    return home;
  };

  const members = createCache(deps.ttlMs, clock, async (groupId) => {
    const res = await client.usergroups.users.list({ usergroup: groupId });
    return new Set(res.users ?? []);
  });
  const standings = createCache(deps.ttlMs, clock, async (userId) => {
    const [team, res] = await Promise.all([homeTeam(), client.users.info({ user: userId })]);
    if (!res.user) throw new Error("users.info returned no user");
    return standingOf(res.user, team);
  });
  const privacy = createCache(deps.ttlMs, clock, async (channelId) => {
    const res = await client.conversations.info({ channel: channelId });
    if (typeof res.channel?.is_private !== "boolean") throw new Error("conversations.info did not say");
    return res.channel.is_private;
  });

  /** The answer, or `fallback` when Slack errs or is slower than the budget (the call goes on and fills the cache). */
  async function withinBudget<T>(
    call: () => Promise<T>,
    fallback: T,
    context: Record<string, string>,
    what: string,
  ): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), budgetMs);
    });
    try {
      const answer = await Promise.race([call(), late]);
      if (answer !== "late") return answer;
      logger.warn({ ...context, budgetMs }, `Slack did not answer in time: ${what}`);
    } catch (error) {
      logger.warn({ err: error, ...context }, `cannot read from Slack: ${what}`);
    } finally {
      clearTimeout(timer);
    }
    return fallback;
  }

  return {
    async groupsOf(userId) {
      const result = new Set<string>();
      await Promise.all(
        groupIds.map(async (g) => {
          // Deny by default: a group we cannot read grants nothing.
          const set = await withinBudget(
            () => members(g),
            new Set<string>(),
            { usergroup: g },
            "user group members",
          );
          if (set.has(userId)) result.add(g);
        }),
      );
      return result;
    },
    standingOf(userId) {
      return withinBudget(() => standings(userId), "unknown", { user: userId }, "who the user is");
    },
    async channelPrivacy(channelId) {
      if (isDirectMessage(channelId) || !listedChannels.has(channelId)) return undefined;
      return withinBudget(
        () => privacy(channelId),
        undefined,
        { channel: channelId },
        "whether the channel is private",
      );
    },
  };
}

interface Home {
  readonly teamId: string;
  readonly enterpriseId: string | undefined;
}

/** Slack's answer in the domain's words. */
function standingOf(user: SlackUser, home: Home): Standing {
  if (user.deleted) return "deactivated";
  if (user.is_stranger) return "external";
  // On Enterprise Grid a colleague's home workspace may be another one of the same organisation.
  const sameOrg =
    user.team_id === home.teamId ||
    (home.enterpriseId !== undefined && user.enterprise_user?.enterprise_id === home.enterpriseId);
  if (!sameOrg) return "external";
  if (user.is_restricted || user.is_ultra_restricted) return "guest";
  return "member";
}

/**
 * One value per key, kept `ttlMs`: concurrent reads share one call, and a failure is not kept, so the next
 * read asks again.
 */
function createCache<T>(ttlMs: number, clock: Clock, load: (key: string) => Promise<T>) {
  const entries = new Map<string, { value: T; expires: number }>();
  const inflight = new Map<string, Promise<T>>();
  return (key: string): Promise<T> => {
    const hit = entries.get(key);
    if (hit && hit.expires > clock.now()) return Promise.resolve(hit.value);
    const running = inflight.get(key);
    if (running) return running;
    const call = load(key)
      .then((value) => {
        entries.set(key, { value, expires: clock.now() + ttlMs });
        return value;
      })
      .finally(() => inflight.delete(key));
    inflight.set(key, call);
    return call;
  };
}

/**
 * Logs one warning per channel whose rule grants nothing as written: public without allowPublicChannels,
 * a DM, or a channel Slack will not describe. Call it once Slack has accepted the token.
 */
export async function reportChannelRules(
  directory: Pick<PeopleDirectory, "channelPrivacy">,
  targets: readonly Target[],
  logger: Logger,
): Promise<void> {
  const channels = [...new Set(targets.flatMap((t) => t.allow.channels))];
  await Promise.all(
    channels.map(async (channel) => {
      const isPrivate = await directory.channelPrivacy(channel);
      const listing = targets.filter((t) => t.allow.channels.includes(channel));
      const warnings = listing.flatMap((t) => channelRuleWarning(t, channel, isPrivate) ?? []);
      if (warnings.length > 0)
        logger.warn(
          { channel, targets: listing.map((t) => t.name), channelPrivate: isPrivate },
          warnings.join("; "),
        );
    }),
  );
}
