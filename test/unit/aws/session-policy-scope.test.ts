/**
 * What a scoped session may do, proved two ways: over the SDK wire against fake-aws (which enforces session
 * policies), and by asking fake-aws's policy evaluator about calls it does not serve (a bare CreateTags,
 * image sharing, deletion). The session for one request confines CreateImage to the chosen instance (while
 * it carries the target's required tags) in the chosen account and region, and tagging to what that
 * CreateImage creates, with the target's allowed tag keys; the picker's and watcher's sessions can make
 * only the reads they need.
 */
import { CreateImageCommand, EC2Client, type Tag } from "@aws-sdk/client-ec2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { translateEc2Error } from "../../../src/aws/aws-errors.js";
import { createSessionFactory, type SessionFactory } from "../../../src/aws/scoped-credentials.js";
import {
  cancelImagePolicy,
  createImagePolicy,
  MAX_REQUIRED_INSTANCE_TAGS,
  MAX_SESSION_POLICY_CHARS,
  MAX_TAG_KEY_PATTERNS,
  pickerPolicy,
  watcherPolicy,
  worstCaseCreatePolicyLength,
} from "../../../src/aws/session-policy.js";
import { NO_AFTER_STEPS, type Target } from "../../../src/domain/target.js";
import {
  type FakeAws,
  type PolicyContext,
  sessionPolicyPermits,
  startFakeAws,
} from "../../fakes/fake-aws.js";

const ACCOUNT = "123456789012";
const OTHER_ACCOUNT = "999999999999";
const REGION = "eu-west-1";
const OTHER_REGION = "us-east-1";
const ROLE = "ami-bot-target";
const EXTERNAL_ID = "external-id-0123456789";
const INSTANCE = "i-0123456789abcdef0";
const OTHER_INSTANCE = "i-0fedcba9876543210";
const OPT_IN = { "ami-bot:allowed": "true" };
const IMAGE = "ami-0123456789abcdef0";
const OTHER_IMAGE = "ami-0fedcba9876543210";
const JOB = "0b6f7c1e-5d2a-4c39-9a57-2f1e8d4b6a10";
const scope = { partition: "aws", accountId: ACCOUNT, region: REGION };

function target(account = ACCOUNT, overrides: Partial<Target> = {}): Target {
  return {
    name: `t-${account}`,
    roleArn: `arn:aws:iam::${account}:role/${ROLE}`,
    accountId: account,
    partition: "aws",
    externalId: EXTERNAL_ID,
    regions: [REGION],
    allow: { users: ["*"], usergroups: [], channels: [] },
    instanceScope: { requiredTags: OPT_IN },
    reboot: "never",
    tagKeys: ["team", "cost-center", "app:*"],
    jobsPerHour: 10,
    allowGuests: false,
    allowPublicChannels: false,
    approval: undefined,
    after: NO_AFTER_STEPS,
    admins: [],
    ...overrides,
  };
}

const policies = {
  create: JSON.stringify(createImagePolicy(target(), REGION, INSTANCE)),
  picker: JSON.stringify(pickerPolicy(scope)),
  watcher: JSON.stringify(watcherPolicy(scope)),
  cancel: JSON.stringify(cancelImagePolicy(scope, IMAGE, JOB)),
};
const arn = {
  instance: (id = INSTANCE, account = ACCOUNT, region = REGION) =>
    `arn:aws:ec2:${region}:${account}:instance/${id}`,
  image: (region = REGION, id = IMAGE) => `arn:aws:ec2:${region}::image/${id}`,
  snapshot: (region = REGION) => `arn:aws:ec2:${region}::snapshot/snap-0123456789abcdef0`,
};
// What a good request carries: an opted-in instance and only allowed tag keys (ami-bot's own included).
const goodTags = { "aws:TagKeys": ["Name", "ami-bot:job-id", "team", "app:tier"] };
const inRegion = (region = REGION, extra: PolicyContext = {}): PolicyContext => ({
  "aws:RequestedRegion": region,
  "aws:ResourceTag/ami-bot:allowed": "true",
  ...goodTags,
  ...extra,
});
const whileCreating = { "ec2:CreateAction": "CreateImage" };
const withKey = (key: string) => ({ "aws:TagKeys": ["Name", "ami-bot:job-id", key] });
/** A cancel's request context: the image's or snapshot's own tags, as AWS reads them at call time. */
const taggedFor = (job: string | undefined, region = REGION, extra: PolicyContext = {}): PolicyContext => ({
  "aws:RequestedRegion": region,
  ...(job !== undefined && { "aws:ResourceTag/ami-bot:job-id": job, "ec2:ResourceTag/ami-bot:job-id": job }),
  ...extra,
});

describe("the session policies, evaluated", () => {
  it("allows CreateImage of the chosen, opted-in instance into a new image and snapshots, in its region", () => {
    expect(
      sessionPolicyPermits(
        policies.create,
        "ec2:CreateImage",
        [arn.instance(), arn.image(), arn.snapshot()],
        inRegion(),
      ),
    ).toBe(true);
  });

  // biome-ignore format: a table
  const denied: [string, keyof typeof policies, string, string[], PolicyContext][] = [
    ["CreateImage of another instance", "create", "ec2:CreateImage", [arn.instance(OTHER_INSTANCE)], inRegion()],
    ["CreateImage of the same id in another account", "create", "ec2:CreateImage", [arn.instance(INSTANCE, OTHER_ACCOUNT)], inRegion()],
    ["CreateImage of the same id in another region", "create", "ec2:CreateImage", [arn.instance(INSTANCE, ACCOUNT, OTHER_REGION)], inRegion(OTHER_REGION)],
    ["CreateImage making an image in another region", "create", "ec2:CreateImage", [arn.image(OTHER_REGION)], inRegion(OTHER_REGION)],
    ["CreateImage of an instance lacking the required tag", "create", "ec2:CreateImage", [arn.instance()], { "aws:RequestedRegion": REGION }],
    ["CreateImage of an instance whose required tag has another value", "create", "ec2:CreateImage", [arn.instance()], inRegion(REGION, { "aws:ResourceTag/ami-bot:allowed": "false" })],
    ["CreateImage tagging the image with a key the target does not allow", "create", "ec2:CreateImage", [arn.image()], inRegion(REGION, withKey("owner"))],
    ["CreateImage tagging snapshots with a key the target does not allow", "create", "ec2:CreateImage", [arn.snapshot()], inRegion(REGION, withKey("aws-backup"))],
    ["CreateTags of a key the target does not allow, during CreateImage", "create", "ec2:CreateTags", [arn.image()], inRegion(REGION, { ...whileCreating, ...withKey("billing") })],
    ["CreateTags of a prefix's look-alike (appx:tier for app:*), during CreateImage", "create", "ec2:CreateTags", [arn.snapshot()], inRegion(REGION, { ...whileCreating, ...withKey("appx:tier") })],
    ["CreateTags on an existing image (no CreateImage)", "create", "ec2:CreateTags", [arn.image()], inRegion()],
    ["CreateTags on an existing snapshot (no CreateImage)", "create", "ec2:CreateTags", [arn.snapshot()], inRegion()],
    ["CreateTags on the instance, even during CreateImage", "create", "ec2:CreateTags", [arn.instance()], inRegion(REGION, whileCreating)],
    ["CreateTags on a volume during CreateImage", "create", "ec2:CreateTags", [`arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-0123456789abcdef0`], inRegion(REGION, whileCreating)],
    ["CreateTags on a security group", "create", "ec2:CreateTags", [`arn:aws:ec2:${REGION}:${ACCOUNT}:security-group/sg-0123456789abcdef0`], inRegion(REGION, whileCreating)],
    ["CreateTags on an image in another region", "create", "ec2:CreateTags", [arn.image(OTHER_REGION)], inRegion(OTHER_REGION, whileCreating)],
    ["sharing an image (ModifyImageAttribute)", "create", "ec2:ModifyImageAttribute", [arn.image()], inRegion()],
    ["deregistering an image", "create", "ec2:DeregisterImage", [arn.image()], inRegion()],
    ["deleting a snapshot", "create", "ec2:DeleteSnapshot", [arn.snapshot()], inRegion()],
    ["copying an image", "create", "ec2:CopyImage", [arn.image()], inRegion()],
    ["launching an instance", "create", "ec2:RunInstances", ["*"], inRegion()],
    ["stopping the instance", "create", "ec2:StopInstances", [arn.instance()], inRegion()],
    ["DeleteTags", "create", "ec2:DeleteTags", [arn.image()], inRegion(REGION, whileCreating)],
    ["passing a role", "create", "iam:PassRole", ["*"], inRegion()],
    ["hopping to another role", "create", "sts:AssumeRole", ["*"], inRegion()],
    ["DescribeInstances under the CreateImage session", "create", "ec2:DescribeInstances", ["*"], inRegion()],
    ["DescribeImages under the CreateImage session", "create", "ec2:DescribeImages", ["*"], inRegion()],
    ["DescribeSnapshots under the CreateImage session", "create", "ec2:DescribeSnapshots", ["*"], inRegion()],
    ["DescribeVolumes under the CreateImage session", "create", "ec2:DescribeVolumes", ["*"], inRegion()],
    ["CreateImage under the picker's session", "picker", "ec2:CreateImage", [arn.instance(), arn.image(), arn.snapshot()], inRegion()],
    ["CreateTags under the picker's session, during CreateImage", "picker", "ec2:CreateTags", [arn.image()], inRegion(REGION, whileCreating)],
    ["DescribeImages under the picker's session", "picker", "ec2:DescribeImages", ["*"], inRegion()],
    ["DescribeSnapshots under the picker's session", "picker", "ec2:DescribeSnapshots", ["*"], inRegion()],
    ["the picker describing another region", "picker", "ec2:DescribeInstances", ["*"], inRegion(OTHER_REGION)],
    ["the picker listing volumes in another region", "picker", "ec2:DescribeVolumes", ["*"], inRegion(OTHER_REGION)],
    ["CreateImage under the watcher's session", "watcher", "ec2:CreateImage", [arn.instance(), arn.image(), arn.snapshot()], inRegion()],
    ["CreateTags under the watcher's session, during CreateImage", "watcher", "ec2:CreateTags", [arn.image()], inRegion(REGION, whileCreating)],
    ["DescribeInstances under the watcher's session", "watcher", "ec2:DescribeInstances", ["*"], inRegion()],
    ["DescribeVolumes under the watcher's session", "watcher", "ec2:DescribeVolumes", ["*"], inRegion()],
    ["the watcher describing another region", "watcher", "ec2:DescribeImages", ["*"], inRegion(OTHER_REGION)],
    ["DeregisterImage of another image, though it carries the job's tag", "cancel", "ec2:DeregisterImage", [arn.image(REGION, OTHER_IMAGE)], taggedFor(JOB)],
    ["DeregisterImage of the job's image id once it carries another job's tag", "cancel", "ec2:DeregisterImage", [arn.image()], taggedFor("another-job")],
    ["DeregisterImage of the image id without a job-id tag", "cancel", "ec2:DeregisterImage", [arn.image()], taggedFor(undefined)],
    ["DeregisterImage of the same image id in another region", "cancel", "ec2:DeregisterImage", [arn.image(OTHER_REGION)], taggedFor(JOB, OTHER_REGION)],
    ["DeleteSnapshot of another job's snapshot", "cancel", "ec2:DeleteSnapshot", [arn.snapshot()], taggedFor("another-job")],
    ["DeleteSnapshot of a snapshot ami-bot did not make (no job-id tag)", "cancel", "ec2:DeleteSnapshot", [arn.snapshot()], taggedFor(undefined)],
    ["DeleteSnapshot of the job's snapshot in another region", "cancel", "ec2:DeleteSnapshot", [arn.snapshot(OTHER_REGION)], taggedFor(JOB, OTHER_REGION)],
    ["CreateImage under the cancel session", "cancel", "ec2:CreateImage", [arn.instance(), arn.image(), arn.snapshot()], { ...inRegion(), ...taggedFor(JOB) }],
    ["re-tagging the job's image under the cancel session", "cancel", "ec2:CreateTags", [arn.image()], taggedFor(JOB)],
    ["removing the job tag under the cancel session", "cancel", "ec2:DeleteTags", [arn.image(), arn.snapshot()], taggedFor(JOB)],
    ["sharing the job's image under the cancel session", "cancel", "ec2:ModifyImageAttribute", [arn.image()], taggedFor(JOB)],
    ["deleting a volume under the cancel session", "cancel", "ec2:DeleteVolume", [`arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-0123456789abcdef0`], taggedFor(JOB)],
    ["DescribeImages under the cancel session", "cancel", "ec2:DescribeImages", ["*"], taggedFor(JOB)],
  ];
  for (const [what, policy, action, resources, context] of denied) {
    it(`denies ${what}`, () => {
      expect(sessionPolicyPermits(policies[policy], action, resources, context)).toBe(false);
    });
  }

  it("allows CreateTags only on the new image and snapshots, as part of CreateImage, with allowed keys", () => {
    const created = [arn.image(), arn.snapshot()];
    const tag = (context: PolicyContext) =>
      sessionPolicyPermits(policies.create, "ec2:CreateTags", created, inRegion(REGION, context));
    expect(tag(whileCreating)).toBe(true);
    expect(tag({ ...whileCreating, ...withKey("cost-center") })).toBe(true);
    expect(tag({ "ec2:CreateAction": "CopyImage" })).toBe(false);
  });

  it("lets each read-only session make only its own reads, in its region", () => {
    for (const action of ["ec2:DescribeInstances", "ec2:DescribeVolumes"])
      expect(sessionPolicyPermits(policies.picker, action, ["*"], inRegion())).toBe(true);
    for (const action of ["ec2:DescribeImages", "ec2:DescribeSnapshots"])
      expect(sessionPolicyPermits(policies.watcher, action, ["*"], inRegion())).toBe(true);
  });

  it("leaves tag keys and instances open when the target sets no tagKeys and no required tags", () => {
    const open = JSON.stringify(
      createImagePolicy(
        target(ACCOUNT, { tagKeys: undefined, instanceScope: { requiredTags: {} } }),
        REGION,
        INSTANCE,
      ),
    );
    expect(
      sessionPolicyPermits(open, "ec2:CreateImage", [arn.instance(), arn.image(), arn.snapshot()], {
        "aws:RequestedRegion": REGION,
        ...withKey("anything"),
      }),
    ).toBe(true);
    expect(sessionPolicyPermits(open, "ec2:CreateImage", [arn.instance(OTHER_INSTANCE)], inRegion())).toBe(
      false,
    );
  });

  it("allows DeregisterImage of the job's image and DeleteSnapshot of its snapshots, in its region", () => {
    expect(sessionPolicyPermits(policies.cancel, "ec2:DeregisterImage", [arn.image()], taggedFor(JOB))).toBe(
      true,
    );
    const snapshots = [arn.snapshot(), `arn:aws:ec2:${REGION}::snapshot/snap-0fedcba9876543210`];
    expect(sessionPolicyPermits(policies.cancel, "ec2:DeleteSnapshot", snapshots, taggedFor(JOB))).toBe(true);
  });

  it("builds the cancel policy from exactly the image, the job and the region", () => {
    const jobOnly = { StringEquals: { "aws:ResourceTag/ami-bot:job-id": JOB } };
    expect(cancelImagePolicy({ ...scope, partition: "aws-us-gov" }, IMAGE, JOB)).toEqual({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "DeregisterThisJobsImageOnly",
          Effect: "Allow",
          Action: "ec2:DeregisterImage",
          Resource: `arn:aws-us-gov:ec2:${REGION}::image/${IMAGE}`,
          Condition: jobOnly,
        },
        {
          Sid: "DeleteThisJobsSnapshotsOnly",
          Effect: "Allow",
          Action: "ec2:DeleteSnapshot",
          Resource: `arn:aws-us-gov:ec2:${REGION}::snapshot/*`,
          Condition: jobOnly,
        },
      ],
    });
    // The short (8-hex) image ids of older images are ids too.
    expect(() => cancelImagePolicy(scope, "ami-0123abcd", JOB)).not.toThrow();
  });

  it("refuses to build a cancel policy for a malformed image id, job id or region", () => {
    // biome-ignore format: a list
    const images = ["*", "ami-*", "ami-?", "", "ami-0123456789abcdef", "ami-0123456789ABCDEF0", "ami-0123456789abcdef0*", "snap-0123456789abcdef0", " ami-0123456789abcdef0", "ami-0123456789abcdef0/*"];
    for (const id of images) expect(() => cancelImagePolicy(scope, id, JOB), id).toThrow(/image id/);
    const jobs = ["*", "job-?", "", "job 1", "job/1", `j${"x".repeat(64)}`, 'job"1'];
    for (const id of jobs) expect(() => cancelImagePolicy(scope, IMAGE, id), id).toThrow(/job id/);
    expect(() => cancelImagePolicy({ ...scope, region: "*" }, IMAGE, JOB)).toThrow(/region/);
  });

  it("refuses to build a policy for a wildcard instance id", () => {
    expect(() => createImagePolicy(target(), REGION, "*")).toThrow();
    expect(() => createImagePolicy(target(), REGION, "i-*")).toThrow();
  });
});

describe("the CreateImage policy's length", () => {
  const word = (prefix: string, i: number, length = 20) => `${prefix}${i}-`.padEnd(length, "x");
  const sized = (instanceTags: number, tagKeys: number, partition = "aws-us-gov") =>
    target(ACCOUNT, {
      partition,
      instanceScope: {
        requiredTags: Object.fromEntries(
          Array.from({ length: instanceTags }, (_, i) => [word("key", i), word("value", i)]),
        ),
      },
      tagKeys: Array.from({ length: tagKeys }, (_, i) => `${word("tag", i, 19)}*`),
    });
  // The longest partition and region names AWS has today.
  const LONG_REGION = "ap-southeast-4";

  it("stays within AWS's limit for a target at the config's caps, with 20-character tags", () => {
    const atCaps = sized(MAX_REQUIRED_INSTANCE_TAGS, MAX_TAG_KEY_PATTERNS);
    const worst = worstCaseCreatePolicyLength(atCaps, LONG_REGION);
    expect(worst).toBeLessThanOrEqual(MAX_SESSION_POLICY_CHARS);
    const longestId = `i-${"f".repeat(17)}`;
    expect(JSON.stringify(createImagePolicy(atCaps, LONG_REGION, longestId)).length).toBe(worst);
    // A short (8-hex) id never makes a longer policy than the worst case.
    expect(JSON.stringify(createImagePolicy(atCaps, LONG_REGION, "i-01234567")).length).toBeLessThan(worst);
  });

  it("is refused when a target goes far beyond the caps", () => {
    const beyond = sized(10, 20);
    expect(worstCaseCreatePolicyLength(beyond, LONG_REGION)).toBeGreaterThan(MAX_SESSION_POLICY_CHARS);
    expect(() => createImagePolicy(beyond, LONG_REGION, INSTANCE)).toThrow(/2048/);
  });

  it("would be refused by STS too, so the check matches what AWS enforces", async () => {
    const fake = await startFakeAws({
      accountId: ACCOUNT,
      roles: { [target().roleArn]: { externalId: EXTERNAL_ID } },
    });
    try {
      const sessions = createSessionFactory({
        endpoint: fake.url,
        credentials: { accessKeyId: "test", secretAccessKey: "test" },
      });
      const request = { target: target(), region: REGION, userId: "U0REQUEST1", channelId: "C1" };
      const policy = createImagePolicy(
        sized(MAX_REQUIRED_INSTANCE_TAGS, MAX_TAG_KEY_PATTERNS),
        REGION,
        INSTANCE,
      );
      await expect(sessions({ ...request, policy })()).resolves.toMatchObject({ accessKeyId: /^ASIA/ });
      // The same document padded past the limit (a Sid is free text): STS refuses it.
      const padded = { ...policy, Statement: [{ ...policy.Statement[0], Sid: "x".repeat(2048) }] };
      const error = await sessions({ ...request, policy: padded as typeof policy })().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((error as { cause?: { name?: string } }).cause?.name).toBe("ValidationError");
    } finally {
      await fake.close();
    }
  });
});

describe("the same sessions over the SDK wire", () => {
  let home: FakeAws;
  let elsewhere: FakeAws;
  const sessionsFor = (fake: FakeAws): SessionFactory => {
    // The bot's own identity goes to the STS client directly (createSessionFactory spreads its argument
    // into fromTemporaryCredentials' clientConfig), as in test/support/ec2-adapter.ts.
    const stsConfig = { endpoint: fake.url, credentials: { accessKeyId: "test", secretAccessKey: "test" } };
    return createSessionFactory(stsConfig);
  };
  const jobTag: Tag[] = [{ Key: "ami-bot:job-id", Value: "job-1" }];
  const create = (
    fake: FakeAws,
    region: string,
    credentials: ReturnType<SessionFactory>,
    instanceId: string,
    tags: Tag[] = jobTag,
  ) =>
    new EC2Client({ region, credentials, endpoint: fake.url, maxAttempts: 1 })
      .send(
        new CreateImageCommand({
          InstanceId: instanceId,
          Name: `scope-${Math.random().toString(36).slice(2)}`,
          TagSpecifications: [
            { ResourceType: "image", Tags: tags },
            { ResourceType: "snapshot", Tags: tags },
          ],
        }),
      )
      .then(
        (out) => out.ImageId ?? "none",
        (e: unknown) => translateEc2Error(e).code,
      );
  const session = (fake: FakeAws, account: string, policy: ReturnType<typeof createImagePolicy>) =>
    sessionsFor(fake)({
      target: target(account),
      region: REGION,
      policy,
      userId: "U0REQUEST1",
      channelId: "C0CHANNEL1",
    });

  beforeAll(async () => {
    home = await startFakeAws({
      accountId: ACCOUNT,
      roles: { [target(ACCOUNT).roleArn]: { externalId: EXTERNAL_ID } },
    });
    elsewhere = await startFakeAws({
      accountId: OTHER_ACCOUNT,
      roles: { [target(OTHER_ACCOUNT).roleArn]: { externalId: EXTERNAL_ID } },
    });
    // The same instance ids exist in both regions of both accounts.
    for (const fake of [home, elsewhere]) {
      fake.addInstance({ instanceId: INSTANCE, name: "web-1", tags: OPT_IN });
      fake.addInstance({ instanceId: OTHER_INSTANCE, name: "db-1", tags: OPT_IN });
      fake.addInstance({ instanceId: "i-0000000000000beef", name: "not-opted-in" });
    }
  });
  afterAll(async () => {
    await home.close();
    await elsewhere.close();
  });

  it("images the chosen instance in the chosen account and region, and nothing else", async () => {
    const credentials = session(home, ACCOUNT, createImagePolicy(target(), REGION, INSTANCE));
    expect(await create(home, REGION, credentials, INSTANCE)).toMatch(/^ami-/);
    expect(await create(home, REGION, credentials, OTHER_INSTANCE)).toBe("access_denied");
    expect(await create(home, OTHER_REGION, credentials, INSTANCE)).toBe("access_denied");
    expect(home.images.size).toBe(1);
  });

  it("a policy naming one account is useless in another, even for the same instance id", async () => {
    // A session in the other account, carrying the policy made for the home account (a mixed-up target).
    const credentials = session(elsewhere, OTHER_ACCOUNT, createImagePolicy(target(), REGION, INSTANCE));
    expect(await create(elsewhere, REGION, credentials, INSTANCE)).toBe("access_denied");
    expect(elsewhere.images.size).toBe(0);
  });

  it("refuses an instance without the required tag, until it carries it", async () => {
    const untagged = "i-0000000000000beef";
    const credentials = session(home, ACCOUNT, createImagePolicy(target(), REGION, untagged));
    expect(await create(home, REGION, credentials, untagged)).toBe("access_denied");
    // AWS reads the tag at CreateImage time: the same session works once the instance is opted in.
    Object.assign(home.instances.get(untagged)?.tags ?? {}, OPT_IN);
    expect(await create(home, REGION, credentials, untagged)).toMatch(/^ami-/);
  });

  it("refuses tag keys the target does not allow, on the image and on its snapshots", async () => {
    const credentials = session(home, ACCOUNT, createImagePolicy(target(), REGION, INSTANCE));
    const before = home.images.size;
    const extra = (key: string): Tag[] => [...jobTag, { Key: key, Value: "x" }];
    expect(await create(home, REGION, credentials, INSTANCE, extra("owner"))).toBe("access_denied");
    expect(await create(home, REGION, credentials, INSTANCE, extra("appx:tier"))).toBe("access_denied");
    expect(home.images.size).toBe(before);
    expect(await create(home, REGION, credentials, INSTANCE, extra("app:tier"))).toMatch(/^ami-/);
  });

  it("the picker's and the watcher's sessions cannot create an image at all", async () => {
    for (const policy of [pickerPolicy(scope), watcherPolicy(scope)]) {
      const credentials = session(home, ACCOUNT, policy);
      expect(await create(home, REGION, credentials, INSTANCE)).toBe("access_denied");
    }
  });
});
