import { describe, expect, it } from "vitest";
import type { BotImage, KeepDecision, SweepReport } from "../../../src/domain/keep-rule.js";
import { cleanupSummaryMessage } from "../../../src/slack/blocks/cleanup-summary.js";

const DAY = 86_400_000;

function image(id: string, extra: Partial<BotImage> = {}): BotImage {
  return {
    imageId: `ami-${id.padStart(17, "0")}`,
    region: "eu-west-1",
    name: `web-1 ${id}`,
    createdAt: 0,
    instanceId: "i-0aaaaaaaaaaaaaaaa",
    jobId: `job-${id}`,
    state: "available",
    protected: false,
    snapshotIds: [],
    ...extra,
  };
}
const decision = (
  id: string,
  reason = "older than 90 days",
  extra: Partial<BotImage> = {},
): KeepDecision => ({
  image: image(id, extra),
  reasons: [reason],
});

function report(overrides: Partial<SweepReport> = {}): SweepReport {
  return {
    targetName: "prod",
    partition: "aws",
    rule: { lastPerInstance: 5, maxAgeMs: 90 * DAY, channel: "C0CLEANUP" },
    preview: false,
    regions: ["eu-west-1", "us-east-1"],
    removed: [],
    keptProtected: [],
    keptInUse: [],
    failed: [],
    leftAlone: 0,
    regionErrors: [],
    ...overrides,
  };
}

/** Every text of the message, joined, as a person would read it. */
const textOf = (m: { blocks: unknown[] }) => JSON.stringify(m.blocks);

describe("cleanupSummaryMessage", () => {
  it("lists what was removed with names, ids, regions and reasons, and the rule", () => {
    const m = cleanupSummaryMessage(
      report({
        removed: [
          { ...decision("1"), alreadyGone: false, snapshotsLeft: [] },
          {
            ...decision("2", "beyond the newest 5 of i-0aaaaaaaaaaaaaaaa in us-east-1", {
              region: "us-east-1",
            }),
            alreadyGone: true,
            snapshotsLeft: [],
          },
        ],
      }),
    );
    expect(m.text).toBe("ami-bot cleanup of prod: removed 2 images.");
    expect(m.blocks[0]).toEqual({ type: "header", text: { type: "plain_text", text: "Cleanup of prod" } });
    const text = textOf(m);
    expect(text).toContain("the newest 5 per instance and region, none older than 90 days");
    expect(text).toContain("*Removed 2 images* (deregistered, with their snapshots):");
    expect(text).toContain("`web-1 1` in eu-west-1: older than 90 days");
    expect(text).toContain(
      "<https://us-east-1.console.aws.amazon.com/ec2/home?region=us-east-1#ImageDetails:imageId=ami-00000000000000002|`ami-00000000000000002`>",
    );
    expect(text).toContain("beyond the newest 5 of i-0aaaaaaaaaaaaaaaa in us-east-1 (AWS no longer had it)");
  });

  it("says a preview removed nothing and lists what would go", () => {
    const m = cleanupSummaryMessage(
      report({ preview: true, removed: [{ ...decision("1"), alreadyGone: false, snapshotsLeft: [] }] }),
    );
    expect(m.text).toBe("ami-bot cleanup preview of prod: would remove 1 image.");
    expect(textOf(m)).toContain("Cleanup preview for prod (nothing was removed)");
    expect(textOf(m)).toContain("*Would remove 1 image*");
  });

  it("says why images were kept, what failed and which regions could not be swept", () => {
    const m = cleanupSummaryMessage(
      report({
        keptProtected: [decision("3")],
        keptInUse: [decision("4")],
        failed: [{ ...decision("5"), error: "AWS denied deregistering it." }],
        regionErrors: [{ region: "us-east-1", error: "could not list the images: AWS denied it." }],
      }),
    );
    const text = textOf(m);
    expect(text).toContain("Nothing was removed");
    expect(text).toContain("*Kept 1 image with deregistration protection*");
    expect(text).toContain("*Kept 1 image a launch template uses*");
    expect(text).toContain("*Could not remove 1 image*");
    expect(text).toContain("AWS denied deregistering it.");
    expect(text).toContain("• us-east-1: could not list the images: AWS denied it.");
    expect(m.text).toBe(
      "ami-bot cleanup of prod: kept 1 protected, kept 1 in launch templates, 2 could not be done.",
    );
  });

  it("names the snapshots AWS kept and why", () => {
    const m = cleanupSummaryMessage(
      report({
        removed: [
          {
            ...decision("1"),
            alreadyGone: false,
            snapshotsLeft: [{ snapshotId: "snap-0123", code: "missing-permissions" }],
          },
        ],
      }),
    );
    expect(textOf(m)).toContain("*AWS kept 1 snapshot* of removed images");
    expect(textOf(m)).toContain(
      "`snap-0123` of `ami-00000000000000001` in eu-west-1 (missing-permissions: the target role does not allow ami-bot to delete it)",
    );
  });

  it("shows names as typed, unable to mention or format", () => {
    const m = cleanupSummaryMessage(
      report({
        removed: [
          {
            ...decision("1", "older than 1 day", { name: "<!here> `x` *b*" }),
            alreadyGone: false,
            snapshotsLeft: [],
          },
        ],
      }),
    );
    expect(textOf(m)).toContain("`&lt;!here&gt; ˋxˋ *b*`");
    expect(textOf(m)).not.toContain("<!here>");
  });

  it("says nothing was to be removed, and nothing more, when all is within the rule", () => {
    const m = cleanupSummaryMessage(report());
    expect(m.text).toBe("ami-bot cleanup of prod: nothing to remove.");
    expect(m.blocks).toHaveLength(3);
  });

  it("stays within Slack's limits however many images there are", () => {
    const many = Array.from({ length: 500 }, (_, i) => ({
      ...decision(String(i)),
      alreadyGone: false,
      snapshotsLeft: [],
    }));
    const m = cleanupSummaryMessage(report({ removed: many, keptProtected: many.map((d) => d) }));
    expect(m.blocks.length).toBeLessThanOrEqual(50);
    for (const block of m.blocks) {
      const text = (block as { text?: { text?: string } }).text?.text ?? "";
      expect(text.length).toBeLessThanOrEqual(3000);
    }
    expect(textOf(m)).toMatch(/… and \d+ more/);
  });

  it("says in one line how many tagged images were left alone as not this target's finished jobs", () => {
    const line =
      "12 images tagged by ami-bot were left alone: not finished jobs of this target (another target, another ami-bot, or still running).";
    const m = cleanupSummaryMessage(report({ leftAlone: 12 }));
    expect(textOf(m)).toContain(line);
    expect(m.blocks).toHaveLength(4);
    expect(textOf(cleanupSummaryMessage(report({ preview: true, leftAlone: 12 })))).toContain(line);
    expect(textOf(cleanupSummaryMessage(report({ leftAlone: 1 })))).toContain(
      "1 image tagged by ami-bot was left alone: not finished jobs of this target",
    );
    expect(textOf(cleanupSummaryMessage(report()))).not.toContain("left alone");
  });

  it("adds why the channel's copy could not be posted", () => {
    const m = cleanupSummaryMessage(report(), { postError: "Slack refused the message: not_in_channel" });
    expect(textOf(m)).toContain(
      "could not be posted to the rule's channel: Slack refused the message: not_in_channel",
    );
  });
});
