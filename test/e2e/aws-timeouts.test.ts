/**
 * AWS that accepts calls and never answers. The bot runs as a real child process (SIGTERM and all) against
 * a fake AWS endpoint told to hang: one place hanging must cost only its own jobs, shutdown must end within
 * 15 s whatever AWS does, and a CreateImage whose answer is lost must end with exactly one image.
 */
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import type { StoredMessage } from "../fakes/fake-slack.js";
import { eventually } from "../support/bot-harness.js";
import { type ChildBot, type ChildFakes, startChildFakes, viewSubmission } from "../support/child-bot.js";

const INSTANCE = "i-0123456789abcdef0";
const keyOf = (m: StoredMessage) => String(m.metadata?.event_payload?.key ?? "");

let fakes: ChildFakes | undefined;
afterEach(async () => {
  await fakes?.close();
  fakes = undefined;
});

async function submit(f: ChildFakes, bot: ChildBot, name: string, where?: string): Promise<void> {
  const opened = f.slack.callsTo("views.open").length;
  expect((await bot.command()).status).toBe(200);
  await eventually(() => f.slack.callsTo("views.open").length > opened, 10_000, "views.open");
  const answers = { instanceId: INSTANCE, imageName: name, reboot: "no_reboot" as const };
  const res = await bot.interaction(
    viewSubmission(f.slack, where ? { ...answers, where } : answers, { viewId: `V0${name.length}${opened}` }),
  );
  expect(res.status).toBe(200);
}

const rootOf = (f: ChildFakes, name: string) =>
  f.slack.messages.find((m) => !m.threadTs && JSON.stringify(m).includes(name));

describe("AWS that never answers", () => {
  it("keeps other places' jobs moving and shuts down within 15 s while one region's EC2 hangs", async () => {
    fakes = await startChildFakes();
    const { aws, slack } = fakes;
    aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    // Every check of us-east-1's images is accepted and never answered (default limits: 3 s / 20 s).
    aws.hang("DescribeImages", { when: (r) => r.region === "us-east-1" });
    const bot = await fakes.start({ env: { AMI_TARGET_REGIONS: "eu-west-1,us-east-1" } });

    await submit(fakes, bot, "stuck-east", "prod|us-east-1");
    await eventually(
      () => aws.calls("DescribeImages").some((r) => r.region === "us-east-1"),
      15_000,
      "the hung check",
    );
    await submit(fakes, bot, "moving-west", "prod|eu-west-1");
    const west = await eventually(
      () => [...aws.images.values()].find((i) => i.region === "eu-west-1"),
      15_000,
      "the eu-west-1 image",
    );
    aws.setImageState(west.imageId, "available");
    const root = await eventually(
      () => {
        const r = rootOf(fakes as ChildFakes, "moving-west");
        return r && slack.repliesTo(r.ts).some((m) => keyOf(m) === "available") ? r : undefined;
      },
      15_000,
      "the eu-west-1 job to finish while us-east-1 hangs",
    );
    expect(root.text).toContain("is available");

    const started = Date.now();
    const exit = await bot.stop(20_000);
    const tookMs = Date.now() - started;
    expect(exit, bot.stderr()).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeLessThan(15_000);
    expect(bot.stdout()).toContain("ami-bot stopped");

    // The hung job is kept as it was, to be followed again on the next start.
    const db = new Database(fakes.dbPath, { readonly: true });
    try {
      const rows = db.prepare("SELECT image_name, state FROM jobs ORDER BY image_name").all();
      expect(rows).toEqual([
        { image_name: "moving-west", state: "available" },
        { image_name: "stuck-east", state: "pending" },
      ]);
    } finally {
      db.close();
    }
  });

  it("ends with one image and a thread as if nothing happened when CreateImage's answer is lost", async () => {
    fakes = await startChildFakes();
    const { aws, slack } = fakes;
    aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    // AWS makes the image, and the answer never comes back: the bot's 1 s request limit ends the wait.
    aws.hang("CreateImage", { afterEffect: true, count: 1 });
    const bot = await fakes.start({ env: { AMI_AWS_REQUEST_TIMEOUT: "1s" } });

    await submit(fakes, bot, "lost-answer");
    const image = await eventually(() => [...aws.images.values()][0], 15_000, "the image");
    // The job must find its image by tag before trying again, and follow it.
    await eventually(
      () => aws.calls("DescribeImages").some((r) => r.params["Filter.1.Name"] === "image-id"),
      15_000,
      "the image being followed",
    );
    aws.setImageState(image.imageId, "available");
    const root = await eventually(
      () => {
        const r = rootOf(fakes as ChildFakes, "lost-answer");
        return r?.text.includes("is available") && slack.repliesTo(r.ts).some((m) => keyOf(m) === "available")
          ? r
          : undefined;
      },
      20_000,
      "the job to finish",
    );

    expect(aws.calls("CreateImage")).toHaveLength(1);
    expect(aws.images.size).toBe(1);
    const replies = slack.repliesTo(root.ts);
    expect(replies.map(keyOf).filter((k) => !k.startsWith("progress:"))).toEqual([
      "creating",
      "pending",
      "available",
    ]);
    expect(slack.messages.filter((m) => !m.threadTs)).toHaveLength(1);
    expect(replies.filter((m) => keyOf(m) === "available")).toHaveLength(1);
    // The job looked for its tag before any second CreateImage could be sent.
    const lookups = aws
      .calls("DescribeImages")
      .filter((r) => r.params["Filter.1.Name"] === "tag:ami-bot:job-id");
    expect(lookups.length).toBeGreaterThan(0);
    const exit = await bot.stop();
    expect(exit.code, bot.stderr()).toBe(0);
  });
});
