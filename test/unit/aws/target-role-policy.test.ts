/**
 * The target role's own permissions (deploy/target-role.yaml), resolved with chosen parameters and judged by
 * fake-aws's policy evaluator: what the account allows whatever ami-bot's session policy says. The
 * template's structure is checked in manifest.test.ts; this proves what its conditions mean.
 */
import { readFileSync } from "node:fs";
import { CreateImageCommand, DeregisterImageCommand, EC2Client, type Tag } from "@aws-sdk/client-ec2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { translateEc2Error } from "../../../src/aws/aws-errors.js";
import { createSessionFactory } from "../../../src/aws/scoped-credentials.js";
import type { PolicyDocument } from "../../../src/aws/session-policy.js";
import type { Target } from "../../../src/domain/target.js";
import {
  type FakeAws,
  type PolicyContext,
  sessionPolicyPermits,
  startFakeAws,
} from "../../fakes/fake-aws.js";
import { testTarget } from "../../fakes/job-fixtures.js";

const ACCOUNT = "123456789012";
const REGION = "eu-west-1";
const INSTANCE = "i-0123456789abcdef0";
const template: unknown = parse(
  readFileSync(new URL("../../../deploy/target-role.yaml", import.meta.url), "utf8"),
);

type Parameters = Record<string, string | readonly string[]>;

/** Resolves the intrinsics the template uses (Ref, Fn::Sub, Fn::Join, Fn::Split, Fn::If) as CloudFormation would. */
function resolve(node: unknown, parameters: Parameters, conditions: Record<string, boolean>): unknown {
  const again = (n: unknown) => resolve(n, parameters, conditions);
  if (Array.isArray(node)) return node.map(again);
  if (typeof node !== "object" || node === null) return node;
  const fn = node as Record<string, unknown>;
  const value = (name: string) => {
    const v = parameters[name];
    if (v === undefined) throw new Error(`no parameter ${name}`);
    return v;
  };
  if ("Ref" in fn) return value(String(fn.Ref));
  if ("Fn::Sub" in fn)
    return String(fn["Fn::Sub"]).replace(/\$\{([^}!]+)\}/g, (_m, name: string) => String(value(name)));
  if ("Fn::Join" in fn) {
    const [delimiter, items] = fn["Fn::Join"] as [string, unknown];
    return (again(items) as string[]).join(delimiter);
  }
  if ("Fn::Split" in fn) {
    const [delimiter, source] = fn["Fn::Split"] as [string, unknown];
    return String(again(source)).split(delimiter);
  }
  if ("Fn::If" in fn) {
    const [condition, whenTrue, whenFalse] = fn["Fn::If"] as [string, unknown, unknown];
    const chosen = again(conditions[condition] ? whenTrue : whenFalse);
    // A policy written as a Fn::Sub JSON string.
    return typeof chosen === "string" ? JSON.parse(chosen) : chosen;
  }
  return Object.fromEntries(Object.entries(fn).map(([k, v]) => [k, again(v)]));
}

/** Every statement of the role's permission policies, as one document, for these parameter values. */
function rolePolicy(overrides: Parameters = {}): string {
  const parameters: Parameters = {
    "AWS::Partition": "aws",
    "AWS::AccountId": ACCOUNT,
    OptInTagKey: "ami-bot:allowed",
    OptInTagValue: "true",
    AllowedTagKeys: ["*"],
    ...overrides,
  };
  const root = template as { Resources: { TargetRole: { Properties: { Policies: unknown } } } };
  const policies = resolve(root.Resources.TargetRole.Properties.Policies, parameters, {
    OptInRequired: true,
  });
  const statements = (policies as { PolicyDocument: { Statement: unknown[] } }[]).flatMap(
    (p) => p.PolicyDocument.Statement,
  );
  return JSON.stringify({ Version: "2012-10-17", Statement: statements });
}

const arn = {
  instance: `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${INSTANCE}`,
  image: `arn:aws:ec2:${REGION}::image/ami-0123456789abcdef0`,
  snapshot: `arn:aws:ec2:${REGION}::snapshot/snap-0123456789abcdef0`,
};
/** CreateImage as ami-bot sends it: an opted-in instance, the job-id tag, and `keys` as the tag keys. */
const request = (sourceIdentity: string, keys: string[] = []): PolicyContext => ({
  "aws:RequestedRegion": REGION,
  "aws:SourceIdentity": sourceIdentity,
  "aws:ResourceTag/ami-bot:allowed": "true",
  "ec2:ResourceTag/ami-bot:allowed": "true",
  "aws:RequestTag/ami-bot:job-id": "job-1",
  "aws:TagKeys": ["Name", "ami-bot:job-id", "ami-bot:requested-by", ...keys],
});
const everything = [arn.instance, arn.image, arn.snapshot];

describe("the target role's permissions, evaluated", () => {
  it("let a person and the doctor create an image, and never the watcher", () => {
    const policy = rolePolicy();
    expect(sessionPolicyPermits(policy, "ec2:CreateImage", everything, request("U0REQUEST1"))).toBe(true);
    expect(sessionPolicyPermits(policy, "ec2:CreateImage", everything, request("ami-bot-doctor"))).toBe(true);
    for (const resources of [everything, [arn.instance], [arn.image], [arn.snapshot]])
      expect(sessionPolicyPermits(policy, "ec2:CreateImage", resources, request("ami-bot-watcher"))).toBe(
        false,
      );
    // The watcher still reads.
    for (const action of ["ec2:DescribeImages", "ec2:DescribeSnapshots"])
      expect(sessionPolicyPermits(policy, action, ["*"], request("ami-bot-watcher"))).toBe(true);
    // And the picker lists instances and their volumes for the form.
    for (const action of ["ec2:DescribeInstances", "ec2:DescribeVolumes"])
      expect(sessionPolicyPermits(policy, action, ["*"], request("U0REQUEST1"))).toBe(true);
  });

  it("allow any tag key by default, and only Name, ami-bot:* and AllowedTagKeys when it is set", () => {
    const open = rolePolicy();
    const limited = rolePolicy({ AllowedTagKeys: ["team", "app:*"] });
    const creating = (keys: string[]) => ({
      ...request("U0REQUEST1", keys),
      "ec2:CreateAction": "CreateImage",
    });
    const created = [arn.image, arn.snapshot];
    for (const action of ["ec2:CreateImage", "ec2:CreateTags"]) {
      expect(sessionPolicyPermits(open, action, created, creating(["owner"]))).toBe(true);
      expect(sessionPolicyPermits(limited, action, created, creating(["team", "app:tier"]))).toBe(true);
      expect(sessionPolicyPermits(limited, action, created, creating(["owner"]))).toBe(false);
      expect(sessionPolicyPermits(limited, action, created, creating(["team", "appx"]))).toBe(false);
    }
  });

  it("let a cancel deregister images and delete snapshots only while they carry a job-id tag", () => {
    const policy = rolePolicy();
    const tagged = (job: string | undefined): PolicyContext => ({
      "aws:RequestedRegion": REGION,
      "aws:SourceIdentity": "U0REQUEST1",
      ...(job !== undefined && { "aws:ResourceTag/ami-bot:job-id": job }),
    });
    expect(sessionPolicyPermits(policy, "ec2:DeregisterImage", [arn.image], tagged("job-1"))).toBe(true);
    expect(sessionPolicyPermits(policy, "ec2:DeleteSnapshot", [arn.snapshot], tagged("job-1"))).toBe(true);
    // Images and snapshots ami-bot did not make.
    expect(sessionPolicyPermits(policy, "ec2:DeregisterImage", [arn.image], tagged(undefined))).toBe(false);
    expect(sessionPolicyPermits(policy, "ec2:DeleteSnapshot", [arn.snapshot], tagged(undefined))).toBe(false);
    // Each action on its own resource type only, and nothing else is deleted.
    expect(sessionPolicyPermits(policy, "ec2:DeregisterImage", [arn.snapshot], tagged("job-1"))).toBe(false);
    expect(sessionPolicyPermits(policy, "ec2:DeleteSnapshot", [arn.image], tagged("job-1"))).toBe(false);
    const volume = `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-0123456789abcdef0`;
    for (const action of ["ec2:DeleteVolume", "ec2:TerminateInstances", "ec2:DeleteTags"])
      expect(
        sessionPolicyPermits(
          policy,
          action,
          [arn.instance, arn.image, arn.snapshot, volume],
          tagged("job-1"),
        ),
      ).toBe(false);
  });

  it("keep requiring the job-id tag and the opt-in tag", () => {
    const policy = rolePolicy();
    const { "aws:RequestTag/ami-bot:job-id": _, ...untraced } = request("U0REQUEST1");
    expect(sessionPolicyPermits(policy, "ec2:CreateImage", [arn.image], untraced)).toBe(false);
    const { "ec2:ResourceTag/ami-bot:allowed": __, ...notOptedIn } = request("U0REQUEST1");
    expect(sessionPolicyPermits(policy, "ec2:CreateImage", [arn.instance], notOptedIn)).toBe(false);
  });
});

// Over the SDK wire, the role's permissions stand in as the session policy, so fake-aws enforces them.
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/ami-bot-target`;
const roleAsSession: Target = testTarget({
  name: "role-as-session",
  roleArn: ROLE_ARN,
  accountId: ACCOUNT,
  externalId: undefined,
  regions: [REGION],
  allow: { users: ["*"], usergroups: [], channels: [] },
  instanceScope: { requiredTags: {} },
});

/** An EC2 client on a session with the role's own permissions, as `userId` (the SourceIdentity). */
function clientAs(fake: FakeAws, userId: string): EC2Client {
  const credentials = createSessionFactory({
    endpoint: fake.url,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  })({
    target: roleAsSession,
    region: REGION,
    policy: JSON.parse(rolePolicy()) as PolicyDocument,
    userId,
    channelId: "none",
  });
  return new EC2Client({ region: REGION, credentials, endpoint: fake.url, maxAttempts: 1 });
}

describe("the watcher's Deny over the SDK wire", () => {
  let fake: FakeAws;

  beforeAll(async () => {
    fake = await startFakeAws({ accountId: ACCOUNT, roles: { [ROLE_ARN]: {} } });
    fake.addInstance({ instanceId: INSTANCE, tags: { "ami-bot:allowed": "true" } });
  });
  afterAll(async () => {
    await fake.close();
  });

  const createAs = (userId: string) => {
    const tags: Tag[] = [{ Key: "ami-bot:job-id", Value: `job-${userId}` }];
    return clientAs(fake, userId)
      .send(
        new CreateImageCommand({
          InstanceId: INSTANCE,
          Name: `as-${userId}`,
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
  };

  it("refuses CreateImage to a session whose SourceIdentity is ami-bot-watcher, and not to others", async () => {
    expect(await createAs("ami-bot-watcher")).toBe("access_denied");
    expect(await createAs("U0REQUEST1")).toMatch(/^ami-/);
    expect(await createAs("ami-bot-doctor")).toMatch(/^ami-/);
    expect([...fake.sessions.values()].map((s) => s.sourceIdentity)).toEqual([
      "ami-bot-watcher",
      "U0REQUEST1",
      "ami-bot-doctor",
    ]);
  });
});

describe("a cancel under the role's permissions, over the SDK wire", () => {
  let fake: FakeAws;
  let client: EC2Client;

  beforeAll(async () => {
    fake = await startFakeAws({ accountId: ACCOUNT, roles: { [ROLE_ARN]: {} } });
    fake.addInstance({ instanceId: INSTANCE, tags: { "ami-bot:allowed": "true" }, volumes: 2 });
    client = clientAs(fake, "U0REQUEST1");
  });
  afterAll(async () => {
    await fake.close();
  });

  const deregister = (imageId: string) =>
    client.send(new DeregisterImageCommand({ ImageId: imageId, DeleteAssociatedSnapshots: true })).then(
      (out) => out.DeleteSnapshotResults?.map((r) => r.ReturnCode) ?? [],
      (e: unknown) => translateEc2Error(e).code,
    );

  it("deregisters an image ami-bot made and deletes its snapshots, and not an image made by hand", async () => {
    const tags: Tag[] = [{ Key: "ami-bot:job-id", Value: "job-1" }];
    const out = await client.send(
      new CreateImageCommand({
        InstanceId: INSTANCE,
        Name: "to-cancel",
        TagSpecifications: [
          { ResourceType: "image", Tags: tags },
          { ResourceType: "snapshot", Tags: tags },
        ],
      }),
    );
    const made = out.ImageId ?? "";
    const snapshots = fake.images.get(made)?.snapshots.map((s) => s.snapshotId) ?? [];
    expect(snapshots).toHaveLength(2);
    expect(await deregister(made)).toEqual(["success", "success"]);
    expect(fake.images.has(made)).toBe(false);
    for (const id of snapshots) expect(fake.snapshots.has(id)).toBe(false);

    const byHand = fake.addImage({ name: "golden", region: REGION });
    expect(await deregister(byHand.imageId)).toBe("access_denied");
    expect(fake.images.has(byHand.imageId)).toBe(true);
  });

  it("refuses the bot's own reader sessions (SourceIdentity ami-bot-watcher) any deregistration", async () => {
    const tags: Tag[] = [{ Key: "ami-bot:job-id", Value: "job-2" }];
    const out = await client.send(
      new CreateImageCommand({
        InstanceId: INSTANCE,
        Name: "not-for-the-watcher",
        TagSpecifications: [
          { ResourceType: "image", Tags: tags },
          { ResourceType: "snapshot", Tags: tags },
        ],
      }),
    );
    const refused = await clientAs(fake, "ami-bot-watcher")
      .send(new DeregisterImageCommand({ ImageId: out.ImageId, DeleteAssociatedSnapshots: true }))
      .then(
        () => "deregistered",
        (e: unknown) => translateEc2Error(e).code,
      );
    expect(refused).toBe("access_denied");
    expect(fake.images.has(out.ImageId ?? "")).toBe(true);
  });
});
