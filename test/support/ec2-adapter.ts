/** What the EC2 adapter's tests share: one target account and place, and EC2's errors as the SDK raises them. */
import { EC2ServiceException } from "@aws-sdk/client-ec2";
import type { Place, Requester } from "../../src/domain/ports.js";
import type { Target } from "../../src/domain/target.js";
import { AwsRefusedError } from "../../src/errors.js";
import { testTarget } from "../fakes/job-fixtures.js";

export const ACCOUNT = "123456789012";
export const REGION = "eu-west-1";
export const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/ami-bot-target`;
export const EXTERNAL_ID = "external-id-0123456789";
export const INSTANCE = "i-0123456789abcdef0";
export const SCOPE_TAG = { "ami-bot": "allowed" };

/** The target "prod": everyone allowed, instances in scope only with SCOPE_TAG. */
export function adapterTarget(overrides: Partial<Target> = {}): Target {
  return testTarget({
    name: "prod",
    roleArn: ROLE_ARN,
    accountId: ACCOUNT,
    externalId: EXTERNAL_ID,
    regions: [REGION],
    allow: { users: ["*"], usergroups: [], channels: [] },
    instanceScope: { requiredTags: SCOPE_TAG },
    ...overrides,
  });
}

export const requester: Requester = { userId: "U0REQUEST1", channelId: "C0CHANNEL1" };

export function placeOf(target: Target): Place {
  return { target, region: REGION };
}

/** An EC2 error as the SDK throws it; 5xx are server faults. */
export function awsError(
  name: string,
  status: number,
  fault: "client" | "server" = status >= 500 ? "server" : "client",
) {
  return new EC2ServiceException({
    name,
    $fault: fault,
    $metadata: { httpStatusCode: status },
    message: name,
  });
}

/** The AwsRefusedError a call rejects with; fails the test on anything else. */
export async function refusal(promise: Promise<unknown>): Promise<AwsRefusedError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof AwsRefusedError))
    throw new Error(`expected an AwsRefusedError, got ${String(error)}`);
  return error;
}
