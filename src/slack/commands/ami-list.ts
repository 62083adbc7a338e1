/**
 * `/ami list` (the latest jobs in this channel) and `/ami list mine` (the person's own, anywhere).
 */
import { allowedTargets, deniedMessage } from "../../domain/access.js";
import { emptyJobListText, type JobListScope, jobListMessage } from "../blocks/job-list.js";
import { audit, principalOf, type SlackDeps } from "../deps.js";
import { threadPermalinks } from "../thread-links.js";
import type { Args } from "./ami.js";

/** `/ami list` shows the latest jobs, at most this many. */
const LIST_LIMIT = 15;

/** How long `/ami list` waits, in all, for the threads' permalinks; a link not in by then is left out. */

/** `/ami list` → the channel's jobs, `/ami list mine` → the person's; anything else is not a list. */
export function listScope(rest: readonly string[]): JobListScope | undefined {
  if (rest.length === 0) return "channel";
  return rest.length === 1 && rest[0]?.toLowerCase() === "mine" ? "mine" : undefined;
}

/**
 * `/ami list [mine]`: only jobs made in places the person may use now (target, role and region), so nobody
 * learns of images in an account they cannot use. Denied or empty: the ack's own text; otherwise the ack
 * first, then the list through response_url once the threads' links are in (or their time is up).
 */
export async function listJobs(
  deps: SlackDeps,
  { command, ack, client, respond }: Args,
  scope: JobListScope,
) {
  const who = await principalOf(deps, command.user_id, command.channel_id);
  const targets = allowedTargets(deps.config.targets, who);
  audit(deps, {
    user: command.user_id,
    action: scope === "mine" ? "list_own_jobs" : "list_channel_jobs",
    allowed: targets.length > 0,
    reason: targets.length > 0 ? `${targets.length} targets allowed` : "no target allows this user here",
  });
  if (targets.length === 0) {
    await ack({ response_type: "ephemeral", text: deniedMessage(who) });
    return;
  }
  const places = targets.flatMap((t) =>
    t.regions.map((region) => ({ targetName: t.name, roleArn: t.roleArn, region })),
  );
  const jobs = await deps.store.recentJobs(
    scope === "mine" ? { requestedBy: command.user_id, places } : { channelId: command.channel_id, places },
    LIST_LIMIT,
  );
  if (jobs.length === 0) {
    await ack({ response_type: "ephemeral", text: emptyJobListText(scope) });
    return;
  }
  await ack();
  const links = await threadPermalinks(client, jobs, deps.logger, deps.budgets.permalinkMs);
  const message = jobListMessage(
    scope,
    jobs.map((job) => ({ job, permalink: links.get(job.id) })),
    deps.clock.now(),
  );
  await respond({ response_type: "ephemeral", replace_original: false, ...message });
}
