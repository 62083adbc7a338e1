import { SQSClient } from "@aws-sdk/client-sqs";
import type { Logger as SdkLogger } from "@smithy/types";
import type { Logger } from "../logger.js";
import { type AwsCallHook, awsMetricsMiddleware } from "./aws-metrics-middleware.js";
import { regionOfQueueUrl } from "./sqs-queue-url.js";
import { type AwsTimeouts, requestHandlerOptions } from "./timeouts.js";

/** SDK attempts per call; the events consumer's own back-off takes over beyond them. */
const SQS_ATTEMPTS = 3;
/** Distinct SDK warnings logged at most; the same one is logged once. */
const MAX_SDK_WARNINGS = 50;

/**
 * The SDK's own warnings (a QueueUrl whose host differs from the resolved endpoint, …) go to our log once
 * each, not per call; its per-call info and error lines are left out (the consumer logs failures itself,
 * and the info lines would carry every message body).
 */
function sdkLogger(logger: Logger): SdkLogger {
  const seen = new Set<string>();
  const ignore = () => {};
  return {
    trace: ignore,
    debug: ignore,
    info: ignore,
    error: ignore,
    warn: (...content: unknown[]) => {
      const text = content.map(String).join(" ");
      if (seen.has(text) || seen.size >= MAX_SDK_WARNINGS) return;
      seen.add(text);
      logger.warn({ sdk: text }, "the AWS SDK warns about the events queue");
    },
  };
}

/**
 * A client for the queue's region: `region`, else the one the queue URL names, else the SDK's own
 * (AWS_REGION). Endpoints are left to the SDK: AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL apply, and it sends
 * each call to the QueueUrl's host when that differs (so a local stand-in is reached through its queue URL).
 */
export function createSqsClient(options: {
  readonly queueUrl: string;
  readonly region?: string | undefined;
  readonly timeouts: AwsTimeouts;
  readonly logger: Logger;
  /** Told of each call and its error, by operation (metrics). */
  readonly onAwsCall?: AwsCallHook | undefined;
}): SQSClient {
  const region = options.region ?? regionOfQueueUrl(options.queueUrl);
  const client = new SQSClient({
    ...(region && { region }),
    maxAttempts: SQS_ATTEMPTS,
    retryMode: "standard",
    requestHandler: requestHandlerOptions(options.timeouts),
    logger: sdkLogger(options.logger),
  });
  if (options.onAwsCall) client.middlewareStack.use(awsMetricsMiddleware(options.onAwsCall));
  return client;
}
