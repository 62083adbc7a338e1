import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { type AwsCallHook, awsMetricsMiddleware } from "./aws-metrics-middleware.js";
import { type AwsTimeouts, DEFAULT_AWS_TIMEOUTS, requestHandlerOptions } from "./timeouts.js";

/**
 * An STS client for the bot's own identity, from the SDK's standard chain, with the bot's time limits. It
 * asks STS in `region` (a target's), so AWS_REGION is not needed. `onAwsCall` is told of each call.
 */
export function createBotStsClient(
  region: string,
  timeouts: AwsTimeouts = DEFAULT_AWS_TIMEOUTS,
  options: { onAwsCall?: AwsCallHook } = {},
): STSClient {
  const client = new STSClient({ region, maxAttempts: 2, requestHandler: requestHandlerOptions(timeouts) });
  if (options.onAwsCall) client.middlewareStack.use(awsMetricsMiddleware(options.onAwsCall));
  return client;
}

/** The bot's own AWS identity (before any AssumeRole), from the SDK's standard credential chain. */
export async function getBotIdentity(client: STSClient, abortSignal?: AbortSignal): Promise<string> {
  const out = await client.send(new GetCallerIdentityCommand({}), abortSignal ? { abortSignal } : {});
  return out.Arn ?? `account ${out.Account ?? "unknown"}`;
}
