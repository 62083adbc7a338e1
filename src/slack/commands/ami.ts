/**
 * /ami: acknowledge at once, then open the modal, before any AWS call (the trigger_id lives 3 seconds).
 */

import type { AllMiddlewareArgs, SlackCommandMiddlewareArgs } from "@slack/bolt";
import { deniedMessage } from "../../domain/access.js";
import { checkImageAccess } from "../../domain/access-check.js";
import { editDistance } from "../../domain/edit-distance.js";
import { isInstanceId } from "../../domain/image-request.js";
import { escapeText } from "../blocks/format.js";
import { helpText } from "../blocks/modal.js";
import { audit, placesFor, principalOf, type SlackDeps } from "../deps.js";
import { openCreateForm } from "../views/open-create-form.js";
import { type CleanupCommandDeps, cleanupCommand } from "./ami-cleanup.js";
import { listJobs, listScope } from "./ami-list.js";

export type Args = SlackCommandMiddlewareArgs & AllMiddlewareArgs;

/** `/ami check` answers within Slack's message size: a few places at most. */
const MAX_CHECKED_PLACES = 10;

/** The words `/ami` takes before any argument; anything else that looks like a word gets a hint. */
const SUBCOMMANDS = ["check", "list", "help", "cleanup"] as const;

/** `cleanup`, when given, serves `/ami cleanup`; the composition root passes it beside the other deps. */
export function createAmiCommand(deps: SlackDeps & CleanupCommandDeps) {
  return async (args: Args): Promise<void> => {
    const { command, ack, client, context, respond } = args;
    // Socket Mode numbers the first delivery 0; HTTP sends no retry header on it at all.
    if (context.retryNum) {
      // A redelivery of a command we already answered: opening a second form would only confuse.
      deps.logger.info({ user: command.user_id, retryNum: context.retryNum }, "ignored a redelivered /ami");
      await ack();
      return;
    }
    const words = command.text.trim().split(/\s+/).filter(Boolean);
    const verb = words[0]?.toLowerCase();
    if (verb === "list") {
      const scope = listScope(words.slice(1));
      if (scope) await listJobs(deps, args, scope);
      else
        await ack({
          response_type: "ephemeral",
          text: "`/ami list` shows the latest images in this channel and `/ami list mine` yours. Type `/ami help` for the rest.",
        });
      return;
    }
    if (verb === "cleanup") {
      await cleanupCommand(deps, args, words.slice(1));
      return;
    }
    const checking = verb === "check";
    const text = (checking ? words.slice(1) : words).join(" ");
    if (text.toLowerCase() === "help" || text === "-h" || text === "--help") {
      await ack({ response_type: "ephemeral", text: helpText() });
      return;
    }
    // A lone word is a subcommand mistyped (`/ami lsit`), not an instance id gone wrong.
    if (!checking && words.length === 1 && /^[a-z]{1,20}$/i.test(text)) {
      const guess = closestSubcommand(text.toLowerCase());
      await ack({
        response_type: "ephemeral",
        text: `\`/ami ${text}\` is not something ami-bot knows.${guess ? ` Did you mean \`/ami ${guess}\`?` : ""} Type \`/ami help\` to see every form.`,
      });
      return;
    }
    if (text !== "" && !isInstanceId(text)) {
      await ack({
        response_type: "ephemeral",
        text: `“${escapeText(text.slice(0, 80))}” is not an instance id (i-…). Type \`/ami\` to open the form, or \`/ami help\`.`,
      });
      return;
    }
    // Access is decided before the ack, so a denial is the ack's own ephemeral text (no response_url needed).
    const who = await principalOf(deps, command.user_id, command.channel_id);
    const places = placesFor(deps, who);
    audit(deps, {
      user: command.user_id,
      action: checking && text ? "check_access" : "open_modal",
      allowed: places.length > 0,
      reason: places.length > 0 ? `${places.length} places allowed` : "no target allows this user here",
    });
    if (places.length === 0) {
      await ack({ response_type: "ephemeral", text: deniedMessage(who) });
      return;
    }
    if (checking && text) {
      await ack({
        response_type: "ephemeral",
        text: `Asking AWS (dry run) whether you could image ${text}…`,
      });
      const results = await Promise.all(
        places.slice(0, MAX_CHECKED_PLACES).map((p) => {
          const target = deps.config.targets.find((t) => t.name === p.targetName);
          return target
            ? checkImageAccess(
                deps.images,
                { target, region: p.region },
                { userId: command.user_id, channelId: command.channel_id },
                text,
              )
            : undefined;
        }),
      );
      const lines = results.flatMap((r) =>
        r ? [`${r.allowed ? ":white_check_mark:" : ":no_entry:"} ${escapeText(r.message)}`] : [],
      );
      await respond({ response_type: "ephemeral", replace_original: false, text: lines.join("\n") });
      return;
    }
    await ack();
    await openCreateForm(deps, client, {
      triggerId: command.trigger_id,
      userId: command.user_id,
      channelId: command.channel_id,
      places,
      instance: text ? { id: text, label: text } : undefined,
    });
  };
}

/** The subcommand a mistyped word is closest to (at most two letters off), if exactly one is. */
function closestSubcommand(word: string): string | undefined {
  const near = SUBCOMMANDS.filter((s) => editDistance(word, s) <= 2);
  return near.length === 1 ? near[0] : undefined;
}
