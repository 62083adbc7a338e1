/**
 * The keep rule's summary of one target's sweep, as pure Block Kit: what was removed (or, in a preview,
 * would be), what was kept and why, what failed and why, and the snapshots AWS left behind. Image names
 * were typed by someone else, so each goes through `literal`, and every text object is `verbatim`.
 */
import type { types } from "@slack/bolt";
import { describeKeepRule, type KeepDecision, type SweepReport } from "../../domain/keep-rule.js";
import { consoleImageUrl, escapeText, literal, prose } from "./format.js";

type KnownBlock = types.KnownBlock;

/** Slack's limit on a section's text is 3,000 characters; lists stop short of it and say how many are left. */
const SECTION_CHARS = 2_800;
const HEADER_CHARS = 150;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function section(text: string): KnownBlock {
  return { type: "section", text: { type: "mrkdwn", text, verbatim: true } };
}

/** A heading line and one line per item, cut with "… and N more" before Slack's limit. */
function listSection(heading: string, lines: readonly string[]): KnownBlock {
  let text = heading;
  for (const [i, line] of lines.entries()) {
    const more = `\n… and ${lines.length - i} more`;
    if (text.length + 1 + line.length + more.length > SECTION_CHARS) return section(text + more);
    text += `\n${line}`;
  }
  return section(text);
}

function imageLine(report: SweepReport, d: KeepDecision, tail = ""): string {
  const { image } = d;
  const link = `<${consoleImageUrl(report.partition, image.region, image.imageId)}|\`${image.imageId}\`>`;
  const name = image.name === undefined ? "" : ` ${literal(image.name)}`;
  return `• ${link}${name} in ${escapeText(image.region)}: ${prose(d.reasons.join(" and "), 300)}${tail}`;
}

/** The plain fallback text (notifications, screen readers): the counts. */
function summaryText(report: SweepReport): string {
  const parts = [
    report.removed.length > 0 &&
      `${report.preview ? "would remove" : "removed"} ${plural(report.removed.length, "image")}`,
    report.keptProtected.length > 0 && `kept ${report.keptProtected.length} protected`,
    report.keptInUse.length > 0 && `kept ${report.keptInUse.length} in launch templates`,
    report.failed.length + report.regionErrors.length > 0 &&
      `${report.failed.length + report.regionErrors.length} could not be done`,
  ].filter((p): p is string => typeof p === "string");
  const what = report.preview ? "cleanup preview" : "cleanup";
  return `ami-bot ${what} of ${report.targetName}: ${parts.length > 0 ? parts.join(", ") : "nothing to remove"}.`;
}

/**
 * The summary of one sweep. `postError` (a run from `/ami cleanup run`) says the copy for the rule's
 * channel could not be posted.
 */
export function cleanupSummaryMessage(
  report: SweepReport,
  options: { postError?: string } = {},
): { text: string; blocks: KnownBlock[] } {
  const title = report.preview
    ? `Cleanup preview for ${report.targetName} (nothing was removed)`
    : `Cleanup of ${report.targetName}`;
  const blocks: KnownBlock[] = [
    { type: "header", text: { type: "plain_text", text: title.slice(0, HEADER_CHARS) } },
    {
      type: "context",
      elements: [
        {
          type: "mrkdwn",
          verbatim: true,
          text: `Keep rule: ${escapeText(describeKeepRule(report.rule))}. Only images of this target's finished jobs (tagged \`ami-bot:job-id\`) are weighed. Regions: ${escapeText(report.regions.join(", "))}.`,
        },
      ],
    },
  ];
  const { removed } = report;
  if (removed.length > 0)
    blocks.push(
      listSection(
        report.preview
          ? `*Would remove ${plural(removed.length, "image")}* (deregistered, with their snapshots):`
          : `*Removed ${plural(removed.length, "image")}* (deregistered, with their snapshots):`,
        removed.map((r) => imageLine(report, r, r.alreadyGone ? " (AWS no longer had it)" : "")),
      ),
    );
  else if (report.regionErrors.length < report.regions.length)
    blocks.push(
      section(
        report.preview
          ? "Nothing would be removed: every image ami-bot made is within the keep rule, or kept for a reason below."
          : "Nothing was removed: every image ami-bot made is within the keep rule, or kept for a reason below.",
      ),
    );
  if (report.keptProtected.length > 0)
    blocks.push(
      listSection(
        `*Kept ${plural(report.keptProtected.length, "image")} with deregistration protection* (turn it off in the EC2 console to let the rule remove it):`,
        report.keptProtected.map((d) => imageLine(report, d)),
      ),
    );
  if (report.keptInUse.length > 0)
    blocks.push(
      listSection(
        `*Kept ${plural(report.keptInUse.length, "image")} a launch template uses* (its latest or default version):`,
        report.keptInUse.map((d) => imageLine(report, d)),
      ),
    );
  if (report.failed.length > 0)
    blocks.push(
      listSection(
        `*Could not remove ${plural(report.failed.length, "image")}*; the next sweep tries again:`,
        report.failed.map((f) => `${imageLine(report, f)}\n    ${prose(f.error, 400)}`),
      ),
    );
  if (report.leftAlone > 0)
    blocks.push(
      section(
        `${plural(report.leftAlone, "image")} tagged by ami-bot ${report.leftAlone === 1 ? "was" : "were"} left alone: not finished jobs of this target (another target, another ami-bot, or still running).`,
      ),
    );
  if (report.regionErrors.length > 0)
    blocks.push(
      listSection(
        "*Regions not swept* (nothing was removed there):",
        report.regionErrors.map((e) => `• ${escapeText(e.region)}: ${prose(e.error, 600)}`),
      ),
    );
  const left = removed.flatMap((r) =>
    r.snapshotsLeft.map((s) => ({ ...s, imageId: r.image.imageId, region: r.image.region })),
  );
  if (left.length > 0)
    blocks.push(
      listSection(
        `*AWS kept ${plural(left.length, "snapshot")}* of removed images: delete ${left.length === 1 ? "it" : "them"} in the EC2 console, or ${left.length === 1 ? "it goes" : "they go"} on costing storage:`,
        left.map(
          (s) =>
            `• \`${escapeText(s.snapshotId)}\` of \`${s.imageId}\` in ${escapeText(s.region)} (${escapeText(s.code)}${s.code === "missing-permissions" ? ": the target role does not allow ami-bot to delete it" : ""})`,
        ),
      ),
    );
  if (options.postError)
    blocks.push(
      section(
        `:warning: This summary could not be posted to the rule's channel: ${prose(options.postError, 300)}`,
      ),
    );
  return { text: summaryText(report), blocks };
}
