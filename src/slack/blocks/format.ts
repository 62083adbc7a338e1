/** Small pure helpers shared by the Block Kit builders. */

/** Escapes the three characters Slack's mrkdwn treats as control characters. */
export function escapeText(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
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
