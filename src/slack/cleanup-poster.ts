/** Posts the keep rule's summary of a sweep to the rule's channel, through the Web API. */
import type { webApi } from "@slack/bolt";
import type { SweepReport } from "../domain/keep-rule.js";
import { cleanupSummaryMessage } from "./blocks/cleanup-summary.js";
import { translateSlackError } from "./slack-notifier.js";

/** The sweep's `postSummary`: one chat.postMessage; a refusal is thrown as the bot's Slack errors. */
export function createCleanupPoster(
  client: webApi.WebClient,
): (channel: string, report: SweepReport) => Promise<void> {
  return async (channel, report) => {
    try {
      await client.chat.postMessage({ channel, unfurl_links: false, ...cleanupSummaryMessage(report) });
    } catch (error) {
      throw translateSlackError(error);
    }
  };
}
