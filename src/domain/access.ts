/**
 * Who may create images where. Deny by default: a person may use a target only when a rule lists them
 * (by user id, `*`, or a user group they belong to) or lists the private channel they are typing in.
 * Guests and people from other organisations (Slack Connect) count only where a target allows them.
 */
import type { Target } from "./target.js";

export interface Principal {
  readonly userId: string;
  /** The channel the request comes from. */
  readonly channelId: string | undefined;
  /** The user groups the person belongs to, among those any rule mentions. */
  readonly usergroupIds: ReadonlySet<string>;
  /**
   * Who the person is here: a full member of the installing workspace, a guest (`is_restricted` or
   * `is_ultra_restricted`), someone from another organisation (Slack Connect), a deactivated account, or
   * unknown (Slack did not say).
   */
  readonly standing: Standing;
  /** Whether the channel is private (true) or public (false); undefined when unknown or not looked up. */
  readonly channelPrivate: boolean | undefined;
}

export type Standing = "member" | "guest" | "external" | "deactivated" | "unknown";

export interface AccessDecision {
  readonly allowed: boolean;
  /** Why, in words fit for an audit line. */
  readonly reason: string;
}

export function decideAccess(target: Target, who: Principal): AccessDecision {
  // Allowing guests is no reason to keep serving an account the workspace has switched off.
  if (who.standing === "deactivated") return { allowed: false, reason: "deactivated account" };
  // Checked before any rule: `users: ["*"]` means everyone in the workspace, not every guest in it.
  if (who.standing !== "member" && !target.allowGuests)
    return { allowed: false, reason: `${who.standing} user; target ${target.name} does not allow guests` };
  const { users, usergroups, channels } = target.allow;
  if (users.includes("*")) return { allowed: true, reason: "everyone may use this target" };
  if (users.includes(who.userId)) return { allowed: true, reason: "user is listed" };
  const group = usergroups.find((g) => who.usergroupIds.has(g));
  if (group) return { allowed: true, reason: `member of user group ${group}` };
  if (who.channelId && !isDirectMessage(who.channelId) && channels.includes(who.channelId)) {
    // Anyone can join a public channel, so its rule would let anyone in: it counts only where allowed.
    if (who.channelPrivate === true || target.allowPublicChannels)
      return { allowed: true, reason: `channel ${who.channelId} is listed` };
    return {
      allowed: false,
      reason:
        who.channelPrivate === false
          ? `channel ${who.channelId} is listed but public`
          : `channel ${who.channelId} is listed but its privacy could not be checked`,
    };
  }
  return { allowed: false, reason: `not listed for target ${target.name}` };
}

/**
 * Whether a job's updates may go to a channel. Someone listed by user or group may pick any channel; someone
 * allowed only because of where they typed /ami must keep the updates in a channel the rule lists.
 */
export function mayPostTo(target: Target, who: Principal, channelId: string): boolean {
  if (!decideAccess(target, who).allowed) return false;
  const { users, usergroups, channels } = target.allow;
  if (users.includes("*") || users.includes(who.userId)) return true;
  if (usergroups.some((g) => who.usergroupIds.has(g))) return true;
  return channels.includes(channelId);
}

/** The targets a person may use, in configuration order. */
export function allowedTargets(targets: readonly Target[], who: Principal): Target[] {
  return targets.filter((t) => decideAccess(t, who).allowed);
}

/** "target|region" keys a person may choose: used to check what a submitted form claims. */
export function allowedPlaces(targets: readonly Target[], who: Principal): Set<string> {
  return new Set(allowedTargets(targets, who).flatMap((t) => t.regions.map((r) => placeKey(t.name, r))));
}

export function placeKey(targetName: string, region: string): string {
  return `${targetName}|${region}`;
}

/** Every user group any rule mentions (access or approval): the only ones worth looking up. */
export function mentionedUsergroups(targets: readonly Target[]): string[] {
  return [
    ...new Set(targets.flatMap((t) => [...t.allow.usergroups, ...(t.approval?.approvers.usergroups ?? [])])),
  ];
}

/**
 * A direct message (D…) is a conversation between two people, not a channel people are added to: a channel
 * rule never counts in one.
 */
export function isDirectMessage(channelId: string): boolean {
  return channelId.startsWith("D");
}

/** Every channel these targets' rules mention, once, DMs aside. */
export function mentionedChannels(targets: readonly Target[]): string[] {
  return [...new Set(targets.flatMap((t) => t.allow.channels))].filter((c) => !isDirectMessage(c));
}

/**
 * What an operator must hear about a channel a target's rule lists, given whether the channel is private
 * (undefined: Slack did not say); undefined when the rule works as written.
 */
export function channelRuleWarning(
  target: Target,
  channelId: string,
  channelPrivate: boolean | undefined,
): string | undefined {
  const where = `channel ${channelId} in target ${target.name}'s allow rule`;
  if (isDirectMessage(channelId))
    return `${where} is a direct message, not a channel, so the rule grants nothing`;
  // Where public channels count, privacy decides nothing.
  if (channelPrivate === true || target.allowPublicChannels) return undefined;
  if (channelPrivate === false)
    return `${where} is public: anyone can join it, so the rule grants nothing unless the target says allowPublicChannels: true`;
  return `ami-bot cannot tell whether ${where} is private, so the rule grants nothing: if it is a private channel, invite ami-bot to it; otherwise check the id`;
}

/** What a denied person is told: what they lack and whom to ask. */
export function deniedMessage(who?: Pick<Principal, "standing" | "channelPrivate">): string {
  if (who?.standing === "guest" || who?.standing === "external")
    return (
      `ami-bot does not take requests from ${who.standing === "guest" ? "guest accounts" : "people from other organisations"} in this workspace. ` +
      "Ask a full member of the team that runs the account to make the image, or ask ami-bot's admins to allow guests on a target."
    );
  if (who?.standing === "unknown")
    return "ami-bot could not confirm your Slack account just now, so it cannot check your access. Try again in a minute.";
  if (who && "channelPrivate" in who && who.channelPrivate === false)
    return (
      "You are not allowed to create images with ami-bot: no target lists you or a user group you are in, and channel rules count only in private channels. " +
      "Ask the people who run ami-bot in your workspace to add you to a target's `allow` rule."
    );
  return (
    "You are not allowed to create images with ami-bot: no target lists you, a user group you are in, or this channel. " +
    "Ask the people who run ami-bot in your workspace to add you to a target's `allow` rule."
  );
}

/** Whether a person is one of the target's approvers as the rules and their groups stand now. */
export function isApprover(
  target: Target | undefined,
  who: Pick<Principal, "userId" | "usergroupIds">,
): boolean {
  const approvers = target?.approval?.approvers;
  if (!approvers) return false;
  return approvers.users.includes(who.userId) || approvers.usergroups.some((g) => who.usergroupIds.has(g));
}
