/**
 * Hostile input, one table: each row is something a person (or a forged request) can send through the bot's
 * real HTTP endpoint, the exact outcome the person sees, and proof that nothing reached AWS that should not
 * have — never a CreateImage, and for access cases not even an AssumeRole.
 *
 * Clicks on a job's buttons (Approve, Deny, Cancel, Try again) and the deny form are refused privately, and
 * rows marked `changesNothing` prove afterwards that no job, message, post or AWS change came of them.
 *
 * Rows marked `expectedBug` assert what the issue asks for and run as `it.fails`: the suite stays green and
 * the gap stays visible (see the report in README's Security section). The suite prints its counts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createBotMetadataCodec } from "../../src/bot.js";
import { loadConfig } from "../../src/config.js";
import { ConfigError } from "../../src/errors.js";
import { OWN_APPROVAL_TEXT, UNKNOWN_JOB_TEXT } from "../../src/slack/actions/job-decisions.js";
import { UNKNOWN_JOB } from "../../src/slack/actions/try-again.js";
import { NOT_ALLOWED_OPTION } from "../../src/slack/options/instance-options.js";
import { sessionPolicyPermits } from "../fakes/fake-aws.js";
import { createFixedClock } from "../fakes/fixed-clock.js";
import {
  ALLOWED_USER,
  CHANNEL,
  EXTERNAL_ID,
  eventually,
  type FormAnswers,
  type Harness,
  ROLE_ARN,
  SIGNING_SECRET,
  signedMetadata,
  startHarness,
} from "../support/bot-harness.js";
import { startChildBot } from "../support/child-bot.js";
import { denySubmissionPayload, messageButtonPayload } from "../support/job-buttons.js";
import {
  instanceSearchPayload,
  postSigned,
  type SignedResponse,
  slashCommandBody,
} from "../support/slack-requests.js";

// People and places. ALLOWED_USER is listed by id on target "prod"; CHANNEL_USER may use "prod" only in
// OPS_CHANNEL; STRANGER is listed nowhere; "secret" is a real target that allows someone else.
const CHANNEL_USER = "U0CHANUSR1";
const STRANGER = "U0STRANGER";
const OPS_CHANNEL = "C0OPSCHAN1";
const ELSEWHERE = "C0ELSEWHER";

// Instances in the fake account. Only GOOD is running, opted in (ami-bot:allowed=true) and in the region.
const GOOD = "i-0123456789abcdef0";
const TERMINATED = "i-0000000000000dead";
const NO_TAG = "i-00000000000000a11";
const WRONG_TAG = "i-00000000000000b22";
const OTHER_REGION = "i-00000000000000c33";
const OTHER_ACCOUNT = "i-0999999999999999f"; // not in this account at all

const DENIED =
  "You are not allowed to create images with ami-bot: no target lists you, a user group you are in, or this channel. " +
  "Ask the people who run ami-bot in your workspace to add you to a target's `allow` rule.";
const NAME_CHARS = "Use letters, digits, spaces and ( ) [ ] . / - ' @ _";
const NOT_PLACE = DENIED;
const NOT_ALLOWED_OPTIONS = [
  { text: { type: "plain_text", text: NOT_ALLOWED_OPTION }, value: "not-allowed" },
];
const NOT_FOUND = (id: string) =>
  `Instance ${id} was not found in prod (eu-west-1). Check the account, region and id, then run /ami again.`;
const OUT_OF_SCOPE = (id: string) =>
  `Instance ${id} is not one that target prod allows imaging (it lacks the required tags ami-bot:allowed=true).`;

const suggestionFixture = JSON.parse(
  readFileSync(new URL("../fixtures/slack/block_suggestion.bolt-python.json", import.meta.url), "utf8"),
) as Record<string, unknown> & { view: Record<string, unknown> };

/** What the person sees. */
type Outcome =
  /** The modal stays open with these errors under the fields (asymmetric matchers allowed). */
  | { readonly kind: "form_errors"; readonly errors: Record<string, unknown> }
  /** /ami answers privately with this text, and no modal opens. */
  | { readonly kind: "ephemeral"; readonly text: string }
  /** A click on a message's button is answered privately (chat.postEphemeral) with this text; no modal opens. */
  | { readonly kind: "ephemeral_message"; readonly user: string; readonly text: string }
  /** The instance picker offers exactly these options. */
  | { readonly kind: "options"; readonly options: readonly unknown[] }
  /** The modal is redrawn with this note under the "Check access" button. */
  | { readonly kind: "modal_note"; readonly text: string }
  /** The job is accepted, then refused in its thread with this reply. */
  | { readonly kind: "thread_refusal"; readonly text: unknown; readonly check?: (h: Harness) => void }
  /** Nothing visible happens: the bot acknowledges and ignores the request. */
  | { readonly kind: "nothing" }
  /** The bot answers with this HTTP status and no body; Slack shows its generic "trouble connecting" error. */
  | { readonly kind: "http"; readonly status: number }
  /** The job is accepted and its image created; `check` asserts what AWS was asked and what Slack shows. */
  | { readonly kind: "accepted"; readonly check: (h: Harness) => void | Promise<void> }
  /** /ami opens the form, and `check` asserts what it shows. */
  | { readonly kind: "modal"; readonly check: (view: ModalView) => void };

type ModalView = { blocks: Record<string, unknown>[] };

interface Row {
  readonly category: string;
  readonly name: string;
  /** Steps that are not under test (opening the modal); their Slack calls are not counted. */
  readonly prepare?: (h: Harness) => Promise<void>;
  readonly send: (h: Harness) => Promise<SignedResponse>;
  readonly outcome: Outcome;
  /**
   * "none": no AWS request at all (access and form cases). "read-only": only read-only sessions and Describe
   * calls. "create": a legitimate image is made (the outcome asserts exactly how).
   */
  readonly aws?: "none" | "read-only" | "create";
  /** A known bot bug: the row asserts the wanted behaviour and runs as it.fails. */
  readonly expectedBug?: string;
  /** Rows that need their own process (a crash). */
  readonly custom?: (h: Harness) => Promise<void>;
  /**
   * A refused click or form on a job: afterwards every job, every message it owes, every Slack post and
   * every AWS call that changes something must be exactly as before the request.
   */
  readonly changesNothing?: boolean;
}

let viewCounter = 0;
const nextViewId = () => `V0HOSTILE${String(++viewCounter).padStart(3, "0")}`;
const metadataFor = (origin: string) => signedMetadata(origin);
/** What an attacker can write: metadata without the bot's signature. */
const unsignedMetadata = (origin: string) =>
  JSON.stringify({ p: JSON.stringify({ o: origin, n: 0 }), s: "forged" });

/** Opens the modal as `user` in `channel` (a real signed /ami), so the submission carries real metadata. */
async function openModal(h: Harness, user: string, channel: string): Promise<void> {
  const before = h.slack.callsTo("views.open").length;
  const res = await h.command({ user_id: user, channel_id: channel });
  expect(res.status).toBe(200);
  await eventually(() => h.slack.callsTo("views.open").length > before, 5_000, "views.open");
}

const VALID: FormAnswers = { instanceId: GOOD, imageName: "web-1 nightly", reboot: "reboot" };

/**
 * A view_submission. By default ALLOWED_USER opens the modal in CHANNEL first; `open: false` sends a
 * hand-crafted submission for a modal the bot never opened, with `metadata` as its private_metadata.
 */
function submit(
  answers: Partial<FormAnswers>,
  opts: { user?: string; channel?: string; open?: boolean; metadata?: string } = {},
): Pick<Row, "prepare" | "send"> {
  const user = opts.user ?? ALLOWED_USER;
  const channel = opts.channel ?? CHANNEL;
  return {
    // Without `prepare` at all when no modal is opened, so a row's own `prepare` is not overwritten.
    ...(opts.open === false ? {} : { prepare: (h: Harness) => openModal(h, user, channel) }),
    send: (h) => {
      const payload = h.submission({ ...VALID, ...answers }, { userId: user, viewId: nextViewId() }) as {
        view: Record<string, unknown>;
      };
      if (opts.metadata !== undefined) payload.view.private_metadata = opts.metadata;
      return h.interaction(payload);
    },
  };
}

function command(user: string, channel: string, text: string): Pick<Row, "send"> {
  return { send: (h) => h.command({ user_id: user, channel_id: channel, text }) };
}

function suggestion(user: string, metadata: string, value: string, where?: string): Pick<Row, "send"> {
  const values = where
    ? { where: { where_select: { type: "static_select", selected_option: { value: where } } } }
    : {};
  return {
    send: (h) =>
      h.interaction(instanceSearchPayload({ userId: user, value, metadata, viewId: nextViewId(), values })),
  };
}

/** A block_actions payload from the modal: a button or the instance picker. */
function blockAction(
  user: string,
  metadata: string,
  action: Record<string, unknown>,
  answers: FormAnswers = VALID,
): Pick<Row, "send"> {
  return {
    send: (h) => {
      const view = (h.submission(answers, { userId: user, viewId: nextViewId() }) as { view: object }).view;
      return h.interaction({
        type: "block_actions",
        user: { id: user, username: "someone", name: "someone", team_id: "T111" },
        api_app_id: "A111",
        token: "verification_token",
        container: { type: "view", view_id: "V0HOSTILE" },
        trigger_id: "111.222.valid",
        team: { id: "T111", domain: "workspace-domain" },
        view: { ...view, private_metadata: metadata, hash: "h" },
        actions: [{ block_id: "x", action_ts: "1596530385.194939", ...action }],
      });
    },
  };
}

/** A click on "Try again" under a job's reply in CHANNEL, with `value` as the job id it claims. */
function tryAgainClick(user: string, value: string): Pick<Row, "send"> {
  return {
    send: (h) =>
      h.interaction({
        type: "block_actions",
        user: { id: user, username: "someone", name: "someone", team_id: "T111" },
        api_app_id: "A111",
        token: "verification_token",
        container: { type: "message", message_ts: "1700000000.000200", channel_id: CHANNEL },
        trigger_id: "111.222.valid",
        team: { id: "T111", domain: "workspace-domain" },
        channel: { id: CHANNEL, name: "ops" },
        message: { type: "message", ts: "1700000000.000200", thread_ts: "1700000000.000100", text: "…" },
        response_url: "https://hooks.slack.com/actions/T111/1/x",
        actions: [{ block_id: "try_again", action_id: "try_again", type: "button", value, action_ts: "1" }],
      }),
  };
}

const SECRET_JOB = "5ec7e700-0000-4000-8000-000000000001";

/** A refused job of target "secret" (which only U0OTHER001 may use), stored as the bot would have. */
function storeSecretJob(h: Harness): Promise<void> {
  const now = Date.now();
  h.store.insert(
    {
      id: SECRET_JOB,
      idempotencyKey: "V0SECRET01",
      requestedBy: "U0OTHER001",
      originChannelId: CHANNEL,
      targetName: "secret",
      roleArn: "arn:aws:iam::210987654321:role/ami-bot-target",
      region: "eu-west-1",
      instanceId: GOOD,
      instanceName: "vault",
      imageName: "vault nightly",
      description: undefined,
      noReboot: true,
      tags: [],
      excludedDevices: [],
      channelId: CHANNEL,
      requestHash: "x",
    },
    now,
  );
  // In the same tick as the insert, so the watcher never sees it queued (and never calls AWS for it).
  h.store.apply(
    SECRET_JOB,
    { type: "create_refused", reason: "An image named vault nightly already exists." },
    now,
  );
  return Promise.resolve();
}

const checkButton = { action_id: "check_access", block_id: "check", type: "button", value: "check" };

function raw(body: string, headers: Record<string, string> = {}, signed = true): Pick<Row, "send"> {
  return {
    send: async (h) => {
      if (signed) return postSigned(h.url, body, SIGNING_SECRET, { headers });
      const res = await fetch(h.url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
        body,
      });
      const text = await res.text();
      return { status: res.status, body: text, json: () => JSON.parse(text) };
    },
  };
}

const longName = (n: number) => "n".repeat(n);
const manyTags = (n: number) => Array.from({ length: n }, (_, i) => `k${i}=v`).join("\n");

// — Guardrails (a platform team's sign-off): the "lab" target asks before rebooting, allows only some tag keys,
// two jobs per person per hour, guests, and its channel rule in a public channel. "prod" is the default: no reboot.
const LAB_USER = "U0LABUSER1";
const LAB_GUEST = "U0LABGUEST";
const GUEST = "U0GUEST001";
const ULTRA_GUEST = "U0ULTRA001";
const EXTERNAL = "U0EXTERNAL";
const STRANGER_FLAG = "U0STRANGR2";
const UNKNOWN_USER = "U0NOTFOUND";
const PUBLIC_OPS = "C0PUBLICOP";
const PUBLIC_LAB = "C0PUBLICLB";
const UNKNOWN_PRIVACY = "C0PRIVACY0";
const DM = "D0DIRECT01";
const OTHER_DM = "D0OTHERDM1";
const LAB1 = "i-00000000000001ab1";
const LAB2 = "i-00000000000001ab2";
const LAB3 = "i-00000000000001ab3";
const HOSTILE_NAMED = "i-00000000000000e71";
const GUEST_DENIED =
  "ami-bot does not take requests from guest accounts in this workspace. Ask a full member of the team that runs the account to make the image, or ask ami-bot's admins to allow guests on a target.";
const EXTERNAL_DENIED =
  "ami-bot does not take requests from people from other organisations in this workspace. Ask a full member of the team that runs the account to make the image, or ask ami-bot's admins to allow guests on a target.";
const UNKNOWN_DENIED =
  "ami-bot could not confirm your Slack account just now, so it cannot check your access. Try again in a minute.";
const PUBLIC_DENIED =
  "You are not allowed to create images with ami-bot: no target lists you or a user group you are in, and channel rules count only in private channels. " +
  "Ask the people who run ami-bot in your workspace to add you to a target's `allow` rule.";
const LAB_KEYS = "Line 1: the tag key “%” is not allowed in lab. Allowed: team, app:*.";
const labKey = (key: string) => LAB_KEYS.replace("%", key);

/** The parameters of the one CreateImage made. */
function created(h: Harness): Record<string, string> {
  const calls = h.aws.calls("CreateImage");
  expect(calls).toHaveLength(1);
  return { ...(calls[0]?.params ?? {}) };
}

/** The session policy AWS was asked for when the bot called `action` (the AssumeRole before it). */
function policyFor(h: Harness, action: string): string {
  const call = h.aws.calls(action)[0];
  const session = call?.accessKeyId ? h.aws.sessions.get(call.accessKeyId) : undefined;
  expect(session, `a session for ${action}`).toBeDefined();
  const assume = h.aws
    .calls("AssumeRole")
    .find((a) => a.policy && JSON.stringify(a.policy) === JSON.stringify(session?.policy));
  return String(assume?.params.Policy);
}

/** The root message of the only job, once posted, as the JSON Slack received. */
async function rootJson(h: Harness): Promise<string> {
  const root = await eventually(
    () => h.slack.callsTo("chat.postMessage").find((c) => !c.args.thread_ts),
    10_000,
    "the root message",
  );
  return JSON.stringify(root.args);
}

/** Every mrkdwn text object of the root message carries verbatim: true (no auto-linking or mentions). */
async function rootIsVerbatim(h: Harness): Promise<void> {
  const root = await eventually(
    () => h.slack.callsTo("chat.postMessage").find((c) => !c.args.thread_ts),
    10_000,
    "the root message",
  );
  const texts: Record<string, unknown>[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      if (o.type === "mrkdwn") texts.push(o);
      Object.values(o).forEach(walk);
    }
  };
  walk(root.args.blocks);
  expect(texts.length).toBeGreaterThan(0);
  for (const t of texts.filter((x) => String(x.text).includes("`"))) expect(t.verbatim).toBe(true);
}

/** A submission by `user`, from a modal opened in `channel` (signed metadata, no real /ami needed). */
function submitAs(
  user: string,
  channel: string,
  answers: Partial<FormAnswers>,
  viewId?: string,
): Pick<Row, "send"> {
  return {
    send: (h) => {
      const payload = h.submission(
        { ...VALID, ...answers },
        { userId: user, viewId: viewId ?? nextViewId() },
      ) as {
        view: Record<string, unknown>;
      };
      payload.view.private_metadata = metadataFor(channel);
      return h.interaction(payload);
    },
  };
}

/** Submits a valid request and waits until its image is being made, so the instance is busy. */
async function startJob(h: Harness, user: string, answers: Partial<FormAnswers>): Promise<void> {
  const before = h.aws.calls("CreateImage").length;
  const roots = h.slack.callsTo("chat.postMessage").filter((c) => !c.args.thread_ts).length;
  const res = await submitAs(user, CHANNEL, answers).send(h);
  expect(res.body).toBe("");
  await eventually(() => h.aws.calls("CreateImage").length > before, 10_000, "the first CreateImage");
  await eventually(
    () => h.slack.callsTo("chat.postMessage").filter((c) => !c.args.thread_ts).length > roots,
    10_000,
    "its root message",
  );
}

/** The bot's config loaded from `env` with everything else valid: its problems, or [] when it loads. */
function configProblems(env: Record<string, string>): string[] {
  try {
    loadConfig({
      SLACK_BOT_TOKEN: "xoxb-test-token",
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      AMI_TARGET_ROLE_ARN: ROLE_ARN,
      AMI_TARGET_REGIONS: "eu-west-1",
      ...env,
    });
    return [];
  } catch (error) {
    return error instanceof ConfigError ? [...error.problems] : [String(error)];
  }
}

const LAB_VALID: Partial<FormAnswers> = { instanceId: LAB1, imageName: "lab-1 nightly", reboot: undefined };

// biome-ignore format: the table reads best one row per line where it fits
const GUARDRAIL_ROWS: readonly Row[] = [
  // — Reboots are the account owner's decision —
  { category: "reboot", name: "never-target form offers no reboot choice and says why", ...command(ALLOWED_USER, CHANNEL, ""), outcome: { kind: "modal", check: (view) => { const reboot = view.blocks.find((b) => b.block_id === "reboot"); expect(reboot).toMatchObject({ type: "context" }); expect(JSON.stringify(reboot)).toContain("never restarts instances here"); } } },
  { category: "reboot", name: "never-target: forged “reboot” answer still sends NoReboot", ...submit({ reboot: "reboot" }), aws: "create", outcome: { kind: "accepted", check: (h) => { expect(created(h).NoReboot).toBe("true"); } } },
  { category: "reboot", name: "never-target: forged ticked reboot box still sends NoReboot", ...submit({ reboot: undefined, rebootBox: true }), aws: "create", outcome: { kind: "accepted", check: (h) => { expect(created(h).NoReboot).toBe("true"); } } },
  { category: "reboot", name: "ask-target form: reboot box with a confirm naming the instance", ...command(LAB_USER, CHANNEL, LAB1), outcome: { kind: "modal", check: (view) => { const block = view.blocks.find((b) => b.block_id === "reboot") as { element?: Record<string, unknown> }; expect(block?.element).toMatchObject({ type: "checkboxes", confirm: { text: { text: expect.stringMatching(new RegExp(`^${LAB1} will restart`)) } } }); expect(block?.element).not.toHaveProperty("initial_options"); } } },
  { category: "reboot", name: "ask-target: box left unticked sends NoReboot", ...submitAs(LAB_USER, CHANNEL, { ...LAB_VALID, rebootBox: false }), aws: "create", outcome: { kind: "accepted", check: (h) => { expect(created(h).NoReboot).toBe("true"); } } },
  { category: "reboot", name: "ask-target: a forged value other than “reboot” sends NoReboot", ...submitAs(LAB_USER, CHANNEL, { ...LAB_VALID, reboot: "yes" as "reboot" }), aws: "create", outcome: { kind: "accepted", check: (h) => { expect(created(h).NoReboot).toBe("true"); } } },
  { category: "reboot", name: "ask-target: only a ticked box reboots, and the thread says so", ...submitAs(LAB_USER, CHANNEL, { ...LAB_VALID, rebootBox: true }), aws: "create", outcome: { kind: "accepted", check: async (h) => { expect(created(h).NoReboot).toBe("false"); await h.slack.waitFor("chat.postMessage", (c) => /will reboot/.test(String(c.args.text))); } } },

  // — One unfinished job per instance —
  { category: "one job per instance", name: "second request for a busy instance is refused with a link to its thread", prepare: async (h) => { await startJob(h, ALLOWED_USER, {}); await eventually(() => h.slack.callsTo("chat.postMessage").some((c) => !c.args.thread_ts), 10_000, "the first root"); }, ...submit({ imageName: "web-1 again" }, { open: false, metadata: metadataFor(CHANNEL) }), aws: "create", outcome: { kind: "form_errors", errors: { instance: expect.stringMatching(new RegExp(`^${GOOD} already has an image in progress \\(“web-1 nightly”\\): see its thread: https://fake\\.slack\\.com/archives/${CHANNEL}/p\\d+\\. You can ask again once it has finished\\.$`)) } } },
  { category: "one job per instance", name: "busy through another target (same role, same instance)", prepare: (h) => startJob(h, ALLOWED_USER, {}), ...submitAs(LAB_USER, CHANNEL, { instanceId: GOOD, imageName: "lab via prod instance" }), aws: "create", outcome: { kind: "form_errors", errors: { instance: expect.stringContaining(`${GOOD} already has an image in progress`) } } },
  { category: "one job per instance", name: "two submissions racing for one instance make exactly one job", send: async () => ({ status: 0, body: "", json: () => undefined }), outcome: { kind: "nothing" }, custom: async (h) => {
    const [a, b] = await Promise.all([submitAs(ALLOWED_USER, CHANNEL, { imageName: "race a" }).send(h), submitAs(ALLOWED_USER, CHANNEL, { imageName: "race b" }).send(h)]);
    const bodies = [a.body, b.body].sort();
    expect(bodies[0]).toBe("");
    expect(JSON.parse(bodies[1] ?? "{}")).toMatchObject({ response_action: "errors", errors: { instance: expect.stringContaining("already has an image in progress") } });
    await eventually(() => h.aws.calls("CreateImage").length === 1, 10_000, "one CreateImage");
    await settle();
    expect(h.aws.calls("CreateImage")).toHaveLength(1);
    expect(h.store.unfinishedCount()).toBe(1);
  } },
  { category: "one job per instance", name: "allowed again once the running job has ended", send: async () => ({ status: 0, body: "", json: () => undefined }), outcome: { kind: "nothing" }, custom: async (h) => {
    await startJob(h, ALLOWED_USER, {});
    const [image] = [...h.aws.images.keys()];
    h.aws.setImageState(image as string, "available");
    await eventually(() => h.store.unfinishedCount() === 0, 10_000, "the first job to end");
    const res = await submitAs(ALLOWED_USER, CHANNEL, { imageName: "web-1 second" }).send(h);
    expect(res.body).toBe("");
    await eventually(() => h.aws.calls("CreateImage").length === 2, 10_000, "the second CreateImage");
  } },

  // — Rate limits —
  { category: "rate", name: "third job within the hour (lab allows 2) is refused with when the next is possible", prepare: async (h) => { await startJob(h, LAB_USER, { ...LAB_VALID, instanceId: LAB1 }); await startJob(h, LAB_USER, { ...LAB_VALID, instanceId: LAB2, imageName: "lab-2 nightly" }); }, ...submitAs(LAB_USER, CHANNEL, { ...LAB_VALID, instanceId: LAB3, imageName: "lab-3 nightly" }), aws: "create", outcome: { kind: "form_errors", errors: { instance: expect.stringMatching(/^You have started 2 images in this account in the last hour, the most allowed\. You can start the next at \d\d:\d\d UTC \(in (59|60) min\)\.$/) } } },
  { category: "rate", name: "one person's limit does not limit another", prepare: async (h) => { await startJob(h, LAB_USER, { ...LAB_VALID, instanceId: LAB1 }); await startJob(h, LAB_USER, { ...LAB_VALID, instanceId: LAB2, imageName: "lab-2 nightly" }); }, ...submitAs(LAB_GUEST, CHANNEL, { ...LAB_VALID, instanceId: LAB3, imageName: "lab-3 guest" }), aws: "create", outcome: { kind: "accepted", check: async (h) => { await eventually(() => h.aws.calls("CreateImage").length === 3, 10_000, "the other person's CreateImage"); } } },
  { category: "rate", name: "20 picker keystrokes in a burst make one EC2 search, 10 paced ones within 5 s exactly 5", send: async () => ({ status: 0, body: "", json: () => undefined }), outcome: { kind: "nothing" }, custom: async (h) => {
    // On a loaded machine twenty requests may take longer than production's 250 ms pause to arrive: a
    // longer pause keeps them one burst.
    await h.restart({ budgets: { pickerSettleMs: 2_000 } });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => suggestion(ALLOWED_USER, metadataFor(CHANNEL), `web${"-".repeat(i)}`).send(h)));
    expect(answers.every((r) => r.status === 200)).toBe(true);
    expect(h.aws.calls("DescribeInstances")).toHaveLength(1);
    // Keystrokes each answered before the next: the newest every time, so the per-person limit decides. A
    // fresh bot whose clock stands still puts all ten in one 5 s window, however slow the machine.
    await h.restart({ clock: createFixedClock() });
    const paced = [];
    for (let i = 0; i < 10; i++) paced.push(await suggestion(ALLOWED_USER, metadataFor(CHANNEL), `db${i}`).send(h));
    expect(h.aws.calls("DescribeInstances")).toHaveLength(1 + 5);
    expect(paced.filter((r) => r.body.includes("Searching too fast"))).toHaveLength(5);
  } },
  { category: "rate", name: "a picker search repeated at once is answered without AWS", send: async () => ({ status: 0, body: "", json: () => undefined }), outcome: { kind: "nothing" }, custom: async (h) => {
    const first = await suggestion(ALLOWED_USER, metadataFor(CHANNEL), "web").send(h);
    const calls = h.aws.requests.length;
    const again = await suggestion(ALLOWED_USER, metadataFor(CHANNEL), "web").send(h);
    expect(again.body).toBe(first.body);
    expect(h.aws.requests.length).toBe(calls);
  } },
  { category: "rate", name: "one read-only session per person and place, not one AssumeRole per keystroke", send: async () => ({ status: 0, body: "", json: () => undefined }), outcome: { kind: "nothing" }, custom: async (h) => {
    for (const text of ["w", "we", "web"]) await suggestion(ALLOWED_USER, metadataFor(CHANNEL), text).send(h);
    expect(h.aws.calls("DescribeInstances")).toHaveLength(3);
    expect(h.aws.calls("AssumeRole")).toHaveLength(1);
  } },

  // — Tag keys under control (lab allows team and app:*) —
  { category: "tag keys", name: "a key the target does not allow", ...submitAs(LAB_USER, CHANNEL, { ...LAB_VALID, tags: "owner=me" }), outcome: { kind: "form_errors", errors: { tags: labKey("owner") } } },
  { category: "tag keys", name: "an exact key is not a prefix (teams)", ...submitAs(LAB_USER, CHANNEL, { ...LAB_VALID, tags: "teams=web" }), outcome: { kind: "form_errors", errors: { tags: labKey("teams") } } },
  { category: "tag keys", name: "prefixes are case-sensitive (App:tier)", ...submitAs(LAB_USER, CHANNEL, { ...LAB_VALID, tags: "App:tier=web" }), outcome: { kind: "form_errors", errors: { tags: labKey("App:tier") } } },
  { category: "tag keys", name: "a prefix without its colon (application)", ...submitAs(LAB_USER, CHANNEL, { ...LAB_VALID, tags: "application=web" }), outcome: { kind: "form_errors", errors: { tags: labKey("application") } } },
  { category: "tag keys", name: "second line forbidden after an allowed one", ...submitAs(LAB_USER, CHANNEL, { ...LAB_VALID, tags: "team=web\ncost=1" }), outcome: { kind: "form_errors", errors: { tags: "Line 2: the tag key “cost” is not allowed in lab. Allowed: team, app:*." } } },
  { category: "tag keys", name: "ami-bot:* stays reserved even where keys are limited", ...submitAs(LAB_USER, CHANNEL, { ...LAB_VALID, tags: "ami-bot:job-id=x" }), outcome: { kind: "form_errors", errors: { tags: "Line 1: “ami-bot:job-id” is set by ami-bot itself; choose another key." } } },
  { category: "tag keys", name: "allowed keys go through, to AWS and to the session policy", ...submitAs(LAB_USER, CHANNEL, { ...LAB_VALID, tags: "team=web\napp:tier=front" }), aws: "create", outcome: { kind: "accepted", check: (h) => {
    const p = created(h);
    expect(Object.entries(p).filter(([k]) => /^TagSpecification\.1\.Tag\.\d+\.Key$/.test(k)).map(([, v]) => v)).toEqual(expect.arrayContaining(["team", "app:tier", "Name", "ami-bot:job-id"]));
    const policy = policyFor(h, "CreateImage");
    const image = "arn:aws:ec2:eu-west-1::image/ami-00000000000000001";
    expect(sessionPolicyPermits(policy, "ec2:CreateTags", [image], { "ec2:CreateAction": "CreateImage", "aws:TagKeys": ["team", "app:tier", "Name", "ami-bot:job-id"] })).toBe(true);
    // The same session could not have tagged with a key the target does not allow, whatever the bot sent.
    expect(sessionPolicyPermits(policy, "ec2:CreateTags", [image], { "ec2:CreateAction": "CreateImage", "aws:TagKeys": ["team", "owner"] })).toBe(false);
    expect(sessionPolicyPermits(policy, "ec2:CreateImage", [image], { "aws:TagKeys": ["owner"] })).toBe(false);
  } } },
  { category: "tag keys", name: "a target without tagKeys takes any key but the reserved ones", ...submit({ tags: "owner=me" }), aws: "create", outcome: { kind: "accepted", check: (h) => { expect(Object.values(created(h))).toContain("owner"); } } },

  // — The instance scope, enforced by AWS too —
  { category: "instance scope", name: "the CreateImage session requires the scope tag on the instance", ...submit({}), aws: "create", outcome: { kind: "accepted", check: (h) => {
    const policy = policyFor(h, "CreateImage");
    const arn = (id: string) => `arn:aws:ec2:eu-west-1:123456789012:instance/${id}`;
    expect(sessionPolicyPermits(policy, "ec2:CreateImage", [arn(GOOD)], { "aws:ResourceTag/ami-bot:allowed": "true" })).toBe(true);
    expect(sessionPolicyPermits(policy, "ec2:CreateImage", [arn(GOOD)], { "aws:ResourceTag/ami-bot:allowed": "false" })).toBe(false);
    expect(sessionPolicyPermits(policy, "ec2:CreateImage", [arn(GOOD)], {})).toBe(false);
    expect(policy.length).toBeLessThanOrEqual(2048);
  } } },
  { category: "instance scope", name: "the CreateImage session can describe nothing", ...submit({}), aws: "create", outcome: { kind: "accepted", check: (h) => { const policy = policyFor(h, "CreateImage"); for (const a of ["ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeSnapshots"]) expect(sessionPolicyPermits(policy, a, ["*"], { "aws:RequestedRegion": "eu-west-1" })).toBe(false); } } },
  { category: "instance scope", name: "the picker's session may only list instances", ...suggestion(ALLOWED_USER, metadataFor(CHANNEL), ""), aws: "read-only", outcome: { kind: "options", options: [{ text: { type: "plain_text", text: `web-1 (${GOOD}) · running · t3.micro` }, value: GOOD }] } },
  { category: "instance scope", name: "the watcher's session may only read images and snapshots", ...submit({}), aws: "create", outcome: { kind: "accepted", check: async (h) => {
    await eventually(() => h.aws.calls("DescribeImages").length > 0, 10_000, "the watcher's DescribeImages");
    const policy = policyFor(h, "DescribeImages");
    const ctx = { "aws:RequestedRegion": "eu-west-1" };
    expect(sessionPolicyPermits(policy, "ec2:DescribeImages", ["*"], ctx)).toBe(true);
    expect(sessionPolicyPermits(policy, "ec2:DescribeInstances", ["*"], ctx)).toBe(false);
    expect(sessionPolicyPermits(policy, "ec2:CreateImage", [`arn:aws:ec2:eu-west-1:123456789012:instance/${GOOD}`], ctx)).toBe(false);
  } } },

  // — What the channel shows comes from AWS, and user text is shown as text —
  { category: "rendering", name: "forged instance option text: the channel shows the Name tag from AWS", ...submit({ instanceText: `CEO laptop (${GOOD}) · running` }), aws: "create", outcome: { kind: "accepted", check: async (h) => { const root = await rootJson(h); expect(root).toContain("web-1"); expect(root).not.toContain("CEO laptop"); } } },
  { category: "rendering", name: "forged option text with <!here> never reaches Slack", ...submit({ instanceText: `<!here> (${GOOD})` }), aws: "create", outcome: { kind: "accepted", check: async (h) => { await rootJson(h); expect(JSON.stringify(h.slack.calls)).not.toContain("!here"); } } },
  { category: "rendering", name: "image name with @here is shown as code, verbatim", ...submit({ imageName: "@here web-1" }), aws: "create", outcome: { kind: "accepted", check: async (h) => { expect(await rootJson(h)).toContain("`@here web-1`"); await rootIsVerbatim(h); } } },
  { category: "rendering", name: "image name with _italic_ markup is shown as code", ...submit({ imageName: "_web_ 1" }), aws: "create", outcome: { kind: "accepted", check: async (h) => { expect(await rootJson(h)).toContain("`_web_ 1`"); } } },
  { category: "rendering", name: "tag value <!channel> is escaped inside code", ...submit({ tags: "team=<!channel>" }), aws: "create", outcome: { kind: "accepted", check: async (h) => { const root = await rootJson(h); expect(root).toContain("`team=&lt;!channel&gt;`"); expect(root).not.toContain("<!channel>"); await rootIsVerbatim(h); } } },
  { category: "rendering", name: "tag value with backticks cannot close the code span", ...submit({ tags: "cmd=`rm -rf /`" }), aws: "create", outcome: { kind: "accepted", check: async (h) => { const root = await rootJson(h); expect(root).not.toContain("`rm -rf /`"); expect(root).toMatch(/`cmd=[^`]*rm -rf \/[^`]*`/); } } },
  { category: "rendering", name: "tag value with *bold* and ~strike~ stays inside code", ...submit({ tags: "note=*big* ~old~" }), aws: "create", outcome: { kind: "accepted", check: async (h) => { expect(await rootJson(h)).toContain("`note=*big* ~old~`"); } } },
  { category: "rendering", name: "tag value with a bare URL is not linked", ...submit({ tags: "docs=evil.example/login" }), aws: "create", outcome: { kind: "accepted", check: async (h) => { const root = await rootJson(h); expect(root).toContain("`docs=evil.example/login`"); expect(root).not.toContain("<http"); await rootIsVerbatim(h); } } },
  { category: "rendering", name: "tag value with a user mention is not a mention", ...submit({ tags: "owner=<@U0BOSS0001>" }), aws: "create", outcome: { kind: "accepted", check: async (h) => { const root = await rootJson(h); expect(root).toContain("`owner=&lt;@U0BOSS0001&gt;`"); expect(root).not.toContain("<@U0BOSS0001>"); } } },
  { category: "rendering", name: "an instance whose Name tag is hostile is shown as code", prepare: async (h) => { h.aws.addInstance({ instanceId: HOSTILE_NAMED, name: "*pwn* <!here>", tags: { "ami-bot:allowed": "true" } }); }, ...submit({ instanceId: HOSTILE_NAMED, instanceText: `x (${HOSTILE_NAMED})` }, { open: false, metadata: metadataFor(CHANNEL) }), aws: "create", outcome: { kind: "accepted", check: async (h) => { const root = await rootJson(h); expect(root).toContain("`*pwn* &lt;!here&gt;`"); expect(root).not.toContain("<!here>"); await rootIsVerbatim(h); } } },

  // — Who counts as allowed —
  { category: "who", name: "guest (is_restricted): /ami", ...command(GUEST, CHANNEL, ""), outcome: { kind: "ephemeral", text: GUEST_DENIED } },
  { category: "who", name: "single-channel guest (is_ultra_restricted): /ami", ...command(ULTRA_GUEST, CHANNEL, ""), outcome: { kind: "ephemeral", text: GUEST_DENIED } },
  { category: "who", name: "someone from another organisation (Slack Connect): /ami", ...command(EXTERNAL, CHANNEL, ""), outcome: { kind: "ephemeral", text: EXTERNAL_DENIED } },
  { category: "who", name: "a stranger flagged by Slack (is_stranger): /ami", ...command(STRANGER_FLAG, CHANNEL, ""), outcome: { kind: "ephemeral", text: EXTERNAL_DENIED } },
  { category: "who", name: "a user Slack cannot describe: /ami", ...command(UNKNOWN_USER, CHANNEL, ""), outcome: { kind: "ephemeral", text: UNKNOWN_DENIED } },
  { category: "who", name: "guest: instance options", ...suggestion(GUEST, metadataFor(CHANNEL), ""), outcome: { kind: "options", options: NOT_ALLOWED_OPTIONS } },
  { category: "who", name: "guest: hand-crafted submission", ...submit({}, { user: GUEST, open: false, metadata: metadataFor(CHANNEL) }), outcome: { kind: "form_errors", errors: { instance: GUEST_DENIED } } },
  { category: "who", name: "guest listed on a target that allows guests gets the form", ...command(LAB_GUEST, CHANNEL, ""), outcome: { kind: "modal", check: (view) => { expect(JSON.stringify(view.blocks)).toContain("Account and region: *lab (123456789012) · eu-west-1*"); } } },
  { category: "who", name: "channel rule in a public channel grants nothing", ...command(CHANNEL_USER, PUBLIC_OPS, ""), outcome: { kind: "ephemeral", text: PUBLIC_DENIED } },
  { category: "who", name: "channel rule in a channel whose privacy Slack will not say grants nothing", ...command(CHANNEL_USER, UNKNOWN_PRIVACY, ""), outcome: { kind: "ephemeral", text: DENIED } },
  { category: "who", name: "public channel on a target that allows public channels gets the form", ...command(CHANNEL_USER, PUBLIC_LAB, ""), outcome: { kind: "modal", check: (view) => { expect(JSON.stringify(view.blocks)).toContain("lab (123456789012)"); } } },

  // — One bot per database —
  { category: "one bot per database", name: "a second process on the same database exits 2 with one line", send: async () => ({ status: 0, body: "", json: () => undefined }), outcome: { kind: "nothing" }, custom: (h) => secondBotRefused(h) },

  // — Test-only switches stay out of production —
  { category: "test switches", name: "SLACK_API_URL over plain http to another host is refused", send: async () => ({ status: 0, body: "", json: () => undefined }), outcome: { kind: "nothing" }, custom: async () => { expect(configProblems({ SLACK_API_URL: "http://slack.example.com/api/" })).toEqual([expect.stringMatching(/^SLACK_API_URL: must be https:\/\//)]); expect(configProblems({ SLACK_API_URL: "http://127.0.0.1.evil.example/api/" })).toHaveLength(1); expect(configProblems({ SLACK_API_URL: "http://127.0.0.1:9/api/" })).toEqual([]); } },
  { category: "test switches", name: "AMI_BOT_CRASH_AT does nothing outside the test harness", send: async () => ({ status: 0, body: "", json: () => undefined }), outcome: { kind: "nothing" }, custom: async () => {
    const base = { SLACK_BOT_TOKEN: "xoxb-test-token", SLACK_SIGNING_SECRET: SIGNING_SECRET, AMI_TARGET_ROLE_ARN: ROLE_ARN, AMI_TARGET_REGIONS: "eu-west-1", AMI_BOT_CRASH_AT: "job_stored" };
    expect(loadConfig({ ...base, NODE_ENV: "production" }).crashAt).toBeUndefined();
    expect(loadConfig({ ...base, NODE_ENV: undefined }).crashAt).toBeUndefined();
    expect(loadConfig({ ...base, NODE_ENV: "test" }).crashAt).toBe("job_stored");
  } },

  // — Smaller, sharper rules —
  { category: "rules", name: "the same view sent again with other values is refused", prepare: async (h) => { const res = await submitAs(ALLOWED_USER, CHANNEL, {}, "V0REPLAY01").send(h); expect(res.body).toBe(""); await eventually(() => h.slack.callsTo("chat.postMessage").some((c) => !c.args.thread_ts), 10_000, "the first root"); }, ...submitAs(ALLOWED_USER, CHANNEL, { imageName: "swapped" }, "V0REPLAY01"), aws: "create", outcome: { kind: "form_errors", errors: { instance: "This form was already sent with other values, and that request stands. Close the form and type /ami again to ask for another image." } } },
  { category: "rules", name: "the same view sent again unchanged makes no second job", prepare: async (h) => { const res = await submitAs(ALLOWED_USER, CHANNEL, {}, "V0REPLAY02").send(h); expect(res.body).toBe(""); await eventually(() => h.aws.calls("CreateImage").length === 1, 10_000, "CreateImage"); }, ...submitAs(ALLOWED_USER, CHANNEL, {}, "V0REPLAY02"), aws: "create", outcome: { kind: "accepted", check: async (h) => { await settle(); expect(h.aws.calls("CreateImage")).toHaveLength(1); expect(h.store.unfinishedCount()).toBe(1); } } },
  { category: "rules", name: "InvalidAMIName.Malformed is refused once, never retried as our own image", prepare: async (h) => { h.aws.failNext("CreateImage", { code: "InvalidAMIName.Malformed", status: 400 }); }, ...submit({}, { open: false, metadata: metadataFor(CHANNEL) }), aws: "create", outcome: { kind: "thread_refusal", text: ":no_entry: The image was not created. AWS rejected the image name: it must be 3–128 characters, using only letters, digits, spaces and ( ) [ ] . / - ' @ _. Run /ami again with another name.", check: (h) => {
    expect(h.aws.calls("CreateImage")).toHaveLength(1);
    // Not "maybe our own image": no search for an image carrying the job's tag.
    expect(h.aws.calls("DescribeImages").filter((r) => Object.values(r.params).includes("tag:ami-bot:job-id"))).toEqual([]);
  } } },
  { category: "rules", name: "a file target without an ExternalId is refused at start", send: async () => ({ status: 0, body: "", json: () => undefined }), outcome: { kind: "nothing" }, custom: async () => { expect(fileConfigProblems({ externalId: undefined })).toEqual([expect.stringMatching(/^config targets\.0\.externalId: required/)]); } },
  { category: "rules", name: "an ExternalId outside AWS's pattern is refused at start", send: async () => ({ status: 0, body: "", json: () => undefined }), outcome: { kind: "nothing" }, custom: async () => { expect(fileConfigProblems({ externalId: "with spaces and \"quotes\"" })).toEqual([expect.stringMatching(/^config targets\.0\.externalId: /)]); } },
  { category: "rules", name: "/ami in a direct message asks for a channel", ...command(ALLOWED_USER, DM, ""), outcome: { kind: "modal", check: (view) => { const channel = view.blocks.find((b) => b.block_id === "channel") as { element?: Record<string, unknown>; hint?: { text?: string } }; expect(channel?.element).not.toHaveProperty("initial_conversation"); expect(channel?.element).not.toHaveProperty("default_to_current_conversation"); expect(channel?.hint?.text).toBe("Choose a channel for the updates: ami-bot posts them in channels, not in direct messages."); } } },
  { category: "rules", name: "a form opened in a DM cannot send the updates to another DM", ...submitAs(ALLOWED_USER, DM, { channel: OTHER_DM }), outcome: { kind: "form_errors", errors: { channel: "Choose a channel for the updates: ami-bot can post only in channels, or in the direct message you typed /ami in." } } },
  { category: "rules", name: "a form opened in a DM may keep the updates in that DM", ...submitAs(ALLOWED_USER, DM, { channel: DM }), aws: "create", outcome: { kind: "accepted", check: async (h) => { await h.slack.waitFor("chat.postMessage", (c) => c.args.channel === DM && !c.args.thread_ts); } } },
  { category: "rules", name: "the picker pages through AWS until it has a page of matches", send: async () => ({ status: 0, body: "", json: () => undefined }), outcome: { kind: "nothing" }, custom: async (h) => {
    for (let i = 0; i < 120; i++) h.aws.addInstance({ instanceId: `i-${(0x5000 + i).toString(16).padStart(17, "0")}`, name: `filler-${i}`, tags: { "ami-bot:allowed": "true" } });
    h.aws.addInstance({ instanceId: "i-0000000000000fa12", name: "far-away", tags: { "ami-bot:allowed": "true" } });
    const res = await suggestion(ALLOWED_USER, metadataFor(CHANNEL), "far").send(h);
    expect(JSON.stringify(res.json())).toContain("i-0000000000000fa12");
  } },
];

// biome-ignore format: the table reads best one row per line where it fits
const BASE_ROWS: readonly Row[] = [
  // — Image names —
  { category: "name", name: "too short", ...submit({ imageName: "ab" }), outcome: { kind: "form_errors", errors: { image_name: "The name needs at least 3 characters." } } },
  { category: "name", name: "too long (129)", ...submit({ imageName: longName(129) }), outcome: { kind: "form_errors", errors: { image_name: "The name is 129 characters; the limit is 128." } } },
  { category: "name", name: "forbidden character #", ...submit({ imageName: "web#1" }), outcome: { kind: "form_errors", errors: { image_name: `AWS does not allow “#” in an image name. ${NAME_CHARS}` } } },
  { category: "name", name: "markup < >", ...submit({ imageName: "a<b>c" }), outcome: { kind: "form_errors", errors: { image_name: `AWS does not allow “<”, “>” in an image name. ${NAME_CHARS}` } } },
  { category: "name", name: "shell substitution $(…)", ...submit({ imageName: "$(reboot)" }), outcome: { kind: "form_errors", errors: { image_name: `AWS does not allow “$” in an image name. ${NAME_CHARS}` } } },
  { category: "name", name: "command separator ;", ...submit({ imageName: "web;rm -rf" }), outcome: { kind: "form_errors", errors: { image_name: `AWS does not allow “;” in an image name. ${NAME_CHARS}` } } },
  { category: "name", name: "Cyrillic look-alike е", ...submit({ imageName: "w\u0435b-1" }), outcome: { kind: "form_errors", errors: { image_name: `AWS does not allow “\u0435” in an image name. ${NAME_CHARS}` } } },
  { category: "name", name: "fullwidth look-alike ｗ", ...submit({ imageName: "\uff57eb-1" }), outcome: { kind: "form_errors", errors: { image_name: `AWS does not allow “\uff57” in an image name. ${NAME_CHARS}` } } },
  // Invisible characters are named by code point, so the person can see what to remove.
  { category: "name", name: "zero-width space", ...submit({ imageName: "web\u200b1" }), outcome: { kind: "form_errors", errors: { image_name: `AWS does not allow U+200B in an image name. ${NAME_CHARS}` } } },
  { category: "name", name: "combining accent", ...submit({ imageName: "cafe\u0301" }), outcome: { kind: "form_errors", errors: { image_name: `AWS does not allow U+0301 in an image name. ${NAME_CHARS}` } } },
  { category: "name", name: "control character BEL", ...submit({ imageName: "web\u00071" }), outcome: { kind: "form_errors", errors: { image_name: `AWS does not allow U+0007 in an image name. ${NAME_CHARS}` } } },
  { category: "name", name: "NUL", ...submit({ imageName: "web\u00001" }), outcome: { kind: "form_errors", errors: { image_name: `AWS does not allow U+0000 in an image name. ${NAME_CHARS}` } } },
  { category: "name", name: "newline", ...submit({ imageName: "web\n1" }), outcome: { kind: "form_errors", errors: { image_name: `AWS does not allow U+000A in an image name. ${NAME_CHARS}` } } },
  { category: "name", name: "tab", ...submit({ imageName: "web\t1" }), outcome: { kind: "form_errors", errors: { image_name: `AWS does not allow U+0009 in an image name. ${NAME_CHARS}` } } },
  { category: "name", name: "no-break space", ...submit({ imageName: "web\u00a01" }), outcome: { kind: "form_errors", errors: { image_name: `AWS does not allow U+00A0 in an image name. ${NAME_CHARS}` } } },
  { category: "name", name: "bidi override U+202E", ...submit({ imageName: "web\u202e1gpj" }), outcome: { kind: "form_errors", errors: { image_name: `AWS does not allow U+202E in an image name. ${NAME_CHARS}` } } },
  { category: "name", name: "leading space", ...submit({ imageName: " web-1" }), outcome: { kind: "form_errors", errors: { image_name: "Remove the spaces at the start or end of the name." } } },
  { category: "name", name: "trailing space", ...submit({ imageName: "web-1 " }), outcome: { kind: "form_errors", errors: { image_name: "Remove the spaces at the start or end of the name." } } },
  { category: "name", name: "only spaces", ...submit({ imageName: "   " }), outcome: { kind: "form_errors", errors: { image_name: "Remove the spaces at the start or end of the name." } } },

  // — Descriptions —
  { category: "description", name: "too long (256)", ...submit({ description: "d".repeat(256) }), outcome: { kind: "form_errors", errors: { description: "The description is 256 characters; the limit is 255." } } },
  { category: "description", name: "control character BEL", ...submit({ description: "before\u0007upgrade" }), outcome: { kind: "form_errors", errors: { description: "The description contains control characters; remove them." } } },
  { category: "description", name: "NUL", ...submit({ description: "before\u0000upgrade" }), outcome: { kind: "form_errors", errors: { description: "The description contains control characters; remove them." } } },
  { category: "description", name: "DEL", ...submit({ description: "before\u007fupgrade" }), outcome: { kind: "form_errors", errors: { description: "The description contains control characters; remove them." } } },
  { category: "description", name: "bidi isolate U+2066", ...submit({ description: "safe \u2066evil\u2069" }), outcome: { kind: "form_errors", errors: { description: "The description contains control characters; remove them." } } },

  // — Tags —
  { category: "tags", name: "too many (47)", ...submit({ tags: manyTags(47) }), outcome: { kind: "form_errors", errors: { tags: "47 tags is too many: AWS allows 50 and ami-bot adds 4, so at most 46." } } },
  { category: "tags", name: "key too long (129)", ...submit({ tags: `${"k".repeat(129)}=v` }), outcome: { kind: "form_errors", errors: { tags: "Line 1: the key is 129 characters; the limit is 128." } } },
  { category: "tags", name: "value too long (257)", ...submit({ tags: `k=${"v".repeat(257)}` }), outcome: { kind: "form_errors", errors: { tags: "Line 1: the value is 257 characters; the limit is 256." } } },
  { category: "tags", name: "aws: prefix", ...submit({ tags: "aws:owner=me" }), outcome: { kind: "form_errors", errors: { tags: "Line 1: keys starting with “aws:” are reserved by AWS." } } },
  { category: "tags", name: "AWS: prefix in capitals", ...submit({ tags: "team=web\nAWS:cloudformation:stack-name=x" }), outcome: { kind: "form_errors", errors: { tags: "Line 2: keys starting with “aws:” are reserved by AWS." } } },
  { category: "tags", name: "duplicate key", ...submit({ tags: "team=web\nteam=db" }), outcome: { kind: "form_errors", errors: { tags: "Line 2: the key “team” is given twice." } } },
  { category: "tags", name: "duplicate key after a blank line", ...submit({ tags: "a=1\n\nb=2\na=3" }), outcome: { kind: "form_errors", errors: { tags: "Line 4: the key “a” is given twice." } } },
  { category: "tags", name: "no =", ...submit({ tags: "teamweb" }), outcome: { kind: "form_errors", errors: { tags: "Line 1: write each tag as key=value." } } },
  { category: "tags", name: "empty key", ...submit({ tags: "=web" }), outcome: { kind: "form_errors", errors: { tags: "Line 1: the tag key is empty." } } },
  { category: "tags", name: "spoofs ami-bot:requested-by", ...submit({ tags: "ami-bot:requested-by=U0BOSS0001" }), outcome: { kind: "form_errors", errors: { tags: "Line 1: “ami-bot:requested-by” is set by ami-bot itself; choose another key." } } },
  { category: "tags", name: "spoofs ami-bot:job-id", ...submit({ tags: "ami-bot:job-id=00000000-0000-0000-0000-000000000000" }), outcome: { kind: "form_errors", errors: { tags: "Line 1: “ami-bot:job-id” is set by ami-bot itself; choose another key." } } },
  { category: "tags", name: "overrides Name", ...submit({ tags: "Name=prod-golden" }), outcome: { kind: "form_errors", errors: { tags: "Line 1: “Name” is set by ami-bot itself; choose another key." } } },
  { category: "tags", name: "control character in a value", ...submit({ tags: "team=we\u0007b" }), outcome: { kind: "form_errors", errors: { tags: "Line 1: remove the control characters." } } },

  // — Instance ids: refused in the form —
  { category: "instance", name: "malformed i-xyz", ...submit({ instanceId: "i-xyz" }), outcome: { kind: "form_errors", errors: { instance: "That is not an EC2 instance id (i-…)." } } },
  { category: "instance", name: "an AMI id instead", ...submit({ instanceId: "ami-0123456789abcdef0" }), outcome: { kind: "form_errors", errors: { instance: "That is not an EC2 instance id (i-…)." } } },
  { category: "instance", name: "upper-case hex", ...submit({ instanceId: "i-0123456789ABCDEF0" }), outcome: { kind: "form_errors", errors: { instance: "That is not an EC2 instance id (i-…)." } } },
  { category: "instance", name: "wildcard i-*", ...submit({ instanceId: "i-*" }), outcome: { kind: "form_errors", errors: { instance: "That is not an EC2 instance id (i-…)." } } },
  { category: "instance", name: "two ids in one", ...submit({ instanceId: `${GOOD},i-0fedcba9876543210` }), outcome: { kind: "form_errors", errors: { instance: "That is not an EC2 instance id (i-…)." } } },
  { category: "instance", name: "the picker's ⚠ error option", ...submit({ instanceId: "error" }), outcome: { kind: "form_errors", errors: { instance: "That is not an EC2 instance id (i-…)." } } },
  { category: "instance", name: "none chosen", ...submit({ instanceId: undefined }), outcome: { kind: "form_errors", errors: { instance: "Choose an instance." } } },
  // — Instance ids: checked with AWS under a read-only scoped session while the form is still open —
  { category: "instance", name: "another account's instance", ...submit({ instanceId: OTHER_ACCOUNT }), aws: "read-only", outcome: { kind: "form_errors", errors: { instance: NOT_FOUND(OTHER_ACCOUNT) } } },
  { category: "instance", name: "an instance in another region", ...submit({ instanceId: OTHER_REGION }), aws: "read-only", outcome: { kind: "form_errors", errors: { instance: NOT_FOUND(OTHER_REGION) } } },
  { category: "instance", name: "outside the scope (no opt-in tag)", ...submit({ instanceId: NO_TAG }), aws: "read-only", outcome: { kind: "form_errors", errors: { instance: OUT_OF_SCOPE(NO_TAG) } } },
  { category: "instance", name: "outside the scope (opt-in tag false)", ...submit({ instanceId: WRONG_TAG }), aws: "read-only", outcome: { kind: "form_errors", errors: { instance: OUT_OF_SCOPE(WRONG_TAG) } } },
  { category: "instance", name: "terminated", ...submit({ instanceId: TERMINATED }), aws: "read-only", outcome: { kind: "form_errors", errors: { instance: `Instance ${TERMINATED} is terminated: AWS can image only running or stopped instances.` } } },
  // — The picker never offers what cannot be imaged —
  { category: "instance", name: "picker lists only opted-in, live instances", ...suggestion(ALLOWED_USER, metadataFor(CHANNEL), ""), aws: "read-only", outcome: { kind: "options", options: [{ text: { type: "plain_text", text: `web-1 (${GOOD}) · running · t3.micro` }, value: GOOD }] } },
  { category: "instance", name: "picker search for an out-of-scope id", ...suggestion(ALLOWED_USER, metadataFor(CHANNEL), NO_TAG), aws: "read-only", outcome: { kind: "options", options: [] } },
  { category: "instance", name: "picked option with a forged value", ...blockAction(ALLOWED_USER, metadataFor(CHANNEL), { action_id: "instance_select", block_id: "instance", type: "external_select", selected_option: { value: "i-0123;rm -rf /", text: { type: "plain_text", text: "x" } } }), outcome: { kind: "nothing" } },

  // — Target, region, channel not allowed —
  { category: "access", name: "a target that allows someone else", ...submit({ where: "secret|eu-west-1" }), outcome: { kind: "form_errors", errors: { where: NOT_PLACE } } },
  { category: "access", name: "an unknown target", ...submit({ where: "staging|eu-west-1" }), outcome: { kind: "form_errors", errors: { where: NOT_PLACE } } },
  { category: "access", name: "a region the target does not list", ...submit({ where: "prod|us-east-1" }), outcome: { kind: "form_errors", errors: { where: NOT_PLACE } } },
  { category: "access", name: "a place without a region", ...submit({ where: "prod" }), outcome: { kind: "form_errors", errors: { where: "Choose an account and region." } } },
  { category: "access", name: "stranger: /ami", ...command(STRANGER, CHANNEL, ""), outcome: { kind: "ephemeral", text: DENIED } },
  { category: "access", name: "stranger: /ami check", ...command(STRANGER, CHANNEL, `check ${GOOD}`), outcome: { kind: "ephemeral", text: DENIED } },
  { category: "access", name: "channel-only user in another channel: /ami", ...command(CHANNEL_USER, ELSEWHERE, ""), outcome: { kind: "ephemeral", text: DENIED } },
  { category: "access", name: "stranger: instance options", ...suggestion(STRANGER, metadataFor(CHANNEL), ""), outcome: { kind: "options", options: NOT_ALLOWED_OPTIONS } },
  { category: "access", name: "stranger: options for a forged place", ...suggestion(STRANGER, metadataFor(CHANNEL), "", "prod|eu-west-1"), outcome: { kind: "options", options: NOT_ALLOWED_OPTIONS } },
  { category: "access", name: "allowed user: options for another target", ...suggestion(ALLOWED_USER, metadataFor(CHANNEL), "", "secret|eu-west-1"), outcome: { kind: "options", options: NOT_ALLOWED_OPTIONS } },
  { category: "access", name: "stranger: Check access button", ...blockAction(STRANGER, metadataFor(CHANNEL), checkButton), outcome: { kind: "modal_note", text: `:no_entry: ${DENIED}` } },
  { category: "access", name: "stranger: instance picked", ...blockAction(STRANGER, metadataFor(CHANNEL), { action_id: "instance_select", block_id: "instance", type: "external_select", selected_option: { value: GOOD, text: { type: "plain_text", text: "web-1" } } }, { instanceId: GOOD, reboot: "reboot" }), outcome: { kind: "nothing" } },
  // A denied person's hand-crafted submission: refused with the words that say what they lack and whom to ask.
  { category: "access", name: "stranger: hand-crafted submission", ...submit({}, { user: STRANGER, open: false, metadata: metadataFor(CHANNEL) }), outcome: { kind: "form_errors", errors: { instance: DENIED } } },
  { category: "access", name: "stranger: hand-crafted submission naming the place", ...submit({ where: "prod|eu-west-1" }, { user: STRANGER, open: false, metadata: metadataFor(CHANNEL) }), outcome: { kind: "form_errors", errors: { where: NOT_PLACE } } },
  { category: "access", name: "updates channel is not a channel id", ...submit({ channel: "general" }), outcome: { kind: "form_errors", errors: { channel: "Choose a channel for the updates." } } },
  { category: "access", name: "updates channel is a user id", ...submit({ channel: ALLOWED_USER }), outcome: { kind: "form_errors", errors: { channel: "Choose a channel for the updates." } } },
  {
    category: "access", name: "channel-only user sends the updates to an unlisted channel", ...submit({ channel: ELSEWHERE }, { user: CHANNEL_USER, channel: OPS_CHANNEL }),
    outcome: { kind: "form_errors", errors: { channel: "You may use ami-bot here because of this channel's rule, so the updates must stay in a channel that rule lists. Choose one of those." } },
  },

  // — private_metadata —
  { category: "metadata", name: "oversized (3001 chars) drops a channel-only user's access", ...submit({ channel: OPS_CHANNEL }, { user: CHANNEL_USER, channel: OPS_CHANNEL, metadata: JSON.stringify({ o: OPS_CHANNEL, n: 0, a: "x".repeat(2980) }) }), outcome: { kind: "form_errors", errors: { instance: DENIED } } },
  { category: "metadata", name: "not JSON", ...submit({ channel: OPS_CHANNEL }, { user: CHANNEL_USER, channel: OPS_CHANNEL, metadata: "{{{" }), outcome: { kind: "form_errors", errors: { instance: DENIED } } },
  { category: "metadata", name: "origin that is not a channel id", ...submit({ channel: OPS_CHANNEL }, { user: CHANNEL_USER, channel: OPS_CHANNEL, metadata: JSON.stringify({ o: `${OPS_CHANNEL}"}`, n: 0 }) }), outcome: { kind: "form_errors", errors: { instance: DENIED } } },
  { category: "metadata", name: "tampered metadata on the options load", ...suggestion(CHANNEL_USER, "x".repeat(3001), ""), outcome: { kind: "options", options: NOT_ALLOWED_OPTIONS } },
  { category: "metadata", name: "tampered metadata on the Check access button", ...blockAction(CHANNEL_USER, "not json", checkButton), outcome: { kind: "nothing" } },
  {
    category: "metadata", name: "forged origin grants a channel rule to a modal never opened", ...submit({ channel: OPS_CHANNEL }, { user: CHANNEL_USER, open: false, metadata: unsignedMetadata(OPS_CHANNEL) }),
    outcome: { kind: "form_errors", errors: { instance: DENIED } },
  },

  // — Unknown callback and action ids: no listener, Bolt answers 404 after its 3 s ack timeout —
  { category: "unknown id", name: "view_submission with another callback_id", send: (h) => { const p = h.submission(VALID, { viewId: nextViewId() }); return h.interaction({ ...p, view: { ...(p.view as object), callback_id: "ami_create_v2" } }); }, outcome: { kind: "http", status: 404 } },
  { category: "unknown id", name: "view_closed", send: (h) => h.interaction({ type: "view_closed", user: { id: ALLOWED_USER }, view: { id: nextViewId(), callback_id: "ami_create" }, is_cleared: false }), outcome: { kind: "http", status: 404 } },
  { category: "try again", name: "Try again with a forged job id", ...tryAgainClick(ALLOWED_USER, "00000000-0000-4000-8000-00000000f0f0"), outcome: { kind: "ephemeral_message", user: ALLOWED_USER, text: UNKNOWN_JOB } },
  { category: "try again", name: "Try again on a job of a target the clicker may not use", prepare: storeSecretJob, ...tryAgainClick(ALLOWED_USER, SECRET_JOB), outcome: { kind: "ephemeral_message", user: ALLOWED_USER, text: DENIED } },
  { category: "try again", name: "Try again with a tampered value (x;y)", ...tryAgainClick(ALLOWED_USER, "x;y"), outcome: { kind: "ephemeral_message", user: ALLOWED_USER, text: UNKNOWN_JOB } },
  { category: "unknown id", name: "button with an unknown action_id", ...blockAction(ALLOWED_USER, metadataFor(CHANNEL), { action_id: "approve_all", type: "button", value: "1" }), outcome: { kind: "http", status: 404 } },
  { category: "unknown id", name: "options load for an unknown action_id", send: (h) => h.interaction({ ...suggestionFixture, user: { id: ALLOWED_USER }, action_id: "where_select", view: { ...suggestionFixture.view, private_metadata: metadataFor(CHANNEL) } }), outcome: { kind: "http", status: 404 } },
  { category: "unknown id", name: "global shortcut", send: (h) => h.interaction({ type: "shortcut", callback_id: "ami_shortcut", trigger_id: "1.2.3", user: { id: ALLOWED_USER }, team: { id: "T111" } }), outcome: { kind: "http", status: 404 } },
  { category: "unknown id", name: "another slash command", send: (h) => postSigned(h.url, slashCommandBody({ user_id: ALLOWED_USER, channel_id: CHANNEL }).replace("command=%2Fami", "command=%2Fami-admin"), SIGNING_SECRET), outcome: { kind: "http", status: 404 } },

  // — Malformed bodies —
  { category: "malformed", name: "payload is not JSON", ...raw("payload=%7Bnot-json"), outcome: { kind: "http", status: 400 } },
  { category: "malformed", name: "payload with trailing garbage", ...raw(`payload=${encodeURIComponent('{"type":"view_submission"}}')}`), outcome: { kind: "http", status: 400 } },
  { category: "malformed", name: "JSON body cut short", ...raw('{"type":"block_actions"', { "content-type": "application/json" }), outcome: { kind: "http", status: 400 } },
  { category: "malformed", name: "payload is an array", ...raw("payload=%5B%5D"), outcome: { kind: "http", status: 404 } },
  {
    // Bolt 5.1's HTTPReceiver fails on it outside its own error handling and never answers; the bot must
    // survive that (it logs the rejection) and keep serving.
    category: "malformed", name: "payload is null (valid JSON, not an object)", send: async () => ({ status: 0, body: "", json: () => undefined }), outcome: { kind: "nothing" },
    custom: (h) => nullPayloadKeepsBotAlive(h),
  },

  // — Oversized —
  { category: "oversized", name: "signed body over 1 MiB", ...raw(`payload=${"a".repeat(1024 * 1024 + 1)}`), outcome: { kind: "http", status: 413 } },
  { category: "oversized", name: "unsigned body over 1 MiB (size checked before anything else)", ...raw(`payload=${"a".repeat(1024 * 1024 + 1)}`, {}, false), outcome: { kind: "http", status: 413 } },
  { category: "oversized", name: "40 000 tags inside the limit", ...submit({ tags: manyTags(40_000) }), outcome: { kind: "form_errors", errors: { tags: "40000 tags is too many: AWS allows 50 and ami-bot adds 4, so at most 46." } } },
  { category: "oversized", name: "100 000-character description", ...submit({ description: "d".repeat(100_000) }), outcome: { kind: "form_errors", errors: { description: "The description is 100000 characters; the limit is 255." } } },
  { category: "oversized", name: "10 000-character name", ...submit({ imageName: longName(10_000) }), outcome: { kind: "form_errors", errors: { image_name: "The name is 10000 characters; the limit is 128." } } },
  { category: "oversized", name: "5 000-character /ami text is cut to 80 in the answer", ...command(ALLOWED_USER, CHANNEL, "x".repeat(5000)), outcome: { kind: "ephemeral", text: `“${"x".repeat(80)}” is not an instance id (i-…). Type \`/ami\` to open the form, or \`/ami help\`.` } },
  { category: "oversized", name: "/ami text with shell characters", ...command(ALLOWED_USER, CHANNEL, "i-0123;rm"), outcome: { kind: "ephemeral", text: "“i-0123;rm” is not an instance id (i-…). Type `/ami` to open the form, or `/ami help`." } },
];

// — Approvals and cancel: target "gated" (same account as prod) waits for an approver before anything is made.
// GATE_USER asks (and is listed as an approver too: the two-person rule must still hold); GATE_OTHER may use
// gated but approves nothing; APPROVER and APPROVER2 may use it and approve; NO_ACCESS_APPROVER is listed
// as an approver but in no allow rule, so may decide nothing.
const GATE_USER = "U0GATEUSR1";
const GATE_OTHER = "U0GATEUSR2";
const APPROVER = "U0APPROVR1";
const APPROVER2 = "U0APPROVR2";
const NO_ACCESS_APPROVER = "U0APPRNOAC";
const GATE_INSTANCE = "i-00000000000009a71";
/** Waiting for approval, asked by GATE_USER; every tampered value below is built from its id. */
const GATE_JOB = "9a7e0000-0000-4000-8000-000000000001";
/** Waiting for approval in gated too, asked by GATE_OTHER (who is no approver, so may cancel only this one). */
const OTHER_GATE_JOB = "9a7e0000-0000-4000-8000-000000000002";
/** Waiting for approval in "secret", whose approvers none of the people here are. */
const SECRET_AWAITING = "5ec7e700-0000-4000-8000-000000000002";
/** A prod job whose image is being made (pending), asked by ALLOWED_USER. */
const RUNNING_JOB = "7a11e000-0000-4000-8000-000000000001";
/** A gated job that has ended; its old buttons are clicked. */
const DONE_JOB = "d07e0000-0000-4000-8000-000000000001";
const DONE_IMAGE = "ami-0d07e0000000000a1";
/** When DONE_JOB was decided and ended: a fixed time, so the answers' clock times are known. */
const DONE_AT = Date.UTC(2025, 5, 2, 9, 30);
const NOT_A_JOB = "00000000-0000-4000-8000-00000000dead";

const ONLY_APPROVERS = (target: string, action: string) =>
  `Only the approvers of target ${target} can ${action} this request, and you are not one of them now. Nothing was changed.`;
const ONLY_REQUESTER_OR_APPROVER =
  "Only the person who asked for this image, or one of its approvers, can cancel it. Nothing was changed.";
const NO_ACCESS_NOW = (action: string) =>
  `You are an approver of target gated, but you may not use it from here now, so you cannot ${action} this request. ${DENIED}`;

/** The bot's own signer, as for the create form's metadata: what only the bot can write. */
const botCodec = createBotMetadataCodec({
  slack: {
    botToken: "xoxb-test-token",
    signingSecret: SIGNING_SECRET,
    appToken: undefined,
    apiUrl: undefined,
  },
});

/** Stores a job as the bot would on a submission: waiting for approval by default, in target gated. */
function storeJob(
  h: Harness,
  job: {
    id: string;
    target?: "gated" | "secret" | "prod";
    requestedBy?: string;
    instanceId?: string;
    imageName?: string;
    awaiting?: boolean;
    at?: number;
  },
): void {
  const at = job.at ?? Date.now();
  const target = job.target ?? "gated";
  h.store.insert(
    {
      id: job.id,
      idempotencyKey: `V0${job.id}`,
      requestedBy: job.requestedBy ?? GATE_USER,
      originChannelId: CHANNEL,
      targetName: target,
      roleArn: target === "secret" ? "arn:aws:iam::210987654321:role/ami-bot-target" : ROLE_ARN,
      region: "eu-west-1",
      instanceId: job.instanceId ?? GATE_INSTANCE,
      instanceName: "gate-1",
      imageName: job.imageName ?? "gate nightly",
      description: undefined,
      noReboot: true,
      tags: [],
      excludedDevices: [],
      channelId: CHANNEL,
      requestHash: "x",
      ...((job.awaiting ?? true) ? { approvalExpiresAt: at + 30 * 60_000 } : {}),
    },
    at,
  );
}

/** Until every message the jobs owe Slack has gone out, so a row's request is all that happens next. */
async function settled(h: Harness): Promise<void> {
  await eventually(
    () => h.store.pendingOutbox(Number.MAX_SAFE_INTEGER, 1).length === 0,
    10_000,
    "the jobs' messages",
  );
}

/** GATE_JOB waiting for approval, with its root message and approval request posted. */
async function awaitingJob(h: Harness): Promise<void> {
  storeJob(h, { id: GATE_JOB });
  await settled(h);
}

/** Jobs of other people and other targets beside GATE_JOB, all waiting for approval. */
async function awaitingJobs(h: Harness): Promise<void> {
  storeJob(h, { id: GATE_JOB });
  storeJob(h, { id: OTHER_GATE_JOB, requestedBy: GATE_OTHER, instanceId: "i-00000000000009a72" });
  storeJob(h, { id: SECRET_AWAITING, target: "secret", requestedBy: "U0OTHER001", instanceId: GOOD });
  await settled(h);
}

/** RUNNING_JOB: its image is being made, so a Cancel would deregister it. */
async function runningJob(h: Harness): Promise<void> {
  storeJob(h, {
    id: RUNNING_JOB,
    target: "prod",
    requestedBy: ALLOWED_USER,
    instanceId: GOOD,
    imageName: "web-1 running",
    awaiting: false,
  });
  await eventually(() => h.store.get(RUNNING_JOB)?.state === "pending", 10_000, "the image being made");
  await settled(h);
}

/** DONE_JOB ended in `state` at DONE_AT, as the bot would have ended it, in the same tick as it is stored. */
function finishedJob(state: "available" | "denied" | "expired" | "cancelled"): (h: Harness) => Promise<void> {
  return async (h) => {
    const store = h.store;
    storeJob(h, { id: DONE_JOB, imageName: "gate done", at: DONE_AT - 60_000 });
    if (state === "available") {
      store.apply(DONE_JOB, { type: "approved", by: APPROVER }, DONE_AT);
      store.apply(DONE_JOB, { type: "image_created", imageId: DONE_IMAGE }, DONE_AT);
      store.apply(DONE_JOB, { type: "image_state", state: "available" }, DONE_AT);
    } else if (state === "denied")
      store.apply(DONE_JOB, { type: "denied", by: APPROVER, reason: "freeze" }, DONE_AT);
    else if (state === "expired") store.apply(DONE_JOB, { type: "approval_expired" }, DONE_AT);
    else store.apply(DONE_JOB, { type: "cancel_requested", by: GATE_USER }, DONE_AT);
    expect(store.get(DONE_JOB)?.state).toBe(state);
    await settled(h);
  };
}

/** A click on Approve, Deny, Cancel (under a root message in CHANNEL) or Try again, claiming `value`. */
function jobClick(
  user: string,
  action: "job_approve" | "job_deny" | "job_cancel" | "try_again",
  value: unknown,
): Pick<Row, "send"> {
  return {
    send: (h) =>
      h.interaction(
        messageButtonPayload({
          userId: user,
          channel: CHANNEL,
          messageTs: "1700000000.000100",
          ...(action === "try_again" ? { threadTs: "1700000000.000100", blockId: "try_again" } : {}),
          action: { action_id: action, value, text: { type: "plain_text", text: "…" } },
        }),
      ),
  };
}

/** Clicks Deny as `user` and waits for the deny form to open (its signed metadata is then in views.open). */
async function openDenyForm(h: Harness, user: string, jobId: string): Promise<void> {
  const before = h.slack.callsTo("views.open").length;
  await jobClick(user, "job_deny", jobId).send(h);
  await eventually(() => h.slack.callsTo("views.open").length > before, 5_000, "the deny form");
}

/** The private_metadata of the deny form the bot opened last. */
function denyFormMetadata(h: Harness): string {
  const view = h.slack.callsTo("views.open").at(-1)?.args.view as {
    callback_id?: string;
    private_metadata?: string;
  };
  expect(view.callback_id).toBe("ami_deny");
  return String(view.private_metadata);
}

/** The deny form sent back by `user`, with `metadata` (from the bot's real form, or forged) and a reason. */
function denyForm(
  user: string,
  metadata: (h: Harness) => string,
  reason: string | null = "no",
): Pick<Row, "send"> {
  return {
    send: (h) => h.interaction(denySubmissionPayload({ userId: user, privateMetadata: metadata(h), reason })),
  };
}

/** The deny form's real metadata with its signed payload edited: the signature no longer matches. */
function altered(edit: (v: [string, string]) => [string, string]): (h: Harness) => string {
  return (h) => {
    const outer = JSON.parse(denyFormMetadata(h)) as { p: string; s: string };
    const payload = JSON.parse(outer.p) as { k: string; v: string };
    const value = edit(JSON.parse(payload.v) as [string, string]);
    return JSON.stringify({ ...outer, p: JSON.stringify({ ...payload, v: JSON.stringify(value) }) });
  };
}

const denyRefused = (text: unknown): Outcome => ({ kind: "form_errors", errors: { deny_reason: text } });
const toldPrivately = (user: string, text: string): Outcome => ({ kind: "ephemeral_message", user, text });

/** Values a forged click may carry instead of a job id; all name GATE_JOB somehow, and none may reach it. */
const TAMPERED: readonly (readonly [string, unknown])[] = [
  ["empty", ""],
  ["10 000 characters (the id, then spaces)", GATE_JOB.padEnd(10_000, " ")],
  ["SQL", "'; DROP TABLE jobs; --"],
  ["SQL naming the job", `${GATE_JOB}' OR '1'='1`],
  ["a JSON object naming the job", JSON.stringify({ id: GATE_JOB })],
  ["unicode look-alike of the id", `${GATE_JOB.replace(/a/g, "\u0430")}\u202e`],
  ["not a string but an object", { id: GATE_JOB }],
];

/** Who clicks each button in the tampered rows: someone who may do it to GATE_JOB itself. */
const TAMPER_CLICKS = [
  ["Approve", "job_approve", APPROVER, UNKNOWN_JOB_TEXT],
  ["Deny", "job_deny", APPROVER, UNKNOWN_JOB_TEXT],
  ["Cancel", "job_cancel", GATE_USER, UNKNOWN_JOB_TEXT],
  ["Try again", "try_again", GATE_USER, UNKNOWN_JOB],
] as const;

const TAMPERED_ROWS: readonly Row[] = TAMPER_CLICKS.flatMap(([label, action, user, text]) =>
  TAMPERED.map(
    ([what, value]): Row => ({
      category: "job buttons",
      name: `${label} with a tampered value: ${what}`,
      prepare: awaitingJob,
      ...jobClick(user, action, value),
      outcome: toldPrivately(user, text),
      changesNothing: true,
    }),
  ),
);

const approvedAt = (by: string) =>
  expect.stringMatching(
    new RegExp(
      `^\`gate nightly\` was already approved by <@${by}> at \\d\\d:\\d\\d UTC; the image is being made\\.$`,
    ),
  );

// biome-ignore format: the table reads best one row per line where it fits
const DECISION_ROWS: readonly Row[] = [
  // — Buttons on a job: the value is untrusted, and the person is checked again on every click —
  { category: "job buttons", name: "Approve a job that does not exist", prepare: awaitingJob, ...jobClick(APPROVER, "job_approve", NOT_A_JOB), outcome: toldPrivately(APPROVER, UNKNOWN_JOB_TEXT), changesNothing: true },
  { category: "job buttons", name: "Deny a job that does not exist", prepare: awaitingJob, ...jobClick(APPROVER, "job_deny", NOT_A_JOB), outcome: toldPrivately(APPROVER, UNKNOWN_JOB_TEXT), changesNothing: true },
  { category: "job buttons", name: "Cancel a job that does not exist", prepare: awaitingJob, ...jobClick(GATE_USER, "job_cancel", NOT_A_JOB), outcome: toldPrivately(GATE_USER, UNKNOWN_JOB_TEXT), changesNothing: true },
  ...TAMPERED_ROWS,
  // A value that is not a string reaches SQLite as bind parameters: one with a `length` makes the lookup throw,
  // and the click goes unanswered (the listener fails after its ack).
  { category: "job buttons", name: "Approve with a value that is an object with a length", prepare: awaitingJob, ...jobClick(APPROVER, "job_approve", { length: 36 }), outcome: toldPrivately(APPROVER, UNKNOWN_JOB_TEXT), changesNothing: true },
  { category: "job buttons", name: "Try again with a value that is an object with a length", prepare: awaitingJob, ...jobClick(GATE_USER, "try_again", { length: 36 }), outcome: toldPrivately(GATE_USER, UNKNOWN_JOB), changesNothing: true },
  { category: "job buttons", name: "an approver's Approve swapped to a job of another target", prepare: awaitingJobs, ...jobClick(APPROVER, "job_approve", SECRET_AWAITING), outcome: toldPrivately(APPROVER, ONLY_APPROVERS("secret", "approve")), changesNothing: true },
  { category: "job buttons", name: "an approver's Deny swapped to a job of another target", prepare: awaitingJobs, ...jobClick(APPROVER, "job_deny", SECRET_AWAITING), outcome: toldPrivately(APPROVER, ONLY_APPROVERS("secret", "deny")), changesNothing: true },
  { category: "job buttons", name: "a requester's Cancel swapped to someone else's job", prepare: awaitingJobs, ...jobClick(GATE_OTHER, "job_cancel", GATE_JOB), outcome: toldPrivately(GATE_OTHER, ONLY_REQUESTER_OR_APPROVER), changesNothing: true },
  { category: "job buttons", name: "the requester approves their own job (though listed as an approver)", prepare: awaitingJob, ...jobClick(GATE_USER, "job_approve", GATE_JOB), outcome: toldPrivately(GATE_USER, OWN_APPROVAL_TEXT), changesNothing: true },
  { category: "job buttons", name: "the requester denies their own job", prepare: awaitingJob, ...jobClick(GATE_USER, "job_deny", GATE_JOB), outcome: toldPrivately(GATE_USER, OWN_APPROVAL_TEXT), changesNothing: true },
  { category: "job buttons", name: "someone allowed on the target but no approver approves", prepare: awaitingJob, ...jobClick(GATE_OTHER, "job_approve", GATE_JOB), outcome: toldPrivately(GATE_OTHER, ONLY_APPROVERS("gated", "approve")), changesNothing: true },
  { category: "job buttons", name: "someone allowed on the target but no approver denies", prepare: awaitingJob, ...jobClick(GATE_OTHER, "job_deny", GATE_JOB), outcome: toldPrivately(GATE_OTHER, ONLY_APPROVERS("gated", "deny")), changesNothing: true },
  { category: "job buttons", name: "a stranger approves", prepare: awaitingJob, ...jobClick(STRANGER, "job_approve", GATE_JOB), outcome: toldPrivately(STRANGER, ONLY_APPROVERS("gated", "approve")), changesNothing: true },
  { category: "job buttons", name: "an approver without access to the target now approves", prepare: awaitingJob, ...jobClick(NO_ACCESS_APPROVER, "job_approve", GATE_JOB), outcome: toldPrivately(NO_ACCESS_APPROVER, NO_ACCESS_NOW("approve")), changesNothing: true },
  { category: "job buttons", name: "an approver without access to the target now denies", prepare: awaitingJob, ...jobClick(NO_ACCESS_APPROVER, "job_deny", GATE_JOB), outcome: toldPrivately(NO_ACCESS_APPROVER, NO_ACCESS_NOW("deny")), changesNothing: true },
  { category: "job buttons", name: "an approver without access to the target now cancels", prepare: awaitingJob, ...jobClick(NO_ACCESS_APPROVER, "job_cancel", GATE_JOB), outcome: toldPrivately(NO_ACCESS_APPROVER, NO_ACCESS_NOW("cancel")), changesNothing: true },
  { category: "job buttons", name: "a stranger cancels a job waiting for approval", prepare: awaitingJob, ...jobClick(STRANGER, "job_cancel", GATE_JOB), outcome: toldPrivately(STRANGER, ONLY_REQUESTER_OR_APPROVER), changesNothing: true },
  { category: "job buttons", name: "a stranger cancels an image being made (nothing is deregistered)", prepare: runningJob, ...jobClick(STRANGER, "job_cancel", RUNNING_JOB), aws: "create", outcome: toldPrivately(STRANGER, ONLY_REQUESTER_OR_APPROVER), changesNothing: true },
  { category: "job buttons", name: "someone allowed on the target cancels another's image being made", prepare: runningJob, ...jobClick(CHANNEL_USER, "job_cancel", RUNNING_JOB), aws: "create", outcome: toldPrivately(CHANNEL_USER, ONLY_REQUESTER_OR_APPROVER), changesNothing: true },

  // — The deny form: its metadata is signed under its own kind, and everything is checked again on submit —
  { category: "deny form", name: "unsigned metadata naming a real job", prepare: awaitingJob, ...denyForm(APPROVER, () => JSON.stringify({ p: JSON.stringify({ k: "deny", v: JSON.stringify([GATE_JOB, CHANNEL]) }), s: "forged" })), outcome: denyRefused(UNKNOWN_JOB_TEXT), changesNothing: true },
  { category: "deny form", name: "the real form's metadata with another job id", prepare: async (h) => { await awaitingJobs(h); await openDenyForm(h, APPROVER, GATE_JOB); }, ...denyForm(APPROVER, altered(([, c]) => [OTHER_GATE_JOB, c])), outcome: denyRefused(UNKNOWN_JOB_TEXT), changesNothing: true },
  { category: "deny form", name: "the real form's metadata with another channel", prepare: async (h) => { await awaitingJob(h); await openDenyForm(h, APPROVER, GATE_JOB); }, ...denyForm(APPROVER, altered(([j]) => [j, OPS_CHANNEL])), outcome: denyRefused(UNKNOWN_JOB_TEXT), changesNothing: true },
  { category: "deny form", name: "the real form's metadata with its signature cut", prepare: async (h) => { await awaitingJob(h); await openDenyForm(h, APPROVER, GATE_JOB); }, ...denyForm(APPROVER, (h) => { const m = JSON.parse(denyFormMetadata(h)) as { s: string }; return JSON.stringify({ ...m, s: m.s.slice(0, -1) }); }), outcome: denyRefused(UNKNOWN_JOB_TEXT), changesNothing: true },
  { category: "deny form", name: "metadata the bot signed under another kind", prepare: awaitingJob, ...denyForm(APPROVER, () => botCodec.seal("retry", JSON.stringify([GATE_JOB, CHANNEL]))), outcome: denyRefused(UNKNOWN_JOB_TEXT), changesNothing: true },
  { category: "deny form", name: "the create form's signed metadata", prepare: awaitingJob, ...denyForm(APPROVER, () => metadataFor(CHANNEL)), outcome: denyRefused(UNKNOWN_JOB_TEXT), changesNothing: true },
  { category: "deny form", name: "no metadata", prepare: awaitingJob, ...denyForm(APPROVER, () => ""), outcome: denyRefused(UNKNOWN_JOB_TEXT), changesNothing: true },
  { category: "deny form", name: "signed metadata for a job that does not exist", prepare: awaitingJob, ...denyForm(APPROVER, () => botCodec.seal("deny", JSON.stringify([NOT_A_JOB, CHANNEL]))), outcome: denyRefused(UNKNOWN_JOB_TEXT), changesNothing: true },
  { category: "deny form", name: "an approver's real form sent by someone who is no approver", prepare: async (h) => { await awaitingJob(h); await openDenyForm(h, APPROVER, GATE_JOB); }, ...denyForm(GATE_OTHER, denyFormMetadata), outcome: denyRefused(ONLY_APPROVERS("gated", "deny")), changesNothing: true },
  { category: "deny form", name: "an approver's real form sent by the requester", prepare: async (h) => { await awaitingJob(h); await openDenyForm(h, APPROVER, GATE_JOB); }, ...denyForm(GATE_USER, denyFormMetadata), outcome: denyRefused(OWN_APPROVAL_TEXT), changesNothing: true },
  { category: "deny form", name: "an approver's real form sent by an approver without access now", prepare: async (h) => { await awaitingJob(h); await openDenyForm(h, APPROVER, GATE_JOB); }, ...denyForm(NO_ACCESS_APPROVER, denyFormMetadata), outcome: denyRefused(NO_ACCESS_NOW("deny")), changesNothing: true },
  { category: "deny form", name: "a reason of 501 characters", prepare: async (h) => { await awaitingJob(h); await openDenyForm(h, APPROVER, GATE_JOB); }, ...denyForm(APPROVER, denyFormMetadata, "r".repeat(501)), outcome: denyRefused("Keep the reason under 500 characters."), changesNothing: true },
  { category: "deny form", name: "a reason of 100 000 characters", prepare: async (h) => { await awaitingJob(h); await openDenyForm(h, APPROVER, GATE_JOB); }, ...denyForm(APPROVER, denyFormMetadata, "r".repeat(100_000)), outcome: denyRefused("Keep the reason under 500 characters."), changesNothing: true },
  { category: "deny form", name: "a reason that is not text (a number)", prepare: async (h) => { await awaitingJob(h); await openDenyForm(h, APPROVER, GATE_JOB); }, ...denyForm(APPROVER, denyFormMetadata, 12345 as unknown as string), outcome: denyRefused(expect.any(String)), changesNothing: true },
  {
    category: "deny form", name: "sent after another approver approved the job", aws: "create", changesNothing: true,
    prepare: async (h) => {
      h.aws.addInstance({ instanceId: GATE_INSTANCE, name: "gate-1" });
      await awaitingJob(h);
      await openDenyForm(h, APPROVER, GATE_JOB);
      await jobClick(APPROVER2, "job_approve", GATE_JOB).send(h);
      await eventually(() => h.store.get(GATE_JOB)?.state === "pending", 10_000, "the approved image being made");
      await settled(h);
    },
    ...denyForm(APPROVER, denyFormMetadata), outcome: denyRefused(approvedAt(APPROVER2)),
  },
  { category: "deny form", name: "sent after another approver denied the job", prepare: async (h) => { await awaitingJob(h); await openDenyForm(h, APPROVER, GATE_JOB); h.store.decide(GATE_JOB, { type: "denied", by: APPROVER2, reason: undefined }, DONE_AT); await settled(h); }, ...denyForm(APPROVER, denyFormMetadata), outcome: denyRefused(`\`gate nightly\` was already denied by <@${APPROVER2}> at 09:30 UTC.`), changesNothing: true },
  { category: "deny form", name: "sent after the requester cancelled the job", prepare: async (h) => { await awaitingJob(h); await openDenyForm(h, APPROVER, GATE_JOB); await jobClick(GATE_USER, "job_cancel", GATE_JOB).send(h); await eventually(() => h.store.get(GATE_JOB)?.state === "cancelled", 5_000, "the cancel"); await settled(h); }, ...denyForm(APPROVER, denyFormMetadata), outcome: denyRefused(expect.stringMatching(new RegExp(`^\`gate nightly\` was already cancelled by <@${GATE_USER}> at \\d\\d:\\d\\d UTC\\.$`))), changesNothing: true },

  // — Old buttons on a job that has ended: told the real state, nothing changes —
  { category: "old buttons", name: "Approve on an expired job", prepare: finishedJob("expired"), ...jobClick(APPROVER, "job_approve", DONE_JOB), outcome: toldPrivately(APPROVER, "`gate done` expired: nobody decided in time. Nothing was created."), changesNothing: true },
  { category: "old buttons", name: "Deny on an expired job", prepare: finishedJob("expired"), ...jobClick(APPROVER2, "job_deny", DONE_JOB), outcome: toldPrivately(APPROVER2, "`gate done` expired: nobody decided in time. Nothing was created."), changesNothing: true },
  { category: "old buttons", name: "Approve on a denied job", prepare: finishedJob("denied"), ...jobClick(APPROVER2, "job_approve", DONE_JOB), outcome: toldPrivately(APPROVER2, `\`gate done\` was already denied by <@${APPROVER}> at 09:30 UTC.`), changesNothing: true },
  { category: "old buttons", name: "Deny on a denied job (no second form)", prepare: finishedJob("denied"), ...jobClick(APPROVER2, "job_deny", DONE_JOB), outcome: toldPrivately(APPROVER2, `\`gate done\` was already denied by <@${APPROVER}> at 09:30 UTC.`), changesNothing: true },
  { category: "old buttons", name: "Cancel on a denied job", prepare: finishedJob("denied"), ...jobClick(GATE_USER, "job_cancel", DONE_JOB), outcome: toldPrivately(GATE_USER, `\`gate done\` was already denied by <@${APPROVER}> at 09:30 UTC.`), changesNothing: true },
  { category: "old buttons", name: "Approve on a cancelled job", prepare: finishedJob("cancelled"), ...jobClick(APPROVER, "job_approve", DONE_JOB), outcome: toldPrivately(APPROVER, `\`gate done\` was already cancelled by <@${GATE_USER}> at 09:30 UTC.`), changesNothing: true },
  { category: "old buttons", name: "Cancel on a cancelled job", prepare: finishedJob("cancelled"), ...jobClick(GATE_USER, "job_cancel", DONE_JOB), outcome: toldPrivately(GATE_USER, `\`gate done\` was already cancelled by <@${GATE_USER}> at 09:30 UTC.`), changesNothing: true },
  { category: "old buttons", name: "Approve on an available image", prepare: finishedJob("available"), ...jobClick(APPROVER2, "job_approve", DONE_JOB), outcome: toldPrivately(APPROVER2, `\`gate done\` is already made: \`${DONE_IMAGE}\` is available. Removing finished images is not something ami-bot does; use the EC2 console.`), changesNothing: true },
  { category: "old buttons", name: "Cancel on an available image (nothing is deregistered)", prepare: finishedJob("available"), ...jobClick(GATE_USER, "job_cancel", DONE_JOB), outcome: toldPrivately(GATE_USER, `\`gate done\` is already made: \`${DONE_IMAGE}\` is available. Removing finished images is not something ami-bot does; use the EC2 console.`), changesNothing: true },
  { category: "old buttons", name: "Try again on an available image", prepare: finishedJob("available"), ...jobClick(GATE_USER, "try_again", DONE_JOB), outcome: toldPrivately(GATE_USER, `That image was made: \`${DONE_IMAGE}\` is available. Type \`/ami\` to make another.`), changesNothing: true },
  { category: "old buttons", name: "Try again on a denied job", prepare: finishedJob("denied"), ...jobClick(GATE_USER, "try_again", DONE_JOB), outcome: toldPrivately(GATE_USER, "That image request was denied. Type `/ami` to ask again, with the approver's reason in mind."), changesNothing: true },
  { category: "old buttons", name: "Try again on a cancelled job", prepare: finishedJob("cancelled"), ...jobClick(GATE_USER, "try_again", DONE_JOB), outcome: toldPrivately(GATE_USER, "That image request was cancelled. Type `/ami` to start a new one."), changesNothing: true },
  {
    // The expired reply says "Try again to ask once more" and carries the button; the click must open the form.
    category: "old buttons", name: "Try again on an expired job opens the form again", prepare: finishedJob("expired"), ...jobClick(GATE_USER, "try_again", DONE_JOB), aws: "read-only",
    outcome: { kind: "modal", check: (view) => { expect(JSON.stringify(view.blocks)).toContain("gate done"); } },
  },
];

/** What a refused request must leave as it was: the jobs, what they owe Slack, Slack's posts, AWS's changes. */
function stateOf(h: Harness): unknown {
  const db = new Database(h.dbPath, { readonly: true, fileMustExist: true });
  try {
    return {
      jobs: db
        .prepare(
          `SELECT id, state, image_id, decision, decided_by, decided_at, cancelled_by, cancelled_at, final_reason,
             finished_at, create_attempted_at, deregister_attempted_at FROM jobs ORDER BY id`,
        )
        .all(),
      notices: db.prepare("SELECT job_id, key FROM outbox ORDER BY id").all(),
      posts: h.slack.callsTo("chat.postMessage").length,
      updates: h.slack.callsTo("chat.update").length,
      awsChanges: h.aws.requests
        .filter((r) => !/^(AssumeRole|Describe(Instances|Images|Snapshots))$/.test(r.action))
        .map((r) => r.action),
    };
  } finally {
    db.close();
  }
}

// — Steps after the image: prod offers copies to eu-central-1 and us-east-1 and sharing with SHARE_ACCOUNT —
const COPY_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const SHARE_ACCOUNT = "210987654321";
const COPY_BLOCK = "copy_to.prod|eu-west-1";
const SHARE_BLOCK = "share_with.prod|eu-west-1";
const RETRY_JOB = "7e7a0000-0000-4000-8000-000000000001";

/**
 * A submission of prod's form with the copy and share boxes ticked as given: raw option values, so forged
 * ones (another region, `all`, a number) go in as a person's client could send them.
 */
function submitTicks(
  ticks: {
    copyTo?: readonly unknown[];
    shareWith?: readonly unknown[];
    blocks?: { copy?: string; share?: string };
  },
  opts: { user?: string; answers?: Partial<FormAnswers>; viewId?: string } = {},
): Pick<Row, "send"> {
  const option = (value: unknown) => ({ text: { type: "plain_text", text: String(value) }, value });
  return {
    send: (h) => {
      const payload = h.submission(
        { ...VALID, ...opts.answers },
        { userId: opts.user ?? ALLOWED_USER, viewId: opts.viewId ?? nextViewId() },
      ) as { view: { private_metadata?: string; state: { values: Record<string, unknown> } } };
      payload.view.private_metadata = metadataFor(CHANNEL);
      const values = payload.view.state.values;
      if (ticks.copyTo)
        values[ticks.blocks?.copy ?? COPY_BLOCK] = {
          copy_to_choice: { type: "checkboxes", selected_options: ticks.copyTo.map(option) },
        };
      if (ticks.shareWith)
        values[ticks.blocks?.share ?? SHARE_BLOCK] = {
          share_with_choice: { type: "checkboxes", selected_options: ticks.shareWith.map(option) },
        };
      return h.interaction(payload);
    },
  };
}

/** Submits prod's form as `viewId` with these copy ticks, and waits for its image and root message. */
async function firstSubmission(h: Harness, viewId: string, copyTo: readonly string[]): Promise<void> {
  const roots = () => h.slack.callsTo("chat.postMessage").filter((c) => !c.args.thread_ts).length;
  const before = roots();
  const res = await submitTicks({ copyTo }, { viewId }).send(h);
  expect(res.body).toBe("");
  await eventually(() => h.aws.calls("CreateImage").length > 0, 10_000, "the first CreateImage");
  await eventually(() => roots() > before, 10_000, "its root message");
}

/** RETRY_JOB: prod's refused job that had ticked copies and accounts, some no longer offered. */
function storeRetryJob(h: Harness): Promise<void> {
  const now = Date.now();
  h.store.insert(
    {
      id: RETRY_JOB,
      idempotencyKey: "V0RETRY001",
      requestedBy: ALLOWED_USER,
      originChannelId: CHANNEL,
      targetName: "prod",
      roleArn: ROLE_ARN,
      region: "eu-west-1",
      instanceId: GOOD,
      instanceName: "web-1",
      imageName: "web-1 retried",
      description: undefined,
      noReboot: true,
      tags: [],
      excludedDevices: [],
      channelId: CHANNEL,
      requestHash: "x",
      copyTo: ["ap-south-1", "us-east-1"],
      shareWith: ["999999999999", SHARE_ACCOUNT],
    },
    now,
  );
  // In the same tick as the insert, so the watcher never starts it.
  h.store.apply(
    RETRY_JOB,
    { type: "create_refused", reason: "An image named web-1 retried already exists." },
    now,
  );
  return Promise.resolve();
}

/** The tick boxes of `blockId` in a view: the values offered, and those ticked from the start. */
function tickBoxes(view: ModalView, blockId: string): { offered: string[]; ticked: string[] } {
  const element = (view.blocks.find((b) => b.block_id === blockId) as { element?: Record<string, unknown> })
    ?.element;
  const values = (list: unknown) => ((list ?? []) as { value: string }[]).map((o) => o.value);
  return { offered: values(element?.options), ticked: values(element?.initial_options) };
}

const NOT_OFFERED_REGION = (region: string) =>
  `“${region}” is not one of the regions offered for copies here.`;
const NOT_OFFERED_ACCOUNT = (account: string) =>
  `“${account}” is not one of the accounts offered for sharing here.`;

// biome-ignore format: the table reads best one row per line where it fits
const AFTER_STEP_ROWS: readonly Row[] = [
  { category: "after steps", name: "the form offers prod's copy regions (not its own) and accounts, none ticked", ...command(ALLOWED_USER, CHANNEL, ""), outcome: { kind: "modal", check: (view) => { expect(tickBoxes(view, COPY_BLOCK)).toEqual({ offered: ["eu-central-1", "us-east-1"], ticked: [] }); expect(tickBoxes(view, SHARE_BLOCK)).toEqual({ offered: [SHARE_ACCOUNT], ticked: [] }); } } },
  { category: "after steps", name: "a target that offers nothing draws no copy or share field", ...command(LAB_USER, CHANNEL, ""), outcome: { kind: "modal", check: (view) => { expect(JSON.stringify(view.blocks)).not.toMatch(/copy_to|share_with/); } } },
  { category: "after steps", name: "a forged copy region", ...submitTicks({ copyTo: ["us-west-2"] }), outcome: { kind: "form_errors", errors: { [COPY_BLOCK]: NOT_OFFERED_REGION("us-west-2") } } },
  { category: "after steps", name: "the job's own region as a copy", ...submitTicks({ copyTo: ["eu-west-1"] }), outcome: { kind: "form_errors", errors: { [COPY_BLOCK]: "The image is made in eu-west-1: it cannot also be copied there." } } },
  { category: "after steps", name: "a copy region ticked twice", ...submitTicks({ copyTo: ["eu-central-1", "eu-central-1"] }), outcome: { kind: "form_errors", errors: { [COPY_BLOCK]: "“eu-central-1” is ticked twice." } } },
  { category: "after steps", name: "more copy regions than offered", ...submitTicks({ copyTo: ["eu-central-1", "us-east-1", "eu-central-1"] }), outcome: { kind: "form_errors", errors: { [COPY_BLOCK]: "3 choices are ticked, but only 2 are offered here." } } },
  { category: "after steps", name: "a forged account", ...submitTicks({ shareWith: ["999999999999"] }), outcome: { kind: "form_errors", errors: { [SHARE_BLOCK]: NOT_OFFERED_ACCOUNT("999999999999") } } },
  { category: "after steps", name: "`all` as an account (public sharing)", ...submitTicks({ shareWith: ["all"] }), outcome: { kind: "form_errors", errors: { [SHARE_BLOCK]: "“all” would make the image public: ami-bot never shares images publicly." } } },
  { category: "after steps", name: "a checkbox value that is not a string", ...submitTicks({ copyTo: [42] }), outcome: { kind: "form_errors", errors: { [COPY_BLOCK]: "ami-bot could not read what is ticked here. Untick the boxes and tick them again." } } },
  { category: "after steps", name: "an offered account beside a forged region: nothing is chosen", ...submitTicks({ copyTo: ["ap-south-1"], shareWith: [SHARE_ACCOUNT] }), outcome: { kind: "form_errors", errors: { [COPY_BLOCK]: NOT_OFFERED_REGION("ap-south-1") } } },
  { category: "after steps", name: "prod's regions ticked in a block for another place", ...submitTicks({ copyTo: ["eu-central-1"], blocks: { copy: "copy_to.lab|eu-west-1" } }), outcome: { kind: "form_errors", errors: { "copy_to.lab|eu-west-1": "These were listed for another account or region. Choose the account and region again, then tick what you want." } } },
  { category: "after steps", name: "a copy forged into a target that offers none", ...submitTicks({ copyTo: ["eu-central-1"], blocks: { copy: "copy_to.lab|eu-west-1" } }, { user: LAB_USER, answers: LAB_VALID }), outcome: { kind: "form_errors", errors: { "copy_to.lab|eu-west-1": NOT_OFFERED_REGION("eu-central-1") } } },
  { category: "after steps", name: "offered ticks are stored with the job", ...submitTicks({ copyTo: ["us-east-1", "eu-central-1"], shareWith: [SHARE_ACCOUNT] }), aws: "create", outcome: { kind: "accepted", check: async (h) => {
    const [job] = await h.store.recentJobs({ requestedBy: ALLOWED_USER, places: [{ targetName: "prod", roleArn: ROLE_ARN, region: "eu-west-1" }] }, 1);
    expect(job?.after?.copies.map((c) => c.region)).toEqual(["eu-central-1", "us-east-1"]);
    expect(job?.after?.shareWith).toEqual([SHARE_ACCOUNT]);
  } } },
  { category: "after steps", name: "a replay of the view with other ticks is told apart", prepare: (h) => firstSubmission(h, "V0REPLAY01", ["eu-central-1"]), ...submitTicks({ copyTo: ["us-east-1"] }, { viewId: "V0REPLAY01" }), aws: "create", outcome: { kind: "form_errors", errors: { instance: "This form was already sent with other values, and that request stands. Close the form and type /ami again to ask for another image." } } },
  { category: "after steps", name: "Try again ticks only the earlier choices still offered", prepare: storeRetryJob, ...tryAgainClick(ALLOWED_USER, RETRY_JOB), aws: "read-only", outcome: { kind: "modal", check: (view) => { expect(tickBoxes(view, COPY_BLOCK).ticked).toEqual(["us-east-1"]); expect(tickBoxes(view, SHARE_BLOCK).ticked).toEqual([SHARE_ACCOUNT]); } } },
  { category: "after steps", name: "a target sharing with `all` is refused at start", send: async () => ({ status: 0, body: "", json: () => undefined }), outcome: { kind: "nothing" }, custom: async () => { expect(fileConfigProblems({ after: { shareWith: ["all"] } })).toEqual(['config targets.0.after.shareWith.0: "all" would make the images public; ami-bot never shares publicly']); expect(configProblems({ AMI_TARGET_SHARE_WITH: "123456789012" })).toEqual([`AMI_TARGET_SHARE_WITH: "123456789012" is this target's own account: its images are already there`]); } },
];

const ROWS: readonly Row[] = [...BASE_ROWS, ...GUARDRAIL_ROWS, ...DECISION_ROWS, ...AFTER_STEP_ROWS];

/** The config file: prod (opt-in tag scope, user and channel rules), secret, lab (guardrails), gated (approvals). */
function writeConfig(dir: string): string {
  const path = join(dir, "targets.json");
  writeFileSync(
    path,
    JSON.stringify({
      targets: [
        {
          name: "prod",
          roleArn: ROLE_ARN,
          externalId: EXTERNAL_ID,
          regions: ["eu-west-1"],
          allow: { users: [ALLOWED_USER], channels: [OPS_CHANNEL, PUBLIC_OPS, UNKNOWN_PRIVACY] },
          instanceTags: { "ami-bot:allowed": "true" },
          // Offered in the form, never ticked by default. eu-west-1 (its own region) is not shown.
          after: {
            copyTo: ["eu-west-1", "eu-central-1", { region: "us-east-1", kmsKeyId: COPY_KEY }],
            shareWith: [SHARE_ACCOUNT],
          },
        },
        {
          name: "secret",
          roleArn: "arn:aws:iam::210987654321:role/ami-bot-target",
          externalId: "another-external-id-0001",
          regions: ["eu-west-1"],
          allow: { users: ["U0OTHER001"] },
        },
        {
          // Same role and account as prod, other rules.
          name: "lab",
          roleArn: ROLE_ARN,
          externalId: EXTERNAL_ID,
          regions: ["eu-west-1"],
          allow: { users: [LAB_USER, LAB_GUEST], channels: [PUBLIC_LAB] },
          reboot: "ask",
          tagKeys: ["team", "app:*"],
          jobsPerHour: 2,
          allowGuests: true,
          allowPublicChannels: true,
        },
        {
          // Same account again: every job waits for an approver, who may not be its requester.
          name: "gated",
          roleArn: ROLE_ARN,
          externalId: EXTERNAL_ID,
          regions: ["eu-west-1"],
          allow: { users: [GATE_USER, GATE_OTHER, APPROVER, APPROVER2] },
          approval: {
            approvers: { users: [APPROVER, APPROVER2, GATE_USER, NO_ACCESS_APPROVER] },
            expiresAfter: "30m",
          },
        },
      ],
      watcher: { pollInterval: "100ms" },
    }),
  );
  return path;
}

const settle = () => new Promise((r) => setTimeout(r, 250));

/** The problems of a targets file holding one otherwise valid target with `changes`, or [] when it loads. */
function fileConfigProblems(changes: Record<string, unknown>): string[] {
  const dir = mkdtempSync(join(tmpdir(), "ami-bot-hostile-file-"));
  const path = join(dir, "targets.json");
  const target = {
    name: "prod",
    roleArn: ROLE_ARN,
    externalId: EXTERNAL_ID,
    regions: ["eu-west-1"],
    ...changes,
  };
  writeFileSync(path, JSON.stringify({ targets: [target] }));
  try {
    loadConfig({
      SLACK_BOT_TOKEN: "xoxb-test-token",
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      AMI_BOT_CONFIG: path,
    });
    return [];
  } catch (error) {
    return error instanceof ConfigError ? [...error.problems] : [String(error)];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A second bot process on the running bot's database: refused at start, exit 2, one line naming it. */
async function secondBotRefused(h: Harness): Promise<void> {
  const child = await startChildBot({
    slackUrl: h.slack.url,
    awsUrl: h.aws.url,
    dbPath: h.dbPath,
    waitUntil: "spawned",
  });
  const exit = await Promise.race([
    child.exit,
    new Promise<"running">((r) => setTimeout(() => r("running"), 15_000)),
  ]);
  if (exit === "running") child.kill("SIGKILL");
  expect(exit).toEqual({ code: 2, signal: null });
  const lines = child.stderr().trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(h.dbPath);
  expect(lines[0]).toMatch(/another ami-bot/);
  // The first bot is untouched and still serving.
  expect((await h.command({ text: "help" })).status).toBe(200);
}
/** The response as JSON, or its raw text when it is not JSON (an empty 200 means "accepted"). */
function bodyOf(res: SignedResponse): unknown {
  try {
    return JSON.parse(res.body);
  } catch {
    return res.body;
  }
}
const keyOf = (m: { metadata?: { event_payload?: Record<string, unknown> } | undefined }) =>
  String(m.metadata?.event_payload?.key ?? "");

async function assertOutcome(
  h: Harness,
  res: SignedResponse,
  outcome: Outcome,
  slackBefore: number,
  before: { unfinished: number; roots: number },
) {
  // auth.test is Bolt checking its own token, and the lookups of who someone is (users.info, user groups,
  // channel privacy) read only: neither is something the person sees.
  const lookups = new Set(["auth.test", "users.info", "usergroups.users.list", "conversations.info"]);
  const newSlackCalls = () => h.slack.calls.slice(slackBefore).filter((c) => !lookups.has(c.method));
  switch (outcome.kind) {
    case "form_errors":
      expect(res.status).toBe(200);
      expect(bodyOf(res)).toEqual({ response_action: "errors", errors: outcome.errors });
      await settle();
      // Nothing new: jobs a row prepared (a busy instance, an hourly limit) are all there is.
      expect(h.store.unfinishedCount()).toBe(before.unfinished);
      expect(h.slack.callsTo("chat.postMessage").filter((c) => !c.args.thread_ts)).toHaveLength(before.roots);
      return;
    case "ephemeral":
      expect(res.status).toBe(200);
      expect(bodyOf(res)).toEqual({ response_type: "ephemeral", text: outcome.text });
      await settle();
      expect(newSlackCalls().map((c) => c.method)).not.toContain("views.open");
      return;
    case "ephemeral_message": {
      expect(res.status).toBe(200);
      expect(res.body).toBe("");
      const answer = await h.slack.waitFor(
        "chat.postEphemeral",
        (c) => c.args.user === outcome.user && c.args.text === outcome.text,
        5_000,
      );
      expect(answer.args.channel).toBe(CHANNEL);
      await settle();
      expect(newSlackCalls().map((c) => c.method)).not.toContain("views.open");
      return;
    }
    case "options":
      expect(res.status).toBe(200);
      expect(bodyOf(res)).toEqual({ options: outcome.options });
      return;
    case "modal_note": {
      expect(res.status).toBe(200);
      const update = await h.slack.waitFor("views.update", () => true, 5_000);
      expect(JSON.stringify(update.args.view)).toContain(JSON.stringify(outcome.text).slice(1, -1));
      return;
    }
    case "thread_refusal": {
      expect(res.status).toBe(200);
      expect(res.body).toBe("");
      const reply = await eventually(
        () => h.slack.messages.find((m) => m.threadTs && keyOf(m) === "refused"),
        10_000,
        "the refusal in the thread",
      );
      expect(reply.text).toEqual(outcome.text);
      await settle();
      outcome.check?.(h);
      return;
    }
    case "nothing":
      expect(res.status).toBe(200);
      await settle();
      expect(newSlackCalls()).toEqual([]);
      expect(h.store.unfinishedCount()).toBe(0);
      return;
    case "accepted": {
      expect(res.status).toBe(200);
      expect(res.body).toBe("");
      await eventually(() => h.aws.calls("CreateImage").length > 0, 10_000, "CreateImage");
      await outcome.check(h);
      return;
    }
    case "modal": {
      expect(res.status).toBe(200);
      const opened = await h.slack.waitFor("views.open", () => true, 5_000);
      outcome.check(opened.args.view as ModalView);
      return;
    }
    case "http":
      expect(res.status).toBe(outcome.status);
      expect(res.body).toBe("");
      await settle();
      expect(newSlackCalls()).toEqual([]);
      expect(h.store.unfinishedCount()).toBe(0);
      return;
  }
}

function assertAws(h: Harness, aws: "none" | "read-only" | "create") {
  if (aws === "create") return;
  expect(h.aws.calls("CreateImage")).toEqual([]);
  if (aws === "none") {
    expect(h.aws.calls("AssumeRole")).toEqual([]);
    expect(h.aws.requests).toEqual([]);
    return;
  }
  // Read-only: every session asked for is a Describe-only one, and only Describe calls were made.
  for (const call of h.aws.calls("AssumeRole"))
    expect(String(call.params.Policy)).not.toContain("CreateImage");
  for (const r of h.aws.requests)
    expect(r.action).toMatch(/^(AssumeRole|Describe(Instances|Images|Snapshots))$/);
}

/**
 * The bot as `npm start` runs it, in its own process: a signed `payload=null` must leave the process running.
 * Bolt throws outside its try/catch there; the bot logs the rejection instead of letting Node end the process.
 */
async function nullPayloadKeepsBotAlive(h: Harness): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "ami-bot-null-"));
  const child = await startChildBot({
    slackUrl: h.slack.url,
    awsUrl: h.aws.url,
    dbPath: join(dir, "bot.db"),
  });
  let exited = false;
  void child.exit.then(() => {
    exited = true;
  });
  try {
    // Bolt never answers this request, so the test does not wait for the answer: it waits for the log line.
    void postSigned(`${child.baseUrl}/slack/events`, "payload=null", SIGNING_SECRET, { headers: {} }).catch(
      () => undefined,
    );
    await eventually(
      () => exited || `${child.stdout()}${child.stderr()}`.includes("unhandled rejection"),
      30_000,
      "the bot to log the rejection",
    );
    // A process about to die of it would be gone well within this.
    await new Promise((r) => setTimeout(r, 300));
    expect(exited, `the bot exited:\n${child.stderr()}\n${child.stdout().slice(-2000)}`).toBe(false);
    const health = await fetch(`${child.baseUrl}/healthz`);
    expect(health.status).toBe(200);
  } finally {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("hostile input", () => {
  let h: Harness;
  let configPath: string;
  const counts = { cases: ROWS.length, passed: 0, knownBugs: 0, failed: 0 };

  beforeAll(() => {
    configPath = writeConfig(mkdtempSync(join(tmpdir(), "ami-bot-hostile-")));
  });
  beforeEach(async () => {
    h = await startHarness({
      env: { AMI_BOT_CONFIG: configPath },
      slack: {
        users: {
          [GUEST]: { is_restricted: true },
          [LAB_GUEST]: { is_restricted: true },
          [ULTRA_GUEST]: { is_restricted: true, is_ultra_restricted: true },
          [EXTERNAL]: { team_id: "T0OTHERORG" },
          [STRANGER_FLAG]: { is_stranger: true },
          [UNKNOWN_USER]: "not_found",
        },
        channels: { [PUBLIC_OPS]: "public", [PUBLIC_LAB]: "public", [UNKNOWN_PRIVACY]: "not_found" },
      },
    });
    h.aws.addInstance({ instanceId: GOOD, name: "web-1", tags: { "ami-bot:allowed": "true" } });
    h.aws.addInstance({
      instanceId: TERMINATED,
      name: "old",
      state: "terminated",
      tags: { "ami-bot:allowed": "true" },
    });
    h.aws.addInstance({ instanceId: NO_TAG, name: "db-1" });
    for (const id of [LAB1, LAB2, LAB3]) h.aws.addInstance({ instanceId: id, name: `lab-${id.slice(-1)}` });
    h.aws.addInstance({ instanceId: WRONG_TAG, name: "db-2", tags: { "ami-bot:allowed": "false" } });
    h.aws.addInstance({
      instanceId: OTHER_REGION,
      name: "web-us",
      region: "us-east-1",
      tags: { "ami-bot:allowed": "true" },
    });
  });
  afterEach(async () => {
    await h.close();
  });
  afterAll(() => {
    console.log(
      `hostile input suite: ${counts.cases} cases, ${counts.passed} passed, ` +
        `${counts.knownBugs} known bugs (it.fails), ${counts.failed} failed`,
    );
  });

  for (const row of ROWS) {
    const title = `${row.category}: ${row.name} → ${row.outcome.kind}${row.expectedBug ? ` [bug: ${row.expectedBug}]` : ""}`;
    const body = async () => {
      try {
        if (row.custom) await row.custom(h);
        else {
          await row.prepare?.(h);
          const slackBefore = h.slack.calls.length;
          const before = {
            unfinished: h.store.unfinishedCount(),
            roots: h.slack.callsTo("chat.postMessage").filter((c) => !c.args.thread_ts).length,
          };
          const still = row.changesNothing ? stateOf(h) : undefined;
          const res = await row.send(h);
          await assertOutcome(h, res, row.outcome, slackBefore, before);
          assertAws(h, row.aws ?? "none");
          if (still) expect(stateOf(h), "nothing may change").toEqual(still);
        }
        counts.passed++;
      } catch (error) {
        if (row.expectedBug) counts.knownBugs++;
        else counts.failed++;
        throw error;
      }
    };
    if (row.expectedBug) it.fails(title, body);
    else it(title, body);
  }
});
