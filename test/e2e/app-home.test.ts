/**
 * The App Home tab through the bot's real HTTP endpoint: app_home_opened (a signed Events API delivery)
 * publishes the person's tab, an approver sees the jobs waiting for them with Approve and Deny and can decide
 * from there, tabs follow the job as it changes, and "Create image" opens the same form as /ami.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createBotMetadataCodec } from "../../src/bot.js";
import type { HomeViewRecord } from "../fakes/fake-slack.js";
import {
  ALLOWED_USER,
  EXTERNAL_ID,
  eventually,
  type Harness,
  ROLE_ARN,
  SIGNING_SECRET,
  startHarness,
} from "../support/bot-harness.js";
import { appHomeOpenedPayload, postSignedEvent } from "../support/slack-requests.js";

const INSTANCE = "i-0123456789abcdef0";
const APPROVER = "U0APPROVER";
const STRANGER = "U0STRANGER";
const REQUESTER_DM = "D0REQUEST1";
const APPROVER_DM = "D0APPROVE1";

interface Block {
  type: string;
  block_id?: string;
  text?: { text: string };
  elements?: { action_id?: string; value?: string }[];
}

const blocksOf = (view: HomeViewRecord | undefined) => (view?.blocks ?? []) as Block[];
const textOf = (view: HomeViewRecord | undefined) =>
  blocksOf(view)
    .map((b) => b.text?.text ?? "")
    .join("\n");
const buttonsOf = (view: HomeViewRecord | undefined) =>
  blocksOf(view).flatMap((b) =>
    b.type === "actions" ? (b.elements ?? []).map((e) => [e.action_id, e.value]) : [],
  );

/** A button click on someone's Home tab, as Slack sends it: no channel, the Home view as the container. */
function homeClick(
  userId: string,
  view: HomeViewRecord | undefined,
  action: { action_id: string; block_id: string; value: string },
): Record<string, unknown> {
  return {
    type: "block_actions",
    user: { id: userId, username: "someone", name: "someone", team_id: "T111" },
    api_app_id: "A111",
    token: "verification_token",
    container: { type: "view", view_id: `VHOME${userId}` },
    trigger_id: "111.222.home",
    team: { id: "T111", domain: "workspace-domain" },
    view: {
      id: `VHOME${userId}`,
      team_id: "T111",
      type: "home",
      blocks: view?.blocks ?? [],
      private_metadata: view?.private_metadata ?? "",
      callback_id: "",
      state: { values: {} },
      hash: "1596530361.3wRYuk3R",
      app_id: "A111",
      bot_id: "BBOT",
    },
    actions: [
      {
        type: "button",
        text: { type: "plain_text", text: "Click", emoji: true },
        action_ts: "1596530385.194939",
        ...action,
      },
    ],
  };
}

describe("the App Home tab", () => {
  let dir: string;
  let h: Harness;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "ami-bot-home-"));
    writeFileSync(
      join(dir, "targets.json"),
      JSON.stringify({
        targets: [
          {
            name: "prod",
            roleArn: ROLE_ARN,
            externalId: EXTERNAL_ID,
            regions: ["eu-west-1"],
            allow: { users: [ALLOWED_USER, APPROVER] },
            approval: { approvers: { users: [APPROVER] }, expiresAfter: "4h" },
          },
        ],
        watcher: { pollInterval: "100ms" },
      }),
    );
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    h = await startHarness({ env: { AMI_BOT_CONFIG: join(dir, "targets.json") } });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
  });
  afterEach(async () => {
    await h.close();
  });

  const openHome = async (user: string, channel: string, tab: "home" | "messages" = "home") => {
    const res = await postSignedEvent(h.url, appHomeOpenedPayload({ user, channel, tab }), SIGNING_SECRET);
    expect(res.status).toBe(200);
  };

  /** ALLOWED_USER asks for an image of web-1 through the form; the job waits for approval. */
  async function requestImage(imageName: string) {
    await h.command({});
    await h.slack.waitFor("views.open");
    const res = await h.interaction(h.submission({ instanceId: INSTANCE, imageName }));
    expect(res.status).toBe(200);
    const root = await eventually(
      () => h.slack.messages.find((m) => !m.threadTs && JSON.stringify(m.blocks).includes(imageName)),
      10_000,
      `root of ${imageName}`,
    );
    const job = h.store.recentJobs(
      { requestedBy: ALLOWED_USER, places: [{ targetName: "prod", roleArn: ROLE_ARN, region: "eu-west-1" }] },
      1,
    )[0];
    if (!job) throw new Error("no job stored");
    expect(job.state).toBe("awaiting_approval");
    return { job, root };
  }

  it("shows the requester their job and an approver the waiting job, and follows the approval from Home", async () => {
    const { job, root } = await requestImage("web-1 nightly");

    // The job changed (its root went out): the listed approver's tab was refreshed before they opened it.
    await eventually(
      () => textOf(h.slack.homeViewOf(APPROVER)).includes("web-1 nightly"),
      10_000,
      "approver's tab",
    );

    await openHome(ALLOWED_USER, REQUESTER_DM);
    const mine = await eventually(
      () => {
        const v = h.slack.homeViewOf(ALLOWED_USER);
        return v?.private_metadata === REQUESTER_DM && textOf(v).includes("web-1 nightly") ? v : undefined;
      },
      10_000,
      "requester's tab",
    );
    expect(textOf(mine)).toContain(":raised_hand: *awaiting approval* · `web-1 nightly`");
    expect(textOf(mine)).toContain(`\`web-1\` (\`${INSTANCE}\`) · prod (123456789012) · eu-west-1`);
    expect(textOf(mine)).toContain(
      `<https://fake.slack.com/archives/${root.channel}/p${root.ts.replace(".", "")}|thread>`,
    );
    // The requester is no approver, and may never approve their own job.
    expect(textOf(mine)).not.toContain("Waiting for your approval");
    expect(buttonsOf(mine)).toEqual([["home_create_image", "create"]]);

    await openHome(APPROVER, APPROVER_DM);
    const theirs = await eventually(
      () => {
        const v = h.slack.homeViewOf(APPROVER);
        return v?.private_metadata === APPROVER_DM ? v : undefined;
      },
      10_000,
      "approver's opened tab",
    );
    expect(textOf(theirs)).toContain("Waiting for your approval");
    expect(textOf(theirs)).toContain(`<@${ALLOWED_USER}> asks for \`web-1 nightly\``);
    expect(buttonsOf(theirs)).toEqual([
      ["home_create_image", "create"],
      ["job_approve", job.id],
      ["job_deny", job.id],
      ["job_cancel", job.id],
    ]);
    // Nothing is made before the approval.
    expect(h.aws.calls("CreateImage")).toHaveLength(0);

    const approve = blocksOf(theirs).find((b) => b.elements?.some((e) => e.action_id === "job_approve"));
    const res = await h.interaction(
      homeClick(APPROVER, theirs, {
        action_id: "job_approve",
        block_id: approve?.block_id ?? "",
        value: job.id,
      }),
    );
    expect(res.status).toBe(200);
    await eventually(() => h.aws.calls("CreateImage")[0], 10_000, "CreateImage after approval");

    // Both tabs follow: nothing waits for the approver any more, and the requester's image is being made.
    await eventually(
      () => textOf(h.slack.homeViewOf(APPROVER)).includes("Nothing is waiting for your approval."),
      10_000,
      "approver's tab without the job",
    );
    const imageId = await eventually(() => h.store.get(job.id)?.imageId, 10_000, "image id");
    h.aws.setImageState(imageId, "available");
    const done = await eventually(
      () => {
        const v = h.slack.homeViewOf(ALLOWED_USER);
        return textOf(v).includes(":white_check_mark: *available* · `web-1 nightly`") ? v : undefined;
      },
      15_000,
      "requester's tab with the image available",
    );
    expect(textOf(done)).toContain(
      `<https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#ImageDetails:imageId=${imageId}|\`${imageId}\`>`,
    );
    // The App Home DM is kept across refreshes, for the Create image button.
    expect(done.private_metadata).toBe(REQUESTER_DM);
    // Every publish was accepted: within Slack's limits (the fake refuses more than 100 blocks, duplicate ids).
    expect(h.slack.callsTo("views.publish").every((c) => c.outcome === "ok")).toBe(true);
  });

  it("opens the create form from the Home tab, with the App Home DM as where it was asked", async () => {
    await openHome(ALLOWED_USER, REQUESTER_DM);
    const home = await eventually(() => h.slack.homeViewOf(ALLOWED_USER), 10_000, "requester's tab");
    expect(textOf(home)).toContain("You have no images yet.");

    const res = await h.interaction(
      homeClick(ALLOWED_USER, home, {
        action_id: "home_create_image",
        block_id: "home_create",
        value: "create",
      }),
    );
    expect(res.status).toBe(200);
    const opened = await h.slack.waitFor("views.open");
    const view = opened.args.view as { callback_id: string; private_metadata: string };
    expect(opened.args.trigger_id).toBe("111.222.home");
    expect(view.callback_id).toBe("ami_create");
    const codec = createBotMetadataCodec({
      slack: {
        botToken: "xoxb-test-token",
        signingSecret: SIGNING_SECRET,
        appToken: undefined,
        apiUrl: undefined,
      },
    });
    expect(codec.decode(view.private_metadata)?.origin).toBe(REQUESTER_DM);
  });

  it("tells someone no rule allows, by DM, instead of opening the form", async () => {
    await openHome(STRANGER, "D0STRANGE1");
    const home = await eventually(() => h.slack.homeViewOf(STRANGER), 10_000, "stranger's tab");
    expect(textOf(home)).toContain("You have no images yet.");
    await h.interaction(
      homeClick(STRANGER, home, { action_id: "home_create_image", block_id: "home_create", value: "create" }),
    );
    const dm = await h.slack.waitFor("chat.postMessage", (c) => c.args.channel === STRANGER);
    expect(String(dm.args.text)).toContain("You are not allowed to create images with ami-bot");
    expect(h.slack.callsTo("views.open")).toHaveLength(0);
  });

  it("draws nothing when the Messages tab is opened", async () => {
    await openHome(ALLOWED_USER, REQUESTER_DM, "messages");
    await new Promise((r) => setTimeout(r, 300));
    expect(h.slack.callsTo("views.publish")).toHaveLength(0);
  });
});
