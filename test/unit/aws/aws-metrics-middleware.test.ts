/**
 * The AWS metrics middleware on real SDK clients over the wire against fake-aws (aws-sdk-client-mock would
 * replace `send` and skip the middleware stack altogether).
 */
import { DescribeImagesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { awsMetricsMiddleware } from "../../../src/aws/aws-metrics-middleware.js";
import { createBotStsClient, getBotIdentity } from "../../../src/aws/bot-identity.js";
import { type Ec2ClientFactory, Ec2Images } from "../../../src/aws/ec2-images.js";
import { createSessionFactory } from "../../../src/aws/scoped-credentials.js";
import { createMetrics } from "../../../src/metrics/metrics.js";
import { type FakeAws, startFakeAws } from "../../fakes/fake-aws.js";
import { ACCOUNT, adapterTarget, EXTERNAL_ID, placeOf, REGION, ROLE_ARN } from "../../support/ec2-adapter.js";
import { freePort as closedPort } from "../../support/free-port.js";
import { parsePrometheusText, sampleValue } from "../metrics/prometheus-text.js";

const credentials = { accessKeyId: "test", secretAccessKey: "test" };

let fake: FakeAws;
beforeAll(async () => {
  fake = await startFakeAws({ accountId: ACCOUNT, roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } } });
});
afterEach(() => {
  fake.requests.length = 0;
  vi.unstubAllEnvs();
});
afterAll(async () => {
  await fake.close();
});

function recordingHook() {
  const calls: [string, string | undefined][] = [];
  return { calls, hook: (operation: string, errorCode?: string) => void calls.push([operation, errorCode]) };
}

function ec2(endpoint: string, maxAttempts = 1): EC2Client {
  return new EC2Client({ region: REGION, credentials, endpoint, maxAttempts });
}

describe("awsMetricsMiddleware on an EC2Client", () => {
  it("counts a successful call by its operation with no error code", async () => {
    const { calls, hook } = recordingHook();
    const client = ec2(fake.url);
    client.middlewareStack.use(awsMetricsMiddleware(hook));
    await client.send(new DescribeImagesCommand({ Owners: ["self"] }));
    expect(calls).toEqual([["DescribeImages", undefined]]);
  });

  it("counts a failed call with the error code AWS answered", async () => {
    const { calls, hook } = recordingHook();
    const client = ec2(fake.url);
    client.middlewareStack.use(awsMetricsMiddleware(hook));
    fake.failNext("DescribeImages", { code: "UnauthorizedOperation", status: 403 });
    await expect(client.send(new DescribeImagesCommand({}))).rejects.toMatchObject({
      name: "UnauthorizedOperation",
    });
    expect(calls).toEqual([["DescribeImages", "UnauthorizedOperation"]]);
  });

  it("counts a call the SDK retried once, with the outcome of its last attempt", async () => {
    const { calls, hook } = recordingHook();
    const client = ec2(fake.url, 3);
    client.middlewareStack.use(awsMetricsMiddleware(hook));
    fake.failNext("DescribeImages", { code: "InternalError", status: 500, count: 2 });
    await client.send(new DescribeImagesCommand({}));
    expect(fake.calls("DescribeImages")).toHaveLength(3);
    expect(calls).toEqual([["DescribeImages", undefined]]);
  });

  it("counts a call that never reached AWS with the network error's code", async () => {
    const { calls, hook } = recordingHook();
    const client = ec2(`http://127.0.0.1:${await closedPort()}`);
    client.middlewareStack.use(awsMetricsMiddleware(hook));
    await expect(client.send(new DescribeImagesCommand({}))).rejects.toThrow();
    expect(calls).toEqual([["DescribeImages", "ECONNREFUSED"]]);
  });

  it("counts each call once when the middleware is added to a client twice", async () => {
    const { calls, hook } = recordingHook();
    const client = ec2(fake.url);
    client.middlewareStack.use(awsMetricsMiddleware(hook));
    client.middlewareStack.use(awsMetricsMiddleware(hook));
    await client.send(new DescribeImagesCommand({}));
    expect(calls).toHaveLength(1);
  });

  it("never fails a call because the hook threw", async () => {
    const client = ec2(fake.url);
    client.middlewareStack.use(
      awsMetricsMiddleware(() => {
        throw new Error("broken hook");
      }),
    );
    await expect(client.send(new DescribeImagesCommand({}))).resolves.toBeDefined();
  });
});

describe("the adapters' onAwsCall option", () => {
  it("counts the EC2 adapter's calls and its AssumeRole into the bot's metrics", async () => {
    const metrics = createMetrics({
      snapshot: () => ({ jobsByState: {}, outboxBacklog: 0, oldestOutboxCreatedAt: undefined }),
    });
    const sessions = createSessionFactory({ endpoint: fake.url, credentials }, undefined, {
      onAwsCall: metrics.awsCall,
    });
    const clientFactory: Ec2ClientFactory = (region, creds) =>
      new EC2Client({ region, credentials: creds, endpoint: fake.url, maxAttempts: 1 });
    const images = new Ec2Images({ sessions, clientFactory, onAwsCall: metrics.awsCall });
    const place = placeOf(adapterTarget());
    fake.failNext("DescribeImages", { code: "RequestLimitExceeded", status: 503 });
    await expect(images.describeImages(place, ["ami-0123456789abcdef0"])).rejects.toThrow();
    await images.describeImages(place, ["ami-0123456789abcdef0"]);
    images.close();

    const families = parsePrometheusText((await metrics.render()).body);
    expect(sampleValue(families, "ami_bot_aws_calls_total", { operation: "DescribeImages" })).toBe(2);
    expect(
      sampleValue(families, "ami_bot_aws_errors_total", {
        operation: "DescribeImages",
        code: "RequestLimitExceeded",
      }),
    ).toBe(1);
    // The watcher's read-only session is assumed once and reused.
    expect(sampleValue(families, "ami_bot_aws_calls_total", { operation: "AssumeRole" })).toBe(1);
    expect(fake.calls("AssumeRole")).toHaveLength(1);
  });

  it("counts AssumeRole refusals with STS's error code", async () => {
    const { calls, hook } = recordingHook();
    const sessions = createSessionFactory({ endpoint: fake.url, credentials }, undefined, {
      onAwsCall: hook,
    });
    const provider = sessions({
      target: adapterTarget({ roleArn: `arn:aws:iam::${ACCOUNT}:role/unknown` }),
      region: REGION,
      policy: { Version: "2012-10-17", Statement: [] },
      userId: "U0REQUEST1",
      channelId: "C0CHANNEL1",
    });
    await expect(provider()).rejects.toThrow();
    expect(calls).toEqual([["AssumeRole", "AccessDenied"]]);
  });

  it("counts the bot identity's GetCallerIdentity", async () => {
    vi.stubEnv("AWS_ENDPOINT_URL", fake.url);
    vi.stubEnv("AWS_ACCESS_KEY_ID", "test");
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", "test");
    vi.stubEnv("AWS_SESSION_TOKEN", "");
    vi.stubEnv("AWS_PROFILE", "");
    const { calls, hook } = recordingHook();
    const sts = createBotStsClient(REGION, undefined, { onAwsCall: hook });
    await getBotIdentity(sts);
    expect(calls).toEqual([["GetCallerIdentity", undefined]]);
  });

  it("leaves the clients unchanged when no hook is given", async () => {
    const sessions = createSessionFactory({ endpoint: fake.url, credentials });
    const clientFactory: Ec2ClientFactory = (region, creds) =>
      new EC2Client({ region, credentials: creds, endpoint: fake.url, maxAttempts: 1 });
    const images = new Ec2Images({ sessions, clientFactory });
    await expect(images.describeImages(placeOf(adapterTarget()), ["ami-0123456789abcdef0"])).resolves.toEqual(
      new Map(),
    );
    images.close();
  });
});
