/**
 * Which user groups a person belongs to, among those the access rules mention. Slack's
 * usergroups.users.list answers per group, so members are cached per group for a short time.
 */
import type { webApi } from "@slack/bolt";
import type { Clock } from "../domain/ports.js";
import type { Logger } from "../logger.js";

const LOOKUP_BUDGET_MS = 1500;

export interface UsergroupDirectory {
  groupsOf(userId: string): Promise<Set<string>>;
}

export function createUsergroupDirectory(deps: {
  client: webApi.WebClient;
  groupIds: readonly string[];
  ttlMs: number;
  clock: Clock;
  logger: Logger;
}): UsergroupDirectory {
  const cache = new Map<string, { members: Set<string>; expires: number }>();
  const inflight = new Map<string, Promise<Set<string>>>();

  async function members(groupId: string): Promise<Set<string>> {
    const hit = cache.get(groupId);
    if (hit && hit.expires > deps.clock.now()) return hit.members;
    const running = inflight.get(groupId);
    if (running) return running;
    // Membership is read before an ack (Slack allows 3 s in all): a slow answer counts as no membership.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("usergroups.users.list took too long")), LOOKUP_BUDGET_MS);
    });
    const load = Promise.race([deps.client.usergroups.users.list({ usergroup: groupId }), timeout])
      .then((res) => {
        const set = new Set(res.users ?? []);
        cache.set(groupId, { members: set, expires: deps.clock.now() + deps.ttlMs });
        return set;
      })
      .catch((error: unknown) => {
        // Deny by default: a group we cannot read grants nothing.
        deps.logger.warn({ err: error, usergroup: groupId }, "cannot read user group members");
        return new Set<string>();
      })
      .finally(() => {
        clearTimeout(timer);
        inflight.delete(groupId);
      });
    inflight.set(groupId, load);
    return load;
  }

  return {
    async groupsOf(userId) {
      const result = new Set<string>();
      await Promise.all(
        deps.groupIds.map(async (g) => {
          if ((await members(g)).has(userId)) result.add(g);
        }),
      );
      return result;
    },
  };
}
