import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";

/** The bot's own AWS identity (before any AssumeRole), from the SDK's standard credential chain. */
export async function getBotIdentity(client: STSClient = new STSClient({})): Promise<string> {
  const out = await client.send(new GetCallerIdentityCommand({}));
  return out.Arn ?? `account ${out.Account ?? "unknown"}`;
}
