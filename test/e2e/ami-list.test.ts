/**
 * `/ami list` and `/ami list mine` through the bot's real HTTP endpoint: jobs made through the real flow,
 * jobs of a target the person may not use stored beside them, and what reaches Slack's response_url.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_SLACK_BUDGETS } from "../../src/slack/budgets.js";
import { newJob } from "../fakes/job-fixtures.js";
import {
  ALLOWED_USER,
  CHANNEL,
  EXTERNAL_ID,
  eventually,
  type Harness,
  ROLE_ARN,
  startHarness,
} from "../support/bot-harness.js";

const WEB1 = "i-0123456789abcdef0";
const WEB2 = "i-0fedcba9876543210";
/** Listed only on "secret", a target in another account. */
const SECRET_USER = "U0SECRET01";
const SECRET_ROLE = "arn:aws:iam::210987654321:role/ami-bot-target";
const SECRET_CHANNEL = "C0SECRETS1";
const ELSEWHERE = "C0ELSEWHR1";
const QUIET_CHANNEL = "C0QUIET001";
const STRANGER = "U0STRANGER";

const DENIED =
  "You are not allowed to create images with ami-bot: no target lists you, a user group you are in, or this channel. " +
  "Ask the people who run ami-bot in your workspace to add you to a target's `allow` rule.";

function keyOf(m: { metadata?: { event_payload?: Record<string, unknown> } | undefined }): string {
  return String(m.metadata?.event_payload?.key ?? "");
}

const permalinkOf = (channel: string, ts: string) =>
  `https://fake.slack.com/archives/${channel}/p${ts.replace(".", "")}`;

const section = (text: string) => ({ type: "section", text: { type: "mrkdwn", text, verbatim: true } });

describe("/ami list", () => {
  let dir: string;
  let h: Harness;
  let rootA: { ts: string };
  let rootB: { ts: string };
  let secretTs: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "ami-bot-list-"));
    writeFileSync(
      join(dir, "targets.json"),
      JSON.stringify({
        targets: [
          {
            name: "prod",
            roleArn: ROLE_ARN,
            externalId: EXTERNAL_ID,
            regions: ["eu-west-1"],
            allow: { users: [ALLOWED_USER] },
          },
          {
            name: "secret",
            roleArn: SECRET_ROLE,
            externalId: "another-external-id-0001",
            regions: ["eu-west-1"],
            allow: { users: [SECRET_USER] },
          },
        ],
        watcher: { pollInterval: "100ms" },
      }),
    );
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Makes an image through the form, as ALLOWED_USER in CHANNEL, and returns its root message. */
  async function requestImage(instanceId: string, imageName: string, viewId: string) {
    const opened = h.slack.callsTo("views.open").length;
    await h.command({});
    await eventually(() => h.slack.callsTo("views.open").length > opened, 5_000, "views.open");
    await h.interaction(h.submission({ instanceId, imageName }, { viewId }));
    const root = await eventually(
      () => h.slack.messages.find((m) => !m.threadTs && JSON.stringify(m.blocks).includes(imageName)),
      10_000,
      `root of ${imageName}`,
    );
    await eventually(
      () => h.slack.repliesTo(root.ts).some((m) => keyOf(m) === "pending"),
      10_000,
      `${imageName} pending`,
    );
    return root;
  }

  /** A finished job of "secret", stored as the form would have stored it, with its root posted. */
  async function storeSecretJob(fields: {
    id: string;
    requestedBy: string;
    origin: string;
    channel: string;
  }) {
    const now = Date.now();
    h.store.insert(
      newJob({
        id: fields.id,
        requestedBy: fields.requestedBy,
        originChannelId: fields.origin,
        channelId: fields.channel,
        targetName: "secret",
        roleArn: SECRET_ROLE,
        instanceId: "i-0aaaaaaaaaaaaaaa1",
        instanceName: "secret-db",
        imageName: `secret-db ${fields.id}`,
      }),
      now,
    );
    // In the same tick as the insert, so the watcher never checks it (its role is not in the fake AWS).
    h.store.apply(fields.id, { type: "image_created", imageId: "ami-0secret" }, now);
    h.store.apply(fields.id, { type: "image_state", state: "available" }, now);
    return eventually(() => h.store.get(fields.id)?.rootTs, 10_000, `root of ${fields.id}`);
  }

  beforeEach(async () => {
    h = await startHarness({ env: { AMI_BOT_CONFIG: join(dir, "targets.json") } });
    h.aws.addInstance({ instanceId: WEB1, name: "web-1" });
    h.aws.addInstance({ instanceId: WEB2, name: "web-2 <!channel> *bold*" });

    rootA = await requestImage(WEB1, "web-1 nightly", "V0LIST0001");
    const imageA = [...h.aws.images.keys()][0] as string;
    h.aws.setImageState(imageA, "available");
    await eventually(
      () => h.slack.repliesTo(rootA.ts).some((m) => keyOf(m) === "available"),
      10_000,
      "web-1 nightly available",
    );
    rootB = await requestImage(WEB2, "@here web-2 [nightly]", "V0LIST0002");

    // Asked from CHANNEL, updates in a secret channel: in CHANNEL's list only for who may use "secret".
    secretTs = await storeSecretJob({
      id: "secret-1",
      requestedBy: SECRET_USER,
      origin: CHANNEL,
      channel: SECRET_CHANNEL,
    });
    // ALLOWED_USER's own, from when a rule let them use "secret": not theirs to see any more.
    await storeSecretJob({
      id: "secret-2",
      requestedBy: ALLOWED_USER,
      origin: ELSEWHERE,
      channel: ELSEWHERE,
    });
  });
  afterEach(async () => {
    await h.close();
  });

  const LINE_B = () =>
    ":hourglass_flowing_sand: *pending* `@here web-2 [nightly]` · `web-2 &lt;!channel&gt; *bold*` (`i-0fedcba9876543210`) · " +
    `prod · eu-west-1 · just now · <${permalinkOf(CHANNEL, rootB.ts)}|thread>`;
  const LINE_A = () =>
    ":white_check_mark: *available* `web-1 nightly` · `web-1` (`i-0123456789abcdef0`) · " +
    `prod · eu-west-1 · just now · <${permalinkOf(CHANNEL, rootA.ts)}|thread>`;

  it("lists the channel's images newest first, with thread links, privately, and not another account's", async () => {
    const res = await h.command({ text: "list" });
    expect(res.status).toBe(200);
    expect(res.body).toBe("");
    const answer = await h.slack.waitFor("response_url");
    const heading = "*The latest images in this channel*, newest first:";
    expect(answer.args).toEqual({
      response_type: "ephemeral",
      replace_original: false,
      text: [heading, LINE_B(), LINE_A()].join("\n"),
      blocks: [heading, LINE_B(), LINE_A()].map(section),
    });
    expect(JSON.stringify(answer.args)).not.toContain("secret");
    // Only the two listed threads were looked up.
    expect(h.slack.callsTo("chat.getPermalink").map((c) => c.args)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ channel: CHANNEL, message_ts: rootA.ts }),
        expect.objectContaining({ channel: CHANNEL, message_ts: rootB.ts }),
      ]),
    );
    expect(h.slack.callsTo("chat.getPermalink")).toHaveLength(2);
    // Nothing was posted for anyone else to see.
    expect(h.slack.callsTo("chat.postEphemeral")).toHaveLength(0);
  });

  it("lists only the other account's image to someone who may use only that account", async () => {
    await h.command({ user_id: SECRET_USER, text: "list" });
    const answer = await h.slack.waitFor("response_url");
    expect(answer.args.text).toBe(
      "*The latest images in this channel*, newest first:\n" +
        ":white_check_mark: *available* `secret-db secret-1` · `secret-db` (`i-0aaaaaaaaaaaaaaa1`) · secret · eu-west-1 · " +
        `just now · <${permalinkOf(SECRET_CHANNEL, secretTs)}|thread>`,
    );
  });

  it("lists the person's own images from any channel with /ami list mine, not those they may no longer see", async () => {
    await h.command({ channel_id: QUIET_CHANNEL, text: "list mine" });
    const answer = await h.slack.waitFor("response_url");
    const heading = "*Your latest images*, newest first:";
    expect(answer.args).toEqual({
      response_type: "ephemeral",
      replace_original: false,
      text: [heading, LINE_B(), LINE_A()].join("\n"),
      blocks: [heading, LINE_B(), LINE_A()].map(section),
    });
  });

  it("lists without a thread's link when Slack is slow to give it", async () => {
    // Production's wait for links, not the harness's relaxed one: this is the "too slow" path.
    await h.restart({ budgets: { permalinkMs: DEFAULT_SLACK_BUDGETS.permalinkMs } });
    h.slack.delayNext("chat.getPermalink", 3_000);
    const started = Date.now();
    await h.command({ text: "list" });
    const answer = await h.slack.waitFor("response_url");
    expect(Date.now() - started).toBeLessThan(2_500);
    const lines = String(answer.args.text).split("\n");
    // Which of the two parallel lookups came first is up to the client: one line has its link, one not.
    expect(lines.filter((l) => l.endsWith("|thread>"))).toHaveLength(1);
    expect(lines.slice(1).map((l) => l.replace(/ · <[^>]+\|thread>$/, ""))).toEqual([
      LINE_B().replace(/ · <[^>]+\|thread>$/, ""),
      LINE_A().replace(/ · <[^>]+\|thread>$/, ""),
    ]);
  });

  it("says there are no images yet, and how to start one, in a channel without any", async () => {
    const res = await h.command({ channel_id: QUIET_CHANNEL, text: "list" });
    expect(res.json()).toEqual({
      response_type: "ephemeral",
      text: "There are no images in this channel yet. Type `/ami` to make one.",
    });
    expect(h.slack.callsTo("response_url")).toHaveLength(0);
  });

  it("gives the usual denial, and lists nothing, to someone no target allows", async () => {
    const res = await h.command({ user_id: STRANGER, text: "list" });
    expect(res.json()).toEqual({ response_type: "ephemeral", text: DENIED });
    const mine = await h.command({ user_id: STRANGER, text: "list mine" });
    expect(mine.json()).toEqual({ response_type: "ephemeral", text: DENIED });
    await new Promise((r) => setTimeout(r, 200));
    expect(h.slack.callsTo("response_url")).toHaveLength(0);
    expect(h.slack.callsTo("chat.getPermalink")).toHaveLength(0);
  });
});

describe("/ami help and mistyped subcommands", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it("lists every form of /ami in its help", async () => {
    const res = await h.command({ text: "help" });
    const text = String((res.json() as { text: string }).text);
    for (const form of [
      "`/ami` opens the form",
      "`/ami i-0123456789abcdef0`",
      "`/ami check i-0123456789abcdef0`",
      "`/ami list` shows the latest images in this channel",
      "`/ami list mine` shows yours",
      "`/ami help` shows this",
    ])
      expect(text).toContain(form);
  });

  it.each([
    [
      "lsit",
      "`/ami lsit` is not something ami-bot knows. Did you mean `/ami list`? Type `/ami help` to see every form.",
    ],
    [
      "chek",
      "`/ami chek` is not something ami-bot knows. Did you mean `/ami check`? Type `/ami help` to see every form.",
    ],
    ["create", "`/ami create` is not something ami-bot knows. Type `/ami help` to see every form."],
    [
      "list all",
      "`/ami list` shows the latest images in this channel and `/ami list mine` yours. Type `/ami help` for the rest.",
    ],
  ])("answers /ami %s with a hint pointing at /ami help", async (text, answer) => {
    const res = await h.command({ text });
    expect(res.json()).toEqual({ response_type: "ephemeral", text: answer });
    expect(h.slack.callsTo("views.open")).toHaveLength(0);
    expect(h.aws.requests).toHaveLength(0);
  });
});
