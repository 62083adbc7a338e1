/**
 * "Try again" under a refused job's reply, through the bot's real HTTP endpoint: the form opens filled in
 * with the job's values, a taken name is replaced by a free one, and clicks that may not retry the job
 * (someone not allowed on its target, a forged job id) get a private answer and no form.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { deniedMessage } from "../../src/domain/access.js";
import { STILL_RUNNING, UNKNOWN_JOB } from "../../src/slack/actions/try-again.js";
import type { StoredMessage } from "../fakes/fake-slack.js";
import {
  ALLOWED_USER,
  CHANNEL,
  eventually,
  type Harness,
  ROLE_ARN,
  startHarness,
} from "../support/bot-harness.js";
import { messageButtonPayload } from "../support/job-buttons.js";

const INSTANCE = "i-0123456789abcdef0";
const TAKEN = "web-1 nightly";
const STRANGER = "U0STRANGER";

type Block = { block_id?: string; element?: Record<string, unknown>; elements?: Record<string, unknown>[] };

const keyOf = (m: StoredMessage) => String(m.metadata?.event_payload?.key ?? "");

describe("Try again", () => {
  let h: Harness;
  let refused: StoredMessage;
  let button: Record<string, unknown>;

  const click = (userId: string, value: unknown) =>
    h.interaction(
      messageButtonPayload({
        userId,
        channel: CHANNEL,
        threadTs: refused.threadTs ?? "",
        messageTs: refused.ts,
        action: { ...button, value },
        blockId: "try_again",
      }),
    );

  beforeEach(async () => {
    h = await startHarness();
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1", volumes: 2 });
    // Someone made an image with this name before: CreateImage will refuse the job's.
    h.aws.addImage({ name: TAKEN, region: "eu-west-1" });
    await h.command({});
    await h.slack.waitFor("views.open");
    const res = await h.interaction(
      h.submission({
        instanceId: INSTANCE,
        imageName: TAKEN,
        description: "before the upgrade",
        tags: "team=web\ncost-center=42",
      }),
    );
    expect(res.body).toBe("");
    refused = await eventually(
      () => h.slack.messages.find((m) => m.threadTs && keyOf(m) === "refused"),
      10_000,
      "the refusal in the thread",
    );
    const actions = (refused.blocks as Block[]).find((b) => b.block_id === "try_again");
    button = actions?.elements?.[0] ?? {};
  });
  afterEach(async () => {
    await h.close();
  });

  it("offers a Try again button under the refusal, keeping its text", () => {
    expect(refused.text).toContain("The image was not created.");
    expect((refused.blocks as Block[])[0]).toMatchObject({ type: "section", text: { text: refused.text } });
    expect(button).toMatchObject({
      type: "button",
      action_id: "try_again",
      text: { text: "Try again" },
      value: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
  });

  it("opens the form filled in with the job's values, then offers a free name for the taken one", async () => {
    const opensBefore = h.slack.callsTo("views.open").length;
    const res = await click(ALLOWED_USER, button.value);
    expect(res.status).toBe(200);
    expect(res.body).toBe("");
    const opened = await h.slack.waitFor(
      "views.open",
      () => h.slack.callsTo("views.open").length > opensBefore,
    );
    expect(opened.args.trigger_id).toBe("111.222.valid");
    const blocks = (opened.args.view as { blocks: Block[] }).blocks;
    const element = (id: string) => blocks.find((b) => b.block_id === id)?.element;
    expect(element("instance")?.initial_option).toEqual({
      text: { type: "plain_text", text: `web-1 (${INSTANCE})`, emoji: true },
      value: INSTANCE,
    });
    expect(element("image_name")?.initial_value).toBe(TAKEN);
    expect(element("description")?.initial_value).toBe("before the upgrade");
    expect(element("tags")?.initial_value).toBe("team=web\ncost-center=42");
    expect(element("channel")?.initial_conversation).toBe(CHANNEL);

    // After the form opened: AWS says the name is taken, and the field is redrawn with a free one.
    const update = await h.slack.waitFor("views.update");
    const updated = (update.args.view as { blocks: Block[] }).blocks;
    expect(updated.find((b) => b.block_id === "image_name.1")?.element?.initial_value).toBe(`${TAKEN} (2)`);
    expect(updated.find((b) => b.block_id === "image_name")).toBeUndefined();
    // The instance's volumes, listed as /ami i-… lists them, all ticked (the job left none out).
    const volumes = updated.find((b) => b.block_id === `volumes.${INSTANCE}`)?.element;
    expect(volumes?.initial_options).toHaveLength(1);
    // The rest of the form stays as opened.
    expect(updated.find((b) => b.block_id === "tags")?.element?.initial_value).toBe(
      "team=web\ncost-center=42",
    );
    const byName = h.aws
      .calls("DescribeImages")
      .filter((c) => c.params["Filter.1.Name"] === "name")
      .map((c) => [c.params["Filter.1.Value.1"], c.params["Owner.1"]]);
    expect(byName).toEqual([
      [TAKEN, "self"],
      [`${TAKEN} (2)`, "self"],
    ]);

    // Submitting it is an ordinary /ami submission: a new job, and this time an image.
    const submitted = await h.interaction(
      h.submission(
        {
          instanceId: INSTANCE,
          imageName: `${TAKEN} (2)`,
          description: "before the upgrade",
          tags: "team=web\ncost-center=42",
        },
        { viewId: "V0VIEW0002" },
      ),
    );
    expect(submitted.body).toBe("");
    const create = await eventually(
      () => h.aws.calls("CreateImage").find((c) => c.params.Name === `${TAKEN} (2)`),
      10_000,
      "the second CreateImage",
    );
    expect(create.params).toMatchObject({ InstanceId: INSTANCE, Description: "before the upgrade" });
    expect(h.store.unfinishedCount()).toBe(1);
  });

  it("tells someone not allowed on the job's target so, privately, and opens nothing", async () => {
    const opensBefore = h.slack.callsTo("views.open").length;
    const res = await click(STRANGER, button.value);
    expect(res.status).toBe(200);
    const answer = await h.slack.waitFor("chat.postEphemeral", (c) => c.args.user === STRANGER);
    expect(answer.args).toMatchObject({
      channel: CHANNEL,
      thread_ts: refused.threadTs,
      text: deniedMessage({ standing: "member", channelPrivate: true }),
    });
    await new Promise((r) => setTimeout(r, 250));
    expect(h.slack.callsTo("views.open")).toHaveLength(opensBefore);
    expect(h.slack.callsTo("views.update")).toHaveLength(0);
  });

  it("says a forged job id no longer exists, and opens nothing", async () => {
    const opensBefore = h.slack.callsTo("views.open").length;
    const awsBefore = h.aws.requests.length;
    await click(ALLOWED_USER, "00000000-0000-4000-8000-000000000000");
    const answer = await h.slack.waitFor("chat.postEphemeral", (c) => c.args.text === UNKNOWN_JOB);
    expect(answer.args).toMatchObject({ user: ALLOWED_USER, channel: CHANNEL });
    expect(answer.args.text).toMatch(/^That image request no longer exists/);
    await new Promise((r) => setTimeout(r, 250));
    expect(h.slack.callsTo("views.open")).toHaveLength(opensBefore);
    expect(h.aws.requests.length).toBe(awsBefore);
  });

  it("answers a job still being made with its state, and opens nothing", async () => {
    await h.command({});
    await h.slack.waitFor("views.open", () => h.slack.callsTo("views.open").length > 1);
    await h.interaction(
      h.submission({ instanceId: INSTANCE, imageName: "web-1 fresh" }, { viewId: "V0VIEW0002" }),
    );
    await eventually(() => h.aws.calls("CreateImage").length === 2, 10_000, "the second CreateImage");
    const places = [{ targetName: "prod", roleArn: ROLE_ARN, region: "eu-west-1" }];
    const running = h.store
      .recentJobs({ requestedBy: ALLOWED_USER, places }, 10)
      .find((j) => j.state === "pending" || j.state === "queued");
    expect(running).toBeDefined();
    const opensBefore = h.slack.callsTo("views.open").length;
    await click(ALLOWED_USER, running?.id);
    const answer = await h.slack.waitFor("chat.postEphemeral", (c) => c.args.text === STILL_RUNNING);
    expect(answer.args.user).toBe(ALLOWED_USER);
    expect(h.slack.callsTo("views.open")).toHaveLength(opensBefore);
  });
});
