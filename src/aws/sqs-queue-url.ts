/**
 * SQS queue URLs: checked for config (AMI_EVENTS_QUEUE_URL) and read for the region the queue lives in, so
 * the client signs for the queue's region whatever AWS_REGION says.
 */

const REGION = "[a-z]{2,4}(?:-[a-z]+)+-\\d+";
/** sqs.<region>.amazonaws.com(.cn), sqs-fips.…, sqs.<region>.api.aws, vpce-….sqs.<region>.vpce.amazonaws.com */
const SQS_HOST = new RegExp(
  `(?:^|\\.)sqs(?:-fips)?\\.(${REGION})\\.(?:vpce\\.)?(?:amazonaws\\.com(?:\\.cn)?|api\\.aws)$`,
);
/** The legacy form, <region>.queue.amazonaws.com. */
const LEGACY_HOST = new RegExp(`^(${REGION})\\.queue\\.amazonaws\\.com$`);
/** /<account>/<name>: names are up to 80 letters, digits, hyphens and underscores (a FIFO queue's end in .fifo). */
const QUEUE_PATH = /^\/\d{12}\/(?:[\w-]{1,80}|[\w-]{1,75}\.fifo)$/;

const EXAMPLE = "https://sqs.eu-west-1.amazonaws.com/123456789012/ami-bot-events";

/** The region an AWS queue URL names, or undefined (a local stand-in, or not a queue URL). */
export function regionOfQueueUrl(text: string): string | undefined {
  let host: string;
  try {
    host = new URL(text).hostname;
  } catch {
    return undefined;
  }
  if (host === "queue.amazonaws.com") return "us-east-1";
  return SQS_HOST.exec(host)?.[1] ?? LEGACY_HOST.exec(host)?.[1];
}

function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "");
  return bare === "localhost" || bare === "::1" || /^127(\.\d{1,3}){3}$/.test(bare);
}

/**
 * Why `text` is not a queue URL the bot may poll, or undefined. AWS queues only over https; plain http only
 * on this machine (a local stand-in), so signed requests never cross a network in clear text.
 */
export function queueUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `not a URL (a queue URL looks like ${EXAMPLE})`;
  }
  if (url.username || url.password || url.search || url.hash)
    return `must be a bare queue URL, without credentials, query or fragment, e.g. ${EXAMPLE}`;
  if (url.protocol === "http:" && !isLoopback(url.hostname))
    return "must be https:// (plain http only to a loopback address such as 127.0.0.1, for a local stand-in)";
  if (url.protocol !== "https:" && url.protocol !== "http:")
    return `must be an https:// queue URL, e.g. ${EXAMPLE}`;
  if (url.protocol === "https:" && !regionOfQueueUrl(text))
    return `is not an SQS endpoint (sqs.<region>.amazonaws.com), e.g. ${EXAMPLE}`;
  if (!QUEUE_PATH.test(url.pathname))
    return `the path must be /<12-digit account id>/<queue name>, e.g. ${EXAMPLE}`;
  return undefined;
}
