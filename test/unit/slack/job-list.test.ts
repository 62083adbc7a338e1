import { describe, expect, it } from "vitest";
import type { Job, JobState } from "../../../src/domain/job.js";
import {
  emptyJobListText,
  type JobListEntry,
  jobLine,
  jobListMessage,
  timeAgo,
} from "../../../src/slack/blocks/job-list.js";
import { CLOCK_START } from "../../fakes/fixed-clock.js";
import { makeJob } from "../../fakes/job-fixtures.js";

const MIN = 60_000;
const NOW = CLOCK_START + 12 * MIN;
const ROOT_TS = "1764297600.000100";
const PERMALINK = "https://acme.slack.com/archives/C0UPDATES/p1764297600000100";

/** A listed job whose root is posted; `permalink` null when Slack gave none in time. */
function entry(overrides: Partial<Job> = {}, permalink: string | null = PERMALINK): JobListEntry {
  return {
    job: makeJob({ rootChannelId: "C0UPDATES", rootTs: ROOT_TS, ...overrides }),
    permalink: permalink ?? undefined,
  };
}

const TAIL = "· `web-1` (`i-0123456789abcdef0`) · prod · eu-west-1 · 12 min ago";
const LINK = `<${PERMALINK}|thread>`;

describe("jobLine", () => {
  it.each<[JobState, string]>([
    ["queued", ":hourglass_flowing_sand: *queued*"],
    ["pending", ":hourglass_flowing_sand: *pending*"],
    ["available", ":white_check_mark: *available*"],
    ["failed", ":x: *failed*"],
    ["refused", ":no_entry: *refused*"],
    ["timed_out", ":warning: *timed out*"],
  ])("shows a %s job with its emoji and word, name, instance, place, age and thread", (state, start) => {
    expect(jobLine(entry({ state }), NOW)).toBe(`${start} \`web-1 backup\` ${TAIL} · ${LINK}`);
  });

  it("shows hostile names as typed, in code spans, when they try to mention, format or link", () => {
    const line = jobLine(
      entry({
        imageName: "@here *x* <!channel>",
        instanceName: "<https://evil.example|click> `rm` _y_\nnext",
      }),
      NOW,
    );
    expect(line).toBe(
      ":hourglass_flowing_sand: *queued* `@here *x* &lt;!channel&gt;` · `&lt;https://evil.example|click&gt; ˋrmˋ _y_ next` " +
        `(\`i-0123456789abcdef0\`) · prod · eu-west-1 · 12 min ago · ${LINK}`,
    );
  });

  it("shows the instance id alone when the job stored no Name tag", () => {
    expect(jobLine(entry({ instanceName: undefined }), NOW)).toBe(
      `:hourglass_flowing_sand: *queued* \`web-1 backup\` · \`i-0123456789abcdef0\` · prod · eu-west-1 · 12 min ago · ${LINK}`,
    );
  });

  it("says the thread is not posted yet when the root message is not", () => {
    expect(jobLine(entry({ rootChannelId: undefined, rootTs: undefined }, null), NOW)).toBe(
      `:hourglass_flowing_sand: *queued* \`web-1 backup\` ${TAIL} · thread not posted yet`,
    );
  });

  it("leaves the link out when Slack gave no permalink in time", () => {
    expect(jobLine(entry({}, null), NOW)).toBe(`:hourglass_flowing_sand: *queued* \`web-1 backup\` ${TAIL}`);
  });

  it("leaves the link out when the permalink would break out of the link", () => {
    expect(jobLine(entry({}, "https://acme.slack.com/x>|<!here>"), NOW)).toBe(
      `:hourglass_flowing_sand: *queued* \`web-1 backup\` ${TAIL}`,
    );
    expect(jobLine(entry({}, "javascript:alert(1)"), NOW)).toBe(
      `:hourglass_flowing_sand: *queued* \`web-1 backup\` ${TAIL}`,
    );
  });

  it("escapes the target name when it holds Slack's control characters", () => {
    expect(jobLine(entry({ targetName: "a<b>&c" }, null), NOW)).toBe(
      ":hourglass_flowing_sand: *queued* `web-1 backup` · `web-1` (`i-0123456789abcdef0`) · a&lt;b&gt;&amp;c · eu-west-1 · 12 min ago",
    );
  });
});

describe("timeAgo", () => {
  it.each([
    [-5_000, "just now"],
    [0, "just now"],
    [59_999, "just now"],
    [MIN, "1 min ago"],
    [12 * MIN + 59_000, "12 min ago"],
    [59 * MIN, "59 min ago"],
    [60 * MIN, "1 h ago"],
    [23 * 60 * MIN + 59 * MIN, "23 h ago"],
    [24 * 60 * MIN, "1 day ago"],
    [49 * 60 * MIN, "2 days ago"],
  ])("says %i ms is %s", (ms, words) => {
    expect(timeAgo(ms)).toBe(words);
  });
});

describe("jobListMessage", () => {
  it("heads the channel's list and gives each job its own verbatim section, in the order given", () => {
    const newer = entry({ state: "pending", imageName: "web-2", createdAt: NOW - 3 * MIN, imageId: "ami-1" });
    const older = entry({ state: "available", createdAt: NOW - 2 * 60 * MIN }, null);
    const message = jobListMessage("channel", [newer, older], NOW);
    const lines = [
      "*The latest images in this channel*, newest first:",
      `:hourglass_flowing_sand: *pending* \`web-2\` · \`web-1\` (\`i-0123456789abcdef0\`) · prod · eu-west-1 · 3 min ago · ${LINK}`,
      ":white_check_mark: *available* `web-1 backup` · `web-1` (`i-0123456789abcdef0`) · prod · eu-west-1 · 2 h ago",
    ];
    expect(message).toEqual({
      text: lines.join("\n"),
      blocks: lines.map((text) => ({ type: "section", text: { type: "mrkdwn", text, verbatim: true } })),
    });
  });

  it("heads the person's own list as theirs", () => {
    const message = jobListMessage("mine", [entry({ createdAt: NOW - 3 * 24 * 60 * MIN })], NOW);
    expect(message.text).toBe(
      `*Your latest images*, newest first:\n:hourglass_flowing_sand: *queued* \`web-1 backup\` · \`web-1\` (\`i-0123456789abcdef0\`) · prod · eu-west-1 · 3 days ago · ${LINK}`,
    );
    expect(message.blocks).toHaveLength(2);
  });
});

describe("emptyJobListText", () => {
  it("says there are no images in the channel yet and how to start one", () => {
    expect(emptyJobListText("channel")).toBe(
      "There are no images in this channel yet. Type `/ami` to make one.",
    );
  });

  it("says the person has no images yet and how to start one", () => {
    expect(emptyJobListText("mine")).toBe("You have no images yet. Type `/ami` to make one.");
  });
});
