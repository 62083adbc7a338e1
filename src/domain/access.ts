/**
 * Who may create images where. Deny by default: a person may use a target only when a rule lists them
 * (by user id, `*`, or a user group they belong to) or lists the channel they are typing in.
 */
import type { Target } from "./target.js";

export interface Principal {
  readonly userId: string;
  /** The channel the request comes from. */
  readonly channelId: string | undefined;
  /** The user groups the person belongs to, among those any rule mentions. */
  readonly usergroupIds: ReadonlySet<string>;
}

export interface AccessDecision {
  readonly allowed: boolean;
  /** Why, in words fit for an audit line. */
  readonly reason: string;
}

export function decideAccess(target: Target, who: Principal): AccessDecision {
  const { users, usergroups, channels } = target.allow;
  if (users.includes("*")) return { allowed: true, reason: "everyone may use this target" };
  if (users.includes(who.userId)) return { allowed: true, reason: "user is listed" };
  const group = usergroups.find((g) => who.usergroupIds.has(g));
  if (group) return { allowed: true, reason: `member of user group ${group}` };
  if (who.channelId && channels.includes(who.channelId))
    return { allowed: true, reason: `channel ${who.channelId} is listed` };
  return { allowed: false, reason: `not listed for target ${target.name}` };
}

/**
 * Whether a job's updates may go to a channel. Someone listed by user or group may pick any channel; someone
 * allowed only because of where they typed /ami must keep the updates in a channel the rule lists.
 */
export function mayPostTo(target: Target, who: Principal, channelId: string): boolean {
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

/** Every user group any rule mentions: the only ones worth looking up. */
export function mentionedUsergroups(targets: readonly Target[]): string[] {
  return [...new Set(targets.flatMap((t) => t.allow.usergroups))];
}

/** What a denied person is told: what they lack and whom to ask. */
export function deniedMessage(): string {
  return (
    "You are not allowed to create images with ami-bot: no target lists you, a user group you are in, or this channel. " +
    "Ask the people who run ami-bot in your workspace to add you to a target's `allow` rule."
  );
}
