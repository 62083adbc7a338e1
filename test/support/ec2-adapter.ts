/** What the EC2 adapter's tests share: one target account and place, and EC2's errors as the SDK raises them. */
import { EC2Client, EC2ServiceException } from "@aws-sdk/client-ec2";
import type { Ec2ClientFactory } from "../../src/aws/ec2-images.js";
import {
  createSessionFactory,
  type SessionFactory,
  type SessionRequest,
} from "../../src/aws/scoped-credentials.js";
import type { Place, Requester } from "../../src/domain/ports.js";
import type { Target } from "../../src/domain/target.js";
import { AwsRefusedError } from "../../src/errors.js";
import { type FakeAws, startFakeAws } from "../fakes/fake-aws.js";
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

/** A session factory for a mocked EC2 client: dummy credentials, each request kept in `requests`. */
export function recordingSessions(): { sessions: SessionFactory; requests: SessionRequest[] } {
  const requests: SessionRequest[] = [];
  const sessions: SessionFactory = (request) => {
    requests.push(request);
    return async () => ({ accessKeyId: "x", secretAccessKey: "y" });
  };
  return { sessions, requests };
}

/**
 * fake-aws with the target's role (ACCOUNT, ROLE_ARN, EXTERNAL_ID), and real sessions and EC2 clients
 * reaching it over the SDK wire. The bot's own identity goes to the STS client directly rather than
 * through process.env (createSessionFactory spreads its argument into fromTemporaryCredentials'
 * clientConfig). One attempt per call, so each fault the fake answers is seen once, not retried away.
 */
export async function startAdapterFake(): Promise<{
  fake: FakeAws;
  sessions: SessionFactory;
  clientFactory: Ec2ClientFactory;
}> {
  const fake = await startFakeAws({ accountId: ACCOUNT, roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } } });
  const sessions = createSessionFactory({
    endpoint: fake.url,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
  const clientFactory: Ec2ClientFactory = (region, credentials) =>
    new EC2Client({ region, credentials, endpoint: fake.url, maxAttempts: 1 });
  return { fake, sessions, clientFactory };
}
