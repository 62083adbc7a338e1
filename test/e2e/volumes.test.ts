/**
 * Choosing the volumes, through the bot's real HTTP endpoint: picking an instance lists its EBS volumes in
 * the form (read under the person's picker session), an unticked volume reaches CreateImage as a NoDevice
 * mapping and the thread says it was left out, and a forged device is refused in the form before AWS.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_SLACK_BUDGETS } from "../../src/slack/budgets.js";
import {
  ALLOWED_USER,
  CHANNEL,
  eventually,
  type FormAnswers,
  type Harness,
  modalActionPayload,
  startHarness,
} from "../support/bot-harness.js";

const INSTANCE = "i-0123456789abcdef0";
const VOLUMES_BLOCK = `volumes.${INSTANCE}`;

interface Option {
  text: { text: string };
  value: string;
}
interface Block {
  type: string;
  block_id?: string;
  hint?: { text: string };
  element?: { type?: string; options?: Option[]; initial_options?: Option[] };
  elements?: { text?: string }[];
}
interface View {
  blocks: Block[];
  private_metadata: string;
}

function keyOf(m: { metadata?: { event_payload?: Record<string, unknown> } | undefined }): string {
  return String(m.metadata?.event_payload?.key ?? "");
}

/** Picks the instance in the open form, as Slack sends the external select's action. */
function pickInstance(h: Harness) {
  return h.interaction(
    modalActionPayload(h, {
      answers: { instanceId: INSTANCE, channel: CHANNEL },
      action: {
        type: "external_select",
        action_id: "instance_select",
        block_id: "instance",
        selected_option: {
          text: { type: "plain_text", text: `web-1 (${INSTANCE}) · running · t3.micro` },
          value: INSTANCE,
        },
      },
    }),
  );
}

/**
 * The form as Slack sends it on submit: the blocks and metadata of the view as the bot last drew it (or as
 * a forger rewrote them), the answers, and the volume boxes left ticked.
 */
function submission(
  h: Harness,
  view: View,
  answers: FormAnswers,
  ticked: string[] | undefined,
  viewId = "V0VIEW0001",
): Record<string, unknown> {
  const base = h.submission(answers, { viewId }) as { view: Record<string, unknown> };
  const state = (base.view.state as { values: Record<string, unknown> }).values;
  return {
    ...base,
    view: {
      ...base.view,
      blocks: view.blocks,
      private_metadata: view.private_metadata,
      state: {
        values: {
          ...state,
          ...(ticked && {
            [VOLUMES_BLOCK]: {
              volumes_choice: {
                type: "checkboxes",
                selected_options: ticked.map((value) => ({
                  value,
                  text: { type: "plain_text", text: value },
                })),
              },
            },
          }),
        },
      },
    },
  };
}

const ANSWERS: FormAnswers = { instanceId: INSTANCE, imageName: "web-1 without scratch", channel: CHANNEL };

describe("choosing the volumes", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
    h.aws.addInstance({
      instanceId: INSTANCE,
      name: "web-1",
      volumes: [
        { deviceName: "/dev/xvda", sizeGiB: 8, volumeType: "gp3", volumeId: "vol-00000000000000001" },
        { deviceName: "/dev/sdf", sizeGiB: 100, volumeType: "gp3", volumeId: "vol-00000000000000002" },
        { deviceName: "/dev/sdg", sizeGiB: 500, volumeType: "st1", volumeId: "vol-00000000000000003" },
      ],
    });
  });
  afterEach(async () => {
    await h.close();
  });

  /** Opens the form and picks the instance; returns the form as redrawn with its volumes. */
  async function formWithVolumes(): Promise<View> {
    await h.command({});
    await h.slack.waitFor("views.open");
    await pickInstance(h);
    // The name and instance are redrawn at once; the volumes (or the note that they could not be listed)
    // come in a second redraw once AWS answers.
    const update = await h.slack.waitFor("views.update", (c) =>
      /volumes\.|could not list this instance's volumes/.test(JSON.stringify(c.args.view)),
    );
    return update.args.view as View;
  }

  it("lists the volumes when an instance is picked, leaves an unticked one out and says so in the thread", async () => {
    const view = await formWithVolumes();
    const field = view.blocks.find((b) => b.block_id === VOLUMES_BLOCK);
    expect(field?.element?.type).toBe("checkboxes");
    expect(field?.element?.options?.map((o) => [o.text.text, o.value])).toEqual([
      ["/dev/sdf · 100 GiB · gp3", "/dev/sdf"],
      ["/dev/sdg · 500 GiB · st1", "/dev/sdg"],
    ]);
    expect(field?.element?.initial_options).toEqual(field?.element?.options);
    expect(field?.hint?.text).toContain("The root volume, /dev/xvda · 8 GiB · gp3, is always included.");
    // Read under the person's picker session (a policy fake-aws enforces), and nothing but reads.
    const listed = h.aws.calls("DescribeVolumes")[0];
    expect(listed?.accessKeyId).toMatch(/^ASIA/);
    expect(h.aws.sessions.get(listed?.accessKeyId ?? "")?.sourceIdentity).toBe(ALLOWED_USER);
    expect(h.aws.calls("CreateImage")).toHaveLength(0);

    const res = await h.interaction(submission(h, view, ANSWERS, ["/dev/sdf"]));
    expect(res.status).toBe(200);
    expect(res.body).toBe("");

    const create = await eventually(() => h.aws.calls("CreateImage")[0], 10_000, "CreateImage");
    const mappings = Object.fromEntries(
      Object.entries(create.params).filter(([k]) => k.startsWith("BlockDeviceMapping.")),
    );
    expect(mappings).toEqual({
      "BlockDeviceMapping.1.DeviceName": "/dev/sdg",
      "BlockDeviceMapping.1.NoDevice": "",
    });
    expect(create.params).toMatchObject({ InstanceId: INSTANCE, Name: "web-1 without scratch" });
    const image = [...h.aws.images.values()][0];
    expect(image?.snapshots.map((s) => s.deviceName)).toEqual(["/dev/xvda", "/dev/sdf"]);

    const root = await eventually(
      () => h.slack.messages.find((m) => m.channel === CHANNEL && !m.threadTs),
      10_000,
      "root message",
    );
    expect(JSON.stringify(root.blocks)).toContain("*Volumes left out*\\n`/dev/sdg`");
    const creating = await eventually(
      () => h.slack.repliesTo(root.ts).find((m) => keyOf(m) === "creating"),
      10_000,
      "creating reply",
    );
    expect(creating.text).toContain("Leaving out the volume `/dev/sdg`; every other volume is in the image.");
  });

  it("refuses a forged or stale device under the volumes field and never calls CreateImage", async () => {
    const view = await formWithVolumes();
    // The view's boxes rewritten to offer a device the instance does not have, then the root, left unticked.
    const forge = (device: string): View => ({
      ...view,
      blocks: view.blocks.map((b) =>
        b.block_id === VOLUMES_BLOCK && b.element
          ? {
              ...b,
              element: {
                ...b.element,
                options: [...(b.element.options ?? []), { text: { text: device }, value: device }],
              },
            }
          : b,
      ),
    });
    const foreign = await h.interaction(
      submission(h, forge("/dev/sdz"), ANSWERS, ["/dev/sdf", "/dev/sdg"], "V0FORGED01"),
    );
    expect(foreign.json()).toEqual({
      response_action: "errors",
      errors: {
        [VOLUMES_BLOCK]: `/dev/sdz is not a volume of ${INSTANCE}. Pick the instance again to see its volumes now.`,
      },
    });
    const rootDevice = await h.interaction(
      submission(h, forge("/dev/xvda"), ANSWERS, ["/dev/sdf", "/dev/sdg"], "V0FORGED02"),
    );
    expect(rootDevice.json()).toEqual({
      response_action: "errors",
      errors: {
        [VOLUMES_BLOCK]: `/dev/xvda is the root volume of ${INSTANCE}: an image always includes it.`,
      },
    });
    // Boxes left from another instance (the redraw for the new pick lost): not this instance's to leave out.
    h.aws.addInstance({ instanceId: "i-0fedcba9876543210", name: "db-1", volumes: 2 });
    const stale = await h.interaction(
      submission(h, view, { ...ANSWERS, instanceId: "i-0fedcba9876543210" }, ["/dev/sdf"], "V0STALE001"),
    );
    expect(stale.json()).toEqual({
      response_action: "errors",
      errors: {
        [VOLUMES_BLOCK]:
          "These volumes were listed for another instance. Pick the instance again to list its volumes.",
      },
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(h.aws.calls("CreateImage")).toHaveLength(0);
    expect(h.store.unfinishedCount()).toBe(0);
    expect(h.slack.callsTo("chat.postMessage")).toHaveLength(0);
  });

  it("lists the volumes of the instance /ami preselects, once the form is open", async () => {
    await h.command({ text: INSTANCE });
    const opened = await h.slack.waitFor("views.open");
    const update = await h.slack.waitFor("views.update");
    // AWS is asked only after the form is open (the trigger lives 3 seconds).
    expect(h.aws.calls("DescribeVolumes")[0]?.at).toBeGreaterThanOrEqual(opened.at);
    const view = update.args.view as View;
    expect(
      view.blocks.find((b) => b.block_id === VOLUMES_BLOCK)?.element?.options?.map((o) => o.value),
    ).toEqual(["/dev/sdf", "/dev/sdg"]);
  });

  it("images the whole instance, and says so in the form, when AWS is too slow to list the volumes", async () => {
    // Production's wait for the volumes, not the harness's relaxed one: this is the "too slow" path.
    await h.restart({ budgets: { volumeListMs: DEFAULT_SLACK_BUDGETS.volumeListMs } });
    h.aws.delayNext("DescribeVolumes", 3_000);
    const view = await formWithVolumes();
    expect(view.blocks.some((b) => b.block_id?.startsWith("volumes."))).toBe(false);
    const note = view.blocks.find((b) => b.block_id === "volumes_note");
    expect(note?.elements?.[0]?.text).toContain("the image will include all of them");

    await h.interaction(submission(h, view, ANSWERS, undefined));
    const create = await eventually(() => h.aws.calls("CreateImage")[0], 10_000, "CreateImage");
    expect(Object.keys(create.params).some((k) => k.startsWith("BlockDeviceMapping."))).toBe(false);
    expect([...h.aws.images.values()][0]?.snapshots).toHaveLength(3);
  });

  it("still leaves the volume out when the bot restarts before CreateImage is answered", async () => {
    const view = await formWithVolumes();
    // The first CreateImage is never answered (and makes nothing): the job is retried after the restart.
    h.aws.hang("CreateImage", { count: 1 });
    await h.interaction(submission(h, view, ANSWERS, ["/dev/sdf"]));
    await eventually(() => h.aws.calls("CreateImage")[0], 10_000, "first CreateImage");
    await h.restart();
    await eventually(() => h.aws.calls("CreateImage")[1], 15_000, "CreateImage after the restart");
    for (const call of h.aws.calls("CreateImage"))
      expect(call.params).toMatchObject({
        "BlockDeviceMapping.1.DeviceName": "/dev/sdg",
        "BlockDeviceMapping.1.NoDevice": "",
      });
    await eventually(() => h.aws.images.size === 1, 10_000, "the image");
    expect([...h.aws.images.values()][0]?.snapshots.map((s) => s.deviceName)).toEqual([
      "/dev/xvda",
      "/dev/sdf",
    ]);
  });
});
