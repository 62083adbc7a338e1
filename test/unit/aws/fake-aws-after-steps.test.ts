/**
 * fake-aws's after-create steps through the real SDK (@aws-sdk/client-ec2 over the EC2 query protocol):
 * CopyImage into another region (ClientToken idempotency, permission on the source and the copy,
 * completion and asynchronous failure), sharing by ModifyImageAttribute and ModifySnapshotAttribute,
 * and what the keep/cleanup sweep reads (DescribeLaunchTemplateVersions, deregistration protection).
 */
import {
  CopyImageCommand,
  DeregisterImageCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSnapshotAttributeCommand,
  EC2Client,
  type Image,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
} from "@aws-sdk/client-ec2";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type FakeAws, type FakeImage, sessionPolicyPermits, startFakeAws } from "../../fakes/fake-aws.js";

const ACCOUNT = "123456789012";
const SHARE_WITH = "111122223333";
const OTHER_SHARE = "444455556666";
const SOURCE_REGION = "eu-west-1";
const DEST_REGION = "us-east-1";
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/ami-bot-target`;
const JOB = "job-0001";
const JOB_TAGS = [
  { Key: "Name", Value: "web" },
  { Key: "ami-bot:job-id", Value: JOB },
];
const JOB_TAGS_RECORD = Object.fromEntries(JOB_TAGS.map((t) => [t.Key, t.Value]));
const base = { accessKeyId: "test", secretAccessKey: "test-secret" };

let fake: FakeAws;
const clients: { destroy(): void }[] = [];

interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}

function ec2(region: string, credentials: Credentials = base) {
  const client = new EC2Client({ region, endpoint: fake.url, credentials, maxAttempts: 1 });
  clients.push(client);
  return client;
}

/** An EC2 client under an AssumeRole session whose session policy is `policy`. */
async function scoped(region: string, policy: object): Promise<EC2Client> {
  const sts = new STSClient({ region, endpoint: fake.url, credentials: base, maxAttempts: 1 });
  clients.push(sts);
  const out = await sts.send(
    new AssumeRoleCommand({ RoleArn: ROLE_ARN, RoleSessionName: "t", Policy: JSON.stringify(policy) }),
  );
  const c = out.Credentials;
  if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error("no credentials");
  return ec2(region, {
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretAccessKey,
    sessionToken: c.SessionToken,
  });
}

const allow = (Action: string | string[], Resource: string | string[], Condition?: object) => ({
  Effect: "Allow",
  Action,
  Resource,
  ...(Condition && { Condition }),
});
const policyOf = (...Statement: object[]) => ({ Version: "2012-10-17", Statement });

/** A source image the bot made: available, two snapshots, tagged with the job. */
function sourceImage(tags: Record<string, string> = { Name: "web", "ami-bot:job-id": JOB }): FakeImage {
  return fake.addImage({
    name: "web-2026",
    region: SOURCE_REGION,
    snapshots: 2,
    tags,
    sourceInstanceId: "i-1",
  });
}

const copyInput = (
  source: FakeImage,
  overrides: Partial<ConstructorParameters<typeof CopyImageCommand>[0]> = {},
) => ({
  SourceRegion: SOURCE_REGION,
  SourceImageId: source.imageId,
  Name: "web-2026-copy",
  Description: "a copy",
  ClientToken: `${JOB}:${DEST_REGION}`,
  TagSpecifications: [
    { ResourceType: "image" as const, Tags: JOB_TAGS },
    { ResourceType: "snapshot" as const, Tags: JOB_TAGS },
  ],
  ...overrides,
});

const imagesIn = (region: string) => [...fake.images.values()].filter((i) => i.region === region);

beforeEach(async () => {
  fake = await startFakeAws({ accountId: ACCOUNT, roles: { [ROLE_ARN]: {} } });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await fake.close();
});

describe("CopyImage", () => {
  it("makes a pending copy in the destination region with new, tagged snapshots", async () => {
    const source = sourceImage();
    const out = await ec2(DEST_REGION).send(
      new CopyImageCommand(copyInput(source, { Encrypted: true, KmsKeyId: "alias/copies" })),
    );
    const copy = fake.images.get(out.ImageId ?? "");
    expect(copy).toMatchObject({
      region: DEST_REGION,
      name: "web-2026-copy",
      description: "a copy",
      state: "pending",
      instanceId: "i-1",
      sourceImageId: source.imageId,
      sourceRegion: SOURCE_REGION,
      encrypted: true,
      kmsKeyId: "alias/copies",
      tags: { Name: "web", "ami-bot:job-id": JOB },
    });
    expect(copy?.snapshots).toHaveLength(2);
    for (const [n, s] of (copy?.snapshots ?? []).entries()) {
      expect(s.snapshotId).not.toBe(source.snapshots[n]?.snapshotId);
      expect(s).toMatchObject({ deviceName: source.snapshots[n]?.deviceName, tags: copy?.tags, progress: 0 });
    }
    const params = fake.calls("CopyImage")[0]?.params;
    expect(params).toMatchObject({
      SourceRegion: SOURCE_REGION,
      "TagSpecification.2.ResourceType": "snapshot",
      "TagSpecification.1.Tag.2.Key": "ami-bot:job-id",
    });

    const described = await ec2(DEST_REGION).send(
      new DescribeImagesCommand({ ImageIds: [copy?.imageId ?? ""] }),
    );
    expect(described.Images?.[0]).toMatchObject({
      State: "pending",
      SourceImageId: source.imageId,
      SourceImageRegion: SOURCE_REGION,
      DeregistrationProtection: "disabled",
      Public: false,
    });
    // As in EC2, only CreateImage's images name the instance.
    expect(described.Images?.[0]?.SourceInstanceId).toBeUndefined();
    expect(described.Images?.[0]?.BlockDeviceMappings?.map((m) => m.Ebs?.SnapshotId)).toEqual(
      copy?.snapshots.map((s) => s.snapshotId),
    );
  });

  it("answers a repeated ClientToken with the first copy and makes no second; other parameters mismatch", async () => {
    const source = sourceImage();
    const client = ec2(DEST_REGION);
    const first = await client.send(new CopyImageCommand(copyInput(source)));
    const again = await client.send(new CopyImageCommand(copyInput(source)));
    expect(again.ImageId).toBe(first.ImageId);
    expect(imagesIn(DEST_REGION)).toHaveLength(1);

    await expect(
      client.send(new CopyImageCommand(copyInput(source, { Name: "another-name" }))),
    ).rejects.toMatchObject({ name: "IdempotentParameterMismatch" });
    // The token is per destination region: the same one into another region makes that region's copy.
    const elsewhere = await ec2("us-west-2").send(new CopyImageCommand(copyInput(source)));
    expect(elsewhere.ImageId).not.toBe(first.ImageId);
    expect(imagesIn(DEST_REGION)).toHaveLength(1);
  });

  it("checks the source in SourceRegion, DryRun, then the name in the destination", async () => {
    const source = sourceImage();
    const client = ec2(DEST_REGION);
    await expect(
      client.send(new CopyImageCommand(copyInput(source, { SourceRegion: "us-west-2" }))),
    ).rejects.toMatchObject({ name: "InvalidAMIID.NotFound" });
    await expect(
      client.send(new CopyImageCommand(copyInput(source, { DryRun: true }))),
    ).rejects.toMatchObject({ name: "DryRunOperation" });
    expect(imagesIn(DEST_REGION)).toHaveLength(0);

    fake.addImage({ name: "web-2026-copy", region: DEST_REGION });
    await expect(client.send(new CopyImageCommand(copyInput(source)))).rejects.toMatchObject({
      name: "InvalidAMIName.Duplicate",
    });
  });

  it("refuses to copy a source that is still pending, as EC2 refuses to share one", async () => {
    const pending = fake.addImage({ name: "pending", region: SOURCE_REGION, state: "pending", snapshots: 1 });
    const copy = ec2(DEST_REGION).send(new CopyImageCommand(copyInput(pending)));
    await expect(copy).rejects.toMatchObject({
      name: "InvalidAMIID.Unavailable",
      message: `The AMI ID '${pending.imageId}' is currently pending and may not be used for this operation`,
    });
    const share = ec2(SOURCE_REGION).send(
      new ModifyImageAttributeCommand({
        ImageId: pending.imageId,
        LaunchPermission: { Add: [{ UserId: SHARE_WITH }] },
      }),
    );
    await expect(share).rejects.toMatchObject({ name: "InvalidAMIID.Unavailable" });
    expect(imagesIn(DEST_REGION)).toHaveLength(0);
    expect(pending.launchPermissions.size).toBe(0);
  });

  it("completes like a created image, or fails as EC2 reports a failing region or an unusable key", async () => {
    const source = sourceImage();
    fake.failCopiesTo("us-west-2", "copy failed for the test");
    fake.denyKmsKey("arn:aws:kms:ap-south-1:123456789012:key/denied");
    const copyInto = async (region: string, extra = {}) =>
      (await ec2(region).send(new CopyImageCommand(copyInput(source, extra)))).ImageId ?? "";
    const fine = await copyInto(DEST_REGION);
    const failing = await copyInto("us-west-2");
    const badKey = await copyInto("ap-south-1", {
      Encrypted: true,
      KmsKeyId: "arn:aws:kms:ap-south-1:123456789012:key/denied",
    });

    expect(fake.completeImage(fine)).toBe("available");
    expect(fake.images.get(fine)?.snapshots.every((s) => s.progress === 100)).toBe(true);
    expect(fake.completeImage(failing)).toBe("failed");
    expect(fake.images.get(failing)?.stateReason).toEqual({
      code: "Server.InternalError",
      message: "copy failed for the test",
    });
    expect(fake.completeImage(badKey)).toBe("failed");
    const described = await ec2("ap-south-1").send(new DescribeImagesCommand({ ImageIds: [badKey] }));
    expect(described.Images?.[0]?.State).toBe("failed");
    expect(described.Images?.[0]?.StateReason?.Code).toBe("Client.InvalidKMSKey.InvalidState");
    expect(described.Images?.[0]?.StateReason?.Message).toMatch(/not accessible/);
  });

  it("follows autoComplete", async () => {
    await fake.close();
    fake = await startFakeAws({ accountId: ACCOUNT, autoComplete: { afterMs: 20 } });
    const source = sourceImage();
    fake.failCopiesTo("us-west-2", { code: "Client.Custom", message: "no" });
    const ok = await ec2(DEST_REGION).send(new CopyImageCommand(copyInput(source)));
    const bad = await ec2("us-west-2").send(new CopyImageCommand(copyInput(source)));
    await expect.poll(() => fake.images.get(ok.ImageId ?? "")?.state).toBe("available");
    await expect.poll(() => fake.images.get(bad.ImageId ?? "")?.state).toBe("failed");
    expect(fake.images.get(bad.ImageId ?? "")?.stateReason).toEqual({ code: "Client.Custom", message: "no" });
  });

  describe("under a session policy", () => {
    const sourceArn = (id: string) => `arn:aws:ec2:${SOURCE_REGION}::image/${id}`;
    const destImages = `arn:aws:ec2:${DEST_REGION}::image/*`;
    const destSnapshots = `arn:aws:ec2:${DEST_REGION}::snapshot/*`;
    const tagging = allow("ec2:CreateTags", [destImages, destSnapshots], {
      StringEquals: { "ec2:CreateAction": "CopyImage" },
      "ForAllValues:StringLike": { "aws:TagKeys": ["Name", "ami-bot:*"] },
    });
    const onSource = (id: string) =>
      allow("ec2:CopyImage", sourceArn(id), { StringEquals: { "aws:ResourceTag/ami-bot:job-id": JOB } });
    const onCopy = allow("ec2:CopyImage", destImages, {
      StringEquals: { "aws:RequestedRegion": DEST_REGION, "aws:RequestTag/ami-bot:job-id": JOB },
    });

    it("is allowed with ec2:CopyImage on the source and the copy, and CreateTags for CopyImage", async () => {
      const source = sourceImage();
      const client = await scoped(DEST_REGION, policyOf(onSource(source.imageId), onCopy, tagging));
      const out = await client.send(new CopyImageCommand(copyInput(source)));
      expect(fake.images.get(out.ImageId ?? "")?.state).toBe("pending");
    });

    it("is refused without ec2:CopyImage on the source image, and nothing is made", async () => {
      const source = sourceImage();
      const client = await scoped(DEST_REGION, policyOf(onCopy, tagging));
      await expect(client.send(new CopyImageCommand(copyInput(source)))).rejects.toMatchObject({
        name: "UnauthorizedOperation",
      });
      expect(imagesIn(DEST_REGION)).toHaveLength(0);
    });

    it("judges the source by its tags, the copy by the tags asked, and tagging by ec2:CreateAction", async () => {
      const untagged = sourceImage({ Name: "web" });
      const source = sourceImage();
      const refused = { name: "UnauthorizedOperation" };
      const all = await scoped(DEST_REGION, policyOf(onSource(untagged.imageId), onCopy, tagging));
      await expect(all.send(new CopyImageCommand(copyInput(untagged)))).rejects.toMatchObject(refused);

      const noTagging = await scoped(DEST_REGION, policyOf(onSource(source.imageId), onCopy));
      await expect(noTagging.send(new CopyImageCommand(copyInput(source)))).rejects.toMatchObject(refused);

      const withTags = await scoped(DEST_REGION, policyOf(onSource(source.imageId), onCopy, tagging));
      const badTag = copyInput(source, {
        TagSpecifications: [{ ResourceType: "image", Tags: [...JOB_TAGS, { Key: "team", Value: "x" }] }],
      });
      await expect(withTags.send(new CopyImageCommand(badTag))).rejects.toMatchObject(refused);

      // aws:RequestedRegion is the destination's: a policy for the source region does not allow it.
      const wrongRegion = await scoped(
        DEST_REGION,
        policyOf(
          allow("ec2:CopyImage", "*", { StringEquals: { "aws:RequestedRegion": SOURCE_REGION } }),
          allow("ec2:CreateTags", "*"),
        ),
      );
      await expect(wrongRegion.send(new CopyImageCommand(copyInput(source)))).rejects.toMatchObject(refused);
      expect(imagesIn(DEST_REGION)).toHaveLength(0);
    });
  });
});

describe("ModifyImageAttribute and ModifySnapshotAttribute", () => {
  it("shares an image with accounts and reads the launch permission back", async () => {
    const image = sourceImage();
    const client = ec2(SOURCE_REGION);
    await client.send(
      new ModifyImageAttributeCommand({
        ImageId: image.imageId,
        LaunchPermission: { Add: [{ UserId: SHARE_WITH }] },
      }),
    );
    // The older form: UserId.N with OperationType.
    await client.send(
      new ModifyImageAttributeCommand({
        ImageId: image.imageId,
        Attribute: "launchPermission",
        OperationType: "add",
        UserIds: [OTHER_SHARE],
      }),
    );
    expect([...image.launchPermissions]).toEqual([SHARE_WITH, OTHER_SHARE]);
    expect(image.public).toBe(false);
    const out = await client.send(
      new DescribeImageAttributeCommand({ ImageId: image.imageId, Attribute: "launchPermission" }),
    );
    expect(out.LaunchPermissions).toEqual([{ UserId: SHARE_WITH }, { UserId: OTHER_SHARE }]);
  });

  it("refuses an account EC2 does not know, or not 12 digits, and changes nothing", async () => {
    const image = sourceImage();
    fake.addUnknownAccount(OTHER_SHARE);
    const client = ec2(SOURCE_REGION);
    const share = (...ids: string[]) =>
      client.send(
        new ModifyImageAttributeCommand({
          ImageId: image.imageId,
          LaunchPermission: { Add: ids.map((UserId) => ({ UserId })) },
        }),
      );
    await expect(share(SHARE_WITH, OTHER_SHARE)).rejects.toMatchObject({
      name: "InvalidAMIAttributeItemValue",
      message: `Invalid attribute item value "${OTHER_SHARE}" for userId item type.`,
    });
    await expect(share("12345")).rejects.toMatchObject({ name: "InvalidAMIAttributeItemValue" });
    expect(image.launchPermissions.size).toBe(0);
    await expect(
      client.send(
        new ModifyImageAttributeCommand({
          ImageId: "ami-0123456789abcdef0",
          LaunchPermission: { Add: [{ UserId: SHARE_WITH }] },
        }),
      ),
    ).rejects.toMatchObject({ name: "InvalidAMIID.NotFound" });
  });

  it("marks an image shared with the group all public", async () => {
    const image = sourceImage();
    const client = ec2(SOURCE_REGION);
    await client.send(
      new ModifyImageAttributeCommand({
        ImageId: image.imageId,
        LaunchPermission: { Add: [{ Group: "all" }] },
      }),
    );
    expect(image.public).toBe(true);
    const out = await client.send(
      new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "is-public", Values: ["true"] }] }),
    );
    expect(out.Images?.map((i) => [i.ImageId, i.Public])).toEqual([[image.imageId, true]]);
  });

  it("shares a snapshot's create-volume permission; unknown accounts and snapshots are refused", async () => {
    const image = sourceImage();
    const snapshot = image.snapshots[0];
    if (!snapshot) throw new Error("no snapshot");
    fake.addUnknownAccount(OTHER_SHARE);
    const client = ec2(SOURCE_REGION);
    await client.send(
      new ModifySnapshotAttributeCommand({
        SnapshotId: snapshot.snapshotId,
        Attribute: "createVolumePermission",
        OperationType: "add",
        CreateVolumePermission: { Add: [{ UserId: SHARE_WITH }] },
      }),
    );
    expect([...snapshot.createVolumePermissions]).toEqual([SHARE_WITH]);
    await expect(
      client.send(
        new ModifySnapshotAttributeCommand({
          SnapshotId: snapshot.snapshotId,
          Attribute: "createVolumePermission",
          OperationType: "add",
          UserIds: [OTHER_SHARE],
        }),
      ),
    ).rejects.toMatchObject({ name: "InvalidParameterValue", message: expect.stringContaining(OTHER_SHARE) });
    await expect(
      client.send(
        new ModifySnapshotAttributeCommand({
          SnapshotId: "snap-0123456789abcdef0",
          Attribute: "createVolumePermission",
          OperationType: "add",
          UserIds: [SHARE_WITH],
        }),
      ),
    ).rejects.toMatchObject({ name: "InvalidSnapshot.NotFound" });
    // GroupNames goes out as UserGroup.N.
    await client.send(
      new ModifySnapshotAttributeCommand({
        SnapshotId: snapshot.snapshotId,
        Attribute: "createVolumePermission",
        OperationType: "add",
        GroupNames: ["all"],
      }),
    );
    expect(snapshot.public).toBe(true);
    const out = await client.send(
      new DescribeSnapshotAttributeCommand({
        SnapshotId: snapshot.snapshotId,
        Attribute: "createVolumePermission",
      }),
    );
    expect(out.CreateVolumePermissions).toEqual([{ UserId: SHARE_WITH }, { Group: "all" }]);
  });

  it("authorizes by the resource's tags and ec2:Add/userId, ec2:Add/group", async () => {
    const image = sourceImage();
    const other = sourceImage({ Name: "not the bot's" });
    const snapshot = image.snapshots[0]?.snapshotId ?? "";
    const thisJob = { StringEquals: { "aws:ResourceTag/ami-bot:job-id": JOB } };
    const onlyTheseAccounts = {
      ...thisJob,
      "ForAllValues:StringEquals": { "ec2:Add/userId": [SHARE_WITH] },
      Null: { "ec2:Add/group": "true" },
    };
    const client = await scoped(
      SOURCE_REGION,
      policyOf(
        allow("ec2:ModifyImageAttribute", `arn:aws:ec2:${SOURCE_REGION}::image/*`, onlyTheseAccounts),
        allow("ec2:ModifySnapshotAttribute", `arn:aws:ec2:${SOURCE_REGION}::snapshot/*`, onlyTheseAccounts),
        {
          Effect: "Deny",
          Action: ["ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute"],
          Resource: "*",
          Condition: { "ForAnyValue:StringEquals": { "ec2:Add/group": "all" } },
        },
      ),
    );
    const shareImage = (ImageId: string, Add: { UserId?: string; Group?: "all" }[]) =>
      client.send(new ModifyImageAttributeCommand({ ImageId, LaunchPermission: { Add } }));
    const refused = { name: "UnauthorizedOperation" };

    await shareImage(image.imageId, [{ UserId: SHARE_WITH }]);
    await client.send(
      new ModifySnapshotAttributeCommand({
        SnapshotId: snapshot,
        Attribute: "createVolumePermission",
        OperationType: "add",
        CreateVolumePermission: { Add: [{ UserId: SHARE_WITH }] },
      }),
    );
    await expect(shareImage(image.imageId, [{ UserId: OTHER_SHARE }])).rejects.toMatchObject(refused);
    await expect(shareImage(image.imageId, [{ Group: "all" }])).rejects.toMatchObject(refused);
    await expect(shareImage(other.imageId, [{ UserId: SHARE_WITH }])).rejects.toMatchObject(refused);
    expect([...image.launchPermissions]).toEqual([SHARE_WITH]);
    expect(image.public).toBe(false);
    expect(other.launchPermissions.size).toBe(0);
  });
});

describe("what the cleanup sweep reads", () => {
  it("DescribeLaunchTemplateVersions: $Latest and $Default of every template in the region, by image-id", async () => {
    const kept = "ami-0aaaaaaaaaaaaaaaa";
    fake.addLaunchTemplate({ region: DEST_REGION, name: "one-version", imageId: kept });
    const latest = fake.addLaunchTemplate({
      region: DEST_REGION,
      name: "latest",
      imageId: kept,
      version: "$Latest",
    });
    const dflt = fake.addLaunchTemplate({
      region: DEST_REGION,
      name: "default",
      imageId: kept,
      version: "$Default",
    });
    const middle = fake.addLaunchTemplate({ region: DEST_REGION, name: "middle", imageId: kept });
    fake.addLaunchTemplateVersion(middle.launchTemplateId, { imageId: "ami-0bbbbbbbbbbbbbbbb" });
    fake.addLaunchTemplateVersion(middle.launchTemplateId, {
      imageId: "ami-0cccccccccccccccc",
      makeDefault: true,
    });
    fake.addLaunchTemplate({ region: SOURCE_REGION, name: "elsewhere", imageId: kept });
    const client = ec2(DEST_REGION);

    const both = await client.send(
      new DescribeLaunchTemplateVersionsCommand({
        Versions: ["$Latest", "$Default"],
        Filters: [{ Name: "image-id", Values: [kept] }],
      }),
    );
    expect(
      both.LaunchTemplateVersions?.map((v) => [
        v.LaunchTemplateName,
        v.VersionNumber,
        v.DefaultVersion,
        v.LaunchTemplateData?.ImageId,
      ]),
    ).toEqual([
      ["one-version", 1, true, kept],
      ["latest", 2, false, kept],
      ["default", 1, true, kept],
    ]);
    expect(both.LaunchTemplateVersions?.[1]?.LaunchTemplateId).toBe(latest.launchTemplateId);
    expect(fake.calls("DescribeLaunchTemplateVersions")[0]?.params).toMatchObject({
      "LaunchTemplateVersion.1": "$Latest",
      "LaunchTemplateVersion.2": "$Default",
      "Filter.1.Name": "image-id",
    });

    const onlyLatest = await client.send(
      new DescribeLaunchTemplateVersionsCommand({
        Versions: ["$Latest"],
        Filters: [{ Name: "image-id", Values: [kept] }],
      }),
    );
    expect(onlyLatest.LaunchTemplateVersions?.map((v) => v.LaunchTemplateName)).toEqual([
      "one-version",
      "latest",
    ]);

    const paged = await client.send(
      new DescribeLaunchTemplateVersionsCommand({ Versions: ["$Default"], MaxResults: 1 }),
    );
    expect(paged.LaunchTemplateVersions).toHaveLength(1);
    expect(paged.NextToken).toBeDefined();

    const ofOne = await client.send(
      new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: "default" }),
    );
    expect(ofOne.LaunchTemplateVersions?.map((v) => v.LaunchTemplateId)).toEqual([
      dflt.launchTemplateId,
      dflt.launchTemplateId,
    ]);
    await expect(
      client.send(new DescribeLaunchTemplateVersionsCommand({ Versions: ["1"] })),
    ).rejects.toMatchObject({ name: "InvalidParameterValue" });
    await expect(
      client.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: "none" })),
    ).rejects.toMatchObject({ name: "InvalidLaunchTemplateName.NotFoundException" });

    const reader = await scoped(DEST_REGION, policyOf(allow("ec2:DescribeLaunchTemplateVersions", "*")));
    await reader.send(new DescribeLaunchTemplateVersionsCommand({ Versions: ["$Latest"] }));
    const other = await scoped(DEST_REGION, policyOf(allow("ec2:DescribeImages", "*")));
    await expect(
      other.send(new DescribeLaunchTemplateVersionsCommand({ Versions: ["$Latest"] })),
    ).rejects.toMatchObject({ name: "UnauthorizedOperation" });
  });

  it("DeregisterImage refuses an image with deregistration protection, and keeps it", async () => {
    const protectedImage = fake.addImage({
      name: "keep",
      region: SOURCE_REGION,
      deregistrationProtection: true,
    });
    const plain = fake.addImage({ name: "drop", region: SOURCE_REGION });
    const client = ec2(SOURCE_REGION);
    const described = await client.send(new DescribeImagesCommand({ ImageIds: [protectedImage.imageId] }));
    expect(described.Images?.[0]?.DeregistrationProtection).toBe("enabled-without-cooldown");

    await expect(
      client.send(new DeregisterImageCommand({ ImageId: protectedImage.imageId })),
    ).rejects.toMatchObject({ name: "InvalidParameterValue", message: expect.stringMatching(/protection/) });
    expect(fake.images.has(protectedImage.imageId)).toBe(true);
    await client.send(new DeregisterImageCommand({ ImageId: plain.imageId }));
    expect(fake.images.has(plain.imageId)).toBe(false);
  });

  it("DescribeImages shows an old image's creation date, source instance and snapshots", async () => {
    const old = fake.addImage({
      name: "old",
      region: SOURCE_REGION,
      creationDate: Date.UTC(2025, 0, 2, 3, 4, 5),
      sourceInstanceId: "i-0123456789abcdef0",
      snapshots: [{ sizeGiB: 20 }, { deviceName: "/dev/sdf", tags: { other: "tag" } }],
      tags: { "ami-bot:job-id": "old-job" },
    });
    const out = await ec2(SOURCE_REGION).send(new DescribeImagesCommand({ ImageIds: [old.imageId] }));
    const image: Image | undefined = out.Images?.[0];
    expect(image).toMatchObject({
      CreationDate: "2025-01-02T03:04:05.000Z",
      SourceInstanceId: "i-0123456789abcdef0",
      DeregistrationProtection: "disabled",
    });
    expect(
      image?.BlockDeviceMappings?.map((m) => [m.DeviceName, m.Ebs?.SnapshotId, m.Ebs?.VolumeSize]),
    ).toEqual([
      ["/dev/xvda", old.snapshots[0]?.snapshotId, 20],
      ["/dev/sdf", old.snapshots[1]?.snapshotId, 8],
    ]);
    expect(old.snapshots.map((s) => s.tags)).toEqual([{ "ami-bot:job-id": "old-job" }, { other: "tag" }]);
  });

  it("DescribeImages pages Owner self and tag-key over a region's images, copies included", async () => {
    const client = ec2(DEST_REGION);
    for (let n = 0; n < 6; n++) {
      const source = sourceImage();
      await client.send(
        new CopyImageCommand(copyInput(source, { Name: `copy-${n}`, ClientToken: `token-${n}` })),
      );
    }
    fake.addImage({ name: "untagged", region: DEST_REGION });
    fake.addImage({
      name: "someone else's",
      region: DEST_REGION,
      ownerId: "999999999999",
      tags: JOB_TAGS_RECORD,
    });
    const page = (NextToken?: string) =>
      client.send(
        new DescribeImagesCommand({
          Owners: ["self"],
          Filters: [{ Name: "tag-key", Values: ["ami-bot:job-id"] }],
          MaxResults: 5,
          NextToken,
        }),
      );
    const first = await page();
    expect(first.Images).toHaveLength(5);
    const second = await page(first.NextToken);
    expect(second.Images).toHaveLength(1);
    expect(second.NextToken).toBeUndefined();
    const names = [...(first.Images ?? []), ...(second.Images ?? [])].map((i) => i.Name).sort();
    expect(names).toEqual(["copy-0", "copy-1", "copy-2", "copy-3", "copy-4", "copy-5"]);
  });
});

describe("the policy evaluator's negated and ForAnyValue operators", () => {
  const policy = (Condition: object) =>
    JSON.stringify(policyOf(allow("ec2:ModifyImageAttribute", "*", Condition)));
  const judge = (Condition: object, context: Record<string, string | string[]>) =>
    sessionPolicyPermits(policy(Condition), "ec2:ModifyImageAttribute", ["*"], context);

  it("holds StringNotEquals when no value matches (an absent key too)", () => {
    const notAll = { StringNotEquals: { "ec2:Add/group": "all" } };
    expect(judge(notAll, {})).toBe(true);
    expect(judge(notAll, { "ec2:Add/group": ["all"] })).toBe(false);
    expect(judge({ StringNotLike: { "ec2:Add/userId": "9*" } }, { "ec2:Add/userId": [SHARE_WITH] })).toBe(
      true,
    );
  });

  it("holds ForAnyValue when some value matches, never for an absent key", () => {
    const anyAll = { "ForAnyValue:StringEquals": { "ec2:Add/group": "all" } };
    expect(judge(anyAll, {})).toBe(false);
    expect(judge(anyAll, { "ec2:Add/group": ["x", "all"] })).toBe(true);
    const allNot = { "ForAllValues:StringNotEquals": { "ec2:Add/userId": [OTHER_SHARE] } };
    expect(judge(allNot, { "ec2:Add/userId": [SHARE_WITH] })).toBe(true);
    expect(judge(allNot, { "ec2:Add/userId": [SHARE_WITH, OTHER_SHARE] })).toBe(false);
  });
});
