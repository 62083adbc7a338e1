/**
 * Graceful shutdown of the real process: SIGTERM stops taking requests, lets the work in flight finish,
 * closes the database cleanly and exits 0; the next start picks the job up where it was left.
 */
import { existsSync, statSync } from "node:fs";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { StoredMessage } from "../fakes/fake-slack.js";
import { eventually } from "../support/bot-harness.js";
import {
  type ChildBot,
  type ChildFakes,
  eventuallyAsync,
  startChildFakes,
  viewSubmission,
} from "../support/child-bot.js";

const INSTANCE = "i-0123456789abcdef0";

const keyOf = (m: StoredMessage) => String(m.metadata?.event_payload?.key ?? "");

interface JobRow {
  state: string;
  image_id: string | null;
}

function jobsIn(path: string): JobRow[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare("SELECT state, image_id FROM jobs").all() as JobRow[];
  } finally {
    db.close();
  }
}

/** The WAL was checkpointed and removed (or left empty) by a clean close, and the file is sound. */
function expectClosedCleanly(path: string): void {
  const wal = `${path}-wal`;
  expect(existsSync(wal) ? statSync(wal).size : 0).toBe(0);
  const db = new Database(path, { fileMustExist: true });
  try {
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
  } finally {
    db.close();
  }
}

/** A request after SIGTERM must not be taken: the connection is refused, or the answer is not a 200. */
async function expectRefused(bot: ChildBot): Promise<void> {
  const health = await bot.health().then(
    (r) => r.status,
    () => "refused",
  );
  expect(health).not.toBe(200);
  const command = await bot.command().then(
    (r) => r.status,
    () => "refused",
  );
  expect(command).not.toBe(200);
}

async function submitJob(
  fakes: ChildFakes,
  bot: ChildBot,
  name: string,
  viewId: string,
  instanceId = INSTANCE,
): Promise<void> {
  const opened = fakes.slack.callsTo("views.open").length;
  expect((await bot.command()).status).toBe(200);
  await eventually(() => fakes.slack.callsTo("views.open").length > opened, 10_000, "views.open");
  const res = await bot.interaction(
    viewSubmission(fakes.slack, { instanceId, imageName: name, reboot: "reboot" }, { viewId }),
  );
  expect(res.status).toBe(200);
  // Accepted (an empty ack), not kept open with errors in the form.
  expect(res.body).toBe("");
}

/** Starts the bot again on the same database and follows the one job to available. */
async function resumeToAvailable(fakes: ChildFakes): Promise<void> {
  const again = await fakes.start();
  const image = await eventually(() => [...fakes.aws.images.values()][0], 30_000, "the image");
  fakes.aws.setImageState(image.imageId, "available");
  const root = await eventually(
    () => fakes.slack.messages.find((m) => !m.threadTs && m.text.includes("is available")),
    30_000,
    "the root updated to available",
  );
  await eventuallyAsync(async () => (await again.health()).json.unfinishedJobs === 0, 30_000, "no jobs left");
  expect((await again.stop()).code).toBe(0);
  const keys = fakes.slack.repliesTo(root.ts).map(keyOf);
  expect(keys.filter((k) => !k.startsWith("progress:"))).toEqual(["creating", "pending", "available"]);
  expect(fakes.slack.messages.filter((m) => !m.threadTs)).toHaveLength(1);
  expect(fakes.aws.calls("CreateImage")).toHaveLength(1);
  expect(jobsIn(fakes.dbPath)).toEqual([{ state: "available", image_id: image.imageId }]);
}

// Two bot processes in turn and a job followed to available: well over the default 30 s on a busy machine.
describe("graceful shutdown", { timeout: 90_000 }, () => {
  let fakes: ChildFakes;
  beforeEach(async () => {
    fakes = await startChildFakes();
    fakes.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
  });
  afterEach(async () => {
    await fakes.close();
  });

  it("refuses new requests, finishes the CreateImage in flight and closes the database on SIGTERM", async () => {
    const bot = await fakes.start();
    fakes.aws.delayNext("CreateImage", 2000);
    await submitJob(fakes, bot, "web-1 shutdown", "V0SHUT0001");
    await eventually(() => fakes.aws.calls("CreateImage")[0], 10_000, "CreateImage in flight");

    const t0 = Date.now();
    bot.kill("SIGTERM");
    await eventually(() => bot.stdout().includes("shutting down"), 15_000, "the shutdown to begin");
    await expectRefused(bot);
    const exit = await bot.exit;
    console.log(`[figure] SIGTERM → exit with a 2 s CreateImage in flight: ${Date.now() - t0} ms`);
    expect(exit, bot.stderr()).toEqual({ code: 0, signal: null });
    expect(bot.stdout()).toContain("ami-bot stopped");

    // The call in flight was answered and its image id stored before the database closed.
    expectClosedCleanly(fakes.dbPath);
    const imageId = [...fakes.aws.images.keys()][0];
    expect(jobsIn(fakes.dbPath)).toEqual([{ state: "pending", image_id: imageId }]);

    await resumeToAvailable(fakes);
  });

  it("exits 0 right after a submission is acked and the next start finishes the job", async () => {
    const bot = await fakes.start();
    await submitJob(fakes, bot, "web-1 quick stop", "V0SHUT0002");
    bot.kill("SIGTERM");
    const exit = await bot.exit;
    expect(exit, bot.stderr()).toEqual({ code: 0, signal: null });
    expectClosedCleanly(fakes.dbPath);
    expect(jobsIn(fakes.dbPath)).toHaveLength(1);

    await resumeToAvailable(fakes);
  });

  it("lets a /ami handler that is still opening its modal finish before it exits", async () => {
    const bot = await fakes.start();
    fakes.slack.delayNext("views.open", 1500);
    expect((await bot.command()).status).toBe(200);
    await fakes.slack.waitFor("views.open");
    const t0 = Date.now();
    bot.kill("SIGTERM");
    const exit = await bot.exit;
    const took = Date.now() - t0;
    console.log(`[figure] SIGTERM → exit with views.open answering 1.5 s late: ${took} ms`);
    expect(exit, bot.stderr()).toEqual({ code: 0, signal: null });
    // The modal's call was answered, not cut off by the exit.
    expect(took).toBeGreaterThanOrEqual(1400);
    expect(bot.stdout()).toContain("ami-bot stopped");
    expect(bot.stdout()).not.toContain("unhandled error");
  });

  it("completes its shutdown on SIGTERM with messages waiting on the channel pace", async () => {
    const bot = await fakes.start();
    // One unfinished job per instance: each of the 8 jobs images an instance of its own.
    const instances = Array.from({ length: 8 }, (_, i) => `i-${(0x2000 + i).toString(16).padStart(17, "0")}`);
    instances.forEach((instanceId, i) => {
      fakes.aws.addInstance({ instanceId, name: `web-${i + 1}` });
    });
    for (let i = 1; i <= 8; i++)
      await submitJob(fakes, bot, `web-1 backlog ${i}`, `V0BACKLOG${i}`, instances[i - 1]);
    await eventually(() => fakes.aws.calls("CreateImage").length === 8, 30_000, "8 images");
    const t0 = Date.now();
    const exit = await bot.stop(10_000);
    console.log(`[figure] SIGTERM → exit with a Slack backlog in one channel: ${Date.now() - t0} ms`);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(bot.stdout()).toContain("ami-bot stopped");
  });
});
