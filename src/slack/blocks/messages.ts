/**
 * The job's thread, as pure Block Kit: the root message (rewritten in place as the job moves on) and each
 * reply. Every message carries plain `text` too, for notifications and screen readers.
 *
 * Names and tags are chosen by whoever asked or whoever tagged the instance, and they reach a whole channel:
 * each goes through `literal` (a code span) and every text object is `verbatim`, so a value cannot mention
 * @here, link a URL or change the formatting around it.
 */
import type { types } from "@slack/bolt";
import type { Target } from "../../config.js";
import type { Tag } from "../../domain/image-request.js";
import type { Job } from "../../domain/job.js";
import { ACTION, BLOCK } from "../ids.js";
import { consoleImageUrl, escapeText, formatDuration, literal, prose } from "./format.js";

type KnownBlock = types.KnownBlock;
type MrkdwnElement = types.MrkdwnElement;

export interface SlackMessage {
  readonly text: string;
  readonly blocks?: KnownBlock[];
  /** Also show the reply in the channel (the final "available"). */
  readonly broadcast?: boolean;
}

export interface MessageContext {
  /** The job's target, when still configured (for the account id and console link). */
  readonly target: Target | undefined;
  readonly now: number;
  readonly watcher: {
    readonly slowPollIntervalMs: number;
    readonly giveUpAfterMs: number;
    readonly slowAfterMs: number;
  };
}

/** Slack links nothing and mentions no one on its own in this text; our own <@U…> and <url|…> still work. */
function mrkdwn(text: string): MrkdwnElement {
  return { type: "mrkdwn", text, verbatim: true };
}

/** A message whose one section says what its fallback text says. */
function plainMessage(text: string): { text: string; blocks: KnownBlock[] } {
  return { text, blocks: [{ type: "section", text: mrkdwn(text) }] };
}

function instanceLabel(job: Job): string {
  return job.instanceName ? `${literal(job.instanceName)} (\`${job.instanceId}\`)` : `\`${job.instanceId}\``;
}

// A section field holds 2,000 characters; the rest is room for the heading and the "more" note.
const TAGS_BUDGET = 1900;

/** `key=value` spans, as many as fit whole; the rest are counted rather than cut mid-span. */
function tagList(tags: readonly Tag[]): string {
  const shown: string[] = [];
  let length = 0;
  for (const tag of tags) {
    const item = literal(`${tag.key}=${tag.value}`);
    if (length + item.length + 2 > TAGS_BUDGET) break;
    shown.push(item);
    length += item.length + 2;
  }
  const hidden = tags.length - shown.length;
  if (hidden === 0) return shown.join(", ");
  return shown.length ? `${shown.join(", ")} and ${hidden} more` : `${hidden} tags, too long to show here`;
}

/** The devices left out of the image, each as typed by AWS: `/dev/sdf`, `/dev/sdg`. */
function deviceList(devices: readonly string[]): string {
  return devices.map(literal).join(", ");
}

function statusLine(job: Job, ctx: MessageContext): string {
  const took = job.finishedAt ? formatDuration(job.finishedAt - job.createdAt) : "";
  switch (job.state) {
    case "queued":
      return ":hourglass_flowing_sand: Creating the image…";
    case "pending":
      return `:hourglass_flowing_sand: Image \`${job.imageId}\` is pending${job.progress ? ` (snapshots ${job.progress}%+)` : ""}`;
    case "available":
      return `:white_check_mark: Image ${imageLink(job, ctx)} is available (took ${took})`;
    case "failed":
      return `:x: The image failed: ${prose(job.finalReason ?? "")}`;
    case "refused":
      return `:no_entry: Not created: ${prose(job.finalReason ?? "")}`;
    case "timed_out":
      return `:warning: Gave up after ${took}: ${prose(job.finalReason ?? "")}`;
  }
}

function imageLink(job: Job, ctx: MessageContext): string {
  if (!job.imageId) return "";
  const url = consoleImageUrl(ctx.target?.partition ?? "aws", job.region, job.imageId);
  return `<${url}|\`${job.imageId}\`>`;
}

/** The root message: who asked for what, where, and the current state. */
export function rootMessage(job: Job, ctx: MessageContext): SlackMessage {
  const account = ctx.target?.accountId
    ? `${escapeText(job.targetName)} (${ctx.target.accountId})`
    : escapeText(job.targetName);
  const status = statusLine(job, ctx);
  return {
    text: `<@${job.requestedBy}> asked for an AMI of ${literal(job.instanceName ?? job.instanceId)}: ${status.replace(/^:[a-z_]+: /, "")}`,
    blocks: [
      { type: "section", text: mrkdwn(`*AMI of ${instanceLabel(job)}*, asked by <@${job.requestedBy}>`) },
      {
        type: "section",
        fields: [
          mrkdwn(`*Image name*\n${literal(job.imageName)}`),
          mrkdwn(`*Account / region*\n${account} · ${job.region}`),
          mrkdwn(`*Reboot*\n${job.noReboot ? "No (crash-consistent)" : "Yes (consistent file systems)"}`),
          ...(job.excludedDevices.length
            ? [mrkdwn(`*Volumes left out*\n${deviceList(job.excludedDevices)}`)]
            : []),
          ...(job.tags.length ? [mrkdwn(`*Tags*\n${tagList(job.tags)}`)] : []),
        ],
      },
      { type: "section", text: mrkdwn(status) },
      { type: "context", elements: [mrkdwn(`Job \`${job.id}\` · updates in this thread`)] },
    ],
  };
}

/** A reply in the thread, for one notice. `key` picks the milestone for progress notices. */
export function replyMessage(job: Job, key: string, ctx: MessageContext): SlackMessage {
  const kind = key.split(":")[0];
  const text = ((): string => {
    switch (kind) {
      case "creating": {
        const asking = job.noReboot
          ? "Asking AWS to create the image without rebooting the instance (crash-consistent)."
          : "Asking AWS to create the image. The instance will reboot so its file systems are consistent.";
        return job.excludedDevices.length
          ? `${asking} Leaving out ${job.excludedDevices.length === 1 ? "the volume" : "the volumes"} ${deviceList(job.excludedDevices)}; every other volume is in the image.`
          : asking;
      }
      case "pending":
        return `Image \`${job.imageId}\` is pending. I'll post progress here.`;
      case "progress":
        return `Snapshots are ${key.split(":")[1]}% done.`;
      case "slow":
        return `Still pending after ${formatDuration(ctx.watcher.slowAfterMs)}. Large volumes can take a long time; I'll check every ${formatDuration(ctx.watcher.slowPollIntervalMs)} for up to ${formatDuration(ctx.watcher.giveUpAfterMs)} in all.`;
      case "checks_failing":
        return `:warning: I can't check on the image right now: ${prose(job.lastError ?? "AWS did not answer")} I'll keep trying.`;
      case "available":
        return `:white_check_mark: Image ${imageLink(job, ctx)} (${literal(job.imageName)}) is available, after ${formatDuration((job.finishedAt ?? ctx.now) - job.createdAt)}.`;
      case "failed":
        return `:x: The image failed. ${prose(job.finalReason ?? "")}`;
      case "refused":
        return `:no_entry: The image was not created. ${prose(job.finalReason ?? "")}`;
      case "timed_out":
        return `:warning: ${prose(job.finalReason ?? "Gave up.")} Check the image in the EC2 console${job.imageId ? ` (${imageLink(job, ctx)})` : ""}.`;
      default:
        return `Update: ${kind}`;
    }
  })();
  const message = plainMessage(text);
  if (kind !== undefined && RETRYABLE_KINDS.has(kind)) message.blocks.push(tryAgainBlock(job));
  return { ...message, broadcast: kind === "available" };
}

/** The final replies after which the same request may be asked again. */
const RETRYABLE_KINDS: ReadonlySet<string> = new Set(["failed", "refused", "timed_out"]);

/** The "Try again" button: opens the form filled in with this job's values (checked again on click). */
function tryAgainBlock(job: Job): KnownBlock {
  return {
    type: "actions",
    block_id: BLOCK.tryAgain,
    elements: [
      {
        type: "button",
        action_id: ACTION.tryAgain,
        text: { type: "plain_text", text: "Try again", emoji: true },
        value: job.id,
      },
    ],
  };
}

/** What the requester alone is told: a refusal, or that the chosen channel cannot take the thread. */
export function requesterNote(job: Job, key: string): SlackMessage {
  return plainMessage(requesterNoteText(job, key));
}

function requesterNoteText(job: Job, key: string): string {
  if (key.startsWith("channel_unusable:")) {
    const channel = key.slice("channel_unusable:".length);
    return (
      `I can't post in <#${channel}> (I'm not a member, or it is archived), so I'll keep you updated about ` +
      `${literal(job.imageName)} here. To get updates in the channel next time, invite me there with \`/invite @ami-bot\`.`
    );
  }
  const what = `${literal(job.instanceName ?? job.instanceId)} (${literal(job.imageName)})`;
  const why = prose(job.finalReason ?? "");
  if (job.state === "failed") return `The AMI of ${what} failed: ${why}`;
  if (job.state === "timed_out") return `ami-bot stopped following the AMI of ${what}: ${why}`;
  return `Your AMI request for ${what} did not go through: ${why || "AWS refused it."}`;
}
