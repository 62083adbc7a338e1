/**
 * `/ami list`: the latest jobs, one line each, as pure Block Kit. Image names and Name tags were typed by
 * someone else, so each goes through `literal` and every text object is `verbatim`: a name cannot mention
 * @here, link a URL or format the line around it.
 */
import type { types } from "@slack/bolt";
import type { Job, JobState } from "../../domain/job.js";
import { escapeText, literal } from "./format.js";

type KnownBlock = types.KnownBlock;

/** Whose jobs: the channel's (`/ami list`) or the person's own, anywhere (`/ami list mine`). */
export type JobListScope = "channel" | "mine";

export interface JobListEntry {
  readonly job: Job;
  /** The Slack permalink of the job's root message, when it is posted and Slack gave one in time. */
  readonly permalink: string | undefined;
}

export const STATE_WORDS: Readonly<Record<JobState, { readonly emoji: string; readonly word: string }>> = {
  awaiting_approval: { emoji: ":raised_hand:", word: "awaiting approval" },
  queued: { emoji: ":hourglass_flowing_sand:", word: "queued" },
  pending: { emoji: ":hourglass_flowing_sand:", word: "pending" },
  available: { emoji: ":white_check_mark:", word: "available" },
  failed: { emoji: ":x:", word: "failed" },
  refused: { emoji: ":no_entry:", word: "refused" },
  timed_out: { emoji: ":warning:", word: "timed out" },
  cancelling: { emoji: ":octagonal_sign:", word: "cancelling" },
  finishing: { emoji: ":white_check_mark:", word: "available, copying and sharing" },
  cancelled: { emoji: ":octagonal_sign:", word: "cancelled" },
  denied: { emoji: ":no_entry_sign:", word: "denied" },
  expired: { emoji: ":hourglass:", word: "expired" },
};

/** "just now", "12 min ago", "3 h ago", "1 day ago", "5 days ago". */
export function timeAgo(ms: number): string {
  const minutes = Math.floor(Math.max(0, ms) / 60_000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  return `${days} ${days === 1 ? "day" : "days"} ago`;
}

/** What `/ami list` says when it has nothing to show. */
export function emptyJobListText(scope: JobListScope): string {
  return scope === "mine"
    ? "You have no images yet. Type `/ami` to make one."
    : "There are no images in this channel yet. Type `/ami` to make one.";
}

/** A link only to what Slack itself would hand out; anything else (or nothing) is left out. */
function threadPart(entry: JobListEntry): string | undefined {
  if (!entry.job.rootTs) return "thread not posted yet";
  const url = entry.permalink;
  return url && /^https:\/\/[^\s<>|]+$/.test(url) ? `<${url}|thread>` : undefined;
}

/** One job: state, image name, instance, target and region, how long ago, and its thread. */
export function jobLine(entry: JobListEntry, now: number): string {
  const { job } = entry;
  const state = STATE_WORDS[job.state];
  const instance = job.instanceName
    ? `${literal(job.instanceName)} (${literal(job.instanceId)})`
    : literal(job.instanceId);
  return [
    `${state.emoji} *${state.word}* ${literal(job.imageName)}`,
    instance,
    `${escapeText(job.targetName)} · ${escapeText(job.region)}`,
    timeAgo(now - job.createdAt),
    threadPart(entry),
  ]
    .filter((part) => part !== undefined)
    .join(" · ");
}

/** The list, newest first as given: a heading, then one section per job (each well within Slack's limits). */
export function jobListMessage(
  scope: JobListScope,
  entries: readonly JobListEntry[],
  now: number,
): { text: string; blocks: KnownBlock[] } {
  const heading =
    scope === "mine"
      ? "*Your latest images*, newest first:"
      : "*The latest images in this channel*, newest first:";
  const lines = entries.map((e) => jobLine(e, now));
  return {
    text: [heading, ...lines].join("\n"),
    blocks: [heading, ...lines].map((text) => ({
      type: "section",
      text: { type: "mrkdwn", text, verbatim: true },
    })),
  };
}
