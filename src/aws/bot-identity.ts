import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { type AwsTimeouts, DEFAULT_AWS_TIMEOUTS, requestHandlerOptions } from "./timeouts.js";

/** An STS client for the bot's own identity, from the SDK's standard chain, with the bot's time limits. */
export function createBotStsClient(timeouts: AwsTimeouts = DEFAULT_AWS_TIMEOUTS): STSClient {
  return new STSClient({ maxAttempts: 2, requestHandler: requestHandlerOptions(timeouts) });
}

/** The bot's own AWS identity (before any AssumeRole), from the SDK's standard credential chain. */
export async function getBotIdentity(
  client: STSClient = createBotStsClient(),
  abortSignal?: AbortSignal,
): Promise<string> {
  const out = await client.send(new GetCallerIdentityCommand({}), abortSignal ? { abortSignal } : {});
  return out.Arn ?? `account ${out.Account ?? "unknown"}`;
}
