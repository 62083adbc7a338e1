/**
 * Choosing the volumes on the Slack side: the form's field (pure Block Kit), reading the person's choice
 * back from a submission, carrying the field in the signed metadata, and the thread saying what was left out.
 */
import { describe, expect, it } from "vitest";
import type { Job } from "../../../src/domain/job.js";
import type { InstanceVolume } from "../../../src/domain/ports.js";
import { type MessageContext, replyMessage, rootMessage } from "../../../src/slack/blocks/messages.js";
import { createImageModal, type ModalState, type PlaceOption } from "../../../src/slack/blocks/modal.js";
import { volumeBlocks, volumeField, volumesBlockId } from "../../../src/slack/blocks/volumes.js";
import { readVolumeChoice, type StateValues } from "../../../src/slack/form-values.js";
import { ACTION, BLOCK } from "../../../src/slack/ids.js";
import { createMetadataCodec } from "../../../src/slack/private-metadata.js";
import { CLOCK_START } from "../../fakes/fixed-clock.js";
import { makeJob, testTarget } from "../../fakes/job-fixtures.js";

const INSTANCE = "i-0123456789abcdef0";

function volume(deviceName: string, overrides: Partial<InstanceVolume> = {}): InstanceVolume {
  return {
    deviceName,
    volumeId: `vol-0${deviceName.replace(/\W/g, "").length}abc`,
    sizeGiB: 100,
    volumeType: "gp3",
    root: false,
    ...overrides,
  };
}
const ROOT = volume("/dev/xvda", { sizeGiB: 8, root: true, volumeId: "vol-0a00" });
const THREE = [
  ROOT,
  volume("/dev/sdf", { volumeId: "vol-0f00" }),
  volume("/dev/sdg", { sizeGiB: 500, volumeType: "st1", volumeId: "vol-0b00" }),
];

interface Option {
  text: { text: string };
  description?: { text: string };
  value: string;
}
interface VolumeInput {
  type: string;
  block_id: string;
  optional: boolean;
  label: { text: string };
  hint: { text: string };
  element: { type: string; action_id: string; options: Option[]; initial_options: Option[] };
}

describe("the volume field", () => {
  it("offers every volume but the root as a ticked box, and names the root as always included", () => {
    const [block, ...rest] = volumeBlocks(volumeField(INSTANCE, THREE)) as unknown as VolumeInput[];
    expect(rest).toHaveLength(0);
    expect(block).toMatchObject({
      type: "input",
      block_id: `volumes.${INSTANCE}`,
      optional: true,
      element: { type: "checkboxes", action_id: ACTION.volumes },
    });
    expect(block?.element.options.map((o) => [o.text.text, o.description?.text, o.value])).toEqual([
      ["/dev/sdf · 100 GiB · gp3", "vol-0f00", "/dev/sdf"],
      ["/dev/sdg · 500 GiB · st1", "vol-0b00", "/dev/sdg"],
    ]);
    // All ticked by default: the whole instance unless the person unticks something.
    expect(block?.element.initial_options).toEqual(block?.element.options);
    expect(block?.hint.text).toBe(
      "The root volume, /dev/xvda · 8 GiB · gp3, is always included. Untick a volume to leave it out of the image.",
    );
    expect(block?.element.options.some((o) => o.value === "/dev/xvda")).toBe(false);
  });

  it("shows no boxes when the instance has one volume", () => {
    expect(volumeBlocks(volumeField(INSTANCE, [ROOT]))).toEqual([]);
  });

  it("says the whole instance will be imaged when the volumes could not be listed", () => {
    const blocks = volumeBlocks({ instanceId: INSTANCE, listed: false });
    expect(blocks).toHaveLength(1);
    expect(blocks[0]).toMatchObject({ type: "context", block_id: BLOCK.volumesNote });
    expect(JSON.stringify(blocks[0])).toContain("the image will include all of them");
  });

  it("offers at most ten volumes and says the rest are always included", () => {
    const many = [
      ROOT,
      ...Array.from({ length: 12 }, (_, i) => volume(`/dev/sd${String.fromCharCode(102 + i)}`)),
    ];
    const [block] = volumeBlocks(volumeField(INSTANCE, many)) as unknown as VolumeInput[];
    expect(block?.element.options).toHaveLength(10);
    expect(block?.hint.text).toContain("2 more volumes are always included");
  });

  it("says when a volume's size is unknown", () => {
    const detached = volume("/dev/sdh", { sizeGiB: undefined, volumeType: undefined });
    const [block] = volumeBlocks(volumeField(INSTANCE, [ROOT, detached])) as unknown as VolumeInput[];
    expect(block?.element.options[0]?.text.text).toBe("/dev/sdh · size unknown");
  });

  it("keeps each option within Slack's 75 characters, and its value the whole device name", () => {
    const long = volume(`/dev/${"x".repeat(59)}`, { volumeType: "io2" });
    const [block] = volumeBlocks(volumeField(INSTANCE, [ROOT, long])) as unknown as VolumeInput[];
    expect(block?.element.options[0]?.text.text.length).toBe(75);
    expect(block?.element.options[0]?.value).toBe(long.deviceName);
  });
});

describe("createImageModal with volumes", () => {
  const place: PlaceOption = { targetName: "prod", region: "eu-west-1", accountId: "123456789012" };
  const modal = (overrides: Partial<ModalState>) =>
    createImageModal(
      {
        places: [place],
        selectedPlace: undefined,
        instance: { id: INSTANCE, label: `web-1 (${INSTANCE})` },
        imageName: undefined,
        nameVersion: 0,
        channelId: "C0CHANNEL1",
        ...overrides,
      },
      "{}",
    );
  const ids = (view: ReturnType<typeof modal>) =>
    view.blocks.map((b) => ("block_id" in b ? b.block_id : b.type));

  it("puts the volumes after the reboot note and before the tags, as the console does", () => {
    expect(ids(modal({ volumes: volumeField(INSTANCE, THREE) }))).toEqual([
      "context",
      BLOCK.instance,
      BLOCK.imageName,
      BLOCK.description,
      BLOCK.reboot,
      volumesBlockId(INSTANCE),
      BLOCK.tags,
      BLOCK.channel,
      BLOCK.check,
    ]);
  });

  it("draws no volumes of an instance that is no longer the one chosen", () => {
    const view = modal({ volumes: volumeField("i-0fedcba9876543210", THREE) });
    expect(ids(view).some((id) => String(id).startsWith(BLOCK.volumes))).toBe(false);
  });
});

describe("readVolumeChoice", () => {
  const blocks = volumeBlocks(volumeField(INSTANCE, THREE));
  const state = (ticked: string[] | undefined): StateValues => ({
    [volumesBlockId(INSTANCE)]: {
      [ACTION.volumes]: {
        type: "checkboxes",
        ...(ticked ? { selected_options: ticked.map((value) => ({ value })) } : {}),
      },
    },
  });

  it("leaves out what the form offered and the person unticked", () => {
    expect(readVolumeChoice(state(["/dev/sdf"]), blocks)).toEqual({
      instanceId: INSTANCE,
      excluded: ["/dev/sdg"],
    });
    expect(readVolumeChoice(state([]), blocks)?.excluded).toEqual(["/dev/sdf", "/dev/sdg"]);
    expect(readVolumeChoice(state(["/dev/sdf", "/dev/sdg"]), blocks)?.excluded).toEqual([]);
  });

  it("leaves out nothing when the form has no volume field or its state says nothing", () => {
    expect(readVolumeChoice({}, blocks)).toBeUndefined();
    expect(readVolumeChoice(state(undefined), blocks)).toBeUndefined();
  });
});

describe("the volume field in the modal's metadata", () => {
  const codec = createMetadataCodec("a-secret-for-tests-0123456789");

  it("survives the round trip through Slack, so a redraw keeps it", () => {
    const volumes = volumeField(INSTANCE, THREE);
    const decoded = codec.decode(
      codec.encode({ origin: "C0CHANNEL1", nameVersion: 2, autoName: "x", volumes }),
    );
    expect(decoded).toEqual({ origin: "C0CHANNEL1", nameVersion: 2, autoName: "x", volumes });
    const unlisted = { instanceId: INSTANCE, listed: false } as const;
    expect(
      codec.decode(
        codec.encode({ origin: "C0CHANNEL1", nameVersion: 0, autoName: undefined, volumes: unlisted }),
      )?.volumes,
    ).toEqual(unlisted);
  });

  it("stays within Slack's 3,000 characters with the most volumes the form offers", () => {
    const many = [
      ROOT,
      ...Array.from({ length: 30 }, (_, i) =>
        volume(`/dev/xvd${String.fromCharCode(98 + (i % 25))}${i}`, {
          volumeId: `vol-0${"a".repeat(16)}`,
          volumeType: "gp3",
        }),
      ),
    ];
    const text = codec.encode({
      origin: "C0CHANNEL1",
      nameVersion: 999,
      autoName: "n".repeat(128),
      volumes: volumeField(INSTANCE, many),
    });
    expect(text.length).toBeLessThanOrEqual(3000);
    expect(codec.decode(text)?.volumes).toEqual(volumeField(INSTANCE, many));
  });
});

describe("the thread, when volumes were left out", () => {
  const ctx: MessageContext = {
    target: testTarget(),
    now: CLOCK_START,
    watcher: { slowAfterMs: 1, slowPollIntervalMs: 1, giveUpAfterMs: 1 },
  };
  const job = (overrides: Partial<Job> = {}) =>
    makeJob({ excludedDevices: ["/dev/sdf", "/dev/sdg"], ...overrides });

  it("names the devices left out in the root message", () => {
    const root = JSON.stringify(rootMessage(job(), ctx).blocks);
    expect(root).toContain("*Volumes left out*\\n`/dev/sdf`, `/dev/sdg`");
  });

  it("says in the creating reply which volumes are left out", () => {
    expect(replyMessage(job({ noReboot: true }), "creating", ctx).text).toBe(
      "Asking AWS to create the image without rebooting the instance (crash-consistent). Leaving out the volumes `/dev/sdf`, `/dev/sdg`; every other volume is in the image.",
    );
    expect(replyMessage(job({ excludedDevices: ["/dev/sdf"] }), "creating", ctx).text).toContain(
      "Leaving out the volume `/dev/sdf`;",
    );
  });

  it("says nothing about volumes when the whole instance is imaged", () => {
    const whole = job({ excludedDevices: [] });
    expect(JSON.stringify(rootMessage(whole, ctx))).not.toContain("Volumes left out");
    expect(replyMessage(whole, "creating", ctx).text).not.toContain("Leaving out");
  });
});
