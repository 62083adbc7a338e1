/**
 * Reading a modal's state. Values are found by action_id, so a versioned block id (the image name's)
 * does not matter; all of it is untrusted input, checked by the domain's validation afterwards.
 */
import type { ImageRequestInput } from "../domain/image-request.js";
import { ACTION, BLOCK } from "./ids.js";

interface ElementState {
  type?: string;
  value?: string | null;
  selected_option?: { value?: string; text?: { text?: string } } | null;
  selected_options?: { value?: string }[] | null;
  selected_conversation?: string | null;
  selected_channel?: string | null;
}

export type StateValues = Record<string, Record<string, ElementState>>;

export function findElement(
  values: StateValues | undefined,
  actionId: string,
): { blockId: string; state: ElementState } | undefined {
  for (const [blockId, elements] of Object.entries(values ?? {})) {
    const state = elements?.[actionId];
    if (state) return { blockId, state };
  }
  return undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** The person's answers, with the place falling back to the only/initial one when the select is not shown. */
export function readRequestInput(
  values: StateValues | undefined,
  defaultPlace: string | undefined,
): ImageRequestInput {
  const where = str(findElement(values, ACTION.where)?.state.selected_option?.value) ?? defaultPlace ?? "";
  const [targetName, region] = where.split("|");
  const instance = findElement(values, ACTION.instance)?.state.selected_option;
  const rebootState = findElement(values, ACTION.reboot)?.state;
  // A tick box on `ask` targets; a single choice from older forms still open when the bot was upgraded.
  const reboot =
    str(rebootState?.selected_option?.value) ??
    (Array.isArray(rebootState?.selected_options)
      ? rebootState.selected_options.some((o) => o?.value === "reboot")
        ? "reboot"
        : "no_reboot"
      : undefined);
  const channel = findElement(values, ACTION.channel)?.state;
  return {
    targetName: targetName || undefined,
    region: region || undefined,
    instanceId: str(instance?.value),
    instanceLabel: instanceLabelFrom(str(instance?.text?.text)),
    imageName: str(findElement(values, ACTION.imageName)?.state.value) ?? "",
    description: str(findElement(values, ACTION.description)?.state.value) ?? "",
    reboot: reboot === "reboot" || reboot === "no_reboot" ? reboot : undefined,
    tagsText: str(findElement(values, ACTION.tags)?.state.value) ?? "",
    channelId: str(channel?.selected_conversation) ?? str(channel?.selected_channel),
  };
}

function instanceLabelFrom(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const m = /^(.*?)\s*\(i-[0-9a-f]+\)/.exec(text);
  return m?.[1]?.trim() || undefined;
}

/** The volume field as the form was sent: what it offered, what stayed ticked, and so what to leave out. */
export interface VolumeChoice {
  /** The instance the list was drawn for (its block id names it). */
  readonly instanceId: string;
  /** Offered and unticked: the devices to leave out of the image. */
  readonly excluded: readonly string[];
}

/**
 * The person's volume choice: the field's options (from the view's blocks, as Slack sends them back) that
 * are not ticked in its state. Undefined when the form has no such field, or its state says nothing
 * (the whole instance is imaged). All of it is untrusted: the submission checks each device against AWS.
 */
export function readVolumeChoice(
  values: StateValues | undefined,
  blocks: readonly unknown[] | undefined,
): VolumeChoice | undefined {
  const found = findElement(values, ACTION.volumes);
  const prefix = `${BLOCK.volumes}.`;
  if (!found?.blockId.startsWith(prefix) || !Array.isArray(found.state.selected_options)) return undefined;
  const ticked = new Set(found.state.selected_options.map((o) => str(o?.value)));
  const block = (blocks ?? []).find(
    (b): b is { element?: { options?: unknown } } =>
      typeof b === "object" && b !== null && (b as { block_id?: unknown }).block_id === found.blockId,
  );
  const options = Array.isArray(block?.element?.options) ? (block.element.options as unknown[]) : [];
  const offered = options.flatMap((o) => {
    const value = typeof o === "object" && o !== null ? str((o as { value?: unknown }).value) : undefined;
    return value === undefined ? [] : [value];
  });
  return {
    instanceId: found.blockId.slice(prefix.length),
    excluded: [...new Set(offered.filter((d) => !ticked.has(d)))],
  };
}
