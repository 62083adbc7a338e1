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
import { afterStepReply, afterStepsField, nextStepsText } from "./after-step-messages.js";
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

/** "14:32 UTC", the time of a decision as everyone in the channel reads it. */
export function clockTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 16)} UTC`;
}

/** A deadline: "14:32 UTC" today (UTC), "Thu 3 Dec 14:32 UTC" on another day (a wait can last a week). */
export function deadlineText(ms: number, now: number): string {
  const at = new Date(ms);
  if (at.toISOString().slice(0, 10) === new Date(now).toISOString().slice(0, 10)) return clockTime(ms);
  const day = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][at.getUTCDay()];
  const month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][
    at.getUTCMonth()
  ];
  return `${day} ${at.getUTCDate()} ${month} ${clockTime(ms)}`;
}

/** Who may approve a target's jobs, as mentions: user groups first, then the listed people. */
export function approverMentions(target: Target | undefined): string {
  const approvers = target?.approval?.approvers;
  if (!approvers) return "an approver (this target no longer asks for approval)";
  const mentions = [
    ...approvers.usergroups.map((g) => `<!subteam^${g}>`),
    ...approvers.users.map((u) => `<@${u}>`),
  ];
  return mentions.length > 1 ? `one of ${mentions.join(", ")}` : (mentions[0] ?? "an approver");
}

function statusLine(job: Job, ctx: MessageContext): string {
  const took = job.finishedAt ? formatDuration(job.finishedAt - job.createdAt) : "";
  switch (job.state) {
    case "awaiting_approval":
      return `:raised_hand: Waiting for approval by ${approverMentions(ctx.target)}, until ${deadlineText(job.approvalExpiresAt ?? ctx.now, ctx.now)}. Nothing is created before.`;
    case "queued":
      return ":hourglass_flowing_sand: Creating the image…";
    case "cancelling":
      return `:octagonal_sign: Cancelling${job.imageId ? `: removing image \`${job.imageId}\` and its snapshots…` : "…"}`;
    case "cancelled":
      return `:octagonal_sign: Cancelled${job.imageId ? `: image \`${job.imageId}\` and its snapshots were deleted` : ": nothing was created"}`;
    case "denied":
      return `:no_entry_sign: Denied${job.finalReason ? `: ${prose(job.finalReason, 500)}` : ""}. Nothing was created.`;
    case "expired":
      return ":hourglass: Expired: nobody approved it in time. Nothing was created.";
    case "pending":
      return `:hourglass_flowing_sand: Image \`${job.imageId}\` is pending${job.progress ? ` (snapshots ${job.progress}%+)` : ""}`;
    case "finishing":
      return `:white_check_mark: Image ${imageLink(job, ctx)} is available; copying and sharing as asked…`;
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
          ...afterField(job, ctx),
        ],
      },
      { type: "section", text: mrkdwn(status) },
      ...jobButtons(job),
      {
        type: "context",
        elements: [mrkdwn([...whoDecided(job), `Job \`${job.id}\` · updates in this thread`].join(" · "))],
      },
    ],
  };
}

function afterField(job: Job, ctx: MessageContext): MrkdwnElement[] {
  const text = afterStepsField(job, ctx.target?.partition ?? "aws");
  return text ? [mrkdwn(text)] : [];
}

/** Who approved, denied or cancelled, and when: on the root for as long as the job is shown. */
function whoDecided(job: Job): string[] {
  const lines: string[] = [];
  if (job.decision && job.decidedBy && job.decidedAt)
    lines.push(
      `${job.decision === "approved" ? "Approved" : "Denied"} by <@${job.decidedBy}> at ${clockTime(job.decidedAt)}`,
    );
  if (job.cancelledBy && job.cancelledAt)
    lines.push(`Cancelled by <@${job.cancelledBy}> at ${clockTime(job.cancelledAt)}`);
  return lines;
}

/**
 * The buttons a job's state allows: Approve and Deny while it waits for approval, Cancel while unfinished.
 * None once it is cancelling or finished (removing a finished image is not ami-bot's to do).
 */
export function jobButtons(job: Job): KnownBlock[] {
  const elements: types.Button[] = [];
  if (job.state === "awaiting_approval")
    elements.push(
      { type: "button", action_id: ACTION.approve, text: plain("Approve"), style: "primary", value: job.id },
      { type: "button", action_id: ACTION.deny, text: plain("Deny"), style: "danger", value: job.id },
    );
  if (job.state === "awaiting_approval" || job.state === "queued" || job.state === "pending")
    elements.push({
      type: "button",
      action_id: ACTION.cancel,
      text: plain("Cancel"),
      value: job.id,
      confirm: {
        title: plain("Cancel this image?"),
        text: mrkdwn(
          "If AWS has started the image, it is deregistered and its snapshots are deleted. This cannot be undone.",
        ),
        confirm: plain("Cancel the image"),
        deny: plain("Keep it"),
        style: "danger",
      },
    });
  return elements.length ? [{ type: "actions", block_id: BLOCK.jobActions, elements }] : [];
}

function plain(text: string): types.PlainTextElement {
  return { type: "plain_text", text, emoji: true };
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
        return `:white_check_mark: Image ${imageLink(job, ctx)} (${literal(job.imageName)}) is available${
          // With steps after it, the job's end is not the image's: say what comes next instead.
          job.after
            ? `.${nextStepsText(job)}`
            : `, after ${formatDuration((job.finishedAt ?? ctx.now) - job.createdAt)}.`
        }`;
      case "failed":
        return `:x: The image failed. ${prose(job.finalReason ?? "")}`;
      case "refused":
        return `:no_entry: The image was not created. ${prose(job.finalReason ?? "")}`;
      case "timed_out":
        return `:warning: ${prose(job.finalReason ?? "Gave up.")} Check the image in the EC2 console${job.imageId ? ` (${imageLink(job, ctx)})` : ""}.`;
      case "approval_request":
        return `:raised_hand: ${approverMentions(ctx.target)}: this image needs an approval before anything is created. Anyone listed except <@${job.requestedBy}> can *Approve* or *Deny* it on the message above, or from ami-bot's Home tab. Without a decision by ${deadlineText(job.approvalExpiresAt ?? ctx.now, ctx.now)} it expires.`;
      case "approved":
        return `:white_check_mark: Approved by <@${job.decidedBy ?? "?"}> at ${clockTime(job.decidedAt ?? ctx.now)}. Creating the image now.`;
      case "denied":
        return `:no_entry_sign: <@${job.requestedBy}>, <@${job.decidedBy ?? "?"}> denied this at ${clockTime(job.decidedAt ?? ctx.now)}${job.finalReason ? `: “${prose(job.finalReason, 500)}”` : " (no reason given)"}. Nothing was created.`;
      case "expired":
        return `:hourglass: <@${job.requestedBy}>, nobody approved or denied this by ${deadlineText(job.approvalExpiresAt ?? ctx.now, ctx.now)}, so it expired and nothing was created. Try again to ask once more.`;
      case "cancelling":
        return `:octagonal_sign: <@${job.cancelledBy ?? "?"}> cancelled this. ${job.imageId ? `Removing image \`${job.imageId}\` and its snapshots…` : "Stopping the request; if AWS had started an image, it is removed."}`;
      case "cancelled":
        return `:octagonal_sign: Cancelled by <@${job.cancelledBy ?? "?"}> at ${clockTime(job.cancelledAt ?? ctx.now)}. ${
          !job.imageId
            ? "Nothing was created."
            : job.finalReason
              ? `Image \`${job.imageId}\`: ${prose(job.finalReason, 800)}`
              : `Image \`${job.imageId}\` was deregistered and its snapshots deleted.`
        }`;
      case "cancel_failed":
        return `:warning: The image could not be cancelled: ${prose(job.finalReason ?? "AWS refused.")} It goes on being made; I'll keep posting here.`;
      default:
        return afterStepReply(job, key, ctx.target?.partition ?? "aws") ?? `Update: ${kind}`;
    }
  })();
  const message = plainMessage(text);
  if (kind !== undefined && RETRYABLE_KINDS.has(kind)) message.blocks.push(tryAgainBlock(job));
  return { ...message, broadcast: kind === "available" };
}

/** The final replies after which the same request may be asked again. */
const RETRYABLE_KINDS: ReadonlySet<string> = new Set(["failed", "refused", "timed_out", "expired"]);

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

/** The direct message to a listed approver: who asks for what, where, until when, with the same buttons. */
export function approverMessage(job: Job, ctx: MessageContext, permalink: string | undefined): SlackMessage {
  const where = `${escapeText(job.targetName)}${ctx.target?.accountId ? ` (${ctx.target.accountId})` : ""} · ${job.region}`;
  const thread =
    permalink && /^https:\/\/[^\s<>|]+$/.test(permalink) ? ` <${permalink}|See the thread>.` : "";
  const text = `<@${job.requestedBy}> asks for an AMI of ${instanceLabel(job)} (${literal(job.imageName)}) in ${where}, and it needs your approval by ${deadlineText(job.approvalExpiresAt ?? ctx.now, ctx.now)}.${thread}`;
  return { text, blocks: [{ type: "section", text: mrkdwn(text) }, ...jobButtons(job)] };
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
