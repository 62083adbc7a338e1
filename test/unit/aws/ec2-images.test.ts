/**
 * The EC2 adapter, its scoped sessions and their policies: first against aws-sdk-client-mock (exact inputs,
 * error translation), then over the real SDK wire against fake-aws, where session policies are enforced.
 */
import {
  CreateImageCommand,
  type CreateImageCommandInput,
  DescribeImagesCommand,
  type DescribeImagesCommandInput,
  DescribeInstancesCommand,
  type DescribeInstancesCommandInput,
  DescribeSnapshotsCommand,
  type DescribeSnapshotsCommandInput,
  EC2Client,
  EC2ServiceException,
} from "@aws-sdk/client-ec2";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
// Registers the matchers (toHaveReceivedCommandWith, …) on vitest's expect and types them.
import "aws-sdk-client-mock-vitest/extend";
import { translateEc2Error } from "../../../src/aws/aws-errors.js";
import { type Ec2ClientFactory, Ec2Images } from "../../../src/aws/ec2-images.js";
import {
  assumeRoleParams,
  type SessionFactory,
  type SessionRequest,
} from "../../../src/aws/scoped-credentials.js";
import {
  createImagePolicy,
  type PolicyDocument,
  pickerPolicy,
  watcherPolicy,
} from "../../../src/aws/session-policy.js";
import { DEFAULT_AWS_TIMEOUTS } from "../../../src/aws/timeouts.js";
import type { CreateImageParams, Place, Requester } from "../../../src/domain/ports.js";
import type { Target } from "../../../src/domain/target.js";
import type { FakeAws } from "../../fakes/fake-aws.js";
import { FixedClock } from "../../fakes/fixed-clock.js";
import {
  ACCOUNT,
  adapterTarget,
  awsError,
  EXTERNAL_ID,
  INSTANCE,
  placeOf,
  REGION,
  ROLE_ARN,
  recordingSessions,
  refusal,
  requester,
  SCOPE_TAG,
  startAdapterFake,
} from "../../support/ec2-adapter.js";

const OTHER_INSTANCE = "i-0fedcba9876543210";

const target: Target = adapterTarget({ tagKeys: ["team", "ticket"] });
const place: Place = placeOf(target);
const scope = { partition: "aws", accountId: ACCOUNT, region: REGION };
const createPolicy = (instanceId = INSTANCE) => createImagePolicy(target, REGION, instanceId);

function params(overrides: Partial<CreateImageParams> = {}): CreateImageParams {
  return {
    jobId: "job-1",
    instanceId: INSTANCE,
    imageName: "web-1 before upgrade",
    description: "snapshot before the kernel upgrade",
    noReboot: true,
    tags: [
      { key: "team", value: "platform" },
      { key: "ticket", value: "OPS-42" },
    ],
    excludedDevices: [],
    ...overrides,
  };
}

describe("session policies", () => {
  const actionsOf = (policy: PolicyDocument) => policy.Statement.flatMap((s) => [s.Action].flat());

  it("lets CreateImage touch only the chosen instance, while it carries the required tags", () => {
    const policy = createPolicy();
    const create = policy.Statement.filter((s) => [s.Action].flat().includes("ec2:CreateImage"));
    expect(create.map((s) => s.Resource)).toEqual([
      `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${INSTANCE}`,
      [`arn:aws:ec2:${REGION}::image/*`, `arn:aws:ec2:${REGION}::snapshot/*`],
    ]);
    expect(create[0]?.Sid).toBe("ImageThisInstanceOnly");
    expect(create[0]?.Condition).toEqual({ StringEquals: { "aws:ResourceTag/ami-bot": "allowed" } });
    // No statement grants anything on another instance.
    const instanceArns = policy.Statement.flatMap((s) => [s.Resource].flat()).filter((r) =>
      r.includes(":instance/"),
    );
    expect(instanceArns).toEqual([`arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${INSTANCE}`]);
  });

  it("puts no condition on the instance when the target requires no tags", () => {
    const open = createImagePolicy({ ...target, instanceScope: { requiredTags: {} } }, REGION, INSTANCE);
    expect(open.Statement[0]?.Condition).toBeUndefined();
  });

  it("limits the tag keys on what CreateImage makes to the target's, plus Name and ami-bot:*", () => {
    const policy = createPolicy();
    const keys = { "ForAllValues:StringLike": { "aws:TagKeys": ["team", "ticket", "Name", "ami-bot:*"] } };
    expect(policy.Statement[1]?.Condition).toEqual(keys);
    expect(policy.Statement[2]?.Condition).toEqual({
      StringEquals: { "ec2:CreateAction": "CreateImage" },
      ...keys,
    });
    // No tagKeys: any key (the domain refuses reserved ones before AWS is asked).
    const any = createImagePolicy({ ...target, tagKeys: undefined }, REGION, INSTANCE);
    expect(any.Statement[1]?.Condition).toBeUndefined();
    expect(any.Statement[2]?.Condition).toEqual({ StringEquals: { "ec2:CreateAction": "CreateImage" } });
  });

  it("allows CreateTags only as part of CreateImage, no Describe, and no wildcard actions", () => {
    const policy = createPolicy();
    const tagging = policy.Statement.filter((s) => [s.Action].flat().includes("ec2:CreateTags"));
    expect(tagging).toHaveLength(1);
    expect(tagging[0]?.Condition?.StringEquals).toEqual({ "ec2:CreateAction": "CreateImage" });
    expect([tagging[0]?.Resource ?? []].flat()).toEqual([
      `arn:aws:ec2:${REGION}::image/*`,
      `arn:aws:ec2:${REGION}::snapshot/*`,
    ]);
    expect(actionsOf(policy).some((a) => a.includes("*"))).toBe(false);
    expect([...new Set(actionsOf(policy))].sort()).toEqual(["ec2:CreateImage", "ec2:CreateTags"]);
  });

  it("read-only sessions may make only their own reads, in one region", () => {
    expect(actionsOf(pickerPolicy(scope))).toEqual(["ec2:DescribeInstances", "ec2:DescribeVolumes"]);
    expect(actionsOf(watcherPolicy(scope)).sort()).toEqual(["ec2:DescribeImages", "ec2:DescribeSnapshots"]);
    for (const policy of [pickerPolicy(scope), watcherPolicy(scope)])
      expect(
        policy.Statement.every((s) => s.Condition?.StringEquals?.["aws:RequestedRegion"] === REGION),
      ).toBe(true);
  });

  it("AssumeRole carries the role, ExternalId, the requester and the policy", () => {
    const policy = createPolicy();
    const p = assumeRoleParams({ target, region: REGION, policy, ...requester });
    expect(p).toEqual({
      RoleArn: ROLE_ARN,
      RoleSessionName: "ami-bot-U0REQUEST1",
      SourceIdentity: "U0REQUEST1",
      ExternalId: EXTERNAL_ID,
      Policy: JSON.stringify(policy),
      DurationSeconds: 900,
      Tags: [
        { Key: "slack-user", Value: "U0REQUEST1" },
        { Key: "slack-channel", Value: "C0CHANNEL1" },
      ],
    });
    const long = assumeRoleParams({
      target,
      region: REGION,
      policy,
      userId: "U".repeat(80),
      channelId: "C1",
    });
    expect(long.RoleSessionName.length).toBeLessThanOrEqual(64);
  });
});

describe("Ec2Images with a mocked EC2 client", () => {
  const ec2 = mockClient(EC2Client);
  let sessionRequests: SessionRequest[];
  let sessions: SessionFactory;
  let images: Ec2Images;

  beforeEach(() => {
    ec2.reset();
    ({ sessions, requests: sessionRequests } = recordingSessions());
    images = new Ec2Images({ sessions });
  });
  afterAll(() => ec2.restore());

  it("sends CreateImage with the name, description, reboot choice and both tag specifications", async () => {
    ec2.on(CreateImageCommand).resolves({ ImageId: "ami-0123456789abcdef0" });
    await expect(images.createImage(place, requester, params())).resolves.toBe("ami-0123456789abcdef0");

    const tags = [
      { Key: "Name", Value: "web-1 before upgrade" },
      { Key: "ami-bot:job-id", Value: "job-1" },
      { Key: "ami-bot:requested-by", Value: "U0REQUEST1" },
      { Key: "ami-bot:channel", Value: "C0CHANNEL1" },
      { Key: "team", Value: "platform" },
      { Key: "ticket", Value: "OPS-42" },
    ];
    const expected: CreateImageCommandInput = {
      InstanceId: INSTANCE,
      Name: "web-1 before upgrade",
      Description: "snapshot before the kernel upgrade",
      NoReboot: true,
      TagSpecifications: [
        { ResourceType: "image", Tags: tags },
        { ResourceType: "snapshot", Tags: tags },
      ],
    };
    expect(ec2).toHaveReceivedCommandExactlyOnceWith(CreateImageCommand, { ...expected });
    // Exactly, not just containing: in particular no DryRun on the real call.
    expect(ec2.commandCalls(CreateImageCommand)[0]?.args[0].input).toEqual({
      ...expected,
      DryRun: undefined,
    });
  });

  it("asks for a session scoped to that instance, acting for the requester", async () => {
    ec2.on(CreateImageCommand).resolves({ ImageId: "ami-1" });
    await images.createImage(place, requester, params());
    expect(sessionRequests).toEqual([
      {
        target,
        region: REGION,
        policy: createPolicy(),
        userId: "U0REQUEST1",
        channelId: "C0CHANNEL1",
      },
    ]);
  });

  it("checkCreateImage sends a DryRun and treats DryRunOperation as yes", async () => {
    ec2.on(CreateImageCommand).rejects(awsError("DryRunOperation", 412));
    await expect(images.checkCreateImage(place, requester, params())).resolves.toBeUndefined();
    expect(ec2).toHaveReceivedCommandWith(CreateImageCommand, { InstanceId: INSTANCE, DryRun: true });
    expect(sessionRequests[0]?.policy).toEqual(createPolicy());
  });

  it("checkCreateImage refuses when AWS answers the dry run as if it were real", async () => {
    ec2.on(CreateImageCommand).resolves({ ImageId: "ami-1" });
    expect((await refusal(images.checkCreateImage(place, requester, params()))).code).toBe("unknown");
  });

  it("checkCreateImage passes a denial through as access_denied", async () => {
    ec2.on(CreateImageCommand).rejects(awsError("UnauthorizedOperation", 403));
    expect((await refusal(images.checkCreateImage(place, requester, params()))).code).toBe("access_denied");
  });

  it.each([
    ["InvalidAMIName.Duplicate", 400, "name_taken", false],
    ["InvalidAMIName.Malformed", 400, "name_malformed", false],
    ["UnauthorizedOperation", 403, "access_denied", false],
    ["RequestLimitExceeded", 503, "throttled", true],
    ["InternalError", 500, "aws_unavailable", true],
    ["IncorrectInstanceState", 400, "instance_state", false],
    ["RequestExpired", 400, "credentials_expired", true],
    ["SomethingNew", 400, "unknown", false],
  ] as const)("translates %s (%i) from CreateImage into %s", async (name, status, code, retryable) => {
    ec2.on(CreateImageCommand).rejects(awsError(name, status));
    const error = await refusal(images.createImage(place, requester, params()));
    expect(error.code).toBe(code);
    expect(error.retryable).toBe(retryable);
    expect(error.cause).toBeInstanceOf(EC2ServiceException);
  });

  it("names the taken image name in the message", async () => {
    ec2.on(CreateImageCommand).rejects(awsError("InvalidAMIName.Duplicate", 400));
    const error = await refusal(images.createImage(place, requester, params()));
    expect(error.userMessage).toContain("web-1 before upgrade");
  });

  it("describeInstance returns undefined for an instance AWS does not know", async () => {
    ec2.on(DescribeInstancesCommand).rejects(awsError("InvalidInstanceID.NotFound", 400));
    await expect(images.describeInstance(place, requester, INSTANCE)).resolves.toBeUndefined();
    expect(ec2).toHaveReceivedCommandWith(DescribeInstancesCommand, { InstanceIds: [INSTANCE] });
    expect(sessionRequests[0]?.policy).toEqual(pickerPolicy(scope));
  });

  it("describeInstance summarizes an instance in scope, with its root device and EBS volumes", async () => {
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            {
              InstanceId: INSTANCE,
              State: { Name: "running" },
              InstanceType: "t3.micro",
              Tags: [
                { Key: "Name", Value: "web-1" },
                { Key: "ami-bot", Value: "allowed" },
              ],
              RootDeviceName: "/dev/xvda",
              BlockDeviceMappings: [
                { DeviceName: "/dev/xvda", Ebs: { VolumeId: "vol-0aaa" } },
                { DeviceName: "/dev/sdf", Ebs: { VolumeId: "vol-0bbb" } },
              ],
            },
          ],
        },
      ],
    });
    await expect(images.describeInstance(place, requester, INSTANCE)).resolves.toEqual({
      instanceId: INSTANCE,
      name: "web-1",
      state: "running",
      instanceType: "t3.micro",
      rootDeviceName: "/dev/xvda",
      blockDevices: [
        { deviceName: "/dev/xvda", volumeId: "vol-0aaa" },
        { deviceName: "/dev/sdf", volumeId: "vol-0bbb" },
      ],
    });
  });

  it("describeInstance refuses an instance lacking the target's required tags", async () => {
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [{ InstanceId: INSTANCE, Tags: [{ Key: "ami-bot", Value: "nope" }] }] }],
    });
    const error = await refusal(images.describeInstance(place, requester, INSTANCE));
    expect(error.code).toBe("instance_out_of_scope");
    expect(error.userMessage).toContain("ami-bot=allowed");
  });

  it("findInstances always filters by state and scope tags, searches by Name, and caps the page", async () => {
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            { InstanceId: INSTANCE, State: { Name: "running" }, Tags: [{ Key: "Name", Value: "web-1" }] },
          ],
        },
      ],
    });
    await expect(images.findInstances(place, requester, "  web ")).resolves.toEqual([
      { instanceId: INSTANCE, name: "web-1", state: "running", instanceType: undefined },
    ]);
    expect(ec2).toHaveReceivedCommandExactlyOnceWith(DescribeInstancesCommand, {
      Filters: [
        { Name: "instance-state-name", Values: ["running", "stopped", "stopping", "pending"] },
        { Name: "tag:ami-bot", Values: ["allowed"] },
        { Name: "tag:Name", Values: ["*web*"] },
      ],
      MaxResults: 50,
    });
  });

  it("findInstances searches by id prefix, strips wildcards, and never scans unfiltered", async () => {
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    await images.findInstances(place, requester, "i-0123");
    await images.findInstances(place, requester, "*?\\");
    await images.findInstances(
      { target: { ...target, instanceScope: { requiredTags: {} } }, region: REGION },
      requester,
      "",
    );
    const inputs = ec2.commandCalls(DescribeInstancesCommand).map((c) => c.args[0].input);
    expect(inputs[0]?.Filters).toContainEqual({ Name: "instance-id", Values: ["i-0123*"] });
    expect(inputs[1]?.Filters).toEqual([
      { Name: "instance-state-name", Values: ["running", "stopped", "stopping", "pending"] },
      { Name: "tag:ami-bot", Values: ["allowed"] },
    ]);
    for (const input of inputs) {
      expect(input.Filters?.length).toBeGreaterThan(0);
      expect(input.MaxResults).toBe(50);
      expect(input.InstanceIds).toBeUndefined();
    }
  });

  it("describeImages looks up to 200 ids up by an image-id filter (never ImageIds), ours only", async () => {
    ec2.on(DescribeImagesCommand).callsFake((input: { Filters?: { Values?: string[] }[] }) => ({
      Images: (input.Filters?.[0]?.Values ?? []).map((id) => ({
        ImageId: id,
        State: id === "ami-0" ? "failed" : "pending",
        StateReason: id === "ami-0" ? { Code: "Server.InternalError", Message: "boom" } : undefined,
        BlockDeviceMappings: [
          { DeviceName: "/dev/xvda", Ebs: { SnapshotId: `snap-${id}` } },
          { DeviceName: "/dev/xvdb" },
        ],
      })),
    }));
    const ids = Array.from({ length: 200 }, (_, i) => `ami-${i}`);
    const result = await images.describeImages(place, ids);

    const calls = ec2.commandCalls(DescribeImagesCommand).map((c) => c.args[0].input);
    expect(calls).toEqual([{ Owners: ["self"], Filters: [{ Name: "image-id", Values: ids }] }]);
    expect(result.size).toBe(200);
    expect(result.get("ami-0")).toEqual({
      imageId: "ami-0",
      state: "failed",
      reason: "boom",
      snapshotIds: ["snap-ami-0"],
    });
    expect(result.get("ami-199")?.state).toBe("pending");
  });

  it("describeImages lists pending images by the job-id tag beyond 200 ids, then looks up the rest by id", async () => {
    const ids = Array.from({ length: 1450 }, (_, i) => `ami-${i}`);
    // Two pages of pending ones (some not asked), then the ones that left pending, asked by id.
    ec2.on(DescribeImagesCommand).callsFake((input: DescribeImagesCommandInput) => {
      const pending = (list: string[]) => list.map((id) => ({ ImageId: id, State: "pending" }));
      if (input.Filters?.[0]?.Name === "image-id")
        return {
          Images: (input.Filters[0].Values ?? [])
            .filter((id) => id !== "ami-1449")
            .map((id) => ({ ImageId: id, State: "available" })),
        };
      if (input.NextToken === "page-2")
        return { Images: pending([...ids.slice(1000, 1400), "ami-not-asked"]) };
      return { Images: pending(ids.slice(0, 1000)), NextToken: "page-2" };
    });
    const result = await images.describeImages(place, ids);

    const calls = ec2.commandCalls(DescribeImagesCommand).map((c) => c.args[0].input);
    const listing = {
      Owners: ["self"],
      Filters: [
        { Name: "tag-key", Values: ["ami-bot:job-id"] },
        { Name: "state", Values: ["pending"] },
      ],
      MaxResults: 1000,
    };
    expect(calls).toEqual([
      listing,
      { ...listing, NextToken: "page-2" },
      { Owners: ["self"], Filters: [{ Name: "image-id", Values: ids.slice(1400) }] },
    ]);
    expect(result.size).toBe(1449);
    expect(result.has("ami-not-asked")).toBe(false);
    expect(result.has("ami-1449")).toBe(false);
    expect(result.get("ami-1399")?.state).toBe("pending");
    expect(result.get("ami-1400")?.state).toBe("available");
  });

  it("describeImages stops listing once the rest fit in one lookup by id", async () => {
    const ids = Array.from({ length: 1100 }, (_, i) => `ami-${i}`);
    ec2.on(DescribeImagesCommand).callsFake((input: DescribeImagesCommandInput) => {
      const listing = input.Filters?.[0]?.Name === "tag-key";
      const found = listing ? ids.slice(0, 1000) : (input.Filters?.[0]?.Values ?? []);
      return {
        Images: found.map((id) => ({ ImageId: id, State: "pending" })),
        NextToken: listing ? "page-2" : undefined,
      };
    });
    const result = await images.describeImages(place, ids);
    const calls = ec2.commandCalls(DescribeImagesCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => c.NextToken ?? c.Filters?.[0]?.Name)).toEqual(["tag-key", "image-id"]);
    expect(calls[1]?.Filters?.[0]?.Values).toEqual(ids.slice(1000));
    expect(result.size).toBe(1100);
  });

  it("describeImages reads no more listing pages than a lookup by id would cost", async () => {
    // 300 asked, among many more pending that are not: two pages at most, then the rest by id.
    const ids = Array.from({ length: 300 }, (_, i) => `ami-${i}`);
    let page = 0;
    ec2.on(DescribeImagesCommand).callsFake((input: DescribeImagesCommandInput) => {
      if (input.Filters?.[0]?.Name === "image-id")
        return { Images: (input.Filters[0].Values ?? []).map((id) => ({ ImageId: id, State: "pending" })) };
      page++;
      return {
        Images: Array.from({ length: 1000 }, (_, i) => ({
          ImageId: `ami-other-${page}-${i}`,
          State: "pending",
        })),
        NextToken: `page-${page + 1}`,
      };
    });
    const result = await images.describeImages(place, ids);
    const calls = ec2.commandCalls(DescribeImagesCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => c.Filters?.[0]?.Name)).toEqual(["tag-key", "tag-key", "image-id", "image-id"]);
    expect(result.size).toBe(300);
  });

  it("reuses one read-only session per place for the watcher", async () => {
    ec2.on(DescribeImagesCommand).resolves({ Images: [] });
    ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    await images.describeImages(place, ["ami-1"]);
    await images.snapshotProgress(place, ["snap-1"]);
    await images.describeImages(place, ["ami-2"]);
    expect(sessionRequests).toHaveLength(1);
    expect(sessionRequests[0]).toMatchObject({ userId: "ami-bot-watcher", policy: watcherPolicy(scope) });
  });

  it("snapshotProgress reads percentages, filtering on snapshot-id, ours only", async () => {
    ec2.on(DescribeSnapshotsCommand).resolves({
      Snapshots: [
        { SnapshotId: "snap-1", Progress: "37%" },
        { SnapshotId: "snap-2", Progress: "" },
      ],
    });
    const progress = await images.snapshotProgress(place, ["snap-1", "snap-2"]);
    expect([...progress]).toEqual([
      ["snap-1", 37],
      ["snap-2", 0],
    ]);
    expect(ec2.commandCalls(DescribeSnapshotsCommand).map((c) => c.args[0].input)).toEqual([
      { OwnerIds: ["self"], Filters: [{ Name: "snapshot-id", Values: ["snap-1", "snap-2"] }] },
    ]);
  });

  it("snapshotProgress lists pending snapshots by the job-id tag beyond 200, then the rest by id", async () => {
    const ids = Array.from({ length: 500 }, (_, i) => `snap-${i}`);
    ec2.on(DescribeSnapshotsCommand).callsFake((input: DescribeSnapshotsCommandInput) => {
      if (input.Filters?.[0]?.Name === "tag-key")
        return { Snapshots: ids.slice(0, 490).map((id) => ({ SnapshotId: id, Progress: "40%" })) };
      // A snapshot made moments ago may not show yet: it stays out of the map (not taken as complete).
      return {
        Snapshots: (input.Filters?.[0]?.Values ?? [])
          .filter((id) => id !== "snap-499")
          .map((id) => ({ SnapshotId: id, Progress: "100%" })),
      };
    });
    const progress = await images.snapshotProgress(place, ids);
    expect(ec2.commandCalls(DescribeSnapshotsCommand).map((c) => c.args[0].input)).toEqual([
      {
        OwnerIds: ["self"],
        Filters: [
          { Name: "tag-key", Values: ["ami-bot:job-id"] },
          { Name: "status", Values: ["pending"] },
        ],
        MaxResults: 1000,
      },
      { OwnerIds: ["self"], Filters: [{ Name: "snapshot-id", Values: ids.slice(490) }] },
    ]);
    expect(progress.get("snap-0")).toBe(40);
    expect(progress.get("snap-490")).toBe(100);
    expect(progress.has("snap-499")).toBe(false);
    expect(progress.size).toBe(499);
  });

  it("findImageByJob looks for own images by the job-id tag, through the watcher's session", async () => {
    ec2.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: "ami-found" }] });
    await expect(images.findImageByJob(place, requester, "job-1")).resolves.toBe("ami-found");
    expect(ec2).toHaveReceivedCommandWith(DescribeImagesCommand, {
      Owners: ["self"],
      Filters: [{ Name: "tag:ami-bot:job-id", Values: ["job-1"] }],
    });
    await images.describeImages(place, ["ami-found"]);
    expect(sessionRequests).toHaveLength(1);
    expect(sessionRequests[0]).toMatchObject({ userId: "ami-bot-watcher", policy: watcherPolicy(scope) });
  });

  it("imageNameTaken asks for own images with that exact name, through the watcher's session", async () => {
    ec2.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: "ami-1", Name: "web-1 nightly" }] });
    await expect(images.imageNameTaken(place, "web-1 nightly")).resolves.toBe(true);
    expect(ec2).toHaveReceivedCommandWith(DescribeImagesCommand, {
      Owners: ["self"],
      Filters: [{ Name: "name", Values: ["web-1 nightly"] }],
    });
    expect(sessionRequests).toHaveLength(1);
    expect(sessionRequests[0]).toMatchObject({ userId: "ami-bot-watcher", policy: watcherPolicy(scope) });
  });

  it("imageNameTaken says free when AWS lists none, or only other names", async () => {
    ec2
      .on(DescribeImagesCommand)
      .resolvesOnce({ Images: [] })
      .resolves({ Images: [{ Name: "web-1 other" }] });
    await expect(images.imageNameTaken(place, "web-1 nightly")).resolves.toBe(false);
    await expect(images.imageNameTaken(place, "web-1 nightly")).resolves.toBe(false);
  });

  it("tells a malformed image name apart from a taken one", async () => {
    ec2.on(CreateImageCommand).rejects(awsError("InvalidAMIName.Malformed", 400));
    const error = await refusal(images.createImage(place, requester, params()));
    expect(error).toMatchObject({ code: "name_malformed", retryable: false });
    expect(error.userMessage).toContain("3–128 characters");
    expect(error.userMessage).not.toContain("already exists");
  });

  const instancesPage = (ids: string[], nextToken?: string) => ({
    Reservations: [{ Instances: ids.map((id) => ({ InstanceId: id, State: { Name: "running" as const } })) }],
    NextToken: nextToken,
  });

  it("findInstances follows NextToken past sparse pages until it has a page of matches", async () => {
    const ids = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => `i-${String(from + i).padStart(17, "0")}`);
    ec2
      .on(DescribeInstancesCommand)
      .resolvesOnce(instancesPage([], "page-2"))
      .resolvesOnce(instancesPage(ids(0, 30), "page-3"))
      .resolvesOnce(instancesPage(ids(30, 30), "page-4"))
      .resolves(instancesPage(ids(60, 30)));
    const found = await images.findInstances(place, requester, "web");
    expect(found.map((i) => i.instanceId)).toEqual(ids(0, 50));
    const tokens = ec2.commandCalls(DescribeInstancesCommand).map((c) => c.args[0].input.NextToken);
    expect(tokens).toEqual([undefined, "page-2", "page-3"]);
  });

  it("findInstances reads at most ten pages, so one search cannot scan a whole account", async () => {
    ec2.on(DescribeInstancesCommand).resolves(instancesPage([], "more"));
    await expect(images.findInstances(place, requester, "web")).resolves.toEqual([]);
    expect(ec2.commandCalls(DescribeInstancesCommand)).toHaveLength(10);
  });

  it("keeps one picker session per person and place, however many searches and lookups", async () => {
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    for (let i = 0; i < 10; i++) await images.findInstances(place, requester, `web-${i}`);
    await images.describeInstance(place, requester, INSTANCE);
    expect(sessionRequests).toHaveLength(1);
    await images.findInstances(place, { userId: "U0SOMEONE2", channelId: "C0CHANNEL1" }, "web");
    await images.findInstances({ target, region: "us-east-1" }, requester, "web");
    expect(sessionRequests.map((r) => [r.userId, r.region])).toEqual([
      ["U0REQUEST1", REGION],
      ["U0SOMEONE2", REGION],
      ["U0REQUEST1", "us-east-1"],
    ]);
    expect(sessionRequests.map((r) => r.policy)).toEqual([
      pickerPolicy(scope),
      pickerPolicy(scope),
      pickerPolicy({ ...scope, region: "us-east-1" }),
    ]);
  });

  it("makes a new CreateImage session for every request, never reusing one", async () => {
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    ec2.on(CreateImageCommand).resolves({ ImageId: "ami-1" });
    await images.findInstances(place, requester, "web");
    await images.createImage(place, requester, params());
    await images.createImage(place, requester, params({ jobId: "job-2" }));
    expect(sessionRequests.map((r) => r.policy)).toEqual([
      pickerPolicy(scope),
      createPolicy(),
      createPolicy(),
    ]);
  });

  it.each([
    ["UnauthorizedOperation", 403],
    ["RequestExpired", 400],
  ])("drops a person's picker session when AWS answers %s", async (name, status) => {
    ec2.on(DescribeInstancesCommand).rejectsOnce(awsError(name, status)).resolves({ Reservations: [] });
    await refusal(images.findInstances(place, requester, "web"));
    await images.findInstances(place, requester, "web");
    expect(sessionRequests).toHaveLength(2);
  });

  it("keeps the picker session through errors that do not impugn it", async () => {
    ec2
      .on(DescribeInstancesCommand)
      .rejectsOnce(awsError("RequestLimitExceeded", 503))
      .rejectsOnce(awsError("InvalidInstanceID.NotFound", 400))
      .resolves({ Reservations: [] });
    await refusal(images.findInstances(place, requester, "web"));
    await expect(images.describeInstance(place, requester, INSTANCE)).resolves.toBeUndefined();
    await images.findInstances(place, requester, "web");
    expect(sessionRequests).toHaveLength(1);
  });

  it("forgets a picker session idle for ten minutes, and keeps at most 500", async () => {
    const clock = new FixedClock();
    const timed = new Ec2Images({ sessions, clock });
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    const search = (userId: string) => timed.findInstances(place, { userId, channelId: "C1" }, "web");

    await search("U0FIRST");
    clock.advance(9 * 60_000);
    await search("U0FIRST");
    expect(sessionRequests).toHaveLength(1);
    clock.advance(10 * 60_000);
    await search("U0FIRST");
    expect(sessionRequests).toHaveLength(2);

    // 500 others come after: the least recently used (U0FIRST) goes, the most recent stays.
    for (let i = 0; i < 500; i++) await search(`U0OTHER${i}`);
    expect(sessionRequests).toHaveLength(502);
    await search("U0OTHER499");
    expect(sessionRequests).toHaveLength(502);
    await search("U0FIRST");
    expect(sessionRequests).toHaveLength(503);
  });

  it("translates throttling on the watcher's reads as retryable", async () => {
    ec2.on(DescribeImagesCommand).rejects(awsError("RequestLimitExceeded", 503));
    const error = await refusal(images.describeImages(place, ["ami-1"]));
    expect(error).toMatchObject({ code: "throttled", retryable: true });
  });
});

describe("Ec2Images over the SDK wire against fake-aws", () => {
  let fake: FakeAws;
  let clientFactory: Ec2ClientFactory;
  let sessions: SessionFactory;

  beforeAll(async () => {
    ({ fake, sessions, clientFactory } = await startAdapterFake());
  });
  beforeEach(() => {
    fake.addInstance({ instanceId: INSTANCE, name: "web-1", tags: SCOPE_TAG, volumes: 2 });
    fake.addInstance({ instanceId: OTHER_INSTANCE, name: "db-1", tags: SCOPE_TAG });
    fake.addInstance({ instanceId: "i-0000000000000beef", name: "web-untagged" });
  });
  afterEach(() => {
    fake.requests.length = 0;
  });
  afterAll(async () => {
    await fake.close();
  });

  it("assumes the role with ExternalId, SourceIdentity, session tags and a policy naming the instance", async () => {
    const images = new Ec2Images({ sessions, clientFactory });
    const imageId = await images.createImage(place, requester, params({ imageName: "wire-1" }));

    const [assume] = fake.calls("AssumeRole");
    expect(assume?.params).toMatchObject({
      RoleArn: ROLE_ARN,
      ExternalId: EXTERNAL_ID,
      SourceIdentity: "U0REQUEST1",
      RoleSessionName: "ami-bot-U0REQUEST1",
      DurationSeconds: "900",
      "Tags.member.1.Key": "slack-user",
      "Tags.member.1.Value": "U0REQUEST1",
      "Tags.member.2.Key": "slack-channel",
      "Tags.member.2.Value": "C0CHANNEL1",
    });
    const createStatement = assume?.policy?.Statement.find((s) => s.Action.includes("ec2:CreateImage"));
    expect(createStatement?.Resource).toContain(`arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${INSTANCE}`);

    // CreateImage went out under that session's key, not the bot's own.
    const [create] = fake.calls("CreateImage");
    expect(create?.accessKeyId).toMatch(/^ASIA/);
    expect(fake.sessions.get(create?.accessKeyId ?? "")?.roleArn).toBe(ROLE_ARN);
    expect(create?.params).toMatchObject({
      InstanceId: INSTANCE,
      Name: "wire-1",
      NoReboot: "true",
      "TagSpecification.1.ResourceType": "image",
      "TagSpecification.2.ResourceType": "snapshot",
    });

    const image = fake.images.get(imageId);
    expect(image).toMatchObject({
      name: "wire-1",
      noReboot: true,
      description: "snapshot before the kernel upgrade",
    });
    expect(image?.tags).toEqual({
      Name: "wire-1",
      "ami-bot:job-id": "job-1",
      "ami-bot:requested-by": "U0REQUEST1",
      "ami-bot:channel": "C0CHANNEL1",
      team: "platform",
      ticket: "OPS-42",
    });
    expect(image?.snapshots.map((s) => s.tags)).toEqual([image?.tags, image?.tags]);
  });

  it("a session scoped to one instance cannot image another", async () => {
    // Pin every session to the policy for INSTANCE, as if the bot had asked for the wrong one.
    const pinned: SessionFactory = (request) => sessions({ ...request, policy: createPolicy() });
    const images = new Ec2Images({ sessions: pinned, clientFactory });

    const error = await refusal(
      images.createImage(place, requester, params({ instanceId: OTHER_INSTANCE, imageName: "wire-other" })),
    );
    expect(error.code).toBe("access_denied");
    expect((error.cause as { name?: string }).name).toBe("UnauthorizedOperation");
    expect([...fake.images.values()].some((i) => i.name === "wire-other")).toBe(false);

    // And the same kind of session does image the instance it names.
    await expect(images.createImage(place, requester, params({ imageName: "wire-same" }))).resolves.toMatch(
      /^ami-/,
    );
  });

  it("the very same credentials are confined to the named instance", async () => {
    const credentials = sessions({
      target,
      region: REGION,
      policy: createPolicy(),
      ...requester,
    });
    const client = clientFactory(REGION, credentials, { ...DEFAULT_AWS_TIMEOUTS, maxAttempts: 1 });
    const command = (instanceId: string, name: string) =>
      new CreateImageCommand({
        InstanceId: instanceId,
        Name: name,
        TagSpecifications: [{ ResourceType: "image", Tags: [{ Key: "team", Value: "b" }] }],
      });

    await expect(client.send(command(INSTANCE, "same-session-1"))).resolves.toMatchObject({
      ImageId: expect.stringMatching(/^ami-/),
    });
    const denied = await client.send(command(OTHER_INSTANCE, "same-session-2")).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(translateEc2Error(denied).code).toBe("access_denied");
    const keys = new Set(fake.calls("CreateImage").map((c) => c.accessKeyId));
    expect(keys.size).toBe(1);
    expect(fake.calls("AssumeRole")).toHaveLength(1);
  });

  it("a wrong ExternalId is assume_role_failed, and EC2 is never called", async () => {
    const images = new Ec2Images({ sessions, clientFactory });
    const wrong: Place = { target: { ...target, externalId: "not-the-external-id" }, region: REGION };
    const error = await refusal(images.createImage(wrong, requester, params({ imageName: "wire-wrong" })));
    expect(error.code).toBe("assume_role_failed");
    expect(error.retryable).toBe(false);
    expect(fake.calls("AssumeRole")).toHaveLength(1);
    expect(fake.calls("CreateImage")).toHaveLength(0);
  });

  it("reads through read-only sessions: the picker, the scope check, a dry run and the watcher", async () => {
    const images = new Ec2Images({ sessions, clientFactory });
    const found = await images.findInstances(place, requester, "web");
    expect(found).toEqual([
      { instanceId: INSTANCE, name: "web-1", state: "running", instanceType: "t3.micro" },
    ]);
    expect((await refusal(images.describeInstance(place, requester, "i-0000000000000beef"))).code).toBe(
      "instance_out_of_scope",
    );
    await expect(images.describeInstance(place, requester, "i-0000000000000dead")).resolves.toBeUndefined();

    await expect(
      images.checkCreateImage(place, requester, params({ imageName: "wire-dry" })),
    ).resolves.toBeUndefined();
    expect([...fake.images.values()].some((i) => i.name === "wire-dry")).toBe(false);

    const imageId = await images.createImage(place, requester, params({ imageName: "wire-watch" }));
    await expect(images.findImageByJob(place, requester, "job-1")).resolves.toMatch(/^ami-/);
    fake.setSnapshotProgress(imageId, 42);
    const status = (await images.describeImages(place, [imageId, "ami-00000000000000000"])).get(imageId);
    expect(status).toMatchObject({ imageId, state: "pending" });
    expect(status?.snapshotIds).toHaveLength(2);
    const progress = await images.snapshotProgress(place, status?.snapshotIds ?? []);
    expect([...progress.values()]).toEqual([42, 42]);

    fake.setImageState(imageId, "failed", "the instance vanished");
    expect((await images.describeImages(place, [imageId])).get(imageId)).toMatchObject({
      state: "failed",
      reason: "the instance vanished",
    });
  });
  it("assumes the role once per person for the picker, not once per keystroke", async () => {
    const images = new Ec2Images({ sessions, clientFactory });
    const other: Requester = { userId: "U0SOMEONE2", channelId: "C0CHANNEL1" };
    for (const q of ["w", "we", "web", "web-", "web-1", "web", "we", "w", "", "db"])
      await images.findInstances(place, requester, q);
    await Promise.all(["d", "db", "db-", "db-1"].map((q) => images.findInstances(place, other, q)));
    const assumed = fake.calls("AssumeRole").map((c) => c.params.SourceIdentity);
    expect(assumed).toEqual(["U0REQUEST1", "U0SOMEONE2"]);
    expect(fake.calls("DescribeInstances")).toHaveLength(14);
  });

  it("pages DescribeInstances only as EC2 allows (fake-aws refuses the rest, so the bot's calls are checked)", async () => {
    const client = new EC2Client({
      region: REGION,
      endpoint: fake.url,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      maxAttempts: 1,
    });
    const answer = (input: DescribeInstancesCommandInput) =>
      client.send(new DescribeInstancesCommand(input)).then(
        () => "ok",
        (e: unknown) => (e as Error).name,
      );
    expect(await answer({ MaxResults: 4 })).toBe("InvalidParameterValue");
    expect(await answer({ MaxResults: 1001 })).toBe("InvalidParameterValue");
    expect(await answer({ MaxResults: 5, InstanceIds: [INSTANCE] })).toBe("InvalidParameterCombination");
    expect(await answer({ MaxResults: 5, NextToken: "not-a-token-fake-aws-issued" })).toBe(
      "InvalidParameterValue",
    );
    expect(await answer({ MaxResults: 5 })).toBe("ok");
  });

  it("finds an instance that EC2 returns only on the third page", async () => {
    // EC2 pages before filtering: 110 instances that do not match come first.
    for (let i = 0; i < 110; i++)
      fake.addInstance({
        instanceId: `i-${String(i).padStart(17, "a")}`,
        name: `filler-${i}`,
        tags: SCOPE_TAG,
      });
    fake.addInstance({ instanceId: "i-0000000000000c0de", name: "needle-1", tags: SCOPE_TAG });
    const images = new Ec2Images({ sessions, clientFactory });
    await expect(images.findInstances(place, requester, "needle")).resolves.toEqual([
      { instanceId: "i-0000000000000c0de", name: "needle-1", state: "running", instanceType: "t3.micro" },
    ]);
    const calls = fake.calls("DescribeInstances");
    expect(calls).toHaveLength(3);
    expect(calls.map((c) => c.params.MaxResults)).toEqual(["50", "50", "50"]);
    expect(calls[2]?.params.NextToken).toBeDefined();
  });
});
