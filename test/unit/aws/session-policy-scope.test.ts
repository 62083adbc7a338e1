/**
 * What a scoped session may do, proved two ways: over the SDK wire against fake-aws (which enforces session
 * policies), and by asking fake-aws's policy evaluator about calls it does not serve (a bare CreateTags,
 * image sharing, deletion). The session for one request confines CreateImage to the chosen instance in the
 * chosen account and region, and CreateTags to what that CreateImage creates.
 */
import { CreateImageCommand, EC2Client } from "@aws-sdk/client-ec2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { translateEc2Error } from "../../../src/aws/aws-errors.js";
import { createSessionFactory, type SessionFactory } from "../../../src/aws/scoped-credentials.js";
import { createImagePolicy, readOnlyPolicy } from "../../../src/aws/session-policy.js";
import type { Target } from "../../../src/config.js";
import { type FakeAws, sessionPolicyPermits, startFakeAws } from "../../fakes/fake-aws.js";

const ACCOUNT = "123456789012";
const OTHER_ACCOUNT = "999999999999";
const REGION = "eu-west-1";
const OTHER_REGION = "us-east-1";
const ROLE = "ami-bot-target";
const EXTERNAL_ID = "external-id-0123456789";
const INSTANCE = "i-0123456789abcdef0";
const OTHER_INSTANCE = "i-0fedcba9876543210";
const scope = { partition: "aws", accountId: ACCOUNT, region: REGION };

const policyJson = JSON.stringify(createImagePolicy(scope, INSTANCE));
const readJson = JSON.stringify(readOnlyPolicy(scope));
const arn = {
  instance: (id = INSTANCE, account = ACCOUNT, region = REGION) =>
    `arn:aws:ec2:${region}:${account}:instance/${id}`,
  image: (region = REGION) => `arn:aws:ec2:${region}::image/ami-0123456789abcdef0`,
  snapshot: (region = REGION) => `arn:aws:ec2:${region}::snapshot/snap-0123456789abcdef0`,
};
const inRegion = (region = REGION, extra: Record<string, string> = {}) => ({
  "aws:RequestedRegion": region,
  ...extra,
});
const whileCreating = { "ec2:CreateAction": "CreateImage" };

describe("the CreateImage session policy, evaluated", () => {
  it("allows CreateImage of the chosen instance into a new image and snapshots, in its region", () => {
    expect(
      sessionPolicyPermits(
        policyJson,
        "ec2:CreateImage",
        [arn.instance(), arn.image(), arn.snapshot()],
        inRegion(),
      ),
    ).toBe(true);
  });

  // biome-ignore format: a table
  const denied: [string, string, string[], Record<string, string>][] = [
    ["CreateImage of another instance", "ec2:CreateImage", [arn.instance(OTHER_INSTANCE)], inRegion()],
    ["CreateImage of the same id in another account", "ec2:CreateImage", [arn.instance(INSTANCE, OTHER_ACCOUNT)], inRegion()],
    ["CreateImage of the same id in another region", "ec2:CreateImage", [arn.instance(INSTANCE, ACCOUNT, OTHER_REGION)], inRegion(OTHER_REGION)],
    ["CreateImage making an image in another region", "ec2:CreateImage", [arn.image(OTHER_REGION)], inRegion(OTHER_REGION)],
    ["CreateTags on an existing image (no CreateImage)", "ec2:CreateTags", [arn.image()], inRegion()],
    ["CreateTags on an existing snapshot (no CreateImage)", "ec2:CreateTags", [arn.snapshot()], inRegion()],
    ["CreateTags on the instance, even during CreateImage", "ec2:CreateTags", [arn.instance()], inRegion(REGION, whileCreating)],
    ["CreateTags on a volume during CreateImage", "ec2:CreateTags", [`arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-0123456789abcdef0`], inRegion(REGION, whileCreating)],
    ["CreateTags on a security group", "ec2:CreateTags", [`arn:aws:ec2:${REGION}:${ACCOUNT}:security-group/sg-0123456789abcdef0`], inRegion(REGION, whileCreating)],
    ["CreateTags on an image in another region", "ec2:CreateTags", [arn.image(OTHER_REGION)], inRegion(OTHER_REGION, whileCreating)],
    ["sharing an image (ModifyImageAttribute)", "ec2:ModifyImageAttribute", [arn.image()], inRegion()],
    ["deregistering an image", "ec2:DeregisterImage", [arn.image()], inRegion()],
    ["deleting a snapshot", "ec2:DeleteSnapshot", [arn.snapshot()], inRegion()],
    ["copying an image", "ec2:CopyImage", [arn.image()], inRegion()],
    ["launching an instance", "ec2:RunInstances", ["*"], inRegion()],
    ["stopping the instance", "ec2:StopInstances", [arn.instance()], inRegion()],
    ["DeleteTags", "ec2:DeleteTags", [arn.image()], inRegion(REGION, whileCreating)],
    ["describing another region", "ec2:DescribeInstances", ["*"], inRegion(OTHER_REGION)],
    ["passing a role", "iam:PassRole", ["*"], inRegion()],
    ["hopping to another role", "sts:AssumeRole", ["*"], inRegion()],
  ];
  for (const [what, action, resources, context] of denied) {
    it(`denies ${what}`, () => {
      expect(sessionPolicyPermits(policyJson, action, resources, context)).toBe(false);
    });
  }

  it("allows CreateTags only on the new image and snapshots, as part of CreateImage", () => {
    const created = [arn.image(), arn.snapshot()];
    expect(sessionPolicyPermits(policyJson, "ec2:CreateTags", created, inRegion(REGION, whileCreating))).toBe(
      true,
    );
    expect(
      sessionPolicyPermits(
        policyJson,
        "ec2:CreateTags",
        created,
        inRegion(REGION, { "ec2:CreateAction": "CopyImage" }),
      ),
    ).toBe(false);
  });

  it("gives the picker's and watcher's read-only sessions no write at all", () => {
    for (const action of ["ec2:CreateImage", "ec2:CreateTags", "ec2:ModifyImageAttribute"])
      expect(
        sessionPolicyPermits(
          readJson,
          action,
          [arn.instance(), arn.image()],
          inRegion(REGION, whileCreating),
        ),
      ).toBe(false);
    for (const action of ["ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeSnapshots"]) {
      expect(sessionPolicyPermits(readJson, action, ["*"], inRegion())).toBe(true);
      expect(sessionPolicyPermits(readJson, action, ["*"], inRegion(OTHER_REGION))).toBe(false);
    }
  });

  it("refuses to build a policy for a wildcard instance id", () => {
    expect(() => createImagePolicy(scope, "*")).toThrow();
    expect(() => createImagePolicy(scope, "i-*")).toThrow();
  });
});

describe("the same session over the SDK wire", () => {
  const roleArn = (account: string) => `arn:aws:iam::${account}:role/${ROLE}`;
  const target = (account: string): Target => ({
    name: `t-${account}`,
    roleArn: roleArn(account),
    accountId: account,
    partition: "aws",
    externalId: EXTERNAL_ID,
    regions: [REGION],
    allow: { users: ["*"], usergroups: [], channels: [] },
    instanceScope: { requiredTags: {} },
  });
  let home: FakeAws;
  let elsewhere: FakeAws;
  const sessionsFor = (fake: FakeAws): SessionFactory => {
    // The bot's own identity goes to the STS client directly (createSessionFactory spreads its argument
    // into fromTemporaryCredentials' clientConfig), as in ec2-images.test.ts.
    const stsConfig = { endpoint: fake.url, credentials: { accessKeyId: "test", secretAccessKey: "test" } };
    return createSessionFactory(stsConfig);
  };
  const create = (
    fake: FakeAws,
    region: string,
    credentials: ReturnType<SessionFactory>,
    instanceId: string,
  ) =>
    new EC2Client({ region, credentials, endpoint: fake.url, maxAttempts: 1 })
      .send(
        new CreateImageCommand({
          InstanceId: instanceId,
          Name: `scope-${Math.random().toString(36).slice(2)}`,
          TagSpecifications: [
            { ResourceType: "image", Tags: [{ Key: "ami-bot:job-id", Value: "job-1" }] },
            { ResourceType: "snapshot", Tags: [{ Key: "ami-bot:job-id", Value: "job-1" }] },
          ],
        }),
      )
      .then(
        (out) => out.ImageId ?? "none",
        (e: unknown) => translateEc2Error(e).code,
      );

  beforeAll(async () => {
    home = await startFakeAws({
      accountId: ACCOUNT,
      roles: { [roleArn(ACCOUNT)]: { externalId: EXTERNAL_ID } },
    });
    elsewhere = await startFakeAws({
      accountId: OTHER_ACCOUNT,
      roles: { [roleArn(OTHER_ACCOUNT)]: { externalId: EXTERNAL_ID } },
    });
    // The same instance id exists in both regions of both accounts.
    for (const fake of [home, elsewhere]) {
      fake.addInstance({ instanceId: INSTANCE, name: "web-1" });
      fake.addInstance({ instanceId: OTHER_INSTANCE, name: "db-1" });
    }
  });
  afterAll(async () => {
    await home.close();
    await elsewhere.close();
  });

  it("images the chosen instance in the chosen account and region, and nothing else", async () => {
    const credentials = sessionsFor(home)({
      target: target(ACCOUNT),
      region: REGION,
      policy: createImagePolicy(scope, INSTANCE),
      userId: "U0REQUEST1",
      channelId: "C0CHANNEL1",
    });
    expect(await create(home, REGION, credentials, INSTANCE)).toMatch(/^ami-/);
    expect(await create(home, REGION, credentials, OTHER_INSTANCE)).toBe("access_denied");
    expect(await create(home, OTHER_REGION, credentials, INSTANCE)).toBe("access_denied");
    expect(home.images.size).toBe(1);
  });

  it("a policy naming one account is useless in another, even for the same instance id", async () => {
    // A session in the other account, carrying the policy made for the home account (a mixed-up target).
    const credentials = sessionsFor(elsewhere)({
      target: target(OTHER_ACCOUNT),
      region: REGION,
      policy: createImagePolicy(scope, INSTANCE),
      userId: "U0REQUEST1",
      channelId: "C0CHANNEL1",
    });
    expect(await create(elsewhere, REGION, credentials, INSTANCE)).toBe("access_denied");
    expect(elsewhere.images.size).toBe(0);
  });
});
