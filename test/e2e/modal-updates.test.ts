/** The modal follows the person's choices: picking an instance offers a default name, never over a typed one. */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CHANNEL, type Harness, modalActionPayload, startHarness } from "../support/bot-harness.js";

const INSTANCE = "i-0123456789abcdef0";

function selection(h: Harness, typedName: string | undefined) {
  return modalActionPayload(h, {
    answers: { instanceId: INSTANCE, imageName: typedName, channel: CHANNEL },
    action: {
      type: "external_select",
      action_id: "instance_select",
      block_id: "instance",
      selected_option: {
        text: { type: "plain_text", text: `web-1 (${INSTANCE}) · running · t3.micro` },
        value: INSTANCE,
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
    // The name needs no AWS call; listing the instance's volumes reads it under the picker's session, only.
    expect(new Set(h.aws.requests.map((r) => r.action))).toEqual(
      new Set(["AssumeRole", "DescribeInstances"]),
    );
  });

  it("leaves a name the person typed alone when an instance is picked", async () => {
    await h.command({});
    await h.slack.waitFor("views.open");
    await h.interaction(selection(h, "my own name"));
    await new Promise((r) => setTimeout(r, 300));
    expect(h.slack.callsTo("views.update")).toHaveLength(0);
  });
});
