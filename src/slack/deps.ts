import type { Config } from "../config.js";
import { type AccessDecision, allowedTargets, decideAccess, type Principal } from "../domain/access.js";
import type { Job } from "../domain/job.js";
import type { Clock, ImageService, JobStore, StepHook } from "../domain/ports.js";
import type { Target } from "../domain/target.js";
import type { Logger } from "../logger.js";
import { approverMentions } from "./blocks/messages.js";
import type { SlackBudgets } from "./budgets.js";
import type { PeopleDirectory } from "./people-directory.js";
import type { MetadataCodec } from "./private-metadata.js";

/** What the Slack listeners need, passed in by the composition root. */
export interface SlackDeps {
  readonly config: Config;
  readonly store: JobStore;
  readonly images: ImageService;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly directory: PeopleDirectory;
  /** Called once a job is stored, so the watcher starts on it at once. */
  readonly onJobAccepted: () => void;
  /** Called when a person's click changed a job (approved, denied, cancelled): wakes the watcher and relay. */
  readonly onJobChanged: (job: Job) => void;
  readonly newJobId: () => string;
  readonly onStep: StepHook;
  /** Signs and checks the modal's private_metadata. */
  readonly metadata: MetadataCodec;
  /** How long handlers wait for AWS or Slack before answering with what they have. */
  readonly budgets: SlackBudgets;
  /** The Home tabs, when the bot keeps them (tests that build SlackDeps by hand may leave them out). */
  readonly homes?: HomeTabsPort | undefined;
}

/** What the listeners need of the Home tabs (src/slack/home/home-tabs.ts). */
export interface HomeTabsPort {
  /** The person opened the Home tab (app_home_opened): publish theirs now, remembering their App Home DM. */
  opened(userId: string, channelId: string): Promise<void>;
  /** A job changed: refresh the Home tabs of its requester and approvers soon. Never blocks. */
  jobChanged(job: Job): void;
  /** The App Home DM of someone who opened the Home tab since the bot started. */
  channelOf?(userId: string): string | undefined;
}

/** Everything the access rules weigh about a person typing in a channel, looked up in parallel. */
export function principalOf(
  deps: SlackDeps,
  userId: string,
  channelId: string | undefined,
): Promise<Principal> {
  return lookUpPrincipal(deps.directory, userId, channelId);
}

async function lookUpPrincipal(
  directory: PeopleDirectory,
  userId: string,
  channelId: string | undefined,
): Promise<Principal> {
  const [usergroupIds, standing, channelPrivate] = await Promise.all([
    directory.groupsOf(userId),
    directory.standingOf(userId),
    channelId ? directory.channelPrivacy(channelId) : undefined,
  ]);
  return { userId, channelId, usergroupIds, standing, channelPrivate };
}

export interface AccessRecheck extends AccessDecision {
  /**
   * The denial rests only on what Slack did not answer (who the person is, or whether the channel is
   * private): asking again later may allow it. False when allowed or refused for certain.
   */
  readonly inconclusive: boolean;
}

/** Decides again whether a person may still use a target, from where they asked (the job's origin channel). */
export type AccessCheck = (
  userId: string,
  channelId: string | undefined,
  targetName: string,
) => Promise<AccessRecheck>;

/**
 * For work that outlives the request (the watcher, before CreateImage): the rules as they are now, with
 * fresh answers from Slack once the directory's cache has expired. A target no longer configured is denied.
 */
export function createAccessCheck(directory: PeopleDirectory, targets: readonly Target[]): AccessCheck {
  return async (userId, channelId, targetName) => {
    const target = targets.find((t) => t.name === targetName);
    if (!target)
      return { allowed: false, reason: `target ${targetName} is no longer configured`, inconclusive: false };
    const who = await lookUpPrincipal(directory, userId, channelId);
    const decision = decideAccess(target, who);
    if (decision.allowed) return { ...decision, inconclusive: false };
    // Would the best answers Slack could still give change it? Then it is not a refusal yet.
    const hopeful: Principal = {
      ...who,
      standing: who.standing === "unknown" ? "member" : who.standing,
      channelPrivate: who.channelPrivate ?? true,
    };
    return { ...decision, inconclusive: decideAccess(target, hopeful).allowed };
  };
}

/** One audit line per access decision: who, what, allowed or denied, and why. */
export function audit(
  deps: SlackDeps,
  entry: {
    user: string;
    action: string;
    allowed: boolean;
    reason: string;
    target?: string;
    region?: string;
    jobId?: string;
  },
): void {
  deps.logger.info(
    { audit: true, ...entry },
    `access ${entry.allowed ? "allowed" : "denied"}: ${entry.action}`,
  );
}

export function placesFor(deps: SlackDeps, who: Principal) {
  return allowedTargets(deps.config.targets, who).flatMap((t) =>
    t.regions.map((region) => ({
      targetName: t.name,
      region,
      accountId: t.accountId,
      reboot: t.reboot,
      tagKeys: t.tagKeys,
      approvers: t.approval ? approverMentions(t) : undefined,
      copyTo: t.after.copyTo,
      shareWith: t.after.shareWith,
    })),
  );
}
