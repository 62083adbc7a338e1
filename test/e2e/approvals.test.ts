/**
 * The two-person rule, through the bot's real HTTP endpoint against the fakes: a job for a target with
 * approvals waits, asks nothing of AWS, tells its approvers, and is created only once an approver who is not
 * the requester approves it; Deny (with a reason) and expiry end it; everything survives a restart; and two
 * clicks at once end in exactly one outcome.
 */
import { afterEach, describe, expect, it } from "vitest";
import { OWN_APPROVAL_TEXT, UNKNOWN_JOB_TEXT } from "../../src/slack/actions/job-decisions.js";
import type { StoredMessage } from "../fakes/fake-slack.js";
import {
  ALLOWED_USER,
  CHANNEL,
  eventually,
  type Harness,
  ROLE_ARN,
  startHarness,
} from "../support/bot-harness.js";
import { buttonIn, denySubmissionPayload, messageButtonPayload } from "../support/job-buttons.js";

const INSTANCE = "i-0123456789abcdef0";
const APPROVER = "U0APPROVER1";
const GROUP = "S0APPROVERS";
const GROUP_MEMBER = "U0GROUPIE1";
const OUTSIDER = "U0OUTSIDER";
const MINUTE = 60_000;

const keyOf = (m: StoredMessage) => String(m.metadata?.event_payload?.key ?? "");

/** A clock that runs with real time and can be moved ahead, so the bot sees an approval's wait run out. */
function movableClock() {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance: (ms: number) => {
      offset += ms;
    },
  };
}

describe("approvals", () => {
  let h: Harness;
  const clock = movableClock();

  async function start(env: Record<string, string> = {}) {
    h = await startHarness({
      env: {
        // The requester is an approver too: the two-person rule must still keep them from approving.
        AMI_TARGET_ALLOW_USERS: `${ALLOWED_USER},${APPROVER},${GROUP_MEMBER}`,
        AMI_TARGET_APPROVERS: `${APPROVER},${ALLOWED_USER},${GROUP}`,
        AMI_TARGET_APPROVAL_EXPIRES: "30m",
        ...env,
      },
      slack: { usergroups: { [GROUP]: [GROUP_MEMBER] } },
      overrides: { clock },
    });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
  }

  /** Asks for an image and waits for the root message, the approval request and the approver's DM. */
  async function ask(): Promise<{ root: StoredMessage; request: StoredMessage; dm: StoredMessage }> {
    await h.command({});
    await h.slack.waitFor("views.open");
    const res = await h.interaction(h.submission({ instanceId: INSTANCE, imageName: "web-1 approved" }));
    expect(res.body).toBe("");
    const root = await eventually(
      () => h.slack.messages.find((m) => m.channel === CHANNEL && !m.threadTs),
      10_000,
      "the root message",
    );
    const request = await eventually(
      () => h.slack.messages.find((m) => m.threadTs === root.ts && keyOf(m) === "approval_request"),
      10_000,
      "the approval request in the thread",
    );
    const dm = await eventually(
      () => h.slack.messages.find((m) => m.channel === `D${APPROVER.slice(1)}`),
      10_000,
      "the approver's DM",
    );
    return { root, request, dm };
  }

  const click = (userId: string, root: StoredMessage, actionId: string, value?: unknown) => {
    const button = buttonIn(root, actionId) ?? { action_id: actionId };
    return h.interaction(
      messageButtonPayload({
        userId,
        channel: root.channel,
        messageTs: root.ts,
        action: { ...button, ...(value !== undefined ? { value } : {}) },
      }),
    );
  };

  const ephemeralsTo = (userId: string) =>
    h.slack
      .callsTo("chat.postEphemeral")
      .filter((c) => c.args.user === userId)
      .map((c) => String(c.args.text));

  const rootNow = (root: StoredMessage) =>
    h.slack.messages.find((m) => m.channel === root.channel && m.ts === root.ts) as StoredMessage;

  afterEach(async () => {
    await h?.close();
  });

  it("waits without calling AWS to create anything, and tells the approvers", async () => {
    await start();
    const { root, request, dm } = await ask();
    expect(root.text).toContain("Waiting for approval");
    expect(JSON.stringify(root.blocks)).toContain(`<!subteam^${GROUP}>`);
    expect(buttonIn(root, "job_approve")).toMatchObject({ style: "primary", value: expect.any(String) });
    expect(buttonIn(root, "job_deny")).toMatchObject({ style: "danger" });
    expect(buttonIn(root, "job_cancel")).toMatchObject({ confirm: expect.any(Object) });
    expect(request.text).toContain(`<!subteam^${GROUP}>`);
    expect(request.text).toContain(`<@${APPROVER}>`);
    expect(request.text).toContain(`except <@${ALLOWED_USER}>`);
    expect(dm.text).toContain(`<@${ALLOWED_USER}> asks for an AMI`);
    expect(dm.text).toContain("https://fake.slack.com/archives/");
    expect(buttonIn(dm, "job_approve")).toBeDefined();
    // The requester, though an approver, is not asked to approve their own job.
    expect(h.slack.messages.some((m) => m.channel === `D${ALLOWED_USER.slice(1)}`)).toBe(false);
    await new Promise((r) => setTimeout(r, 500));
    expect(h.aws.calls("CreateImage")).toEqual([]);
  });

  it("creates the image once an approver approves, and says who and when", async () => {
    await start();
    const { root } = await ask();
    const res = await click(APPROVER, root, "job_approve");
    expect(res.status).toBe(200);
    await eventually(() => h.aws.calls("CreateImage").length === 1, 10_000, "CreateImage");
    const approved = await eventually(
      () => h.slack.messages.find((m) => m.threadTs === root.ts && keyOf(m) === "approved"),
      10_000,
      "the approval in the thread",
    );
    expect(approved.text).toMatch(new RegExp(`Approved by <@${APPROVER}> at \\d\\d:\\d\\d UTC`));
    await eventually(() => JSON.stringify(rootNow(root).blocks).includes(`Approved by <@${APPROVER}>`));
    // The root no longer offers Approve or Deny; Cancel stays while the image is made.
    expect(buttonIn(rootNow(root), "job_approve")).toBeUndefined();
    expect(buttonIn(rootNow(root), "job_cancel")).toBeDefined();
    const imageId = [...h.aws.images.keys()][0] as string;
    h.aws.setImageState(imageId, "available");
    await eventually(
      () => h.slack.messages.find((m) => m.threadTs === root.ts && keyOf(m) === "available"),
      10_000,
      "available",
    );
    // The root is rewritten after the final reply: once it is, Cancel is gone.
    await eventually(() => rootNow(root).text.includes("is available"), 10_000, "the final root");
    expect(buttonIn(rootNow(root), "job_cancel")).toBeUndefined();
    expect(
      h.logs.some(
        (l) => l.includes('"audit":true') && l.includes('"action":"approve"') && l.includes(APPROVER),
      ),
    ).toBe(true);
  });

  it("lets a member of the approvers' user group approve", async () => {
    await start();
    const { root } = await ask();
    await click(GROUP_MEMBER, root, "job_approve");
    await eventually(() => h.aws.calls("CreateImage").length === 1, 10_000, "CreateImage");
  });

  it("never lets the requester approve their own job, even as an approver", async () => {
    await start();
    const { root } = await ask();
    await click(ALLOWED_USER, root, "job_approve");
    await eventually(() => ephemeralsTo(ALLOWED_USER).includes(OWN_APPROVAL_TEXT), 5_000, "the refusal");
    await click(ALLOWED_USER, root, "job_deny");
    await eventually(() => ephemeralsTo(ALLOWED_USER).filter((t) => t === OWN_APPROVAL_TEXT).length === 2);
    expect(h.slack.callsTo("views.open")).toHaveLength(1); // the /ami form only, no deny form
    expect(h.aws.calls("CreateImage")).toEqual([]);
    expect(buttonIn(rootNow(root), "job_approve")).toBeDefined();
  });

  it("refuses someone who is not an approver, and a job id that does not exist", async () => {
    await start();
    const { root } = await ask();
    await click(OUTSIDER, root, "job_approve");
    await click(OUTSIDER, root, "job_approve", "00000000-0000-0000-0000-000000000000");
    await eventually(() => ephemeralsTo(OUTSIDER).length === 2, 5_000, "two refusals");
    expect(ephemeralsTo(OUTSIDER)[0]).toContain("Only the approvers of target prod");
    expect(ephemeralsTo(OUTSIDER)[1]).toBe(UNKNOWN_JOB_TEXT);
    await new Promise((r) => setTimeout(r, 300));
    expect(h.aws.calls("CreateImage")).toEqual([]);
  });

  it("denies with a reason: nothing is created, and the thread and root say who and why", async () => {
    await start();
    const { root } = await ask();
    await click(APPROVER, root, "job_deny");
    const opened = await h.slack.waitFor("views.open", () => h.slack.callsTo("views.open").length === 2);
    const view = opened.args.view as { callback_id: string; private_metadata: string };
    expect(view.callback_id).toBe("ami_deny");
    const res = await h.interaction(
      denySubmissionPayload({
        userId: APPROVER,
        privateMetadata: view.private_metadata,
        reason: "Change freeze until Friday <!here>",
      }),
    );
    expect(res.body).toBe("");
    const denied = await eventually(
      () => h.slack.messages.find((m) => m.threadTs === root.ts && keyOf(m) === "denied"),
      10_000,
      "the denial",
    );
    expect(denied.text).toContain(`<@${APPROVER}> denied this at`);
    expect(denied.text).toContain("Change freeze until Friday &lt;!here&gt;");
    await eventually(() => JSON.stringify(rootNow(root).blocks).includes(`Denied by <@${APPROVER}>`));
    expect(buttonIn(rootNow(root), "job_approve")).toBeUndefined();
    expect(buttonIn(rootNow(root), "job_cancel")).toBeUndefined();
    expect(h.aws.calls("CreateImage")).toEqual([]);
    // A deny form forged without the bot's signature is refused and changes nothing.
    const forged = await h.interaction(
      denySubmissionPayload({ userId: APPROVER, privateMetadata: '{"p":"x","s":"y"}', reason: "x" }),
    );
    expect(JSON.parse(forged.body)).toMatchObject({ response_action: "errors" });
  });

  it("expires when nobody decides in time", async () => {
    await start();
    const { root } = await ask();
    // The button as it was drawn: the root is rewritten in place once the job ends.
    const oldApprove = { ...buttonIn(root, "job_approve") };
    clock.advance(31 * MINUTE);
    const expired = await eventually(
      () => h.slack.messages.find((m) => m.threadTs === root.ts && keyOf(m) === "expired"),
      10_000,
      "the expiry",
    );
    expect(expired.text).toContain("expired and nothing was created");
    expect(buttonIn(expired, "try_again")).toBeDefined();
    await eventually(() => rootNow(root).text.includes("Expired"));
    expect(buttonIn(rootNow(root), "job_approve")).toBeUndefined();
    // An approval from the old message, too late, is told the real state.
    await h.interaction(
      messageButtonPayload({
        userId: APPROVER,
        channel: root.channel,
        messageTs: root.ts,
        action: oldApprove,
      }),
    );
    await eventually(() => ephemeralsTo(APPROVER).some((t) => t.includes("expired")), 5_000);
    expect(h.aws.calls("CreateImage")).toEqual([]);
  });

  it("keeps waiting across a restart, and is created when approved after it", async () => {
    await start();
    const { root } = await ask();
    await h.restart();
    await click(APPROVER, root, "job_approve");
    await eventually(() => h.aws.calls("CreateImage").length === 1, 10_000, "CreateImage after the restart");
  });

  it("approves once on a double click, and tells the second click what happened", async () => {
    await start();
    const { root } = await ask();
    await Promise.all([click(APPROVER, root, "job_approve"), click(GROUP_MEMBER, root, "job_approve")]);
    await eventually(() => h.aws.calls("CreateImage").length === 1, 10_000, "CreateImage");
    await eventually(
      () =>
        [...ephemeralsTo(APPROVER), ...ephemeralsTo(GROUP_MEMBER)].some((t) =>
          t.includes("already approved"),
        ),
      5_000,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(h.slack.messages.filter((m) => m.threadTs === root.ts && keyOf(m) === "approved")).toHaveLength(1);
    expect(h.aws.calls("CreateImage")).toHaveLength(1);
  });

  it("ends in exactly one outcome when Approve and Cancel are clicked at once", async () => {
    await start();
    const { root } = await ask();
    await Promise.all([click(APPROVER, root, "job_approve"), click(ALLOWED_USER, root, "job_cancel")]);
    // Whichever came first, the cancel stands: cancelled once, and no image left behind.
    await eventually(
      () => h.slack.messages.find((m) => m.threadTs === root.ts && keyOf(m) === "cancelled"),
      10_000,
      "the cancel",
    );
    await new Promise((r) => setTimeout(r, 500));
    const keys = h.slack.messages.filter((m) => m.threadTs === root.ts).map(keyOf);
    expect(keys.filter((k) => k === "cancelled")).toHaveLength(1);
    expect(keys.filter((k) => k === "approved").length).toBeLessThanOrEqual(1);
    expect(h.aws.calls("DeregisterImage")).toHaveLength(h.aws.calls("CreateImage").length);
    expect([...h.aws.images.values()].filter((i) => i.name === "web-1 approved")).toEqual([]);
    const job = h.store.recentJobs(
      { requestedBy: ALLOWED_USER, places: [{ targetName: "prod", roleArn: ROLE_ARN, region: "eu-west-1" }] },
      1,
    )[0];
    expect(job?.state).toBe("cancelled");
  });
});
