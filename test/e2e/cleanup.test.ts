/**
 * The keep rule through the bot's real HTTP endpoint against the fakes: `/ami cleanup preview` lists what
 * would go and touches nothing; `/ami cleanup run` deregisters exactly that (one DeregisterImage each, with
 * its snapshots, under a session naming only that image and its snapshots), keeps protected images, those in a launch
 * template, anything ami-bot did not make and anything not a finished job of this target in the bot's
 * database (saying how many), and posts the summary to the rule's channel; anyone not listed as an admin is
 * refused.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { FakeImage } from "../fakes/fake-aws.js";
import { newJob } from "../fakes/job-fixtures.js";
import { ALLOWED_USER, CHANNEL, type Harness, ROLE_ARN, startHarness } from "../support/bot-harness.js";

const DAY = 86_400_000;
const INSTANCE = "i-0123456789abcdef0";
const CLEANUP_CHANNEL = "C0CLEANUP1";
const STRANGER = "U0STRANGER";

describe("/ami cleanup", () => {
  let h: Harness;
  let images: {
    newest: FakeImage;
    second: FakeImage;
    guarded: FakeImage;
    old: FakeImage;
    inTemplate: FakeImage;
    oldest: FakeImage;
    foreign: FakeImage;
    otherBot: FakeImage;
    copyNewest: FakeImage;
    copySecond: FakeImage;
    copyOld: FakeImage;
  };

  beforeEach(async () => {
    h = await startHarness({
      env: {
        AMI_TARGET_ALLOW_USERS: `${ALLOWED_USER},${STRANGER}`,
        AMI_TARGET_ADMINS: ALLOWED_USER,
        AMI_TARGET_KEEP_LAST: "2",
        AMI_TARGET_KEEP_CHANNEL: CLEANUP_CHANNEL,
        AMI_TARGET_COPY_TO: "us-east-1",
      },
    });
    const now = Date.now();
    const jobs = new Set<string>();
    /** An image of job `job-<day>`; a copy carries its source's job id, as ami-bot tags it. */
    const ours = (
      name: string,
      ageDays: number,
      extra: { region?: string; protect?: boolean; day?: number } = {},
    ) => {
      const jobId = `job-day-${extra.day ?? ageDays}`;
      jobs.add(jobId);
      return h.aws.addImage({
        name,
        region: extra.region ?? "eu-west-1",
        creationDate: now - ageDays * DAY,
        sourceInstanceId: INSTANCE,
        tags: { "ami-bot:job-id": jobId, "ami-bot:instance-id": INSTANCE },
        snapshots: 2,
        ...(extra.protect && { deregistrationProtection: true }),
      });
    };
    images = {
      newest: ours("web-1 day 1", 1),
      second: ours("web-1 day 2", 2),
      guarded: ours("web-1 day 3", 3, { protect: true }),
      old: ours("web-1 day 4", 4),
      inTemplate: ours("web-1 day 5", 5),
      oldest: ours("web-1 day 6", 6),
      // Made by hand from the same instance, long ago: not ami-bot's, so never touched.
      foreign: h.aws.addImage({
        name: "hand-made",
        region: "eu-west-1",
        creationDate: now - 100 * DAY,
        sourceInstanceId: INSTANCE,
        snapshots: 1,
      }),
      // Tagged as ami-bot tags, by a job this bot's database does not know (another ami-bot on the account,
      // say): beyond the rule, yet never touched.
      otherBot: h.aws.addImage({
        name: "web-1 other bot",
        region: "eu-west-1",
        creationDate: now - 50 * DAY,
        sourceInstanceId: INSTANCE,
        tags: { "ami-bot:job-id": "job-of-another-bot", "ami-bot:instance-id": INSTANCE },
        snapshots: 1,
      }),
      copyNewest: ours("web-1 copy 1", 1, { region: "us-east-1" }),
      copySecond: ours("web-1 copy 2", 2, { region: "us-east-1" }),
      copyOld: ours("web-1 copy 3", 3, { region: "us-east-1" }),
    };
    // The rule weighs only the images of this target's finished jobs: each is stored, as the bot would
    // have stored it, and ended (available). In the same tick as the insert, so the watcher never checks it.
    for (const id of jobs) {
      h.store.insert(newJob({ id, targetName: "prod", roleArn: ROLE_ARN, instanceId: INSTANCE }), now);
      h.store.apply(id, { type: "image_created", imageId: `ami-of-${id}` }, now);
      h.store.apply(id, { type: "image_state", state: "available" }, now);
      expect(h.store.get(id)?.state).toBe("available");
    }
    h.aws.addLaunchTemplate({ region: "eu-west-1", name: "web", imageId: images.inTemplate.imageId });
  });

  afterEach(async () => {
    await h?.close();
  });

  const responses = () => h.slack.callsTo("response_url").map((c) => JSON.stringify(c.args));
  const summariesPosted = () =>
    h.slack.callsTo("chat.postMessage").filter((c) => c.args.channel === CLEANUP_CHANNEL);
  const removable = () => [images.old, images.oldest, images.copyOld];
  const kept = () => [
    images.newest,
    images.second,
    images.guarded,
    images.inTemplate,
    images.foreign,
    images.otherBot,
    images.copyNewest,
    images.copySecond,
  ];

  it("previews what would go, in every region, deregistering and posting nothing", async () => {
    const res = await h.command({ text: "cleanup preview" });
    expect(res.json()).toMatchObject({
      response_type: "ephemeral",
      text: expect.stringContaining("nothing will be removed"),
    });
    await h.slack.waitFor("response_url");
    const [answer] = responses();
    expect(answer).toContain("Cleanup preview for prod (nothing was removed)");
    expect(answer).toContain("*Would remove 3 images*");
    for (const image of removable()) expect(answer).toContain(image.imageId);
    expect(answer).toContain(`beyond the newest 2 of ${INSTANCE} in us-east-1`);
    expect(answer).toContain("*Kept 1 image with deregistration protection*");
    expect(answer).toContain(images.guarded.imageId);
    expect(answer).toContain("*Kept 1 image a launch template uses*");
    expect(answer).toContain(images.inTemplate.imageId);
    expect(answer).not.toContain(images.foreign.imageId);
    expect(answer).not.toContain(images.otherBot.imageId);
    expect(answer).toContain(
      "1 image tagged by ami-bot was left alone: not finished jobs of this target (another target, another ami-bot, or still running).",
    );
    expect(h.aws.calls("DeregisterImage")).toEqual([]);
    expect(h.aws.images.size).toBe(11);
    expect(summariesPosted()).toEqual([]);
  });

  it("removes exactly what is beyond the rule, with its snapshots, and posts the summary", async () => {
    const snapshotsOf = (images: FakeImage[]) => images.flatMap((i) => i.snapshots.map((s) => s.snapshotId));
    const goneSnapshots = snapshotsOf(removable());
    expect(goneSnapshots).toHaveLength(6);

    await h.command({ text: "cleanup run" });
    await h.slack.waitFor("response_url");

    const calls = h.aws.calls("DeregisterImage");
    expect(calls.map((c) => c.params.ImageId).sort()).toEqual(
      removable()
        .map((i) => i.imageId)
        .sort(),
    );
    for (const call of calls) expect(call.params.DeleteAssociatedSnapshots).toBe("true");
    for (const image of removable()) expect(h.aws.images.has(image.imageId)).toBe(false);
    for (const id of goneSnapshots) expect(h.aws.snapshots.has(id)).toBe(false);
    for (const image of kept()) expect(h.aws.images.has(image.imageId)).toBe(true);
    for (const id of snapshotsOf(kept())) expect(h.aws.snapshots.has(id)).toBe(true);

    // Each DeregisterImage ran, as the admin who asked, under a session of its own whose policy names only
    // that image and its snapshots.
    const keys = new Set(calls.map((c) => c.accessKeyId));
    expect(keys.size).toBe(3);
    for (const call of calls) {
      const session = h.aws.sessions.get(call.accessKeyId ?? "");
      expect(session?.sourceIdentity).toBe(ALLOWED_USER);
      const region = call.region;
      const image = removable().find((i) => i.imageId === call.params.ImageId);
      const snapshots = image?.snapshots.map((s) => `arn:aws:ec2:${region}::snapshot/${s.snapshotId}`);
      expect(snapshots).toHaveLength(2);
      expect(session?.policy?.Statement).toEqual([
        expect.objectContaining({
          Action: ["ec2:DeregisterImage"],
          Resource: [`arn:aws:ec2:${region}::image/${call.params.ImageId}`],
        }),
        expect.objectContaining({
          Action: ["ec2:DeleteSnapshot"],
          Resource: snapshots,
        }),
      ]);
      expect(JSON.stringify(session?.policy)).toContain("ami-bot:job-id");
    }

    const [answer] = responses();
    expect(answer).toContain("*Removed 3 images*");
    const posted = summariesPosted();
    expect(posted).toHaveLength(1);
    const summary = JSON.stringify(posted[0]?.args);
    expect(summary).toContain("Cleanup of prod");
    for (const image of removable()) expect(summary).toContain(image.imageId);
    expect(summary).toContain("web-1 day 4");
    expect(summary).toContain(`beyond the newest 2 of ${INSTANCE} in eu-west-1`);
    expect(summary).toContain("*Kept 1 image with deregistration protection*");
    expect(summary).toContain("*Kept 1 image a launch template uses*");
    expect(summary).toContain("1 image tagged by ami-bot was left alone");
    expect(summary).not.toContain(images.otherBot.imageId);
  });

  it("refuses someone not listed as the target's admin, naming who may, and touches nothing", async () => {
    const res = await h.command({ user_id: STRANGER, channel_id: CHANNEL, text: "cleanup run" });
    expect(res.json()).toEqual({
      response_type: "ephemeral",
      text: `Only the admins of target \`prod\` may run \`/ami cleanup\` for it: <@${ALLOWED_USER}>.`,
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(h.aws.calls("DescribeImages")).toEqual([]);
    expect(h.aws.calls("DeregisterImage")).toEqual([]);
    expect(summariesPosted()).toEqual([]);
  });

  it("answers an unknown target plainly", async () => {
    const res = await h.command({ text: "cleanup preview staging" });
    expect(res.json()).toEqual({
      response_type: "ephemeral",
      text: "There is no target named “staging”. Targets with a keep rule: `prod`.",
    });
  });
});
