/**
 * The whole /ami flow through the bot's real HTTP endpoint: signed slash command → modal → options load →
 * submission → scoped AssumeRole → CreateImage → threaded updates → final update, and a restart mid-job.
 */

import { performance } from "node:perf_hooks";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  ALLOWED_USER,
  CHANNEL,
  EXTERNAL_ID,
  eventually,
  type Harness,
  ROLE_ARN,
  startHarness,
} from "../support/bot-harness.js";
import { instanceSearchPayload } from "../support/slack-requests.js";

const INSTANCE = "i-0123456789abcdef0";

function keyOf(m: { metadata?: { event_payload?: Record<string, unknown> } | undefined }): string {
  return String(m.metadata?.event_payload?.key ?? "");
}

describe("the /ami flow", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1", volumes: 2 });
  });
  afterEach(async () => {
    await h.close();
  });

  it("opens the modal before any AWS call and follows the image to available in one thread", async () => {
    const t0 = performance.now();
    const res = await h.command({});
    expect(res.status).toBe(200);
    const opened = await h.slack.waitFor("views.open");
    console.log(`[figure] signed /ami → views.open: ${(opened.at - t0).toFixed(1)} ms`);
    expect(h.aws.requests).toHaveLength(0);
    const view = opened.args.view as {
      callback_id: string;
      blocks: { block_id?: string; type?: string }[];
      private_metadata: string;
    };
    expect(view.callback_id).toBe("ami_create");
    expect(view.blocks.map((b) => b.block_id).filter(Boolean)).toEqual([
      "instance",
      "image_name",
      "description",
      "reboot",
      "tags",
      "channel",
      "check",
    ]);
    // The target's reboot policy defaults to never: no choice in the form, only a note saying why.
    expect(view.blocks.find((b) => b.block_id === "reboot")).toMatchObject({ type: "context" });

    // The instance picker's options load, under a read-only scoped session.
    const options = await h.interaction(
      instanceSearchPayload({ userId: ALLOWED_USER, value: "web", metadata: String(view.private_metadata) }),
    );
    expect(options.status).toBe(200);
    expect(options.json()).toEqual({
      options: [
        { text: { type: "plain_text", text: `web-1 (${INSTANCE}) · running · t3.micro` }, value: INSTANCE },
      ],
    });
    const describe = h.aws.calls("DescribeInstances")[0];
    expect(describe?.params).toMatchObject({ MaxResults: "50", "Filter.1.Name": "instance-state-name" });
    expect(Object.values(describe?.params ?? {})).toContain("*web*");

    const submitted = await h.interaction(
      h.submission({
        instanceId: INSTANCE,
        imageName: "web-1 nightly",
        description: "before the upgrade",
        reboot: "no_reboot",
        tags: "team=web\ncost-center=42",
      }),
    );
    expect(submitted.status).toBe(200);
    expect(submitted.body).toBe("");

    const root = await eventually(
      () => h.slack.messages.find((m) => m.channel === CHANNEL && !m.threadTs),
      10_000,
      "root message",
    );
    expect(root.text).toContain(`<@${ALLOWED_USER}>`);
    expect(JSON.stringify(root.blocks)).toContain(INSTANCE);
    expect(JSON.stringify(root.blocks)).toContain("web-1 nightly");
    expect(JSON.stringify(root.blocks)).toContain("123456789012");
    expect(JSON.stringify(root.blocks)).toContain("eu-west-1");

    const create = await eventually(() => h.aws.calls("CreateImage")[0], 10_000, "CreateImage");
    expect(create.params).toMatchObject({
      InstanceId: INSTANCE,
      Name: "web-1 nightly",
      Description: "before the upgrade",
      NoReboot: "true",
      "TagSpecification.1.ResourceType": "image",
      "TagSpecification.2.ResourceType": "snapshot",
    });
    const tagPairs = (spec: number) => {
      const out: Record<string, string> = {};
      for (let i = 1; create.params[`TagSpecification.${spec}.Tag.${i}.Key`]; i++)
        out[create.params[`TagSpecification.${spec}.Tag.${i}.Key`] as string] = create.params[
          `TagSpecification.${spec}.Tag.${i}.Value`
        ] as string;
      return out;
    };
    for (const spec of [1, 2]) {
      expect(tagPairs(spec)).toMatchObject({
        Name: "web-1 nightly",
        team: "web",
        "cost-center": "42",
        "ami-bot:requested-by": ALLOWED_USER,
        "ami-bot:channel": CHANNEL,
      });
      expect(tagPairs(spec)["ami-bot:job-id"]).toMatch(/^[0-9a-f-]{36}$/);
    }

    // The session CreateImage ran under: the bot's identity, the ExternalId, who asked, and only this instance.
    const assumed = h.aws
      .calls("AssumeRole")
      .find((c) => String(c.params.Policy).includes("ec2:CreateImage"));
    expect(assumed?.params).toMatchObject({
      RoleArn: ROLE_ARN,
      ExternalId: EXTERNAL_ID,
      SourceIdentity: ALLOWED_USER,
    });
    const policy = JSON.parse(String(assumed?.params.Policy)) as {
      Statement: { Action: unknown; Resource: unknown }[];
    };
    const createStatement = policy.Statement.find((s) => s.Action === "ec2:CreateImage");
    expect(createStatement?.Resource).toContain(`arn:aws:ec2:eu-west-1:123456789012:instance/${INSTANCE}`);
    expect(JSON.stringify(policy)).not.toContain("instance/*");
    // Signed with the assumed session's key, not the bot's own.
    expect(create.accessKeyId).toMatch(/^ASIA/);

    const imageId = [...h.aws.images.keys()][0] as string;
    await eventually(
      () => h.slack.repliesTo(root.ts).some((m) => keyOf(m) === "pending"),
      10_000,
      "pending reply",
    );
    h.aws.setSnapshotProgress(imageId, 60);
    await eventually(
      () => h.slack.repliesTo(root.ts).some((m) => keyOf(m) === "progress:50"),
      10_000,
      "progress reply",
    );
    h.aws.setImageState(imageId, "available");
    const available = await eventually(
      () => h.slack.repliesTo(root.ts).find((m) => keyOf(m) === "available"),
      10_000,
      "available reply",
    );
    expect(available.broadcast).toBe(true);
    expect(available.text).toContain(imageId);
    expect(available.text).toContain(
      "https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#ImageDetails:imageId=",
    );
    await eventually(() => root.updates > 0 && root.text.includes("available"), 10_000, "root updated");

    // Every update is a reply in the root's thread, in order, once each.
    const replies = h.slack.messages.filter((m) => m !== root);
    expect(replies.every((m) => m.threadTs === root.ts)).toBe(true);
    // A check that reads the image still pending and then its snapshots already at 100 % (the image turned
    // available between the two calls, as AWS's snapshots finish first) rightly posts 75 % before available.
    expect(replies.map(keyOf).filter((k) => k !== "progress:75")).toEqual([
      "creating",
      "pending",
      "progress:50",
      "available",
    ]);
    expect(replies.map(keyOf).slice(-1)).toEqual(["available"]);
    const update = h.slack.callsTo("chat.update").at(-1);
    expect(update?.args).toMatchObject({ channel: CHANNEL, ts: root.ts });
    expect(JSON.stringify(update?.args.blocks)).toContain(imageId);
  });

  it("keeps the modal open with errors under the fields and calls no AWS when the form is invalid", async () => {
    await h.command({});
    await h.slack.waitFor("views.open");
    const res = await h.interaction(
      h.submission({
        instanceId: INSTANCE,
        imageName: "ab",
        // No reboot answer: not an error any more (the target decides; a `never` target sends NoReboot).
        reboot: undefined,
        tags: "aws:owner=me",
        description: "x".repeat(300),
      }),
    );
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      response_action: "errors",
      errors: {
        image_name: "The name needs at least 3 characters.",
        description: "The description is 300 characters; the limit is 255.",
        tags: "Line 1: keys starting with “aws:” are reserved by AWS.",
      },
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(h.aws.requests).toHaveLength(0);
    expect(h.store.unfinishedCount()).toBe(0);
    expect(h.slack.callsTo("chat.postMessage")).toHaveLength(0);
  });

  it("reports the image exactly once when the bot restarts while it is pending", async () => {
    await h.command({});
    await h.slack.waitFor("views.open");
    await h.interaction(h.submission({ instanceId: INSTANCE, imageName: "web-1 restart", reboot: "reboot" }));
    const root = await eventually(() => h.slack.messages.find((m) => !m.threadTs), 10_000, "root");
    await eventually(() => h.slack.repliesTo(root.ts).some((m) => keyOf(m) === "pending"), 10_000, "pending");
    await h.bot.stop();

    const imageId = [...h.aws.images.keys()][0] as string;
    h.aws.setImageState(imageId, "available");
    await h.restart();

    await eventually(
      () => h.slack.repliesTo(root.ts).some((m) => keyOf(m) === "available"),
      10_000,
      "available after restart",
    );
    await new Promise((r) => setTimeout(r, 500)); // give a duplicate the chance to appear
    const keys = h.slack.repliesTo(root.ts).map(keyOf);
    expect(keys.filter((k) => k === "available")).toHaveLength(1);
    expect(keys).toEqual(["creating", "pending", "available"]);
    expect(h.slack.messages.filter((m) => !m.threadTs)).toHaveLength(1);
    expect(h.aws.calls("CreateImage")).toHaveLength(1);
  });

  it("answers /ami help with usage, privately, and opens nothing", async () => {
    const res = await h.command({ text: "help" });
    expect(res.json()).toMatchObject({ response_type: "ephemeral" });
    expect(String((res.json() as { text: string }).text)).toContain("/ami i-0123456789abcdef0");
    expect(h.slack.callsTo("views.open")).toHaveLength(0);
  });

  it("tells the person in the thread and privately when AWS refuses the name", async () => {
    h.aws.failNext("CreateImage", { code: "InvalidAMIName.Duplicate", status: 400 });
    await h.command({});
    await h.slack.waitFor("views.open");
    await h.interaction(h.submission({ instanceId: INSTANCE, imageName: "taken name", reboot: "reboot" }));
    const root = await eventually(() => h.slack.messages.find((m) => !m.threadTs), 10_000, "root");
    const refused = await eventually(
      () => h.slack.repliesTo(root.ts).find((m) => keyOf(m) === "refused"),
      10_000,
      "refused",
    );
    expect(refused.text).toContain("already exists");
    const note = await h.slack.waitFor("chat.postEphemeral");
    expect(note.args).toMatchObject({ user: ALLOWED_USER, channel: CHANNEL });
    await eventually(() => root.updates > 0 && root.text.includes("Not created"), 10_000, "root updated");
  });

  it("carries on in a DM and tells the requester how to fix it when the bot cannot post in the channel", async () => {
    await h.close();
    h = await startHarness({ slack: { unusableChannels: [CHANNEL] } });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    await h.command({});
    await h.slack.waitFor("views.open");
    await h.interaction(h.submission({ instanceId: INSTANCE, imageName: "web-1 dm", reboot: "reboot" }));

    const root = await eventually(() => h.slack.messages.find((m) => !m.threadTs), 10_000, "root in DM");
    const dm = `D${ALLOWED_USER.slice(1)}`;
    expect(root.channel).toBe(dm);
    const note = await eventually(
      () => h.slack.messages.find((m) => m.channel === dm && m.text.includes("/invite @ami-bot")),
      10_000,
      "note to the requester",
    );
    expect(note.text).toContain(`I can't post in <#${CHANNEL}>`);

    const imageId = await eventually(() => [...h.aws.images.keys()][0], 10_000, "image created");
    h.aws.setImageState(imageId, "available");
    await eventually(
      () => h.slack.repliesTo(root.ts).some((m) => keyOf(m) === "available"),
      10_000,
      "available in DM",
    );
    // The root in the DM is updated in place like any other.
    await eventually(() => root.updates > 0 && root.text.includes("available"), 10_000, "DM root updated");
    expect(h.slack.messages.filter((m) => m.channel === CHANNEL)).toHaveLength(0);
  });
});
