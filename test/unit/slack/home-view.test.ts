import { describe, expect, it } from "vitest";
import type { Job } from "../../../src/domain/job.js";
import {
  awaitingJobText,
  HOME_LIST_LIMIT,
  type HomeViewInput,
  homeView,
  recentJobText,
} from "../../../src/slack/blocks/home-view.js";
import type { JobListEntry } from "../../../src/slack/blocks/job-list.js";
import { ACTION, BLOCK } from "../../../src/slack/ids.js";
import { CLOCK_START } from "../../fakes/fixed-clock.js";
import { makeJob, REQUESTER, testTarget } from "../../fakes/job-fixtures.js";

const MIN = 60_000;
const NOW = CLOCK_START + 30 * MIN;
const APPROVER = "U0APPROVER";
const HOME_DM = "D0HOMEDM01";
const PERMALINK = "https://acme.slack.com/archives/C0UPDATES/p1764297600000100";
const TARGET = testTarget({
  approval: { approvers: { users: [APPROVER], usergroups: [] }, expiresAfterMs: 4 * 60 * MIN },
});

interface Block {
  type: string;
  block_id?: string;
  text?: { type: string; text: string; verbatim?: boolean };
  elements?: { type: string; action_id?: string; value?: string; text?: string | { text: string } }[];
}

function entry(overrides: Partial<Job> = {}, permalink: string | undefined = PERMALINK): JobListEntry {
  return {
    job: makeJob({ rootChannelId: "C0UPDATES", rootTs: "1764297600.000100", ...overrides }),
    permalink,
  };
}

function view(input: Partial<HomeViewInput> = {}) {
  const v = homeView({
    userId: REQUESTER,
    channelId: HOME_DM,
    now: NOW,
    recent: [],
    approver: false,
    awaiting: [],
    targets: [TARGET],
    ...input,
  });
  return { ...v, blocks: v.blocks as Block[] };
}

const textOf = (blocks: Block[]) => blocks.map((b) => b.text?.text ?? "").join("\n");
const actionIds = (blocks: Block[]) =>
  blocks.flatMap((b) => (b.type === "actions" ? (b.elements ?? []).map((e) => [e.action_id, e.value]) : []));

describe("homeView for a requester", () => {
  it("shows a Create image button and the person's jobs with state, place, elapsed, image link and thread", () => {
    const available = entry({
      id: "job-a",
      state: "available",
      imageName: "web-1 nightly",
      imageId: "ami-0123456789abcdef0",
      createdAt: NOW - 20 * MIN,
      finishedAt: NOW - 5 * MIN,
    });
    const pending = entry({
      id: "job-b",
      state: "pending",
      imageId: "ami-0fedcba9876543210",
      createdAt: NOW - 3 * MIN,
    });
    const v = view({ recent: [available, pending] });

    expect(v.type).toBe("home");
    expect(v.private_metadata).toBe(HOME_DM);
    const create = v.blocks.find((b) => b.block_id === BLOCK.homeCreate);
    expect(create?.elements?.map((e) => e.action_id)).toEqual([ACTION.homeCreate]);
    expect(textOf(v.blocks)).not.toContain("Waiting for your approval");

    const text = textOf(v.blocks);
    expect(text).toContain(
      ":white_check_mark: *available* · `web-1 nightly`\n`web-1` (`i-0123456789abcdef0`) · prod (123456789012) · eu-west-1 · took 15 min 0 s, 5 min ago · " +
        "<https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#ImageDetails:imageId=ami-0123456789abcdef0|`ami-0123456789abcdef0`> · " +
        `<${PERMALINK}|thread>`,
    );
    expect(text).toContain(":hourglass_flowing_sand: *pending* · `web-1 backup`");
    expect(text).toContain("3 min 0 s so far");
    // Newest first, as given.
    expect(text.indexOf("web-1 nightly")).toBeLessThan(text.indexOf("web-1 backup"));
    // Nothing to decide on one's own jobs here.
    expect(actionIds(v.blocks)).toEqual([[ACTION.homeCreate, "create"]]);
    for (const b of v.blocks) if (b.type === "section") expect(b.text?.verbatim).toBe(true);
  });

  it("says plainly when there are no images yet", () => {
    const v = view();
    expect(textOf(v.blocks)).toContain("You have no images yet.");
  });

  it("says the thread is not posted yet, and leaves out a link Slack did not hand out", () => {
    expect(recentJobText(entry({ rootTs: undefined, rootChannelId: undefined }), TARGET, NOW)).toContain(
      "thread not posted yet",
    );
    const forged = recentJobText(entry({}, "javascript:alert(1)"), TARGET, NOW);
    expect(forged).not.toContain("javascript");
    expect(forged).not.toContain("|thread>");
  });

  it("shows hostile names as typed, in code spans, when they try to mention, format or link", () => {
    const text = recentJobText(
      entry({ imageName: "@here *x* <!channel>", instanceName: "<https://evil.example|click> `rm`\nnext" }),
      TARGET,
      NOW,
    );
    expect(text).toContain("`@here *x* &lt;!channel&gt;`");
    expect(text).toContain("`&lt;https://evil.example|click&gt; ˋrmˋ next`");
    expect(text).not.toContain("<!channel>");
  });

  it("leaves private_metadata empty when the App Home DM is not known", () => {
    expect(view({ channelId: undefined }).private_metadata).toBe("");
  });
});

describe("homeView for an approver", () => {
  const waiting = (id: string, requestedBy: string) =>
    entry({
      id,
      requestedBy,
      state: "awaiting_approval",
      imageName: `db-${id}`,
      approvalExpiresAt: NOW + 2 * 60 * MIN,
    });

  it("lists others' waiting jobs with Approve, Deny and Cancel, each under its own block id", () => {
    const v = view({
      userId: APPROVER,
      approver: true,
      awaiting: [waiting("job-1", REQUESTER), waiting("job-2", "U0SOMEONE")],
    });
    const text = textOf(v.blocks);
    expect(text).toContain("Waiting for your approval");
    expect(text).toContain(
      `<@${REQUESTER}> asks for \`db-job-1\`\n\`web-1\` (\`i-0123456789abcdef0\`) · prod (123456789012) · eu-west-1 · asked 30 min ago · decide by 05:10 UTC (in 2 h 0 min) · <${PERMALINK}|thread>`,
    );
    expect(actionIds(v.blocks)).toEqual([
      [ACTION.homeCreate, "create"],
      [ACTION.approve, "job-1"],
      [ACTION.deny, "job-1"],
      [ACTION.cancel, "job-1"],
      [ACTION.approve, "job-2"],
      [ACTION.deny, "job-2"],
      [ACTION.cancel, "job-2"],
    ]);
    const ids = v.blocks.flatMap((b) => (b.block_id ? [b.block_id] : []));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toContain(`${BLOCK.jobActions}.job-1`);
  });

  it("never offers approvers their own waiting job", () => {
    const own = waiting("job-own", APPROVER);
    const v = view({ userId: APPROVER, approver: true, awaiting: [own], recent: [own] });
    expect(actionIds(v.blocks).filter(([id]) => id === ACTION.approve || id === ACTION.deny)).toEqual([]);
    expect(textOf(v.blocks)).toContain("Nothing is waiting for your approval.");
    // Their own job is still in their list, as waiting.
    expect(textOf(v.blocks)).toContain(":raised_hand: *awaiting approval* · `db-job-own`");
  });

  it("says so when nothing waits", () => {
    expect(textOf(view({ userId: APPROVER, approver: true }).blocks)).toContain(
      "Nothing is waiting for your approval.",
    );
  });

  it("shows an expiry already passed as due now", () => {
    const late = entry({ state: "awaiting_approval", approvalExpiresAt: NOW - MIN });
    expect(awaitingJobText(late, TARGET, NOW)).toContain("decide by 03:09 UTC (now)");
  });
});

describe("homeView within Slack's limits", () => {
  const long = "&<>".repeat(2_000);
  const many = (n: number, overrides: Partial<Job> = {}) =>
    Array.from({ length: n }, (_, i) =>
      entry(
        {
          id: `job-${String(i).padStart(3, "0")}`,
          imageName: long,
          instanceName: long,
          targetName: long,
          region: long,
          ...overrides,
        },
        `https://acme.slack.com/archives/C0UPDATES/p${"1".repeat(300)}${i}`,
      ),
    );

  it("keeps at most 100 blocks and 3,000 characters a section with 20 jobs in each list and long names", () => {
    const v = view({
      userId: APPROVER,
      approver: true,
      recent: many(25),
      awaiting: many(25, {
        state: "awaiting_approval",
        requestedBy: REQUESTER,
        approvalExpiresAt: NOW + MIN,
      }),
    });
    expect(v.blocks.length).toBeLessThanOrEqual(100);
    for (const b of v.blocks) expect(b.text?.text.length ?? 0).toBeLessThanOrEqual(3000);
    const sections = v.blocks.filter((b) => b.type === "section");
    // Each list is cut at 20 jobs: 20 waiting + 20 recent + the intro.
    expect(sections).toHaveLength(HOME_LIST_LIMIT * 2 + 1);
    expect(actionIds(v.blocks).filter(([id]) => id === ACTION.approve)).toHaveLength(HOME_LIST_LIMIT);
    const ids = v.blocks.flatMap((b) => (b.block_id ? [b.block_id] : []));
    expect(new Set(ids).size).toBe(ids.length);
    expect(JSON.stringify(v).length).toBeLessThan(250_000);
  });

  it("cuts a long name with an ellipsis rather than dropping the job", () => {
    const text = recentJobText(entry({ imageName: "x".repeat(500) }), TARGET, NOW);
    expect(text).toContain(`\`${"x".repeat(119)}…\``);
  });
});
