/**
 * What a person asks for in the modal, and the rules it must meet before anything reaches AWS.
 * Pure functions: no I/O, so every rule is tested directly.
 */
import type { Target } from "./target.js";

/** What the form's rules need to know of a target: its reboot policy and the tag keys it allows. */
export type TargetRules = Pick<Target, "name" | "reboot" | "tagKeys">;

export interface ImageRequestInput {
  readonly targetName: string | undefined;
  readonly region: string | undefined;
  readonly instanceId: string | undefined;
  /**
   * The instance's Name tag as shown in the picker. Client-supplied: used only in the person's own modal,
   * never for what the channel shows (that is read from AWS).
   */
  readonly instanceLabel: string | undefined;
  readonly imageName: string | undefined;
  readonly description: string | undefined;
  readonly reboot: "reboot" | "no_reboot" | undefined;
  readonly tagsText: string | undefined;
  readonly channelId: string | undefined;
}

export interface Tag {
  readonly key: string;
  readonly value: string;
}

export interface ImageRequest {
  readonly targetName: string;
  readonly region: string;
  readonly instanceId: string;
  readonly instanceName: string | undefined;
  readonly imageName: string;
  /** No name was typed: `imageName` is a default, to be remade from the instance's Name tag once AWS says it. */
  readonly imageNameDefaulted: boolean;
  readonly description: string | undefined;
  readonly noReboot: boolean;
  readonly tags: readonly Tag[];
  readonly channelId: string;
}

export type RequestField =
  | "where"
  | "instance"
  | "image_name"
  | "description"
  | "reboot"
  | "tags"
  | "channel";

export type Validation =
  | { readonly ok: true; readonly request: ImageRequest }
  | { readonly ok: false; readonly errors: Partial<Record<RequestField, string>> };

/** Tag keys the bot sets itself on every image and snapshot. */
export const AUTOMATIC_TAG_KEYS = [
  "Name",
  "ami-bot:job-id",
  "ami-bot:requested-by",
  "ami-bot:channel",
] as const;
export const MAX_TAGS = 50;
export const MAX_USER_TAGS = MAX_TAGS - AUTOMATIC_TAG_KEYS.length;

// CreateImage's own rule for Name: 3–128 of letters, digits, ( ) [ ] space . / - ' @ _
const IMAGE_NAME = /^[A-Za-z0-9()[\] ./\-'@_]{3,128}$/;
const INSTANCE_ID = /^i-([0-9a-f]{8}|[0-9a-f]{17})$/;
const CHANNEL_ID = /^[CGD][A-Z0-9]{2,}$/;
// C0 and C1 control characters, plus bidi overrides that can disguise text.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

export function isInstanceId(value: string): boolean {
  return INSTANCE_ID.test(value);
}

/** A default image name: the instance's name (or id) and the UTC time, made to fit CreateImage's rule. */
export function defaultImageName(instanceLabel: string | undefined, instanceId: string, now: Date): string {
  const stamp = now.toISOString().slice(0, 16).replace("T", " ").replace(":", ""); // 2026-11-28 0240
  const base = sanitizeName(instanceLabel?.trim() || instanceId) || instanceId;
  return `${base.slice(0, 128 - stamp.length - 5)} ${stamp} UTC`;
}

function sanitizeName(text: string): string {
  return text
    .normalize("NFKD")
    .replace(/[^A-Za-z0-9()[\] ./\-'@_]/g, "-")
    .replace(/\s+/g, " ")
    .trim();
}

/**
 * The next name to offer when `name` is taken: "web-1 nightly (2)", or "(3)" after "(2)". The base is cut
 * so the whole stays within CreateImage's 128 characters (and trimmed, as a name may not end in a space).
 */
export function nextImageName(name: string): string {
  const numbered = /^(.*) \((\d{1,6})\)$/.exec(name);
  const base = numbered?.[1] ?? name;
  const suffix = ` (${numbered ? Number(numbered[2]) + 1 : 2})`;
  return `${base.slice(0, 128 - suffix.length).trimEnd()}${suffix}`;
}

/** Explains what is wrong with an image name, or returns undefined when it is fine. */
export function checkImageName(name: string): string | undefined {
  if (name !== name.trim()) return "Remove the spaces at the start or end of the name.";
  if (name.length < 3) return "The name needs at least 3 characters.";
  if (name.length > 128) return `The name is ${name.length} characters; the limit is 128.`;
  if (!IMAGE_NAME.test(name)) {
    const bad = [...new Set([...name].filter((c) => !/[A-Za-z0-9()[\] ./\-'@_]/.test(c)))];
    const shown = bad.map((c) =>
      CONTROL.test(c) || c.trim() === "" || /[\p{C}\p{Z}\p{M}]/u.test(c)
        ? `U+${c.codePointAt(0)?.toString(16).toUpperCase().padStart(4, "0")}`
        : `“${c}”`,
    );
    return `AWS does not allow ${shown.join(", ")} in an image name. Use letters, digits, spaces and ( ) [ ] . / - ' @ _`;
  }
  return undefined;
}

export function checkDescription(text: string): string | undefined {
  if (text.length > 255) return `The description is ${text.length} characters; the limit is 255.`;
  if (CONTROL.test(text.replace(/\n/g, " ")))
    return "The description contains control characters; remove them.";
  return undefined;
}

/** Whether a target's `tagKeys` (exact keys, or prefixes ending in `*`) allow a key; case matters, as in IAM. */
export function tagKeyAllowed(key: string, allowed: readonly string[] | undefined): boolean {
  if (allowed === undefined) return true;
  return allowed.some((pattern) =>
    pattern.endsWith("*") ? key.startsWith(pattern.slice(0, -1)) : key === pattern,
  );
}

/**
 * Parses `key=value` lines into tags, or explains the first problem found. `target` limits the keys to
 * those its `tagKeys` allow.
 */
export function parseTags(text: string, target?: TargetRules): { tags: Tag[] } | { error: string } {
  const tags: Tag[] = [];
  const seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === "") continue;
    const where = `Line ${index + 1}`;
    const eq = line.indexOf("=");
    if (eq < 0) return { error: `${where}: write each tag as key=value.` };
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (key === "") return { error: `${where}: the tag key is empty.` };
    if (key.length > 128)
      return { error: `${where}: the key is ${key.length} characters; the limit is 128.` };
    if (value.length > 256)
      return { error: `${where}: the value is ${value.length} characters; the limit is 256.` };
    if (CONTROL.test(key) || CONTROL.test(value))
      return { error: `${where}: remove the control characters.` };
    if (key.toLowerCase().startsWith("aws:"))
      return { error: `${where}: keys starting with “aws:” are reserved by AWS.` };
    if (key.toLowerCase().startsWith("ami-bot:") || key === "Name")
      return { error: `${where}: “${key}” is set by ami-bot itself; choose another key.` };
    if (seen.has(key)) return { error: `${where}: the key “${key}” is given twice.` };
    if (target && !tagKeyAllowed(key, target.tagKeys))
      return {
        error: `${where}: the tag key “${key}” is not allowed in ${target.name}. Allowed: ${(target.tagKeys ?? []).join(", ")}.`,
      };
    seen.add(key);
    tags.push({ key, value });
  }
  if (tags.length > MAX_USER_TAGS)
    return {
      error: `${tags.length} tags is too many: AWS allows ${MAX_TAGS} and ami-bot adds ${AUTOMATIC_TAG_KEYS.length}, so at most ${MAX_USER_TAGS}.`,
    };
  return { tags };
}

/**
 * Checks a submitted form. `allowedWhere` is the set of "target|region" pairs this person may use, so a
 * value Slack echoes back is never trusted just because it came from our own modal.
 */
export function validateImageRequest(
  input: ImageRequestInput,
  allowedWhere: ReadonlySet<string>,
  now: Date,
  rulesOf: (targetName: string) => TargetRules | undefined = () => undefined,
): Validation {
  const errors: Partial<Record<RequestField, string>> = {};
  const where = `${input.targetName ?? ""}|${input.region ?? ""}`;
  if (!input.targetName || !input.region) errors.where = "Choose an account and region.";
  else if (!allowedWhere.has(where)) errors.where = "You may not create images in that account and region.";

  const instanceId = input.instanceId?.trim() ?? "";
  if (!instanceId) errors.instance = "Choose an instance.";
  else if (!isInstanceId(instanceId)) errors.instance = "That is not an EC2 instance id (i-…).";

  const typedName = input.imageName ?? "";
  const imageName =
    typedName === "" && !errors.instance ? defaultImageName(undefined, instanceId, now) : typedName;
  // An empty name is fine (a default is made); without an instance there is no default yet, so no error.
  const nameError = typedName === "" && errors.instance ? undefined : checkImageName(imageName);
  if (nameError) errors.image_name = nameError;

  const description = input.description ?? "";
  const descriptionError = checkDescription(description);
  if (descriptionError) errors.description = descriptionError;

  const rules = input.targetName ? rulesOf(input.targetName) : undefined;
  // Rebooting is the account owner's decision: unless the target says `ask`, NoReboot is always sent,
  // whatever the form claims. Where the person may choose, not choosing means no reboot.
  const noReboot = rules?.reboot !== "ask" || input.reboot !== "reboot";

  const parsedTags = parseTags(input.tagsText ?? "", rules);
  if ("error" in parsedTags) errors.tags = parsedTags.error;

  if (!input.channelId || !CHANNEL_ID.test(input.channelId))
    errors.channel = "Choose a channel for the updates.";

  if (Object.keys(errors).length > 0 || "error" in parsedTags) return { ok: false, errors };
  return {
    ok: true,
    request: {
      targetName: input.targetName as string,
      region: input.region as string,
      instanceId,
      // Filled in from AWS (DescribeInstances), never from the payload's option text.
      instanceName: undefined,
      imageNameDefaulted: typedName === "",
      imageName,
      description: description.trim() || undefined,
      noReboot,
      tags: parsedTags.tags,
      channelId: input.channelId as string,
    },
  };
}
