/**
 * Security through the bot's real HTTP endpoint: access rules on every action (users, user groups with their
 * cache, channels; deny by default), the re-check on submission, request signatures, replays and double
 * submissions, secrets kept out of logs and Slack, and one audit line per decision.
 *
 * `it.fails` marks a known gap in the bot: the test asserts what the issue asks for, so it passes while the
 * gap exists and turns red (asking for the marker to go) once it is fixed.
 */
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { NOT_ALLOWED_OPTION } from "../../src/slack/options/instance-options.js";
import {
  ALLOWED_USER,
  CHANNEL,
  EXTERNAL_ID,
  eventually,
  type Harness,
  SIGNING_SECRET,
  signedMetadata,
  startHarness,
} from "../support/bot-harness.js";
import {
  interactionBody,
  postSigned,
  type SignedResponse,
  sign,
  slashCommandBody,
} from "../support/slack-requests.js";

const MEMBER = "U0MEMBER01";
const STRANGER = "U0STRANGER";
const GROUP = "S0OPS0001";
const OPS_CHANNEL = "C0OPSCHAN1";
const INSTANCE = "i-0123456789abcdef0";
const BOT_TOKEN = "xoxb-test-token";
const BOT_AWS_KEY_ID = "AKIAAMIBOTTESTKEY001";
const BOT_AWS_SECRET = "bot-aws-secret-DO-NOT-LOG-wJalrXUtnFEMI0123456789";
const DENIED =
  "You are not allowed to create images with ami-bot: no target lists you, a user group you are in, or this channel. " +
  "Ask the people who run ami-bot in your workspace to add you to a target's `allow` rule.";

const suggestionFixture = JSON.parse(
  readFileSync(new URL("../fixtures/slack/block_suggestion.bolt-python.json", import.meta.url), "utf8"),
) as Record<string, unknown> & { view: Record<string, unknown> };

const settle = (ms = 300) => new Promise((r) => setTimeout(r, ms));
const keyOf = (m: { metadata?: { event_payload?: Record<string, unknown> } | undefined }) =>
  String(m.metadata?.event_payload?.key ?? "");

interface AuditLine {
  audit: true;
  user: string;
  action: string;
  allowed: boolean;
  reason: string;
  target?: string;
  jobId?: string;
}

function auditLines(h: Harness): AuditLine[] {
  return h.logs
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l): l is AuditLine & Record<string, unknown> => l.audit === true);
}

/** The private_metadata of the modal the bot opened last. */
function lastMetadata(h: Harness): string {
  const view = h.slack.callsTo("views.open").at(-1)?.args.view as { private_metadata?: string } | undefined;
  return view?.private_metadata ?? signedMetadata(CHANNEL);
}

function optionsLoad(h: Harness, user: string, metadata: string): Promise<SignedResponse> {
  return h.interaction({
    ...suggestionFixture,
    user: { id: user, username: "someone", name: "someone", team_id: "T111" },
    action_id: "instance_select",
    block_id: "instance",
    value: "",
    view: {
      ...suggestionFixture.view,
      id: "V0OPTIONS1",
      callback_id: "ami_create",
      private_metadata: metadata,
      state: { values: {} },
    },
  });
}

function modalAction(
  h: Harness,
  user: string,
  metadata: string,
  action: Record<string, unknown>,
  imageName?: string,
): Promise<SignedResponse> {
  const view = (
    h.submission(
      { instanceId: INSTANCE, reboot: "reboot", imageName },
      { userId: user, viewId: "V0ACTION01" },
    ) as {
      view: object;
    }
  ).view;
  return h.interaction({
    type: "block_actions",
    user: { id: user, username: "someone", name: "someone", team_id: "T111" },
    api_app_id: "A111",
    container: { type: "view", view_id: "V0ACTION01" },
    trigger_id: "111.222.valid",
    team: { id: "T111", domain: "workspace-domain" },
    view: { ...view, private_metadata: metadata, hash: "h" },
    actions: [{ block_id: "x", action_ts: "1596530385.194939", ...action }],
  });
}

const checkButton = { action_id: "check_access", block_id: "check", type: "button", value: "check" };
const pickInstance = {
  action_id: "instance_select",
  block_id: "instance",
  type: "external_select",
  selected_option: { value: INSTANCE, text: { type: "plain_text", text: `web-1 (${INSTANCE})` } },
};

/** Slack API calls other than Bolt checking its own token. */
const slackCalls = (h: Harness) => h.slack.calls.filter((c) => c.method !== "auth.test");

describe("access rules on every action", () => {
  let h: Harness;
  let groups: Record<string, string[]>;
  const start = async (cacheSeconds: string, env: Record<string, string> = {}) => {
    groups = { [GROUP]: [MEMBER] };
    h = await startHarness({
      env: {
        AMI_TARGET_ALLOW_USERS: "",
        AMI_TARGET_ALLOW_USERGROUPS: GROUP,
        AMI_USERGROUP_CACHE_SECONDS: cacheSeconds,
        ...env,
      },
      slack: { usergroups: groups },
    });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
  };
  afterEach(async () => {
    await h.close();
  });

  it("lets a member of an allowed user group open the form, list instances, check access and submit", async () => {
    await start("60");
    await h.command({ user_id: MEMBER });
    await h.slack.waitFor("views.open");
    const options = await optionsLoad(h, MEMBER, lastMetadata(h));
    expect(options.json()).toEqual({
      options: [
        { text: { type: "plain_text", text: `web-1 (${INSTANCE}) · running · t3.micro` }, value: INSTANCE },
      ],
    });
    await modalAction(h, MEMBER, lastMetadata(h), checkButton);
    const checked = await h.slack.waitFor("views.update");
    expect(JSON.stringify(checked.args.view)).toContain(
      ":white_check_mark: AWS would allow an image of web-1",
    );
    const submitted = await h.interaction(
      h.submission({ instanceId: INSTANCE, imageName: "member image", reboot: "reboot" }, { userId: MEMBER }),
    );
    expect(submitted.body).toBe("");
    const create = await eventually(
      () => h.aws.calls("CreateImage").find((c) => c.params.DryRun !== "true"),
      10_000,
      "CreateImage",
    );
    expect(create.params).toMatchObject({ InstanceId: INSTANCE, Name: "member image" });
    expect(h.slack.callsTo("usergroups.users.list").map((c) => c.args.usergroup)).toContain(GROUP);
  });

  it("denies someone outside every rule on every action, says what they lack and whom to ask, and calls no AWS", async () => {
    await start("60");
    const metadata = signedMetadata(CHANNEL);

    const opened = await h.command({ user_id: STRANGER });
    expect(opened.json()).toEqual({ response_type: "ephemeral", text: DENIED });
    const checkCommand = await h.command({ user_id: STRANGER, text: `check ${INSTANCE}` });
    expect(checkCommand.json()).toEqual({ response_type: "ephemeral", text: DENIED });
    const options = await optionsLoad(h, STRANGER, metadata);
    expect(options.json()).toEqual({
      options: [{ text: { type: "plain_text", text: NOT_ALLOWED_OPTION }, value: "not-allowed" }],
    });
    await modalAction(h, STRANGER, metadata, checkButton);
    const note = await h.slack.waitFor("views.update");
    expect(JSON.stringify(note.args.view)).toContain(`:no_entry: ${DENIED}`);
    await modalAction(h, STRANGER, metadata, pickInstance);
    const submitted = await h.interaction(
      h.submission(
        { instanceId: INSTANCE, imageName: "sneaky", reboot: "reboot", where: "prod|eu-west-1" },
        { userId: STRANGER },
      ),
    );
    expect(submitted.json()).toEqual({
      response_action: "errors",
      errors: { where: DENIED },
    });
    await settle();

    expect(h.slack.callsTo("views.open")).toHaveLength(0);
    expect(h.slack.callsTo("views.update")).toHaveLength(1); // only the Check access note
    expect(h.aws.requests).toEqual([]); // not even AssumeRole
    expect(h.store.unfinishedCount()).toBe(0);
    const denials = auditLines(h).filter((a) => a.user === STRANGER);
    expect(denials.map((a) => [a.action, a.allowed])).toEqual([
      ["open_modal", false],
      ["check_access", false],
      ["list_instances", false],
      ["check_access", false],
      ["select_instance", false],
      ["submit", false],
    ]);
    for (const a of denials) expect(a.reason).toMatch(/\S/);
  });

  it("checks the group again on submission: removed after the form opened (cache 0 s) means refused, no AWS call", async () => {
    await start("0");
    await h.command({ user_id: MEMBER });
    await h.slack.waitFor("views.open");
    groups[GROUP] = []; // an admin removes the member from the group while the form is open

    const res = await h.interaction(
      h.submission({ instanceId: INSTANCE, imageName: "too late", reboot: "reboot" }, { userId: MEMBER }),
    );
    expect(res.json()).toEqual({
      response_action: "errors",
      errors: { instance: DENIED },
    });
    await settle();
    expect(h.aws.requests).toEqual([]);
    expect(h.store.unfinishedCount()).toBe(0);
    expect(h.slack.callsTo("chat.postMessage")).toHaveLength(0);
    // The member list was read again for the submission, not taken from the modal's opening.
    expect(h.slack.callsTo("usergroups.users.list").length).toBeGreaterThanOrEqual(2);
    expect(auditLines(h).at(-1)).toMatchObject({ user: MEMBER, action: "submit", allowed: false });
  });

  it("caches group members for AMI_USERGROUP_CACHE_SECONDS and reads them again after", async () => {
    await start("60");
    await h.command({ user_id: MEMBER });
    await h.command({ user_id: MEMBER });
    await h.command({ user_id: STRANGER });
    expect(h.slack.callsTo("usergroups.users.list")).toHaveLength(1);
    // Within the cache time a removal is not seen yet: that is the configured trade-off.
    groups[GROUP] = [];
    await h.command({ user_id: MEMBER });
    await eventually(() => h.slack.callsTo("views.open").length === 3, 10_000, "a third views.open");
    await h.close();

    await start("0");
    await h.command({ user_id: MEMBER });
    await h.command({ user_id: MEMBER });
    expect(h.slack.callsTo("usergroups.users.list")).toHaveLength(2);
  });

  it("grants nothing through a user group Slack will not list (deny by default)", async () => {
    await start("0");
    h.slack.failNext("usergroups.users.list", { error: "missing_scope" });
    const res = await h.command({ user_id: MEMBER });
    expect(res.json()).toEqual({ response_type: "ephemeral", text: DENIED });
    expect(h.slack.callsTo("views.open")).toHaveLength(0);
  });

  it("does not fall back to expired members when Slack fails to list the group", async () => {
    await start("0");
    await h.command({ user_id: MEMBER });
    await h.slack.waitFor("views.open");
    groups[GROUP] = [];
    h.slack.failNext("usergroups.users.list", { error: "fatal_error" });
    const res = await h.interaction(
      h.submission({ instanceId: INSTANCE, imageName: "stale member", reboot: "reboot" }, { userId: MEMBER }),
    );
    expect(res.body).not.toBe("");
    await settle();
    expect(h.aws.requests).toEqual([]);
  });

  it("allows a channel rule only in that channel, and checks the channel again on submission", async () => {
    await start("60", { AMI_TARGET_ALLOW_USERGROUPS: "", AMI_TARGET_ALLOW_CHANNELS: OPS_CHANNEL });
    const elsewhere = await h.command({ user_id: STRANGER, channel_id: CHANNEL });
    expect(elsewhere.json()).toEqual({ response_type: "ephemeral", text: DENIED });
    await h.command({ user_id: STRANGER, channel_id: OPS_CHANNEL });
    await h.slack.waitFor("views.open");
    const res = await h.interaction(
      h.submission(
        { instanceId: INSTANCE, imageName: "from ops", reboot: "reboot", channel: OPS_CHANNEL },
        { userId: STRANGER },
      ),
    );
    expect(res.body).toBe("");
    await eventually(() => h.aws.calls("CreateImage")[0], 10_000, "CreateImage");
  });

  it("tells a person whose access was removed what they lack and whom to ask, on submission", async () => {
    await start("0");
    await h.command({ user_id: MEMBER });
    await h.slack.waitFor("views.open");
    groups[GROUP] = [];
    const res = await h.interaction(
      h.submission({ instanceId: INSTANCE, imageName: "too late", reboot: "reboot" }, { userId: MEMBER }),
    );
    const errors = Object.values((res.json() as { errors: Record<string, string> }).errors).join(" ");
    expect(errors).toContain("not allowed");
    expect(errors).toContain("Ask");
  });

  it("tells a denied person why the instance picker is empty", async () => {
    await start("60");
    const res = await optionsLoad(h, STRANGER, signedMetadata(CHANNEL));
    expect(JSON.stringify(res.json())).toContain("not allowed");
  });

  it("writes an audit line when a denied person picks an instance", async () => {
    await start("60");
    await modalAction(h, STRANGER, signedMetadata(CHANNEL), pickInstance);
    // Written after the ack, once Slack has said who the person is: wait for it, then for any second one.
    const denied = () => auditLines(h).filter((a) => a.user === STRANGER);
    await eventually(() => denied().length > 0, 10_000, "the audit line");
    await settle();
    expect(denied()).toHaveLength(1);
  });
});

describe("request authenticity", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  const command = () => slashCommandBody({ user_id: ALLOWED_USER, channel_id: CHANNEL });
  const now = () => Math.floor(Date.now() / 1000);

  async function send(body: string, headers: Record<string, string>): Promise<SignedResponse> {
    const res = await fetch(h.url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body,
    });
    const text = await res.text();
    return { status: res.status, body: text, json: () => JSON.parse(text) };
  }

  const cases: { name: string; build: (body: string) => Record<string, string> }[] = [
    { name: "no signature headers", build: () => ({}) },
    { name: "a timestamp but no signature", build: () => ({ "x-slack-request-timestamp": String(now()) }) },
    { name: "signed with the wrong secret", build: (b) => sign(b, "not-the-signing-secret", now()) },
    {
      name: "stale: signed 6 minutes ago",
      build: (b) => sign(b, SIGNING_SECRET, now() - 6 * 60),
    },
    {
      name: "a valid signature for another body",
      build: () => sign("token=x&command=%2Fami", SIGNING_SECRET, now()),
    },
    {
      name: "an unknown signature version",
      build: (b) => ({
        ...sign(b, SIGNING_SECRET, now()),
        "x-slack-signature": sign(b, SIGNING_SECRET, now())["x-slack-signature"]?.replace(
          "v0=",
          "v1=",
        ) as string,
      }),
    },
    {
      name: "a timestamp that is not a number",
      build: (b) => ({ ...sign(b, SIGNING_SECRET, now()), "x-slack-request-timestamp": "soon" }),
    },
  ];

  for (const c of cases) {
    it(`answers 401 and does nothing for /ami and a submission with ${c.name}`, async () => {
      h = await startHarness();
      h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
      const slash = command();
      const submission = interactionBody(
        h.submission({ instanceId: INSTANCE, imageName: "forged", reboot: "reboot" }),
      );
      for (const body of [slash, submission]) {
        const res = await send(body, c.build(body));
        expect(res.status).toBe(401);
        expect(res.body).toBe("");
      }
      await settle();
      expect(slackCalls(h)).toEqual([]);
      expect(h.aws.requests).toEqual([]);
      expect(h.store.unfinishedCount()).toBe(0);
      expect(auditLines(h)).toEqual([]);
    });
  }

  it("accepts a signature made 4 minutes ago (inside Slack's 5-minute window)", async () => {
    h = await startHarness();
    const res = await postSigned(h.url, command(), SIGNING_SECRET, { timestamp: now() - 4 * 60 });
    expect(res.status).toBe(200);
    await h.slack.waitFor("views.open");
  });
});

describe("replays and double submissions", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it("opens no second form when Slack redelivers /ami (X-Slack-Retry-Num)", async () => {
    h = await startHarness();
    const body = slashCommandBody({ user_id: ALLOWED_USER, channel_id: CHANNEL, trigger_id: "1.2.replayed" });
    const first = await postSigned(h.url, body, SIGNING_SECRET);
    expect(first.status).toBe(200);
    await h.slack.waitFor("views.open");
    for (const n of ["1", "2"]) {
      const again = await postSigned(h.url, body, SIGNING_SECRET, {
        headers: { "x-slack-retry-num": n, "x-slack-retry-reason": "http_timeout" },
      });
      expect(again.status).toBe(200);
      expect(again.body).toBe("");
    }
    await settle();
    expect(h.slack.callsTo("views.open")).toHaveLength(1);
    expect(h.aws.requests).toEqual([]);
  });

  it("creates one job and one image when the same view is submitted twice at once, and again later", async () => {
    h = await startHarness();
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    await h.command({});
    await h.slack.waitFor("views.open");
    const payload = h.submission(
      { instanceId: INSTANCE, imageName: "double click", reboot: "reboot" },
      { viewId: "V0DOUBLE01" },
    );
    const [a, b] = await Promise.all([h.interaction(payload), h.interaction(payload)]);
    expect([a.status, a.body, b.status, b.body]).toEqual([200, "", 200, ""]);
    await eventually(() => h.aws.calls("CreateImage")[0], 10_000, "CreateImage");
    // A late redelivery of the same view, after the job is already running.
    const late = await h.interaction(payload, { "x-slack-retry-num": "1" });
    expect(late.body).toBe("");
    await eventually(() => h.slack.messages.some((m) => keyOf(m) === "pending"), 10_000, "the pending reply");
    await settle(500);
    expect(h.aws.calls("CreateImage")).toHaveLength(1);
    expect(h.aws.images.size).toBe(1);
    expect(h.slack.messages.filter((m) => !m.threadTs)).toHaveLength(1);
    const submits = auditLines(h).filter((l) => l.action === "submit");
    expect(submits.map((l) => l.reason).sort()).toEqual([
      "duplicate submission of the same form (no new job)",
      "duplicate submission of the same form (no new job)",
      "job stored",
    ]);
  });
});

describe("secrets and audit over a full run", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it("keeps tokens, the signing secret and AWS keys out of every log line and every Slack call", async () => {
    h = await startHarness({
      appLogger: true,
      awsCredentials: { accessKeyId: BOT_AWS_KEY_ID, secretAccessKey: BOT_AWS_SECRET },
    });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1", volumes: 2 });

    await h.command({});
    await h.slack.waitFor("views.open");
    // The target role refusing the bot (STS AccessDenied names the caller), while the form is still open:
    // the instance check asks for the person's read-only session. This comes first because that session,
    // once made (the picker below makes it), is kept and reused rather than assumed again.
    h.aws.failNext("AssumeRole", {
      code: "AccessDenied",
      status: 403,
      message: `User: ${BOT_AWS_KEY_ID} denied`,
    });
    const noRole = await h.interaction(
      h.submission(
        { instanceId: INSTANCE, imageName: "no role run", reboot: "reboot" },
        { viewId: "V0FULL0003" },
      ),
    );
    expect(noRole.body).toContain("could not assume the role");
    expect(h.aws.calls("AssumeRole")).toHaveLength(1);

    // A successful image, with a Slack hiccup on the way.
    await optionsLoad(h, ALLOWED_USER, lastMetadata(h));
    await modalAction(h, ALLOWED_USER, lastMetadata(h), checkButton);
    h.slack.failNext("chat.postMessage", { status: 503 });
    await h.interaction(
      h.submission(
        { instanceId: INSTANCE, imageName: "full run", reboot: "no_reboot" },
        { viewId: "V0FULL0001" },
      ),
    );
    const root = await eventually(() => h.slack.messages.find((m) => !m.threadTs), 10_000, "root");
    await eventually(() => h.slack.repliesTo(root.ts).some((m) => keyOf(m) === "pending"), 10_000, "pending");
    const imageId = [...h.aws.images.keys()][0] as string;
    h.aws.setImageState(imageId, "available");
    await eventually(
      () => h.slack.repliesTo(root.ts).some((m) => keyOf(m) === "available"),
      10_000,
      "available",
    );

    // A refusal by AWS, and a stranger's denied attempt.
    h.aws.failNext("CreateImage", { code: "UnauthorizedOperation", status: 403 });
    await h.interaction(
      h.submission(
        { instanceId: INSTANCE, imageName: "refused run", reboot: "reboot" },
        { viewId: "V0FULL0002" },
      ),
    );
    await eventually(() => h.slack.messages.some((m) => keyOf(m) === "refused"), 10_000, "refused");
    await h.command({ user_id: STRANGER });
    await settle();

    const sessions = [...h.aws.sessions.values()];
    expect(sessions.length).toBeGreaterThan(0);
    const secrets: Record<string, string> = {
      "bot token": BOT_TOKEN,
      "signing secret": SIGNING_SECRET,
      "bot AWS secret key": BOT_AWS_SECRET,
      // Not named by the issue, but secrets all the same: the role's ExternalId (NoEcho in target-role.yaml)
      // and the legacy verification token Slack still puts in every payload.
      ExternalId: EXTERNAL_ID,
      "Slack verification token": "verification_token",
      ...Object.fromEntries(
        sessions.flatMap((s, i) => [
          [`session ${i} SecretAccessKey`, s.secretAccessKey],
          [`session ${i} SessionToken`, s.sessionToken],
        ]),
      ),
    };
    const logText = h.logs.join("");
    // What the bot sent Slack, minus the token argument that authenticates the call itself.
    const slackText = JSON.stringify([
      h.slack.calls.map((c) => ({ method: c.method, args: { ...c.args, token: undefined } })),
      h.slack.messages,
    ]);
    const leaks = Object.entries(secrets).flatMap(([what, value]) => [
      ...(logText.includes(value) ? [`${what} in the logs`] : []),
      ...(slackText.includes(value) ? [`${what} in a Slack call`] : []),
    ]);
    expect(leaks).toEqual([]);
    // The search is not vacuous: the run logged plenty, at debug level.
    expect(h.logs.length).toBeGreaterThan(20);

    // Structured logs: the job's lines carry its id, the user and the target.
    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const accepted = lines.find((l) => l.msg === "job accepted");
    expect(accepted).toMatchObject({ user: ALLOWED_USER, target: "prod", instance: INSTANCE });
    expect(String(accepted?.jobId)).toMatch(/^[0-9a-f-]{36}$/);

    // One audit line per decision: who, what, allowed or denied, why.
    const audits = auditLines(h);
    for (const a of audits) {
      expect(typeof a.user).toBe("string");
      expect(typeof a.action).toBe("string");
      expect(typeof a.allowed).toBe("boolean");
      expect(a.reason).toMatch(/\S/);
    }
    expect(audits.map((a) => [a.user, a.action, a.allowed])).toEqual([
      [ALLOWED_USER, "open_modal", true],
      [ALLOWED_USER, "submit", true],
      [ALLOWED_USER, "list_instances", true],
      [ALLOWED_USER, "check_access", true],
      [ALLOWED_USER, "submit", true],
      [ALLOWED_USER, "submit", true],
      [STRANGER, "open_modal", false],
    ]);
    const submits = audits.filter((a) => a.action === "submit");
    expect(submits.every((a) => a.target === "prod")).toBe(true);
    // Stored jobs name their id; the one AWS refused before anything was stored says why.
    expect(submits.filter((a) => a.jobId)).toHaveLength(2);
    expect(submits.find((a) => !a.jobId)?.reason).toContain("could not assume the role");
  });
});
