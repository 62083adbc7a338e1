/**
 * The /ami modal, mirroring the EC2 console's Create image form. Pure: tests assert its JSON directly.
 */
import type { types } from "@slack/bolt";
import type { CopyDestination, RebootPolicy } from "../../domain/target.js";
import { ACTION, BLOCK, CREATE_VIEW } from "../ids.js";
import { escapeText } from "./format.js";
import { type VolumeField, volumeBlocks } from "./volumes.js";

type KnownBlock = types.KnownBlock;
type ModalView = types.ModalView;

export interface PlaceOption {
  readonly targetName: string;
  readonly region: string;
  readonly accountId: string;
  /** The target's reboot policy: only `ask` shows a choice. */
  readonly reboot?: RebootPolicy;
  /** The tag keys the target allows, shown in the tags hint. */
  readonly tagKeys?: readonly string[] | undefined;
  /** Who must approve a job in this target (as mentions), when it needs an approval. */
  readonly approvers?: string | undefined;
  /** Regions the target offers copies into (the place's own region is not shown), and their keys. */
  readonly copyTo?: readonly CopyDestination[] | undefined;
  /** Accounts the target offers sharing with. */
  readonly shareWith?: readonly string[] | undefined;
}

export interface ModalState {
  /** Every target × region the person may use. */
  readonly places: readonly PlaceOption[];
  readonly selectedPlace: string | undefined;
  readonly instance: { readonly id: string; readonly label: string } | undefined;
  readonly imageName: string | undefined;
  /** Bumped to replace the name field's value (Slack keeps typed values while the block id is unchanged). */
  readonly nameVersion: number;
  readonly channelId: string | undefined;
  /** The outcome of the last "Check access" click, shown under the button. */
  readonly checkResult?: { readonly allowed: boolean; readonly message: string } | undefined;
  /** The chosen instance's volumes, once listed (drawn only while that instance is the one chosen). */
  readonly volumes?: VolumeField | undefined;
  /** Devices to show unticked in the volume field ("Try again" of a job that left them out). */
  readonly excludedDevices?: readonly string[] | undefined;
  /** Pre-filled values ("Try again"): the description, the tags as key=value lines, the reboot box ticked. */
  readonly description?: string | undefined;
  readonly tagsText?: string | undefined;
  readonly reboot?: boolean | undefined;
  /** Copy regions and accounts to show ticked ("Try again"); only those the place still offers are. */
  readonly copyTo?: readonly string[] | undefined;
  readonly shareWith?: readonly string[] | undefined;
}

/** Slack's limit on the options of one checkboxes element. */
export const MAX_CHECKBOXES = 10;

/** The regions a place offers copies into: its target's, less the region the image is made in. */
export function copyOffer(
  destinations: readonly CopyDestination[],
  region: string,
): readonly CopyDestination[] {
  return destinations.filter((d) => d.region !== region);
}

/** The copy field's block id for a place (`copy_to.prod|eu-west-1`). */
export function copyToBlockId(place: string): string {
  return `${BLOCK.copyTo}.${place}`;
}

/** The share field's block ids for a place offering `accounts` accounts, ten to a block. */
export function shareWithBlockIds(place: string, accounts: number): string[] {
  const blocks = Math.ceil(accounts / MAX_CHECKBOXES);
  return Array.from({ length: blocks }, (_, i) =>
    i === 0 ? `${BLOCK.shareWith}.${place}` : `${BLOCK.shareWith}.${place}.${i + 1}`,
  );
}

export function placeValue(p: { targetName: string; region: string }): string {
  return `${p.targetName}|${p.region}`;
}

function plain(text: string) {
  return { type: "plain_text" as const, text, emoji: true };
}

export function nameBlockId(version: number): string {
  return version === 0 ? BLOCK.imageName : `${BLOCK.imageName}.${version}`;
}

export function instanceOptionText(i: {
  instanceId: string;
  name?: string | undefined;
  state: string;
  instanceType?: string | undefined;
}): string {
  const name = i.name ?? "";
  const tail = `${name ? " " : ""}(${i.instanceId}) · ${i.state}${i.instanceType ? ` · ${i.instanceType}` : ""}`;
  // Slack cuts option text at 75 characters: shorten the name, never the id.
  return `${name.slice(0, Math.max(0, 75 - tail.length))}${tail}`.trim().slice(0, 75);
}

export function createImageModal(state: ModalState, privateMetadata: string): ModalView {
  const blocks: KnownBlock[] = [];
  const places = state.places.map((p) => ({
    text: plain(`${p.targetName} (${p.accountId}) · ${p.region}`.slice(0, 75)),
    value: placeValue(p),
  }));
  const selected = places.find((o) => o.value === state.selectedPlace) ?? places[0];
  const place = state.places.find((p) => placeValue(p) === selected?.value);
  if (places.length > 1) {
    blocks.push({
      type: "input",
      block_id: BLOCK.where,
      // Targets differ in reboot policy and tag keys: choosing one redraws the form for it.
      dispatch_action: true,
      label: plain("Account and region"),
      element: {
        type: "static_select",
        action_id: ACTION.where,
        options: places.slice(0, 100),
        ...(selected ? { initial_option: selected } : {}),
      },
    });
  } else if (selected) {
    blocks.push({
      type: "context",
      elements: [{ type: "mrkdwn", text: `Account and region: *${selected.text.text}*` }],
    });
  }

  blocks.push(
    {
      type: "input",
      block_id: BLOCK.instance,
      dispatch_action: true,
      label: plain("Instance"),
      hint: plain("Search by Name tag or instance id."),
      element: {
        type: "external_select",
        action_id: ACTION.instance,
        placeholder: plain("web-1 or i-0123…"),
        min_query_length: 0,
        ...(state.instance
          ? { initial_option: { text: plain(state.instance.label), value: state.instance.id } }
          : {}),
      },
    },
    {
      type: "input",
      block_id: nameBlockId(state.nameVersion),
      label: plain("Image name"),
      optional: true,
      hint: plain(
        "3–128 letters, digits, spaces and ( ) [ ] . / - ' @ _  ·  Empty: instance name and the UTC time.",
      ),
      element: {
        type: "plain_text_input",
        action_id: ACTION.imageName,
        max_length: 128,
        ...(state.imageName ? { initial_value: state.imageName } : {}),
      },
    },
    {
      type: "input",
      block_id: BLOCK.description,
      label: plain("Description"),
      optional: true,
      element: {
        type: "plain_text_input",
        action_id: ACTION.description,
        max_length: 255,
        ...(state.description ? { initial_value: state.description } : {}),
      },
    },
    rebootBlock(place?.reboot ?? "never", state.instance, state.reboot === true),
    ...approvalNote(place?.approvers),
    ...volumeBlocks(
      state.volumes?.instanceId === state.instance?.id ? state.volumes : undefined,
      state.excludedDevices,
    ),
    {
      type: "input",
      block_id: BLOCK.tags,
      label: plain("Tags"),
      optional: true,
      hint: plain(
        place?.tagKeys
          ? `One key=value per line; applied to the image and its snapshots. Keys allowed here: ${place.tagKeys.join(", ")}`.slice(
              0,
              150,
            )
          : "One key=value per line; applied to the image and its snapshots.",
      ),
      element: {
        type: "plain_text_input",
        action_id: ACTION.tags,
        multiline: true,
        placeholder: plain("team=web\ncost-center=42"),
        ...(state.tagsText ? { initial_value: state.tagsText } : {}),
      },
    },
    ...afterStepBlocks(place, state),
    {
      type: "input",
      block_id: BLOCK.channel,
      label: plain("Post updates to"),
      ...(state.channelId?.startsWith("D")
        ? {
            hint: plain(
              "Choose a channel for the updates: ami-bot posts them in channels, not in direct messages.",
            ),
          }
        : {}),
      element: {
        type: "conversations_select",
        action_id: ACTION.channel,
        filter: { include: ["public", "private"], exclude_bot_users: true },
        // A direct message is not offered (the filter hides it): the person is asked for a channel.
        ...(state.channelId === undefined
          ? { default_to_current_conversation: true }
          : state.channelId.startsWith("D")
            ? {}
            : { initial_conversation: state.channelId }),
      },
    },
  );

  blocks.push({
    type: "actions",
    block_id: BLOCK.check,
    elements: [
      {
        type: "button",
        action_id: ACTION.check,
        text: plain("Check access (dry run)"),
        value: "check",
      },
    ],
  });
  if (state.checkResult) {
    blocks.push({
      type: "context",
      block_id: BLOCK.checkResult,
      elements: [
        {
          type: "mrkdwn",
          text: `${state.checkResult.allowed ? ":white_check_mark:" : ":no_entry:"} ${escapeText(state.checkResult.message)}`,
        },
      ],
    });
  }

  return {
    type: "modal",
    callback_id: CREATE_VIEW,
    title: plain("Create an AMI"),
    submit: plain("Create image"),
    close: plain("Cancel"),
    private_metadata: privateMetadata,
    blocks,
  };
}

/**
 * The reboot question. On a `never` target there is no choice, and the form says why; on an `ask` target a
 * tick box whose confirm dialog names the instance that will restart. Unticked (the default) means no reboot.
 */
function rebootBlock(policy: RebootPolicy, instance: ModalState["instance"], ticked: boolean): KnownBlock {
  if (policy !== "ask")
    return {
      type: "context",
      block_id: BLOCK.reboot,
      elements: [
        {
          type: "mrkdwn",
          text: ":information_source: *No reboot.* The account's owners chose that ami-bot never restarts instances here, so the image is crash-consistent (like a sudden power-off) and the instance keeps running.",
        },
      ],
    };
  const who = instance ? instanceWords(instance) : "The instance you chose";
  const option = {
    text: plain("Reboot the instance while imaging"),
    description: plain(
      "Consistent file systems, but the instance restarts. Unticked: no reboot (crash-consistent).",
    ),
    value: "reboot",
  };
  return {
    type: "input",
    block_id: BLOCK.reboot,
    optional: true,
    label: plain("Reboot"),
    element: {
      type: "checkboxes",
      action_id: ACTION.reboot,
      options: [option],
      ...(ticked ? { initial_options: [option] } : {}),
      confirm: {
        title: plain("Reboot the instance?"),
        text: plain(
          `${who} will restart while AWS makes the image: anyone using it loses their connection for a few minutes.`.slice(
            0,
            300,
          ),
        ),
        confirm: plain("Yes, reboot it"),
        deny: plain("No"),
        style: "danger",
      },
    },
  };
}

/**
 * What may follow the image, as the place's target offers it: a box per region to copy into and per account
 * to share with, none ticked unless a retried job had them. Nothing leaves the account unless someone ticks it.
 */
function afterStepBlocks(
  place: PlaceOption | undefined,
  ticked: Pick<ModalState, "copyTo" | "shareWith">,
): KnownBlock[] {
  if (!place) return [];
  const key = placeValue(place);
  const blocks: KnownBlock[] = [];
  const copies = copyOffer(place.copyTo ?? [], place.region);
  if (copies.length > 0)
    blocks.push(
      checkboxBlock({
        blockId: copyToBlockId(key),
        actionId: ACTION.copyTo,
        label: "Copy to other regions",
        hint: `Each ticked region gets its own copy once the image is available. Unticked: the image stays in ${place.region} only.`,
        options: copies.slice(0, MAX_CHECKBOXES).map((d) => ({
          text: d.kmsKeyId ? `${d.region} · encrypted with your key` : d.region,
          value: d.region,
        })),
        ticked: ticked.copyTo,
      }),
    );
  const accounts = place.shareWith ?? [];
  shareWithBlockIds(key, accounts.length).forEach((blockId, i) => {
    blocks.push(
      checkboxBlock({
        blockId,
        actionId: ACTION.shareWith,
        label: i === 0 ? "Share with accounts" : "Share with more accounts",
        hint: "Ticked accounts may launch the image and its copies, and make volumes from their snapshots. Unticked: no other account can use them.",
        options: accounts
          .slice(i * MAX_CHECKBOXES, (i + 1) * MAX_CHECKBOXES)
          .map((account) => ({ text: account, value: account })),
        ticked: ticked.shareWith,
      }),
    );
  });
  return blocks;
}

/** An optional input of tick boxes; `ticked` values among the options start ticked. */
function checkboxBlock(field: {
  blockId: string;
  actionId: string;
  label: string;
  hint: string;
  options: readonly { text: string; value: string }[];
  ticked: readonly string[] | undefined;
}): KnownBlock {
  const options = field.options.map((o) => ({ text: plain(o.text.slice(0, 75)), value: o.value }));
  const initial = options.filter((o) => field.ticked?.includes(o.value));
  return {
    type: "input",
    block_id: field.blockId,
    optional: true,
    label: plain(field.label),
    hint: plain(field.hint),
    element: {
      type: "checkboxes",
      action_id: field.actionId,
      options,
      // Slack refuses an empty initial_options: left out when nothing starts ticked.
      ...(initial.length > 0 ? { initial_options: initial } : {}),
    },
  };
}

/** "web-1 (i-0abc…)" from the picker's option text, or the id alone. */
function instanceWords(instance: { id: string; label: string }): string {
  const name = /^(.*?)\s*\(i-[0-9a-f]+\)/.exec(instance.label)?.[1]?.trim();
  return name && name !== instance.id ? `${name} (${instance.id})` : instance.id;
}

/** Said before anything is sent: in this target, nothing is created until someone else approves. */
function approvalNote(approvers: string | undefined): KnownBlock[] {
  if (!approvers) return [];
  return [
    {
      type: "context",
      block_id: BLOCK.approvalNote,
      elements: [
        {
          type: "mrkdwn",
          text: `:raised_hand: *Needs an approval.* Nothing is created until ${approvers} approves; the thread says when. You cannot approve your own request.`,
          verbatim: true,
        },
      ],
    },
  ];
}

/** The text of `/ami help`: what the command does and its forms. */
export function helpText(): string {
  return [
    "*/ami* creates an Amazon Machine Image (AMI) of an EC2 instance and follows it in a thread.",
    "• `/ami` opens the form.",
    "• `/ami i-0123456789abcdef0` opens it with that instance chosen.",
    "• `/ami check i-0123456789abcdef0` asks AWS (dry run) whether you could image it, creating nothing.",
    "• `/ami list` shows the latest images in this channel; `/ami list mine` shows yours, wherever you asked.",
    "• `/ami cleanup preview [target]` lists what the target's keep rule would remove now, touching nothing; `/ami cleanup run [target]` removes it now (for the target's admins).",
    "• `/ami help` shows this.",
    "On a job's message, *Cancel* stops it (for whoever asked, and the target's approvers); where a target needs an approval, its approvers *Approve* or *Deny* it there, in their DM or on ami-bot's Home tab.",
    "ami-bot's *Home* tab lists your latest images, and the requests waiting for your approval.",
    "You choose the account and region, the instance, the image name, tags and, where the account's owners allow it, whether to reboot.",
    "Where the account's owners offer them, you may also tick regions to copy the image into and accounts to share it with; nothing is copied or shared unless you tick it.",
    "Updates go to the channel you pick; the final result is posted there too.",
  ].join("\n");
}
