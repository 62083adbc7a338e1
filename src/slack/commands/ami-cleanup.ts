/**
 * `/ami cleanup preview [target]` and `/ami cleanup run [target]`: the keep rule on demand, for the
 * target's admins. A preview lists what a run would remove and keep, touching nothing; a run sweeps now and
 * posts the summary to the rule's channel too. Both answer privately, after an ack (a sweep takes seconds).
 */
import type { RespondArguments, SlashCommand } from "@slack/bolt";
import type { Config } from "../../config.js";
import type { Target } from "../../domain/target.js";
import type { Logger } from "../../logger.js";
import { type KeepSweep, sweepRegions } from "../../watcher/keep-sweep.js";
import { cleanupSummaryMessage } from "../blocks/cleanup-summary.js";
import { escapeText } from "../blocks/format.js";

/** What `/ami cleanup` needs beyond the other listeners: the sweep, when the bot runs one. */
export interface CleanupCommandDeps {
  readonly cleanup?: KeepSweep | undefined;
}

/** The part of a slash command's listener arguments `/ami cleanup` uses. */
export interface CleanupArgs {
  readonly command: Pick<SlashCommand, "user_id" | "channel_id">;
  ack(response: { response_type: "ephemeral"; text: string }): Promise<void>;
  respond(message: RespondArguments): Promise<unknown>;
}

export type CleanupMode = "preview" | "run";

const USAGE =
  "`/ami cleanup preview [target]` lists what the target's keep rule would remove now, touching nothing; `/ami cleanup run [target]` removes it now and posts the summary to the rule's channel. Both are for the target's admins.";

/** The words after `cleanup`: a mode and at most one target name; otherwise how to use it. */
export function parseCleanupArgs(
  words: readonly string[],
): { mode: CleanupMode; targetName: string | undefined } | { usage: string } {
  const mode = words[0]?.toLowerCase();
  if ((mode !== "preview" && mode !== "run") || words.length > 2) return { usage: USAGE };
  return { mode, targetName: words[1] };
}

const names = (targets: readonly Target[]) => targets.map((t) => `\`${escapeText(t.name)}\``).join(", ");

/**
 * The target a cleanup is about: the one named (exactly, or else by case when only one matches), or the
 * only target with a keep rule. Otherwise a plain message saying what to type.
 */
export function chooseCleanupTarget(
  targets: readonly Target[],
  targetName: string | undefined,
  mode: CleanupMode,
): { target: Target } | { message: string } {
  const withRule = targets.filter((t) => t.after.keep !== undefined);
  const listed =
    withRule.length > 0 ? `Targets with a keep rule: ${names(withRule)}.` : "No target has a keep rule.";
  if (targetName === undefined) {
    const [only] = withRule;
    if (only && withRule.length === 1) return { target: only };
    return {
      message:
        withRule.length === 0
          ? "No target has a keep rule, so ami-bot removes no images. The people who run ami-bot can set one (`keep` under a target's `after`)."
          : `Name the target: \`/ami cleanup ${mode} <target>\`. ${listed}`,
    };
  }
  const exact = targets.find((t) => t.name === targetName);
  const folded = targets.filter((t) => t.name.toLowerCase() === targetName.toLowerCase());
  const target = exact ?? (folded.length === 1 ? folded[0] : undefined);
  if (!target)
    return { message: `There is no target named “${escapeText(targetName.slice(0, 80))}”. ${listed}` };
  if (!target.after.keep)
    return {
      message: `Target \`${escapeText(target.name)}\` has no keep rule, so ami-bot removes none of its images. ${listed}`,
    };
  return { target };
}

/** Why this person may not clean up the target, naming who can; undefined when they are one of its admins. */
export function cleanupRefusal(target: Target, userId: string): string | undefined {
  if (target.admins.includes(userId)) return undefined;
  const name = `\`${escapeText(target.name)}\``;
  if (target.admins.length === 0)
    return `Only the admins of target ${name} may run \`/ami cleanup\` for it, and it lists none. Its daily sweep runs regardless.`;
  return `Only the admins of target ${name} may run \`/ami cleanup\` for it: ${target.admins.map((a) => `<@${a}>`).join(", ")}.`;
}

export async function cleanupCommand(
  deps: { readonly config: Pick<Config, "targets">; readonly logger: Logger } & CleanupCommandDeps,
  { command, ack, respond }: CleanupArgs,
  words: readonly string[],
): Promise<void> {
  const say = (text: string) => ack({ response_type: "ephemeral", text });
  const parsed = parseCleanupArgs(words);
  if ("usage" in parsed) return say(parsed.usage);
  const chosen = chooseCleanupTarget(deps.config.targets, parsed.targetName, parsed.mode);
  if ("message" in chosen) return say(chosen.message);
  const { target } = chosen;
  const refusal = cleanupRefusal(target, command.user_id);
  // The audit line every access decision gets (see audit in ../deps.ts).
  const allowed = refusal === undefined;
  deps.logger.info(
    {
      audit: true,
      user: command.user_id,
      action: `cleanup_${parsed.mode}`,
      allowed,
      reason: allowed ? "listed in the target's admins" : "not listed in the target's admins",
      target: target.name,
    },
    `access ${allowed ? "allowed" : "denied"}: cleanup_${parsed.mode}`,
  );
  if (refusal !== undefined) return say(refusal);
  const { cleanup } = deps;
  if (!cleanup) return say("This ami-bot does not run the keep rule, so there is nothing to clean up.");
  const channel = target.after.keep?.channel ?? "";
  if (parsed.mode === "run" && cleanup.isRunning(target.name))
    return say(
      `A cleanup of \`${escapeText(target.name)}\` is already running; its summary goes to <#${channel}>.`,
    );
  const regions = sweepRegions(target).join(", ");
  await say(
    parsed.mode === "preview"
      ? `Looking at the images ami-bot made for \`${escapeText(target.name)}\` in ${regions}; nothing will be removed…`
      : `Removing what the keep rule of \`${escapeText(target.name)}\` allows in ${regions}; the summary also goes to <#${channel}>…`,
  );
  try {
    const { report, postError } = await cleanup.sweep(target, {
      preview: parsed.mode === "preview",
      requester: { userId: command.user_id, channelId: command.channel_id },
      post: parsed.mode === "preview" ? "never" : "always",
    });
    await respond({
      response_type: "ephemeral",
      replace_original: false,
      ...cleanupSummaryMessage(report, postError ? { postError } : {}),
    });
  } catch (error) {
    deps.logger.error({ err: error, target: target.name }, "/ami cleanup failed");
    await respond({
      response_type: "ephemeral",
      replace_original: false,
      text: `The cleanup of \`${escapeText(target.name)}\` failed unexpectedly; the details are in ami-bot's log.`,
    });
  }
}
