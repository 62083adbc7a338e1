/**
 * What the thread and the root message say about the steps after the image: each copy started, available
 * (with its own console link) or failed, each image shared or not, and the summary once all have ended.
 * Pure: rendered from the job as stored when the message goes out.
 */
import { type CopyStep, type ImageShare, regionOfKey } from "../../domain/after-steps.js";
import type { Job } from "../../domain/job.js";
import { consoleImageUrl, prose } from "./format.js";

function link(partition: string, region: string, imageId: string): string {
  return `<${consoleImageUrl(partition, region, imageId)}|\`${imageId}\`>`;
}

function accounts(job: Job): string {
  return (job.after?.shareWith ?? []).join(", ");
}

function copyIn(job: Job, region: string): CopyStep | undefined {
  return job.after?.copies.find((c) => c.region === region);
}

/** The thread's reply for one after-step notice (`copy_available:eu-west-1`); undefined for other kinds. */
export function afterStepReply(job: Job, key: string, partition: string): string | undefined {
  const kind = key.split(":")[0];
  const region = regionOfKey(key);
  const copy = copyIn(job, region);
  switch (kind) {
    case "copy_started":
      return `:arrows_counterclockwise: Copying the image to *${region}*…`;
    case "copy_available":
      return `:white_check_mark: The copy in *${region}* is available: ${copy?.imageId ? link(partition, region, copy.imageId) : "(no id)"}.`;
    case "copy_failed":
      // AWS made the copy, but it was not followed to the end (too slow, or no longer offered).
      if (copy?.abandoned) {
        const unshared = copy.share ? " It was not shared;" : "";
        return copy.imageId
          ? `:warning: The copy ${link(partition, region, copy.imageId)} in *${region}* was not followed to the end. ${prose(copy.reason ?? "")}${unshared} check it in the EC2 console before making another.`
          : `:warning: The copy to *${region}* was asked for, but AWS's answer never came, and ami-bot stopped following it. ${prose(copy.reason ?? "")}${unshared} Look in the EC2 console (${region}) for an image tagged ami-bot:job-id=${job.id} before making another.`;
      }
      return `:x: The copy to *${region}* failed. ${prose(copy?.reason ?? "")} The image in ${job.region}${(job.after?.copies.length ?? 0) > 1 ? " and the other copies are" : " is"} not affected; once the cause is fixed, copy it from the EC2 console (AMIs → Actions → Copy AMI).`;
    case "shared": {
      const imageId = region === job.region ? job.imageId : copy?.imageId;
      return `:handshake: ${imageId ? `\`${imageId}\`` : "The image"} in ${region} is shared with ${accounts(job)} (launch permission, and create-volume permission on its snapshots).`;
    }
    case "share_failed": {
      const share = region === job.region ? job.after?.share : copy?.share;
      if (share?.launchOnly)
        return `:warning: The image in ${region} is shared only in part: ${accounts(job)} can launch it, but create-volume permission on its snapshots was not added, so they cannot copy it or make volumes from them. ${prose(share.reason ?? "")} Once the cause is fixed, add it from the EC2 console (Snapshots → Actions → Modify permissions).`;
      return `:warning: The image in ${region} was not shared. ${prose(share?.reason ?? "")} Once the cause is fixed, share it from the EC2 console (AMIs → Actions → Edit AMI permissions).`;
    }
    case "after_done":
      return afterDoneText(job, partition);
    default:
      return undefined;
  }
}

/** The "available" reply's last words when steps follow: what happens next. */
export function nextStepsText(job: Job): string {
  const after = job.after;
  if (!after) return "";
  const parts: string[] = [];
  if (after.copies.length) parts.push(`copying it to ${after.copies.map((c) => c.region).join(", ")}`);
  if (after.shareWith.length) parts.push(`sharing it with ${accounts(job)}`);
  return parts.length ? ` Next: ${parts.join(" and ")}; updates follow here.` : "";
}

/** Slack's limits: a section's text holds 3,000 characters, a field's 2,000 (room left for the rest). */
const REPLY_MAX = 2_900;
const FIELD_MAX = 1_900;

/** Whole lines up to `max` characters, then how many were left out (they are in the thread's replies). */
function capped(lines: readonly string[], max: number): string {
  const kept: string[] = [];
  let length = 0;
  for (const [i, line] of lines.entries()) {
    const more = `… and ${lines.length - i} more (see the replies in the thread)`;
    // Room for this line, and for the "more" line should any follow.
    const room = i < lines.length - 1 ? more.length + 1 : 0;
    if (length + line.length + 1 + room > max) {
      kept.push(more);
      break;
    }
    kept.push(line);
    length += line.length + 1;
  }
  return kept.join("\n");
}

function afterDoneText(job: Job, partition: string): string {
  const after = job.after;
  if (!after) return ":white_check_mark: Done.";
  return capped(
    [":checkered_flag: *All steps after the image are done.*", ...summaryLines(job, partition)],
    REPLY_MAX,
  );
}

function shareWord(share: ImageShare | undefined): string {
  if (!share) return "";
  switch (share.state) {
    case "shared":
      return ", shared";
    case "failed":
      return share.launchOnly ? ", *shared in part* (launch only)" : ", *not shared*";
    case "skipped":
      return "";
    case "waiting":
      return ", sharing…";
  }
}

/** One line per image: the source and each copy, with its state and sharing. */
function summaryLines(job: Job, partition: string): string[] {
  const after = job.after;
  if (!after) return [];
  const lines = [
    `• ${job.region}: ${job.imageId ? link(partition, job.region, job.imageId) : "the image"}${shareWord(after.share)}`,
  ];
  for (const c of after.copies) {
    const what =
      c.state === "available" && c.imageId
        ? `${link(partition, c.region, c.imageId)}${shareWord(c.share)}`
        : c.state === "failed" && c.abandoned
          ? `copy ${c.imageId ? `\`${c.imageId}\` ` : ""}not followed to the end: ${prose(c.reason ?? "", 300)}`
          : c.state === "failed"
            ? `copy failed: ${prose(c.reason ?? "", 300)}`
            : c.state === "pending"
              ? `copying${c.imageId ? ` (\`${c.imageId}\`)` : ""}…`
              : "copy waiting for the image";
    lines.push(`• ${c.region}: ${what}`);
  }
  return lines;
}

/** The root message's field: what the person chose after the image, and how far it got. */
export function afterStepsField(job: Job, partition: string): string | undefined {
  const after = job.after;
  if (!after) return undefined;
  const chosen: string[] = [];
  if (after.copies.length) chosen.push(`Copy to ${after.copies.map((c) => c.region).join(", ")}`);
  if (after.shareWith.length) chosen.push(`Share with ${accounts(job)}`);
  const started = job.state === "finishing" || (job.state === "available" && job.imageId);
  return capped(
    ["*After the image*", ...chosen, ...(started ? summaryLines(job, partition) : [])],
    FIELD_MAX,
  );
}
