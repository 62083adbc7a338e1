/** Small pure helpers shared by the Block Kit builders. */

/** Escapes the three characters Slack's mrkdwn treats as control characters. */
export function escapeText(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Stands in for a backtick inside a code span, where Slack offers no way to escape one (U+02CB, a look-alike). */
export const BACKTICK_STAND_IN = "ˋ";

/** Shown instead of an empty or blank value, which Slack would render as nothing (or as bare backticks). */
export const EMPTY_VALUE = "(empty)";

/**
 * A value someone else chose (an image name, a tag, an instance's Name tag), shown as typed: in a code span,
 * where Slack applies no bold, italic or strike. A backtick would close the span early, so it becomes a
 * look-alike; a line break would end it, so line breaks (and other control characters) become spaces.
 * & < > stay escaped, as Slack reads them as control characters even inside code. Pair with a `verbatim`
 * text object, so that Slack does not link URLs or mentions on its own either.
 */
export function literal(value: string): string {
  const flat = value
    .replace(/`/g, BACKTICK_STAND_IN)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this removes.
    .replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, " ")
    .trim();
  return flat === "" ? EMPTY_VALUE : `\`${escapeText(flat)}\``;
}

/**
 * Running text that may quote someone's value (a reason from AWS or ami-bot naming the image): escaped, and
 * at most `max` characters once escaped, so one long reason cannot push a block past Slack's length limits.
 */
export function prose(text: string, max = 1000): string {
  const escaped = escapeText(text);
  if (escaped.length <= max) return escaped;
  let cut = max - 1;
  // Never cut inside an entity (Slack would show a stray "&l") or between the halves of a surrogate pair.
  const amp = escaped.lastIndexOf("&", cut - 1);
  if (amp !== -1 && escaped.indexOf(";", amp) >= cut) cut = amp;
  const last = escaped.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut -= 1;
  return `${escaped.slice(0, cut)}…`;
}

export function formatDuration(ms: number): string {
  const totalSeconds = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${s} s`;
  return `${s} s`;
}

export function consoleImageUrl(partition: string, region: string, imageId: string): string {
  const host =
    partition === "aws-cn"
      ? "console.amazonaws.cn"
      : partition === "aws-us-gov"
        ? "console.amazonaws-us-gov.com"
        : "console.aws.amazon.com";
  return `https://${region}.${host}/ec2/home?region=${region}#ImageDetails:imageId=${imageId}`;
}
