/**
 * ami-bot's Home tab, as pure Block Kit: a "Create image" button, the jobs waiting for this person's
 * approval (with Approve, Deny and Cancel) when they approve any target, and their own latest images.
 * Names were typed by someone else, so each goes through `literal` and every text object is `verbatim`,
 * as in the `/ami list` lines. Slack refuses a whole view past its limits (100 blocks, 3,000 characters a
 * section), so lists are capped and every line is kept short whatever the names hold.
 */
import type { types } from "@slack/bolt";
import { FINAL_STATES, type Job } from "../../domain/job.js";
import type { Target } from "../../domain/target.js";
import { ACTION, BLOCK } from "../ids.js";
import { consoleImageUrl, escapeText, formatDuration, literal } from "./format.js";
import { type JobListEntry, STATE_WORDS, timeAgo } from "./job-list.js";
import { clockTime, deadlineText, jobButtons } from "./messages.js";

type KnownBlock = types.KnownBlock;
type HomeView = types.HomeView;

/** Each list shows at most this many jobs (the newest of the person's, the oldest waiting). */
export const HOME_LIST_LIMIT = 20;
/** Slack's limits on a Home view. */
export const MAX_HOME_BLOCKS = 100;
export const MAX_SECTION_TEXT = 3000;
/** Raw characters kept of a name before escaping (which may grow it fivefold): lines stay well within a section. */
const MAX_NAME = 120;

export interface HomeViewInput {
  /** The person viewing it: their own jobs are never offered for approval. */
  readonly userId: string;
  /** Their App Home DM (from app_home_opened), kept as private_metadata for "Create image"; "" when unknown. */
  readonly channelId: string | undefined;
  readonly now: number;
  /** The person's latest jobs, newest first, each with its thread's permalink when known. */
  readonly recent: readonly JobListEntry[];
  /** Whether the person approves any target now: only then is the waiting list shown. */
  readonly approver: boolean;
  /** Jobs waiting for their approval, oldest first. */
  readonly awaiting: readonly JobListEntry[];
  /** The configured targets, for account ids and console links. */
  readonly targets: readonly Target[];
}

function mrkdwn(text: string): types.MrkdwnElement {
  return { type: "mrkdwn", text, verbatim: true };
}

function plain(text: string): types.PlainTextElement {
  return { type: "plain_text", text, emoji: true };
}

function section(text: string): KnownBlock {
  return { type: "section", text: mrkdwn(text) };
}

/** At most `max` characters of a name, never splitting a surrogate pair; a cut one ends with "…". */
function short(value: string, max = MAX_NAME): string {
  const chars = Array.from(value);
  return chars.length <= max ? value : `${chars.slice(0, max - 1).join("")}…`;
}

function instanceLabel(job: Job): string {
  const id = literal(short(job.instanceId, 40));
  return job.instanceName ? `${literal(short(job.instanceName))} (${id})` : id;
}

/** "prod (123456789012) · eu-west-1": the account only while the target is still configured. */
function placeLabel(job: Job, target: Target | undefined): string {
  const account = target?.accountId && target.roleArn === job.roleArn ? ` (${target.accountId})` : "";
  return `${escapeText(short(job.targetName, 64))}${account} · ${escapeText(short(job.region, 32))}`;
}

/** A link only to what Slack itself handed out; nothing for anything else. */
function threadLink(entry: JobListEntry): string | undefined {
  if (!entry.job.rootTs) return "thread not posted yet";
  const url = entry.permalink;
  return url && url.length < 500 && /^https:\/\/[^\s<>|]+$/.test(url) ? `<${url}|thread>` : undefined;
}

/** The image id, linked to the EC2 console when it looks like one AWS hands out. */
function imagePart(job: Job, target: Target | undefined): string | undefined {
  if (!job.imageId) return undefined;
  if (!/^ami-[0-9a-f]{8,17}$/.test(job.imageId)) return literal(short(job.imageId, 40));
  const url = consoleImageUrl(target?.partition ?? "aws", job.region, job.imageId);
  return /^https:\/\/[^\s<>|]+$/.test(url) ? `<${url}|\`${job.imageId}\`>` : `\`${job.imageId}\``;
}

/** How long the job took, or has been going. */
function elapsed(job: Job, now: number): string {
  if (FINAL_STATES.has(job.state) && job.finishedAt !== undefined) {
    const ago = timeAgo(now - job.finishedAt);
    return job.state === "available"
      ? `took ${formatDuration(job.finishedAt - job.createdAt)}, ${ago}`
      : `ended ${ago}`;
  }
  return `${formatDuration(now - job.createdAt)} so far`;
}

/** Never more than a section holds: in the unlikely case it would be, the line loses its details. */
function withinSection(lines: string[], fallback: string): string {
  const text = lines.join("\n");
  return text.length <= MAX_SECTION_TEXT ? text : fallback.slice(0, MAX_SECTION_TEXT);
}

/** One of the person's own jobs: state and name, instance, place, time, image and thread. */
export function recentJobText(entry: JobListEntry, target: Target | undefined, now: number): string {
  const { job } = entry;
  const state = STATE_WORDS[job.state];
  const first = `${state.emoji} *${state.word}* · ${literal(short(job.imageName))}`;
  const details = [
    instanceLabel(job),
    placeLabel(job, target),
    elapsed(job, now),
    imagePart(job, target),
    threadLink(entry),
  ].filter((part) => part !== undefined);
  return withinSection([first, details.join(" · ")], `${state.emoji} *${state.word}*`);
}

/** A job waiting for this person's decision: who asks for what, where, and until when. */
export function awaitingJobText(entry: JobListEntry, target: Target | undefined, now: number): string {
  const { job } = entry;
  const until = job.approvalExpiresAt;
  const deadline =
    until === undefined
      ? undefined
      : `decide by ${deadlineText(until, now)} (${until > now ? `in ${formatDuration(until - now)}` : "now"})`;
  const first = `<@${job.requestedBy}> asks for ${literal(short(job.imageName))}`;
  const details = [
    instanceLabel(job),
    placeLabel(job, target),
    `asked ${timeAgo(now - job.createdAt)}`,
    deadline,
    threadLink(entry),
  ].filter((part) => part !== undefined);
  return withinSection([first, details.join(" · ")], `<@${job.requestedBy}> asks for an image`);
}

/** Approve, Deny and Cancel for one job; block ids must be unique within a view, so each carries the job id. */
function decisionButtons(job: Job): KnownBlock[] {
  return jobButtons(job).map((block) =>
    block.type === "actions" ? { ...block, block_id: `${BLOCK.jobActions}.${job.id}`.slice(0, 255) } : block,
  );
}

/** The Home tab for one person. */
export function homeView(input: HomeViewInput): HomeView {
  const targetOf = (job: Job) => input.targets.find((t) => t.name === job.targetName);
  const blocks: KnownBlock[] = [
    { type: "header", text: plain("ami-bot") },
    section(
      "Make an Amazon Machine Image of an EC2 instance: the same form as `/ami`, with updates in a thread.",
    ),
    {
      type: "actions",
      block_id: BLOCK.homeCreate,
      elements: [
        {
          type: "button",
          action_id: ACTION.homeCreate,
          text: plain("Create image"),
          style: "primary",
          value: "create",
        },
      ],
    },
  ];

  // The requester can never approve their own job: it is not offered, whatever the caller passed.
  const awaiting = input.awaiting
    .filter((e) => e.job.requestedBy !== input.userId && e.job.state === "awaiting_approval")
    .slice(0, HOME_LIST_LIMIT);
  // Besides the jobs: the 3 blocks above; per list a divider, a heading and one note; the closing context.
  const fixed = blocks.length + 2 * 3 + 1;
  const recent = input.recent.slice(0, Math.max(0, Math.min(HOME_LIST_LIMIT, MAX_HOME_BLOCKS - fixed)));

  if (input.approver) {
    blocks.push({ type: "divider" }, { type: "header", text: plain("Waiting for your approval") });
    if (awaiting.length === 0) blocks.push(section("Nothing is waiting for your approval."));
    const shown = fitting(awaiting, MAX_HOME_BLOCKS - fixed - recent.length);
    for (const entry of shown)
      blocks.push(
        section(awaitingJobText(entry, targetOf(entry.job), input.now)),
        ...decisionButtons(entry.job),
      );
    const left = awaiting.length - shown.length;
    if (left > 0)
      blocks.push(section(`…and ${left} more, not shown here for lack of room. Decide on these first.`));
  }

  blocks.push({ type: "divider" }, { type: "header", text: plain("Your recent images") });
  if (recent.length === 0)
    blocks.push(section("You have no images yet. Click *Create image* above, or type `/ami` in a channel."));
  for (const entry of recent) blocks.push(section(recentJobText(entry, targetOf(entry.job), input.now)));
  blocks.push({
    type: "context",
    elements: [
      mrkdwn(
        `Your latest ${HOME_LIST_LIMIT} images in the accounts you may use now · updated ${clockTime(input.now)} · \`/ami list mine\` shows them too`,
      ),
    ],
  });

  return {
    type: "home",
    private_metadata: input.channelId ?? "",
    blocks: blocks.slice(0, MAX_HOME_BLOCKS),
  };
}

/** The waiting jobs that fit in `room` blocks (each takes its section and its buttons), in order. */
function fitting(awaiting: readonly JobListEntry[], room: number): JobListEntry[] {
  const shown: JobListEntry[] = [];
  let used = 0;
  for (const entry of awaiting) {
    const size = 1 + decisionButtons(entry.job).length;
    if (used + size > room) break;
    used += size;
    shown.push(entry);
  }
  return shown;
}
