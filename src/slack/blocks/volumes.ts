/**
 * The form's volume choice, as the EC2 console's "Instance volumes": every EBS volume but the root as a
 * tick box, all ticked; unticking one leaves it out of the image. Pure: tests assert its JSON directly.
 */
import type { types } from "@slack/bolt";
import type { InstanceVolume } from "../../domain/ports.js";
import { isDeviceName, MAX_CHOOSABLE_VOLUMES } from "../../domain/volumes.js";
import { ACTION, BLOCK } from "../ids.js";

type KnownBlock = types.KnownBlock;

/** What the form shows of one instance's volumes. */
export type VolumeField =
  /** AWS did not list them in time (or refused): none can be left out, and the form says so. */
  | { readonly instanceId: string; readonly listed: false }
  | {
      readonly instanceId: string;
      readonly listed: true;
      /** Always in the image, so not offered. */
      readonly root: InstanceVolume | undefined;
      /** The volumes offered, at most MAX_CHOOSABLE_VOLUMES. */
      readonly choosable: readonly InstanceVolume[];
      /** Volumes beyond those the form can offer: always in the image. */
      readonly notShown: number;
    };

/** The field for an instance's volumes as AWS listed them (root first). */
export function volumeField(instanceId: string, volumes: readonly InstanceVolume[]): VolumeField {
  const others = volumes.filter((v) => !v.root);
  // A device name the form could not carry back cannot be left out: it stays in, counted as not shown.
  const offerable = others.filter((v) => isDeviceName(v.deviceName));
  const choosable = offerable.slice(0, MAX_CHOOSABLE_VOLUMES);
  return {
    instanceId,
    listed: true,
    root: volumes.find((v) => v.root),
    choosable,
    notShown: others.length - choosable.length,
  };
}

export function volumesBlockId(instanceId: string): string {
  return `${BLOCK.volumes}.${instanceId}`;
}

function plain(text: string) {
  return { type: "plain_text" as const, text, emoji: true };
}

/** "/dev/sdf · 100 GiB · gp3" */
export function volumeText(v: InstanceVolume): string {
  const size = v.sizeGiB === undefined ? "size unknown" : `${v.sizeGiB} GiB`;
  return [v.deviceName, size, v.volumeType].filter(Boolean).join(" · ");
}

/** The blocks for the field: none when there is nothing to choose (one volume), a note when unlisted. */
export function volumeBlocks(
  field: VolumeField | undefined,
  /** Devices drawn unticked (a retried job's choice); every other volume starts ticked. */
  excluded: readonly string[] = [],
): KnownBlock[] {
  if (!field) return [];
  if (!field.listed)
    return [
      {
        type: "context",
        block_id: BLOCK.volumesNote,
        elements: [
          {
            type: "mrkdwn",
            text: ":information_source: ami-bot could not list this instance's volumes just now, so the image will include all of them. Pick the instance again to choose.",
          },
        ],
      },
    ];
  if (field.choosable.length === 0) return [];
  const options = field.choosable.map((v) => ({
    text: plain(volumeText(v).slice(0, 75)),
    description: plain(v.volumeId.slice(0, 75)),
    value: v.deviceName,
  }));
  // Slack refuses an empty initial_options: with every volume unticked, the key is left out.
  const ticked = options.filter((o) => !excluded.includes(o.value));
  const hint = [
    field.root
      ? `The root volume, ${volumeText(field.root)}, is always included.`
      : "The root volume is always included.",
    "Untick a volume to leave it out of the image.",
    field.notShown > 0
      ? `${field.notShown} more ${field.notShown === 1 ? "volume is" : "volumes are"} always included (the form can offer ${MAX_CHOOSABLE_VOLUMES}).`
      : "",
  ]
    .filter(Boolean)
    .join(" ");
  return [
    {
      type: "input",
      block_id: volumesBlockId(field.instanceId),
      // Unticking every volume offered is a valid choice (the root stays).
      optional: true,
      label: plain("Volumes"),
      hint: plain(hint.slice(0, 2000)),
      element: {
        type: "checkboxes",
        action_id: ACTION.volumes,
        options,
        ...(ticked.length > 0 ? { initial_options: ticked } : {}),
      },
    },
  ];
}
