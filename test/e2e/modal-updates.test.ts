/** The modal follows the person's choices: picking an instance offers a default name, never over a typed one. */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CHANNEL,
  eventually,
  type Harness,
  modalActionPayload,
  startHarness,
} from "../support/bot-harness.js";

const INSTANCE = "i-0123456789abcdef0";

function selection(h: Harness, typedName: string | undefined, instanceId = INSTANCE) {
  const name = instanceId === INSTANCE ? "web-1" : "db-1";
  return modalActionPayload(h, {
    answers: { instanceId, imageName: typedName, channel: CHANNEL },
    action: {
      type: "external_select",
      action_id: "instance_select",
      block_id: "instance",
      selected_option: {
        text: { type: "plain_text", text: `${name} (${instanceId}) · running · t3.micro` },
        value: instanceId,
      },
    },
  });
}

describe("the modal as the person fills it in", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it("offers the instance's name and the UTC time as the image name when an instance is picked", async () => {
    await h.command({});
    await h.slack.waitFor("views.open");
    await h.interaction(selection(h, undefined));
    const update = await h.slack.waitFor("views.update");
    const view = update.args.view as {
      blocks: { block_id?: string; element?: { initial_value?: string } }[];
    };
    const name = view.blocks.find((b) => b.block_id === "image_name.1");
    expect(name?.element?.initial_value).toMatch(/^web-1 \d{4}-\d{2}-\d{2} \d{4} UTC$/);
    expect(update.args).toMatchObject({ view_id: "V0VIEW0001", hash: "1596530361.3wRYuk3R" });
    // The name needs no AWS call: it is redrawn before AWS is asked anything.
    const firstAws = await eventually(() => h.aws.requests[0], 10_000, "the volume lookup");
    expect(update.at).toBeLessThanOrEqual(firstAws.at);
    // Listing the instance's volumes then reads it under the picker's session, only: once it has been
    // read, a short settle gives anything else time to show up.
    await eventually(() => h.aws.calls("DescribeInstances")[0], 10_000, "the instance read");
    await new Promise((r) => setTimeout(r, 300));
    expect(new Set(h.aws.requests.map((r) => r.action))).toEqual(
      new Set(["AssumeRole", "DescribeInstances"]),
    );
  });

  it("keeps a name typed while the volumes load: their redraw leaves the name field as it is", async () => {
    h.aws.addInstance({ instanceId: "i-0000000000000b0b0", name: "db-1", volumes: 3 });
    await h.command({});
    await h.slack.waitFor("views.open");
    await h.interaction(selection(h, undefined, "i-0000000000000b0b0"));
    const updates = await eventually(
      () => (h.slack.callsTo("views.update").length >= 2 ? h.slack.callsTo("views.update") : undefined),
      10_000,
      "the name redraw, then the volumes redraw",
    );
    type Blocks = { block_id?: string; element?: { initial_value?: string } }[];
    const blocksOf = (i: number): Blocks =>
      (updates[i]?.args.view as { blocks?: Blocks } | undefined)?.blocks ?? [];
    // First the default name, in a new name block; then the volumes, with that same block id and no value
    // of its own, so whatever the person typed in between stays (Slack keeps an unchanged block's input).
    expect(blocksOf(0).find((b) => b.block_id === "image_name.1")?.element?.initial_value).toMatch(/ UTC$/);
    const second = blocksOf(1);
    expect(second.some((b) => b.block_id?.startsWith("volumes."))).toBe(true);
    expect(second.find((b) => b.block_id === "image_name.1")?.element).not.toHaveProperty("initial_value");
    // The second redraw names the view's hash after the first.
    expect(updates[1]?.args.hash).toBe("h");
  });

  it("leaves a name the person typed alone when an instance is picked", async () => {
    await h.command({});
    await h.slack.waitFor("views.open");
    await h.interaction(selection(h, "my own name"));
    // A name redraw would come before AWS is asked anything: once the volume lookup is out, settle briefly.
    await eventually(() => h.aws.calls("DescribeInstances")[0], 10_000, "the volume lookup");
    await new Promise((r) => setTimeout(r, 300));
    expect(h.slack.callsTo("views.update")).toHaveLength(0);
  });
});
