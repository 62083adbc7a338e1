/**
 * What one watcher check costs in EC2 calls, over the SDK wire against fake-aws: the watcher asks
 * describeImages for every pending image of a place, then snapshotProgress for the snapshots of those still
 * pending. Pending ones are listed by the job-id tag (ours only, 1,000 a page); what left pending is looked up
 * by id. fake-aws counts the requests and answers Owner.N, tag-key, state/status and paging as EC2 does.
 */
import {
  CreateImageCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
} from "@aws-sdk/client-ec2";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Ec2Images } from "../../../src/aws/ec2-images.js";
import { createSessionFactory } from "../../../src/aws/scoped-credentials.js";
import type { Place } from "../../../src/domain/ports.js";
import { type FakeAws, type FakeRequest, startFakeAws } from "../../fakes/fake-aws.js";
import { testTarget } from "../../fakes/job-fixtures.js";

const ACCOUNT = "123456789012";
const OTHER_ACCOUNT = "210987654321";
const REGION = "eu-west-1";
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/ami-bot-target`;
const INSTANCE = "i-0123456789abcdef0";
const place: Place = {
  target: testTarget({ name: "prod", roleArn: ROLE_ARN, accountId: ACCOUNT, regions: [REGION] }),
  region: REGION,
};

let fake: FakeAws;
let images: Ec2Images;
/** The bot's own identity, straight to the fake (not through the watcher's session). */
let setup: EC2Client;

beforeEach(async () => {
  fake = await startFakeAws({ accountId: ACCOUNT, roles: { [ROLE_ARN]: {} } });
  fake.addInstance({ instanceId: INSTANCE, name: "web-1" });
  const credentials = { accessKeyId: "test", secretAccessKey: "test" };
  setup = new EC2Client({ region: REGION, endpoint: fake.url, credentials });
  images = new Ec2Images({
    sessions: createSessionFactory({ endpoint: fake.url, credentials }),
    clientFactory: (region, sessionCredentials) =>
      new EC2Client({ region, credentials: sessionCredentials, endpoint: fake.url, maxAttempts: 1 }),
  });
});
afterEach(async () => {
  images.close();
  setup.destroy();
  await fake.close();
});

let made = 0;
/** Pending images made through CreateImage, tagged as the bot tags them (image and snapshots) unless not. */
async function makeImages(count: number, { tagged = true } = {}): Promise<string[]> {
  const ids: string[] = [];
  // A few at a time: the fake answers in order anyway, and the SDK's sockets stay few.
  for (let from = 0; from < count; from += 50) {
    const batch = Array.from({ length: Math.min(50, count - from) }, () => {
      const jobId = `job-${made++}`;
      const tags = [{ Key: "ami-bot:job-id", Value: jobId }];
      return setup.send(
        new CreateImageCommand({
          InstanceId: INSTANCE,
          Name: `image ${jobId}`,
          ...(tagged && {
            TagSpecifications: [
              { ResourceType: "image", Tags: tags },
              { ResourceType: "snapshot", Tags: tags },
            ],
          }),
        }),
      );
    });
    for (const out of await Promise.all(batch)) ids.push(out.ImageId as string);
  }
  return ids;
}

/** One watcher check of these images: their states, then the progress of those still pending. */
async function check(imageIds: readonly string[]) {
  const statuses = await images.describeImages(place, imageIds);
  const snapshotIds = [...statuses.values()]
    .filter((s) => s.state === "pending")
    .flatMap((s) => s.snapshotIds);
  const progress = await images.snapshotProgress(place, snapshotIds);
  return { statuses, progress };
}

/** The EC2 calls of one check, made after the watcher's session exists (so AssumeRole is not counted). */
async function countedCheck(imageIds: readonly string[]) {
  await images.describeImages(place, imageIds.slice(0, 1));
  fake.requests.length = 0;
  const result = await check(imageIds);
  const calls = (action: string) => fake.calls(action);
  return {
    ...result,
    describeImages: calls("DescribeImages"),
    describeSnapshots: calls("DescribeSnapshots"),
  };
}

const filterNames = (r: FakeRequest) =>
  Object.entries(r.params)
    .filter(([k]) => /^Filter\.\d+\.Name$/.test(k))
    .map(([, v]) => v);

describe("the watcher's check of one place", () => {
  it("costs one DescribeImages and one DescribeSnapshots for 1,000 pending images that did not change", async () => {
    const ids = await makeImages(1000);
    fake.setSnapshotProgress(ids[7] as string, 42);
    const { statuses, progress, describeImages, describeSnapshots } = await countedCheck(ids);

    expect(describeImages).toHaveLength(1);
    expect(describeSnapshots).toHaveLength(1);
    expect(describeImages[0]?.params).toMatchObject({
      "Owner.1": "self",
      "Filter.1.Name": "tag-key",
      "Filter.1.Value.1": "ami-bot:job-id",
      "Filter.2.Name": "state",
      "Filter.2.Value.1": "pending",
      MaxResults: "1000",
    });
    expect(describeSnapshots[0]?.params).toMatchObject({
      "Owner.1": "self",
      "Filter.1.Name": "tag-key",
      "Filter.1.Value.1": "ami-bot:job-id",
      "Filter.2.Name": "status",
      "Filter.2.Value.1": "pending",
      MaxResults: "1000",
    });
    expect(statuses.size).toBe(1000);
    expect([...statuses.values()].every((s) => s.state === "pending" && s.snapshotIds.length === 1)).toBe(
      true,
    );
    expect(progress.size).toBe(1000);
    const snapshotOf7 = statuses.get(ids[7] as string)?.snapshotIds[0] as string;
    expect(progress.get(snapshotOf7)).toBe(42);
  });

  it("reports images that turned available or failed with one more DescribeImages, by image-id", async () => {
    const ids = await makeImages(1000);
    const available = ids.slice(0, 10);
    const failed = ids.slice(500, 505);
    for (const id of available) fake.setImageState(id, "available");
    for (const id of failed) fake.setImageState(id, "failed", "the instance vanished");
    const { statuses, progress, describeImages, describeSnapshots } = await countedCheck(ids);

    expect(describeImages).toHaveLength(2);
    expect(filterNames(describeImages[1] as FakeRequest)).toEqual(["image-id"]);
    const asked = Object.entries(describeImages[1]?.params ?? {})
      .filter(([k]) => k.startsWith("Filter.1.Value."))
      .map(([, v]) => v);
    expect(asked.sort()).toEqual([...available, ...failed].sort());
    expect(describeImages[1]?.params["Owner.1"]).toBe("self");
    for (const id of available) expect(statuses.get(id)?.state).toBe("available");
    for (const id of failed)
      expect(statuses.get(id)).toMatchObject({ state: "failed", reason: "the instance vanished" });
    expect(statuses.size).toBe(1000);
    expect([...statuses.values()].filter((s) => s.state === "pending")).toHaveLength(985);
    // Only the still-pending images' snapshots are asked about, and all of them are still pending.
    expect(describeSnapshots).toHaveLength(1);
    expect(progress.size).toBe(985);
  });

  it("leaves out an image that AWS no longer has, or never had", async () => {
    const ids = await makeImages(1000);
    const gone = ids[3] as string;
    await setup.send(new DeregisterImageCommand({ ImageId: gone }));
    const never = "ami-00000000000000000";
    const { statuses, describeImages } = await countedCheck([...ids, never]);

    expect(statuses.has(gone)).toBe(false);
    expect(statuses.has(never)).toBe(false);
    expect(statuses.size).toBe(999);
    expect(describeImages).toHaveLength(2);
  });

  it("follows NextToken: 2,500 pending images take three pages of each", async () => {
    const ids = await makeImages(2500);
    const { statuses, progress, describeImages, describeSnapshots } = await countedCheck(ids);

    expect(describeImages).toHaveLength(3);
    expect(describeSnapshots).toHaveLength(3);
    expect(describeImages.map((r) => r.params.NextToken === undefined)).toEqual([true, false, false]);
    expect(describeImages.every((r) => filterNames(r).join() === "tag-key,state")).toBe(true);
    expect(describeSnapshots.every((r) => filterNames(r).join() === "tag-key,status")).toBe(true);
    expect(statuses.size).toBe(2500);
    expect(progress.size).toBe(2500);
  });

  it("does not report, or page through, images without the job-id tag or owned by another account", async () => {
    // Made first, so a listing that did not filter them out would fill its first page with them.
    const untagged = await makeImages(1000, { tagged: false });
    const foreign = Array.from(
      { length: 1000 },
      (_, i) =>
        fake.addImage({
          name: `shared ${i}`,
          region: REGION,
          ownerId: OTHER_ACCOUNT,
          state: "pending",
          tags: { "ami-bot:job-id": `theirs-${i}` },
        }).imageId,
    );
    const ours = await makeImages(1000);
    const { statuses, describeImages } = await countedCheck(ours);

    expect(describeImages).toHaveLength(1);
    expect([...statuses.keys()].sort()).toEqual([...ours].sort());
    expect(untagged.some((id) => statuses.has(id))).toBe(false);
    expect(foreign.some((id) => statuses.has(id))).toBe(false);

    // Asked by id, another account's image is still not ours to report.
    const byId = await images.describeImages(place, [foreign[0] as string, ours[0] as string]);
    expect([...byId.keys()]).toEqual([ours[0]]);
  });

  it("asks up to 200 images by id in one call, without listing", async () => {
    const ids = await makeImages(200);
    const { statuses, describeImages, describeSnapshots } = await countedCheck(ids);
    expect(describeImages).toHaveLength(1);
    expect(filterNames(describeImages[0] as FakeRequest)).toEqual(["image-id"]);
    expect(describeImages[0]?.params.MaxResults).toBeUndefined();
    expect(filterNames(describeSnapshots[0] as FakeRequest)).toEqual(["snapshot-id"]);
    expect(statuses.size).toBe(200);
  });
});

describe("fake-aws pages DescribeImages and DescribeSnapshots only as EC2 allows", () => {
  const code = (promise: Promise<unknown>) =>
    promise.then(
      () => "ok",
      (e: { name?: string }) => e.name,
    );

  it("refuses MaxResults outside 5–1000, beside ids, and tokens it did not issue", async () => {
    const [id] = await makeImages(1);
    await expect(code(setup.send(new DescribeImagesCommand({ MaxResults: 4 })))).resolves.toBe(
      "InvalidParameterValue",
    );
    await expect(code(setup.send(new DescribeSnapshotsCommand({ MaxResults: 1001 })))).resolves.toBe(
      "InvalidParameterValue",
    );
    await expect(
      code(setup.send(new DescribeImagesCommand({ ImageIds: [id as string], MaxResults: 5 }))),
    ).resolves.toBe("InvalidParameterCombination");
    await expect(code(setup.send(new DescribeSnapshotsCommand({ NextToken: "made-up" })))).resolves.toBe(
      "InvalidParameterValue",
    );
  });

  it("cuts filtered results into full pages, with a NextToken while some remain", async () => {
    await makeImages(12);
    const first = await setup.send(new DescribeImagesCommand({ Owners: ["self"], MaxResults: 5 }));
    const second = await setup.send(
      new DescribeImagesCommand({ Owners: ["self"], MaxResults: 5, NextToken: first.NextToken }),
    );
    const third = await setup.send(
      new DescribeImagesCommand({ Owners: ["self"], MaxResults: 5, NextToken: second.NextToken }),
    );
    expect([first, second, third].map((p) => p.Images?.length)).toEqual([5, 5, 2]);
    expect(third.NextToken).toBeUndefined();
    const all = [first, second, third].flatMap((p) => p.Images ?? []).map((i) => i.ImageId);
    expect(new Set(all).size).toBe(12);
  });
});
