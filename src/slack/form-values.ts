/**
 * Reading a modal's state. Values are found by action_id, so a versioned block id (the image name's)
 * does not matter; all of it is untrusted input, checked by the domain's validation afterwards.
 */
import type { ImageRequestInput } from "../domain/image-request.js";
import { copyToBlockId, shareWithBlockIds } from "./blocks/modal.js";
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

/** One tick-box field as sent: the block it is in, and the values it says are ticked. */
export interface TickedField {
  readonly blockId: string;
  /** Undefined when the state is not a list of options with string values (a forged or garbled payload). */
  readonly values: readonly string[] | undefined;
}

/** Every field holding `actionId`, in the order the state lists them (the accounts come in several). */
export function readTicked(values: StateValues | undefined, actionId: string): TickedField[] {
  return Object.entries(values ?? {}).flatMap(([blockId, elements]) => {
    const state = typeof elements === "object" && elements !== null ? elements[actionId] : undefined;
    if (!state) return [];
    const options: unknown = state.selected_options;
    if (options === undefined || options === null) return [{ blockId, values: [] }];
    if (!Array.isArray(options)) return [{ blockId, values: undefined }];
    const ticked = options.map((o: unknown) =>
      typeof o === "object" && o !== null ? str((o as { value?: unknown }).value) : undefined,
    );
    return [{ blockId, values: ticked.every((v) => v !== undefined) ? (ticked as string[]) : undefined }];
  });
}

/** What the chosen place offers after the image: regions to copy into (never its own) and accounts. */
export interface AfterOffer {
  /** The place as the form's block ids carry it (`prod|eu-west-1`). */
  readonly place: string;
  /** The region the image is made in. */
  readonly region: string;
  readonly copyTo: readonly string[];
  readonly shareWith: readonly string[];
}

/** The person's choices, each one the place offers, or the errors to show under the fields (by block id). */
export interface AfterChoices {
  readonly copyTo: readonly string[];
  readonly shareWith: readonly string[];
  readonly errors: Readonly<Record<string, string>>;
}

/** Words that would share with everyone (EC2's `all` group), named as such if a submission carries them. */
const PUBLIC_WORDS = new Set(["all", "*", "public", "everyone"]);

/**
 * The copy regions and accounts ticked, checked against what the place offers: anything else (another
 * region or account, the image's own region, a value twice, more than offered, a value that is not text)
 * is an error under its field, and nothing is chosen. A form without the fields chooses nothing.
 */
export function readAfterChoices(values: StateValues | undefined, offer: AfterOffer): AfterChoices {
  const errors: Record<string, string> = {};
  const copyTo = checkTicked(
    readTicked(values, ACTION.copyTo),
    [copyToBlockId(offer.place)],
    offer.copyTo,
    errors,
    (v) =>
      v === offer.region
        ? `The image is made in ${offer.region}: it cannot also be copied there.`
        : `“${shown(v)}” is not one of the regions offered for copies here.`,
  );
  const shareWith = checkTicked(
    readTicked(values, ACTION.shareWith),
    shareWithBlockIds(offer.place, offer.shareWith.length),
    offer.shareWith,
    errors,
    (v) =>
      PUBLIC_WORDS.has(v.trim().toLowerCase())
        ? `“${shown(v)}” would make the image public: ami-bot never shares images publicly.`
        : `“${shown(v)}” is not one of the accounts offered for sharing here.`,
  );
  return Object.keys(errors).length > 0
    ? { copyTo: [], shareWith: [], errors }
    : { copyTo, shareWith, errors };
}

/** The offered values ticked across `fields` (in the offer's order); problems go into `errors` by block. */
function checkTicked(
  fields: readonly TickedField[],
  expectedBlocks: readonly string[],
  offered: readonly string[],
  errors: Record<string, string>,
  notOffered: (value: string) => string,
): string[] {
  const seen = new Set<string>();
  const total = fields.reduce((n, f) => n + (f.values?.length ?? 0), 0);
  for (const field of fields) {
    const problem = fieldProblem(field, total, expectedBlocks, offered, seen, notOffered);
    if (problem) errors[field.blockId] = problem;
  }
  return offered.filter((v) => seen.has(v));
}

function fieldProblem(
  field: TickedField,
  total: number,
  expectedBlocks: readonly string[],
  offered: readonly string[],
  seen: Set<string>,
  notOffered: (value: string) => string,
): string | undefined {
  if (!field.values)
    return "ami-bot could not read what is ticked here. Untick the boxes and tick them again.";
  if (field.values.length === 0) return undefined;
  if (offered.length > 0 && total > offered.length)
    return `${total} choices are ticked, but only ${offered.length} ${offered.length === 1 ? "is" : "are"} offered here.`;
  for (const value of field.values) {
    if (!offered.includes(value)) return notOffered(value);
    if (seen.has(value)) return `“${shown(value)}” is ticked twice.`;
    seen.add(value);
  }
  // Offered values in a block drawn for another place (its redraw lost): not what the person saw here.
  if (!expectedBlocks.includes(field.blockId))
    return "These were listed for another account or region. Choose the account and region again, then tick what you want.";
  return undefined;
}

/** A submitted value as an error may quote it: short, and printable ASCII only (regions and ids are). */
function shown(value: string): string {
  return value.slice(0, 40).replace(/[^\x20-\x7e]/g, "?");
}
