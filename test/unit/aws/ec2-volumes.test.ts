/**
 * The EC2 adapter's part in choosing the volumes: listing an instance's volumes (DescribeInstances, then
 * DescribeVolumes) and leaving devices out of CreateImage (NoDevice mappings). First the exact requests
 * against aws-sdk-client-mock, then over the SDK wire against fake-aws, which enforces session policies
 * and makes the image from the volumes that stay.
 */
import {
  CreateImageCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  EC2Client,
} from "@aws-sdk/client-ec2";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import "aws-sdk-client-mock-vitest/extend";
import { Ec2Images } from "../../../src/aws/ec2-images.js";
import type { SessionFactory } from "../../../src/aws/scoped-credentials.js";
import type { CreateImageParams, Place } from "../../../src/domain/ports.js";
import type { Target } from "../../../src/domain/target.js";
import type { FakeAws } from "../../fakes/fake-aws.js";
import {
  adapterTarget,
  awsError,
  INSTANCE,
  placeOf,
  refusal,
  requester,
  SCOPE_TAG,
  startAdapterFake,
} from "../../support/ec2-adapter.js";

const target: Target = adapterTarget();
const place: Place = placeOf(target);

function params(overrides: Partial<CreateImageParams> = {}): CreateImageParams {
  return {
    jobId: "job-1",
    instanceId: INSTANCE,
    imageName: "web-1 without scratch",
    description: undefined,
    noReboot: true,
    tags: [],
    excludedDevices: [],
    ...overrides,
  };
}

describe("Ec2Images volumes with a mocked EC2 client", () => {
  const ec2 = mockClient(EC2Client);
  let images: Ec2Images;

  beforeEach(() => {
    ec2.reset();
    const sessions: SessionFactory = () => async () => ({ accessKeyId: "x", secretAccessKey: "y" });
    images = new Ec2Images({ sessions });
  });
  afterAll(() => ec2.restore());

  const instance = {
    InstanceId: INSTANCE,
    State: { Name: "running" as const },
    Tags: [{ Key: "ami-bot", Value: "allowed" }],
    RootDeviceName: "/dev/xvda",
    BlockDeviceMappings: [
      { DeviceName: "/dev/sdg", Ebs: { VolumeId: "vol-0ccc" } },
      { DeviceName: "/dev/xvda", Ebs: { VolumeId: "vol-0aaa" } },
      { DeviceName: "/dev/sdf", Ebs: { VolumeId: "vol-0bbb" } },
    ],
  };

  it("sends each device to leave out as a NoDevice mapping when CreateImage leaves volumes out", async () => {
    ec2.on(CreateImageCommand).resolves({ ImageId: "ami-0123456789abcdef0" });
    await images.createImage(place, requester, params({ excludedDevices: ["/dev/sdf", "/dev/sdg"] }));
    expect(ec2).toHaveReceivedCommandExactlyOnceWith(CreateImageCommand, {
      InstanceId: INSTANCE,
      BlockDeviceMappings: [
        { DeviceName: "/dev/sdf", NoDevice: "" },
        { DeviceName: "/dev/sdg", NoDevice: "" },
      ],
    });
  });

  it("sends no block device mappings when the whole instance is imaged", async () => {
    ec2.on(CreateImageCommand).resolves({ ImageId: "ami-0123456789abcdef0" });
    await images.createImage(place, requester, params());
    expect(ec2.commandCalls(CreateImageCommand)[0]?.args[0].input.BlockDeviceMappings).toBeUndefined();
  });

  it("leaves the same devices out of a dry run as of the real call", async () => {
    ec2.on(CreateImageCommand).rejects(awsError("DryRunOperation", 412));
    await images.checkCreateImage(place, requester, params({ excludedDevices: ["/dev/sdf"] }));
    expect(ec2).toHaveReceivedCommandWith(CreateImageCommand, {
      DryRun: true,
      BlockDeviceMappings: [{ DeviceName: "/dev/sdf", NoDevice: "" }],
    });
  });

  it("lists the volumes root first with their size and type when DescribeVolumes answers", async () => {
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [instance] }] });
    ec2.on(DescribeVolumesCommand).resolves({
      Volumes: [
        { VolumeId: "vol-0aaa", Size: 8, VolumeType: "gp3" },
        { VolumeId: "vol-0bbb", Size: 100, VolumeType: "io2" },
      ],
    });
    await expect(images.describeVolumes(place, requester, INSTANCE)).resolves.toEqual([
      { deviceName: "/dev/xvda", volumeId: "vol-0aaa", sizeGiB: 8, volumeType: "gp3", root: true },
      { deviceName: "/dev/sdf", volumeId: "vol-0bbb", sizeGiB: 100, volumeType: "io2", root: false },
      // Not returned by DescribeVolumes (detached meanwhile): still listed, its size unknown.
      {
        deviceName: "/dev/sdg",
        volumeId: "vol-0ccc",
        sizeGiB: undefined,
        volumeType: undefined,
        root: false,
      },
    ]);
    expect(ec2).toHaveReceivedCommandExactlyOnceWith(DescribeInstancesCommand, { InstanceIds: [INSTANCE] });
    expect(ec2).toHaveReceivedCommandExactlyOnceWith(DescribeVolumesCommand, {
      Filters: [{ Name: "volume-id", Values: ["vol-0ccc", "vol-0aaa", "vol-0bbb"] }],
    });
  });

  it("answers undefined and asks nothing more when the instance does not exist", async () => {
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    await expect(images.describeVolumes(place, requester, INSTANCE)).resolves.toBeUndefined();
    expect(ec2.commandCalls(DescribeVolumesCommand)).toHaveLength(0);
  });

  it("refuses an instance outside the target's scope before listing its volumes", async () => {
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [{ ...instance, Tags: [] }] }],
    });
    expect((await refusal(images.describeVolumes(place, requester, INSTANCE))).code).toBe(
      "instance_out_of_scope",
    );
    expect(ec2.commandCalls(DescribeVolumesCommand)).toHaveLength(0);
  });

  it("translates InvalidBlockDeviceMapping into a refusal that names the instance", async () => {
    ec2.on(CreateImageCommand).rejects(awsError("InvalidBlockDeviceMapping", 400));
    const error = await refusal(
      images.createImage(place, requester, params({ excludedDevices: ["/dev/sdz"] })),
    );
    expect(error).toMatchObject({ code: "volumes_invalid", retryable: false });
    expect(error.userMessage).toContain(INSTANCE);
  });
});

describe("Ec2Images volumes over the SDK wire against fake-aws", () => {
  let fake: FakeAws;
  let images: Ec2Images;

  beforeAll(async () => {
    const { fake: started, sessions, clientFactory } = await startAdapterFake();
    fake = started;
    images = new Ec2Images({ sessions, clientFactory });
  });
  beforeEach(() => {
    fake.addInstance({
      instanceId: INSTANCE,
      name: "web-1",
      tags: SCOPE_TAG,
      volumes: [
        { deviceName: "/dev/xvda", sizeGiB: 8, volumeType: "gp3", volumeId: "vol-00000000000000001" },
        { deviceName: "/dev/sdf", sizeGiB: 100, volumeType: "io2", volumeId: "vol-00000000000000002" },
        { deviceName: "/dev/sdg", sizeGiB: 500, volumeType: "st1", volumeId: "vol-00000000000000003" },
      ],
    });
  });
  afterEach(() => {
    fake.requests.length = 0;
  });
  afterAll(async () => {
    images.close();
    await fake.close();
  });

  it("lists the volumes under the picker's read-only session", async () => {
    await expect(images.describeVolumes(place, requester, INSTANCE)).resolves.toEqual([
      {
        deviceName: "/dev/xvda",
        volumeId: "vol-00000000000000001",
        sizeGiB: 8,
        volumeType: "gp3",
        root: true,
      },
      {
        deviceName: "/dev/sdf",
        volumeId: "vol-00000000000000002",
        sizeGiB: 100,
        volumeType: "io2",
        root: false,
      },
      {
        deviceName: "/dev/sdg",
        volumeId: "vol-00000000000000003",
        sizeGiB: 500,
        volumeType: "st1",
        root: false,
      },
    ]);
    // Signed with a session whose policy fake-aws enforced: the picker's, not the bot's own key.
    const describe = fake.calls("DescribeVolumes")[0];
    expect(describe?.accessKeyId).toMatch(/^ASIA/);
    const policy = fake.sessions.get(describe?.accessKeyId ?? "")?.policy;
    expect(policy?.Statement.flatMap((s) => s.Action).sort()).toEqual([
      "ec2:DescribeInstances",
      "ec2:DescribeVolumes",
    ]);
  });

  it("makes an image without the devices left out", async () => {
    const imageId = await images.createImage(
      place,
      requester,
      params({ imageName: "wire-volumes", excludedDevices: ["/dev/sdg"] }),
    );
    const image = fake.images.get(imageId);
    expect(image?.snapshots.map((s) => [s.deviceName, s.sizeGiB])).toEqual([
      ["/dev/xvda", 8],
      ["/dev/sdf", 100],
    ]);
    const status = (await images.describeImages(place, [imageId])).get(imageId);
    expect(status?.snapshotIds).toEqual(image?.snapshots.map((s) => s.snapshotId));
  });

  it("is refused, with nothing made, when a device to leave out is not the instance's", async () => {
    const error = await refusal(
      images.createImage(
        place,
        requester,
        params({ imageName: "wire-foreign", excludedDevices: ["/dev/sdz"] }),
      ),
    );
    expect(error.code).toBe("volumes_invalid");
    expect([...fake.images.values()].some((i) => i.name === "wire-foreign")).toBe(false);
  });
});
