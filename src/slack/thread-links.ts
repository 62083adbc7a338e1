/** Links to jobs' threads, from Slack itself, within a time budget (they are wanted before an answer). */
import type { webApi } from "@slack/bolt";
import type { Job } from "../domain/job.js";
import type { Logger } from "../logger.js";

/**
 * The permalink of each job's root message, asked for in parallel and waited for `budgetMs` in all.
 * chat.getPermalink rather than a URL built from auth.test's team URL: Slack documents permalinks as its
 * answer only, and the team URL changes when a workspace is renamed or (Enterprise Grid) links go through
 * the organisation's domain, which a URL built once at start-up would get wrong without anyone noticing.
 */
export async function threadPermalinks(
  client: webApi.WebClient,
  jobs: readonly Job[],
  logger: Logger,
  budgetMs: number,
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const lookups = jobs.map(async (job) => {
    if (!job.rootChannelId || !job.rootTs) return;
    try {
      const res = await client.chat.getPermalink({ channel: job.rootChannelId, message_ts: job.rootTs });
      if (res.permalink) found.set(job.id, res.permalink);
    } catch (error) {
      logger.debug({ err: error, jobId: job.id }, "no permalink for a job's thread");
    }
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(lookups),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, budgetMs);
    }),
  ]);
  clearTimeout(timer);
  // A copy: links that arrive after the budget must not change a list already being sent.
  return new Map(found);
}
