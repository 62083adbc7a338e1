import { describe, expect, it } from "vitest";
import type { AfterSteps } from "../../../src/domain/after-steps.js";
import {
  afterStepReply,
  afterStepsField,
  nextStepsText,
} from "../../../src/slack/blocks/after-step-messages.js";
import { makeJob } from "../../fakes/job-fixtures.js";

const SHARE_WITH = ["210987654321", "345678901234"];
const steps: AfterSteps = {
  shareWith: SHARE_WITH,
  share: { state: "shared" },
  copies: [
    { region: "us-east-1", state: "available", imageId: "ami-0copyus", share: { state: "shared" } },
    {
      region: "eu-central-1",
      state: "failed",
      reason: "AWS says: “<@U0EVIL> & <!here>”.",
      share: { state: "skipped" },
    },
  ],
};
const job = makeJob({ state: "available", imageId: "ami-0source", region: "eu-west-1", after: steps });

describe("the thread's replies about the steps after the image", () => {
  it("links an available copy to the console of its own region", () => {
    expect(afterStepReply(job, "copy_available:us-east-1", "aws")).toBe(
      ":white_check_mark: The copy in *us-east-1* is available: <https://us-east-1.console.aws.amazon.com/ec2/home?region=us-east-1#ImageDetails:imageId=ami-0copyus|`ami-0copyus`>.",
    );
  });

  it("says why a copy failed, escaped, that the rest is not affected, and what to do", () => {
    const text = afterStepReply(job, "copy_failed:eu-central-1", "aws") ?? "";
    expect(text).toContain("AWS says: “&lt;@U0EVIL&gt; &amp; &lt;!here&gt;”.");
    expect(text).not.toContain("<!here>");
    expect(text).toContain("The image in eu-west-1 and the other copies are not affected");
    expect(text).toContain("Copy AMI");
  });

  it("says where to look when a copy was asked for with no answer and is no longer followed", () => {
    const unanswered = makeJob({
      ...job,
      id: "job-42",
      after: {
        ...steps,
        copies: [{ region: "us-east-1", state: "failed", abandoned: true, reason: "No longer offered." }],
      },
    });
    expect(afterStepReply(unanswered, "copy_failed:us-east-1", "aws")).toBe(
      ":warning: The copy to *us-east-1* was asked for, but AWS's answer never came, and ami-bot stopped following it. No longer offered. Look in the EC2 console (us-east-1) for an image tagged ami-bot:job-id=job-42 before making another.",
    );
  });

  it("names the accounts an image was shared with, and a refused share's reason", () => {
    expect(afterStepReply(job, "shared:eu-west-1", "aws")).toContain(
      "`ami-0source` in eu-west-1 is shared with 210987654321, 345678901234",
    );
    const refused = makeJob({
      ...job,
      after: { ...steps, share: { state: "failed", reason: "AWS does not know one of the accounts." } },
    });
    expect(afterStepReply(refused, "share_failed:eu-west-1", "aws")).toContain(
      "was not shared. AWS does not know one of the accounts. Once the cause is fixed",
    );
  });

  it("says an image whose snapshots could not be shared can be launched but not copied, in the reply and the summary", () => {
    const partly = makeJob({
      ...job,
      after: {
        ...steps,
        share: { state: "failed", reason: "AWS denied sharing image ami-0source.", launchOnly: true },
      },
    });
    expect(afterStepReply(partly, "share_failed:eu-west-1", "aws")).toBe(
      ":warning: The image in eu-west-1 is shared only in part: 210987654321, 345678901234 can launch it, but create-volume permission on its snapshots was not added, so they cannot copy it or make volumes from them. AWS denied sharing image ami-0source. Once the cause is fixed, add it from the EC2 console (Snapshots → Actions → Modify permissions).",
    );
    expect(afterStepReply(partly, "after_done", "aws")?.split("\n")[1]).toMatch(
      /`ami-0source`>, \*shared in part\* \(launch only\)$/,
    );
  });

  it("sums up every image once the steps are done", () => {
    const text = afterStepReply(job, "after_done", "aws") ?? "";
    expect(text.split("\n")).toEqual([
      ":checkered_flag: *All steps after the image are done.*",
      "• eu-west-1: <https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#ImageDetails:imageId=ami-0source|`ami-0source`>, shared",
      "• us-east-1: <https://us-east-1.console.aws.amazon.com/ec2/home?region=us-east-1#ImageDetails:imageId=ami-0copyus|`ami-0copyus`>, shared",
      "• eu-central-1: copy failed: AWS says: “&lt;@U0EVIL&gt; &amp; &lt;!here&gt;”.",
    ]);
  });

  it("tells what comes next when the image is available, and nothing for a job without steps", () => {
    expect(nextStepsText(job)).toBe(
      " Next: copying it to us-east-1, eu-central-1 and sharing it with 210987654321, 345678901234; updates follow here.",
    );
    expect(nextStepsText(makeJob())).toBe("");
    expect(afterStepsField(makeJob(), "aws")).toBeUndefined();
  });

  it("lists the choices on the root before the image, and each image's outcome after", () => {
    const queued = makeJob({ state: "queued", after: steps });
    expect(afterStepsField(queued, "aws")).toBe(
      "*After the image*\nCopy to us-east-1, eu-central-1\nShare with 210987654321, 345678901234",
    );
    expect(afterStepsField(job, "aws")).toContain("• us-east-1: <https://us-east-1.console");
  });
});

describe("within Slack's limits", () => {
  const regions = Array.from({ length: 10 }, (_, i) => `ap-south-${i + 1}`);
  const accounts = Array.from({ length: 20 }, (_, i) => String(210_987_654_300 + i));
  const big = makeJob({
    state: "available",
    imageId: "ami-0source",
    after: {
      shareWith: accounts,
      share: { state: "shared" },
      copies: regions.map((region) => ({
        region,
        state: "failed" as const,
        reason: `AWS says: “${"The KMS key is not accessible because its key policy does not allow it. ".repeat(5)}”.`,
        share: { state: "skipped" as const },
      })),
    },
  });

  it("keeps the root's field under 2,000 characters and the summary under 3,000, saying how much was left out", () => {
    const field = afterStepsField(big, "aws") ?? "";
    expect(field.length).toBeLessThanOrEqual(2_000);
    expect(field).toMatch(/… and \d+ more \(see the replies in the thread\)$/);
    const summary = afterStepReply(big, "after_done", "aws") ?? "";
    expect(summary.length).toBeLessThanOrEqual(3_000);
    expect(summary).toMatch(/… and \d+ more/);
  });
});
