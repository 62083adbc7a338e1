/**
 * Cancel, through the bot's real HTTP endpoint against the fakes: a queued job ends with no AWS call; a
 * pending one has its image deregistered with its snapshots, in one call, under a session allowed only that
 * image and that job's snapshots; someone else's click and a click on a finished job change nothing.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { StoredMessage } from "../fakes/fake-slack.js";
import { ALLOWED_USER, CHANNEL, eventually, type Harness, startHarness } from "../support/bot-harness.js";
import { buttonIn, messageButtonPayload } from "../support/job-buttons.js";

const INSTANCE = "i-0123456789abcdef0";
const APPROVER = "U0APPROVER1";
const STRANGER = "U0STRANGER";

const keyOf = (m: StoredMessage) => String(m.metadata?.event_payload?.key ?? "");

describe("cancel", () => {
  let h: Harness;

  afterEach(async () => {
    await h?.close();
  });

  async function ask(): Promise<{ root: StoredMessage; cancel: Record<string, unknown> }> {
    await h.command({});
    await h.slack.waitFor("views.open");
    const res = await h.interaction(h.submission({ instanceId: INSTANCE, imageName: "web-1 to cancel" }));
    expect(res.body).toBe("");
    const root = await eventually(
      () => h.slack.messages.find((m) => m.channel === CHANNEL && !m.threadTs),
      10_000,
      "the root message",
    );
    // Kept as drawn: the root is rewritten in place as the job moves on.
    const cancel = { ...buttonIn(root, "job_cancel") };
    expect(cancel).toMatchObject({
      action_id: "job_cancel",
      value: expect.any(String),
      confirm: expect.any(Object),
    });
    return { root, cancel };
  }

  const click = (userId: string, root: StoredMessage, action: Record<string, unknown>) =>
    h.interaction(messageButtonPayload({ userId, channel: root.channel, messageTs: root.ts, action }));

  const ephemeralsTo = (userId: string) =>
    h.slack
      .callsTo("chat.postEphemeral")
      .filter((c) => c.args.user === userId)
      .map((c) => String(c.args.text));

  const thread = (root: StoredMessage) => h.slack.messages.filter((m) => m.threadTs === root.ts);

  it("deregisters a pending image and its snapshots in one call, under a policy for that image only", async () => {
    h = await startHarness();
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1", volumes: 2 });
    const { root, cancel } = await ask();
    await eventually(() => h.aws.images.size === 1, 10_000, "the image");
    const [imageId, image] = [...h.aws.images.entries()][0] ?? [];
    const snapshots = image?.snapshots.map((s) => s.snapshotId) ?? [];
    expect(snapshots).toHaveLength(2);
    await eventually(() => thread(root).some((m) => keyOf(m) === "pending"), 10_000, "pending");

    await click(ALLOWED_USER, root, cancel);
    await eventually(() => thread(root).some((m) => keyOf(m) === "cancelled"), 10_000, "the cancel");

    const calls = h.aws.calls("DeregisterImage");
    expect(calls).toHaveLength(1);
    expect(calls[0]?.params).toMatchObject({ ImageId: imageId, DeleteAssociatedSnapshots: "true" });
    expect(h.aws.images.has(imageId as string)).toBe(false);
    for (const s of snapshots) expect(h.aws.snapshots.has(s)).toBe(false);
    // The session it was made under allows that one image, and only what carries this job's tag.
    const policy = h.aws.sessions.get(calls[0]?.accessKeyId ?? "")?.policy;
    const jobId = String(cancel.value);
    expect(policy?.Statement).toEqual([
      expect.objectContaining({
        Action: ["ec2:DeregisterImage"],
        Resource: [`arn:aws:ec2:eu-west-1::image/${imageId}`],
        Condition: { StringEquals: { "aws:ResourceTag/ami-bot:job-id": [jobId] } },
      }),
      expect.objectContaining({
        Action: ["ec2:DeleteSnapshot"],
        Resource: ["arn:aws:ec2:eu-west-1::snapshot/*"],
        Condition: { StringEquals: { "aws:ResourceTag/ami-bot:job-id": [jobId] } },
      }),
    ]);
    const replies = thread(root).map((m) => keyOf(m).split(":")[0]);
    expect(replies).toEqual(expect.arrayContaining(["cancelling", "cancelled"]));
    const cancelled = thread(root).find((m) => keyOf(m) === "cancelled");
    expect(cancelled?.text).toContain(`Cancelled by <@${ALLOWED_USER}>`);
    expect(cancelled?.text).toContain(`Image \`${imageId}\` was deregistered and its snapshots deleted.`);
    // The root is rewritten after the final reply.
    const rootNow = await eventually(
      () => h.slack.messages.find((m) => m.ts === root.ts && m.text.includes("Cancelled:")),
      10_000,
      "the final root",
    );
    expect(JSON.stringify(rootNow.blocks)).toContain(`Cancelled by <@${ALLOWED_USER}>`);
    expect(buttonIn(rootNow, "job_cancel")).toBeUndefined();
    // Nothing is watched any more: no "available" ever comes for it.
    await new Promise((r) => setTimeout(r, 400));
    expect(thread(root).map(keyOf)).not.toContain("available");
    expect(h.aws.calls("DeregisterImage")).toHaveLength(1);
  });

  it("ends a queued job with no call to AWS to create or remove anything", async () => {
    h = await startHarness({
      env: {
        AMI_TARGET_ALLOW_USERS: `${ALLOWED_USER},${APPROVER}`,
        AMI_TARGET_APPROVERS: APPROVER,
      },
    });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    const { root, cancel } = await ask();
    const approve = { ...buttonIn(root, "job_approve") };
    // Approved, so queued; the watcher's look at the instance is slow, and the cancel comes meanwhile:
    // as soon as that look has started, with seconds to spare however slow the machine.
    const DELAY_MS = 5_000;
    h.aws.delayNext("DescribeInstances", DELAY_MS);
    const looks = h.aws.calls("DescribeInstances").length;
    await click(APPROVER, root, approve);
    const look = await eventually(
      () => h.aws.calls("DescribeInstances")[looks],
      10_000,
      "the watcher's DescribeInstances",
    );
    await click(ALLOWED_USER, root, cancel);
    await eventually(() => thread(root).some((m) => keyOf(m) === "cancelled"), 10_000, "the cancel");
    await eventually(() => thread(root).some((m) => keyOf(m) === "approved"), 10_000, "approved");
    // The slow look is answered; a watcher that went on regardless would call CreateImage right after.
    await new Promise((r) => setTimeout(r, Math.max(0, look.at + DELAY_MS + 2_000 - Date.now())));
    expect(h.aws.calls("CreateImage")).toEqual([]);
    expect(h.aws.calls("DeregisterImage")).toEqual([]);
    expect(thread(root).find((m) => keyOf(m) === "cancelled")?.text).toContain("Nothing was created.");
  });

  it("refuses someone who is neither the requester nor an approver, and changes nothing", async () => {
    h = await startHarness({ env: { AMI_TARGET_ALLOW_USERS: `${ALLOWED_USER},${STRANGER}` } });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    const { root, cancel } = await ask();
    await click(STRANGER, root, cancel);
    await eventually(() => ephemeralsTo(STRANGER).length === 1, 10_000, "the refusal");
    expect(ephemeralsTo(STRANGER)[0]).toContain("Only the person who asked for this image");
    await eventually(() => h.aws.calls("CreateImage").length === 1, 10_000, "CreateImage");
    expect(h.aws.calls("DeregisterImage")).toEqual([]);
    expect(thread(root).some((m) => keyOf(m).startsWith("cancelling"))).toBe(false);
  });

  it("answers a Cancel on an available image's old message with its real state", async () => {
    h = await startHarness();
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    const { root, cancel } = await ask();
    await eventually(() => h.aws.images.size === 1, 10_000, "the image");
    h.aws.setImageState([...h.aws.images.keys()][0] as string, "available");
    await eventually(() => thread(root).some((m) => keyOf(m) === "available"), 10_000, "available");
    await click(ALLOWED_USER, root, cancel);
    await eventually(() => ephemeralsTo(ALLOWED_USER).some((t) => t.includes("is already made")), 10_000);
    expect(h.aws.calls("DeregisterImage")).toEqual([]);
    expect(h.aws.images.size).toBe(1);
  });
});
