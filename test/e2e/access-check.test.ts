/**
 * Checking access before anything is created: `/ami check i-…` and the modal's "Check access" button run
 * CreateImage with DryRun under the same scoped session a real request would use.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  CHANNEL,
  eventually,
  type Harness,
  modalActionPayload,
  startHarness,
} from "../support/bot-harness.js";

const INSTANCE = "i-0123456789abcdef0";
const UNTAGGED = "i-0fedcba9876543210";

function buttonClick(h: Harness, instanceId: string | undefined) {
  return modalActionPayload(h, {
    answers: { instanceId, channel: CHANNEL },
    action: { action_id: "check_access", block_id: "check", type: "button", value: "check" },
  });
}

describe("checking access without creating anything", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it("answers /ami check with a dry run that AWS allows, and creates nothing", async () => {
    h = await startHarness();
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    const res = await h.command({ text: `check ${INSTANCE}` });
    expect(res.json()).toMatchObject({ response_type: "ephemeral" });
    const answer = await h.slack.waitFor("response_url");
    expect(answer.args.text).toBe(
      `:white_check_mark: AWS would allow an image of web-1 (${INSTANCE}) in prod (123456789012) · eu-west-1. Nothing was created.`,
    );
    expect(h.aws.calls("CreateImage").map((c) => c.params.DryRun)).toEqual(["true"]);
    expect(h.aws.images.size).toBe(0);
    expect(h.slack.callsTo("views.open")).toHaveLength(0);
    expect(h.slack.callsTo("chat.postMessage")).toHaveLength(0);
  });

  it("says plainly when the instance does not exist", async () => {
    h = await startHarness();
    await h.command({ text: `check ${INSTANCE}` });
    const answer = await h.slack.waitFor("response_url");
    expect(answer.args.text).toBe(
      `:no_entry: Instance ${INSTANCE} was not found in prod (123456789012) · eu-west-1.`,
    );
    expect(h.aws.calls("CreateImage")).toHaveLength(0);
  });

  it("shows the dry run's verdict in the modal when the button is clicked", async () => {
    h = await startHarness({ env: { AMI_TARGET_INSTANCE_TAGS: "ami-bot:allowed=true" } });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1", tags: { "ami-bot:allowed": "true" } });
    h.aws.addInstance({ instanceId: UNTAGGED, name: "db-1" });
    await h.command({});
    await h.slack.waitFor("views.open");

    await h.interaction(buttonClick(h, INSTANCE));
    const allowed = await h.slack.waitFor("views.update");
    expect(JSON.stringify(allowed.args.view)).toContain("AWS would allow an image of web-1");

    await h.interaction(buttonClick(h, UNTAGGED));
    const refused = await eventually(() => h.slack.callsTo("views.update")[1], 10_000, "second views.update");
    expect(JSON.stringify(refused.args.view)).toContain(
      `Instance ${UNTAGGED} is not one that target prod allows imaging`,
    );
    // Only the in-scope instance got as far as a dry run; nothing was created.
    expect(h.aws.calls("CreateImage").map((c) => [c.params.InstanceId, c.params.DryRun])).toEqual([
      [INSTANCE, "true"],
    ]);
    expect(h.aws.images.size).toBe(0);
  });

  it("asks for an instance first when the button is clicked with none chosen", async () => {
    h = await startHarness();
    await h.command({});
    await h.slack.waitFor("views.open");
    await h.interaction(buttonClick(h, undefined));
    const update = await h.slack.waitFor("views.update");
    expect(JSON.stringify(update.args.view)).toContain("Choose an instance first, then check again.");
    expect(h.aws.requests).toHaveLength(0);
  });
});
