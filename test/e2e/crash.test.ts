/**
 * Crash anywhere: the bot runs as a real child process that SIGKILLs itself at one step of a job's life
 * (AMI_BOT_CRASH_AT), is started again on the same database, and must finish the job as if nothing had
 * happened: one root message, each update once and in order, one final message, one image.
 */
import Database from "better-sqlite3";
import { describe, it, type TestContext } from "vitest";
import { createSemaphore } from "../../src/watcher/semaphore.js";
import type { StoredMessage } from "../fakes/fake-slack.js";
import { ALLOWED_USER, eventually } from "../support/bot-harness.js";
import {
  type ChildBot,
  type ChildExit,
  type ChildFakes,
  eventuallyAsync,
  startChildFakes,
  viewSubmission,
} from "../support/child-bot.js";
import { buttonIn, messageButtonPayload } from "../support/job-buttons.js";

const INSTANCE = "i-0123456789abcdef0";
const FORM = { instanceId: INSTANCE, imageName: "web-1 crash test", reboot: "no_reboot" } as const;

/** Every step the bot reports on a job's way to available, in the order they happen. */
const STEPS = [
  "job_stored",
  "submission_acked",
  "slack_posted:root",
  "create_image_returned",
  "image_id_stored",
  "slack_posted:creating",
  "slack_recorded:creating",
  "slack_posted:pending",
  "slack_recorded:pending",
  "state_stored:available",
  "slack_posted:available",
  "slack_recorded:available",
  "slack_posted:root_update",
] as const;

const keyOf = (m: StoredMessage) => String(m.metadata?.event_payload?.key ?? "");

interface JobRow {
  id: string;
  state: string;
  image_id: string | null;
}

function readDatabase(path: string): { jobs: JobRow[]; outbox: { key: string; state: string }[] } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return {
      jobs: db.prepare("SELECT id, state, image_id FROM jobs").all() as JobRow[],
      outbox: db.prepare("SELECT key, state FROM outbox ORDER BY id").all() as {
        key: string;
        state: string;
      }[],
    };
  } finally {
    db.close();
  }
}

function withinMs<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

interface AfterCrash<T> {
  readonly exit: ChildExit;
  /** What `atCrash` read the moment the first bot died. */
  readonly atCrash: T;
  /** The bot started in its place, on the same database. */
  readonly next: ChildBot;
}

/**
 * Starts a bot armed to SIGKILL itself at `crashAt` and, as soon as it dies, one without the hook in its
 * place. `atCrash` is read at the death: the restarted bot may rightly act before the test looks.
 */
async function crashThenRestart<T = undefined>(
  fakes: ChildFakes,
  crashAt: string,
  options: { env?: Record<string, string>; atCrash?: () => T } = {},
): Promise<{ first: ChildBot; crashed: (what?: string) => Promise<AfterCrash<T>> }> {
  const { env } = options;
  const first = await fakes.start({ crashAt, ...(env && { env }) });
  const restarted = first.exit.then(async (exit: ChildExit) => ({
    exit,
    atCrash: options.atCrash?.() as T,
    next: await fakes.start(env ? { env } : {}),
  }));
  restarted.catch(() => undefined);
  return { first, crashed: (what = `the crash at ${crashAt}`) => withinMs(restarted, 30_000, what) };
}

/** At most this many steps run at once: each starts two bot processes, on a machine with two cores. */
const slots = createSemaphore(3);

/**
 * A slot (see `slots`) and fakes of the test's own, both given back when it finishes: through the test's own
 * hook, not the global one, which concurrent tests must not use.
 */
async function fakesForTest(onTestFinished: TestContext["onTestFinished"]): Promise<ChildFakes> {
  await slots.acquire();
  onTestFinished(() => slots.release());
  const fakes = await startChildFakes();
  onTestFinished(() => fakes.close());
  return fakes;
}

describe.concurrent("a crash at any step of a job", () => {
  // Two processes per step, a few steps at once (and others waiting for a slot): allow well over the
  // default 30 s on a busy machine.
  it.for(STEPS)(
    "finishes the job exactly once when the bot is killed at %s",
    { timeout: 180_000 },
    async (step, { expect, onTestFinished }) => {
      const fakes = await fakesForTest(onTestFinished);
      const { slack, aws, dbPath } = fakes;
      aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
      // The test carries on against the new process once the first has died.
      const { first, crashed } = await crashThenRestart(fakes, step);

      const command = await first.command();
      expect(command.status).toBe(200);
      await slack.waitFor("views.open");
      const submission = viewSubmission(slack, FORM, { viewId: "V0CRASH001" });
      const submitted = await first.interaction(submission).catch((error: Error) => error);
      // Killed before the ack, the request fails; the job is stored all the same.
      if (step === "job_stored") expect(submitted).toBeInstanceOf(Error);
      else if (!(submitted instanceof Error)) expect(submitted.status).toBe(200);

      // Finish the image as soon as AWS has it, whichever process asked for it.
      const image = await eventually(() => [...aws.images.values()][0], 30_000, "the image");
      aws.setImageState(image.imageId, "available");

      const { exit, next: second } = await crashed();
      expect(exit.signal).toBe("SIGKILL");
      if (step === "job_stored" || step === "submission_acked") {
        // The person saw an error (or nothing) and submits the same form again: still one job.
        const again = await second.interaction(submission);
        expect(again.status).toBe(200);
      }

      const root = await eventually(
        () => {
          const r = slack.messages.find((m) => !m.threadTs);
          const done =
            r?.text.includes("is available") && slack.repliesTo(r.ts).some((m) => keyOf(m) === "available");
          return done ? r : undefined;
        },
        30_000,
        "the final message and the updated root",
      );
      // Nothing may be left to post (checked below).
      await settleAndStop(second, dbPath);

      expect(slack.messages.filter((m) => !m.threadTs)).toHaveLength(1);
      expect(keyOf(root)).toBe("root");
      const keys = slack.repliesTo(root.ts).map(keyOf);
      expect(new Set(keys).size, `duplicate replies: ${keys}`).toBe(keys.length);
      // Progress may show up when a check catches the snapshots at 100 % just before the image turns available.
      expect(keys.filter((k) => !k.startsWith("progress:"))).toEqual(["creating", "pending", "available"]);
      expect(root.updates).toBeGreaterThan(0);
      expect(aws.calls("CreateImage")).toHaveLength(1);
      expect(aws.images.size).toBe(1);

      const { jobs, outbox } = readDatabase(dbPath);
      expect(jobs).toEqual([{ id: expect.any(String), state: "available", image_id: image.imageId }]);
      expect(outbox.filter((m) => m.state !== "delivered")).toEqual([]);
    },
  );
});

interface DecisionRow {
  state: string;
  image_id: string | null;
  decision: string | null;
  cancelled_by: string | null;
  deregister_attempted_at: number | null;
}

/** How many outbox messages are still to go out (queued, or sending and not yet recorded). */
function unsentCount(path: string): number {
  // Read while the bot runs: WAL lets a reader in beside the writer.
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare("SELECT COUNT(*) AS n FROM outbox WHERE state IN ('queued','sending')").get();
    return (row as { n: number }).n;
  } finally {
    db.close();
  }
}

/**
 * Waits until the restarted bot has nothing unfinished and nothing left to post, gives a duplicate call or
 * post `pauseMs` to show up, and stops it cleanly so its database can be read.
 */
async function settleAndStop(bot: ChildBot, dbPath: string, pauseMs = 0): Promise<void> {
  // A job ends before its last messages (the root update) go out, and a stop leaves any message not yet
  // begun in the outbox: wait for the outbox too. Dropped messages do not count here; the tests check those.
  await eventuallyAsync(
    async () => (await bot.health()).json.unfinishedJobs === 0 && unsentCount(dbPath) === 0,
    30_000,
    "no unfinished jobs and nothing left to post",
  );
  if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
  const stopped = await bot.stop();
  // Thrown rather than expect()ed: these tests run concurrently, each with its own expect.
  if (stopped.code !== 0) throw new Error(`the bot stopped with code ${stopped.code}: ${bot.stderr()}`);
}

/** The one job's decision columns and the messages it still owes, read once the bot has stopped. */
function readDecisions(path: string): { jobs: DecisionRow[]; undelivered: string[] } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return {
      jobs: db
        .prepare("SELECT state, image_id, decision, cancelled_by, deregister_attempted_at FROM jobs")
        .all() as DecisionRow[],
      undelivered: (
        db.prepare("SELECT key FROM outbox WHERE state <> 'delivered' ORDER BY id").all() as { key: string }[]
      ).map((m) => m.key),
    };
  } finally {
    db.close();
  }
}

/** A click on a button of the job's root message, as the button was drawn. */
function rootClick(root: StoredMessage, actionId: string, userId: string): Record<string, unknown> {
  const button = buttonIn(root, actionId);
  if (!button) throw new Error(`the root message has no ${actionId} button`);
  return messageButtonPayload({ userId, channel: root.channel, messageTs: root.ts, action: { ...button } });
}

/** Opens the form on `bot`, sends it, and waits for the root message (and, without approvals, the pending reply). */
async function askForImage(fakes: ChildFakes, bot: ChildBot, imageName: string): Promise<StoredMessage> {
  const { slack } = fakes;
  const command = await bot.command();
  if (command.status !== 200) throw new Error(`/ami answered ${command.status}`);
  await slack.waitFor("views.open");
  const sent = await bot.interaction(
    viewSubmission(slack, { instanceId: INSTANCE, imageName, reboot: "no_reboot" }, { viewId: "V0CRASHCNL" }),
  );
  if (sent.status !== 200 || sent.body !== "")
    throw new Error(`the form was answered ${sent.status} ${sent.body}`);
  return eventually(() => slack.messages.find((m) => !m.threadTs), 30_000, "the root message");
}

/**
 * Cancel is crash-safe too: DeregisterImage is stored as attempted before it is called, and a restarted bot
 * asks AWS whether the image is still there before calling again. Whatever the step, the image is removed
 * exactly once, the job ends cancelled, and the thread says so once.
 */
describe.concurrent("a crash while a job is cancelled", () => {
  it.for([
    // DeregisterImage went through, its answer was never stored.
    { step: "deregister_returned", deregisteredBeforeCrash: 1 },
    // The attempt was stored, DeregisterImage never called.
    { step: "deregister_attempted", deregisteredBeforeCrash: 0 },
  ])(
    "deregisters the image exactly once when the bot is killed at $step",
    { timeout: 180_000 },
    async ({ step, deregisteredBeforeCrash }, { expect, onTestFinished }) => {
      const fakes = await fakesForTest(onTestFinished);
      const { slack, aws, dbPath } = fakes;
      aws.addInstance({ instanceId: INSTANCE, name: "web-1", volumes: 2 });
      const { first, crashed } = await crashThenRestart(fakes, step, {
        atCrash: () => aws.calls("DeregisterImage").length,
      });

      const root = await askForImage(fakes, first, "web-1 crash cancel");
      const cancel = rootClick(root, "job_cancel", ALLOWED_USER);
      // Cancel once the image is being made, so there is an image to deregister.
      await eventually(() => slack.repliesTo(root.ts).some((m) => keyOf(m) === "pending"), 30_000, "pending");
      const image = [...aws.images.values()][0];
      expect(image?.state).toBe("pending");
      const snapshots = image?.snapshots.map((s) => s.snapshotId) ?? [];
      expect(snapshots).toHaveLength(2);
      // The click is acknowledged before the watcher's work starts; the process may be dead by its answer.
      await first.interaction(cancel).catch(() => undefined);

      const { exit, atCrash: deregisteredAtCrash, next: second } = await crashed();
      expect(exit.signal).toBe("SIGKILL");
      expect(deregisteredAtCrash).toBe(deregisteredBeforeCrash);

      const cancelled = await eventually(
        () => slack.repliesTo(root.ts).find((m) => keyOf(m) === "cancelled"),
        30_000,
        "the cancelled reply",
      );
      expect(cancelled.text).toContain(`Cancelled by <@${ALLOWED_USER}>`);
      expect(cancelled.text).toContain(`Image \`${image?.imageId}\``);
      expect(cancelled.text).toMatch(/was deregistered/);
      // Killed after the call, the bot never saw AWS's word on the snapshots, and says where to look.
      if (step === "deregister_returned") expect(cancelled.text).toContain("ami-bot:job-id=");
      // Time for a second DeregisterImage or a second reply, were either coming.
      await settleAndStop(second, dbPath, 500);

      expect(aws.calls("DeregisterImage")).toHaveLength(1);
      expect(aws.calls("DeregisterImage")[0]?.params).toMatchObject({
        ImageId: image?.imageId,
        DeleteAssociatedSnapshots: "true",
      });
      expect(aws.calls("CreateImage")).toHaveLength(1);
      expect(aws.images.size).toBe(0);
      for (const s of snapshots) expect(aws.snapshots.has(s)).toBe(false);

      expect(slack.messages.filter((m) => !m.threadTs)).toHaveLength(1);
      const keys = slack.repliesTo(root.ts).map(keyOf);
      expect(new Set(keys).size, `duplicate replies: ${keys}`).toBe(keys.length);
      expect(keys.filter((k) => !k.startsWith("progress:")).map((k) => k.split(":")[0])).toEqual([
        "creating",
        "pending",
        "cancelling",
        "cancelled",
      ]);
      const rootNow = slack.messages.find((m) => m.ts === root.ts);
      expect(JSON.stringify(rootNow?.blocks)).toContain(`Cancelled by <@${ALLOWED_USER}>`);
      expect(buttonIn(rootNow, "job_cancel")).toBeUndefined();

      const { jobs, undelivered } = readDecisions(dbPath);
      expect(jobs).toEqual([
        {
          state: "cancelled",
          image_id: image?.imageId,
          decision: null,
          cancelled_by: ALLOWED_USER,
          deregister_attempted_at: expect.any(Number),
        },
      ]);
      expect(undelivered).toEqual([]);
    },
  );

  it("keeps a job waiting for approval across a crash, and creates it once when approved after", {
    timeout: 180_000,
  }, async ({ expect, onTestFinished }) => {
    const APPROVER = "U0APPROVER1";
    const fakes = await fakesForTest(onTestFinished);
    const { slack, aws, dbPath } = fakes;
    aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    const env = { AMI_TARGET_ALLOW_USERS: `${ALLOWED_USER},${APPROVER}`, AMI_TARGET_APPROVERS: APPROVER };
    // Killed just after the approval request reached Slack, before it was recorded as delivered.
    const { first, crashed } = await crashThenRestart(fakes, "slack_posted:approval_request", { env });

    const root = await askForImage(fakes, first, "web-1 crash approval");
    expect(buttonIn(root, "job_approve")).toBeDefined();
    const approve = rootClick(root, "job_approve", APPROVER);
    const { exit, next: second } = await crashed("the crash after the approval request");
    expect(exit.signal).toBe("SIGKILL");
    // The restarted bot finds its own post and does not ask again; the approver's DM still goes out.
    await eventually(
      () => slack.messages.some((m) => m.channel === `D${APPROVER.slice(1)}`),
      30_000,
      "the approver's DM",
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(aws.calls("CreateImage")).toEqual([]);

    // Approved on the restarted bot, twice (a double click): one image.
    const clicks = await Promise.all([second.interaction(approve), second.interaction(approve)]);
    expect(clicks.map((c) => c.status)).toEqual([200, 200]);
    const image = await eventually(() => [...aws.images.values()][0], 30_000, "the image");
    aws.setImageState(image.imageId, "available");
    await eventually(
      () => slack.repliesTo(root.ts).some((m) => keyOf(m) === "available"),
      30_000,
      "the available reply",
    );
    await settleAndStop(second, dbPath, 500);

    expect(aws.calls("CreateImage")).toHaveLength(1);
    expect(aws.images.size).toBe(1);
    expect(slack.messages.filter((m) => !m.threadTs && m.channel === root.channel)).toHaveLength(1);
    const keys = slack.repliesTo(root.ts).map(keyOf);
    expect(new Set(keys).size, `duplicate replies: ${keys}`).toBe(keys.length);
    expect(keys.filter((k) => !k.startsWith("progress:"))).toEqual([
      "approval_request",
      "approved",
      "creating",
      "pending",
      "available",
    ]);
    const { jobs, undelivered } = readDecisions(dbPath);
    expect(jobs).toEqual([
      {
        state: "available",
        image_id: image.imageId,
        decision: "approved",
        cancelled_by: null,
        deregister_attempted_at: null,
      },
    ]);
    expect(undelivered).toEqual([]);
  });
});

/**
 * Copies are crash-safe like CreateImage: the attempt is stored before CopyImage, and a restarted bot looks
 * for the copy by its tags (and calls again only with the same ClientToken), so each region gets one copy
 * and the thread hears of it once.
 */
describe.concurrent("a crash while an image is copied", () => {
  const AFTER = { AMI_TARGET_COPY_TO: "us-east-1", AMI_TARGET_SHARE_WITH: "210987654321" };
  it.for([
    // CopyImage returned; its id was never stored.
    { step: "copy_image_returned", copiedBeforeCrash: 1 },
    // The attempt was stored; CopyImage never called.
    { step: "copy_attempted:us-east-1", copiedBeforeCrash: 0 },
  ])(
    "copies once and reports once when the bot is killed at $step",
    { timeout: 180_000 },
    async ({ step, copiedBeforeCrash }, { expect, onTestFinished }) => {
      const fakes = await fakesForTest(onTestFinished);
      const { slack, aws, dbPath } = fakes;
      aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
      // The restarted bot may rightly call CopyImage again (same ClientToken) before the test looks.
      const { first, crashed } = await crashThenRestart(fakes, step, {
        env: AFTER,
        atCrash: () => aws.calls("CopyImage").length,
      });

      const command = await first.command();
      expect(command.status).toBe(200);
      await slack.waitFor("views.open");
      const sent = await first.interaction(
        viewSubmission(
          slack,
          { ...FORM, imageName: "web-1 crash copy", copyTo: ["us-east-1"], shareWith: ["210987654321"] },
          { viewId: "V0CRASHCPY" },
        ),
      );
      expect(sent.status).toBe(200);
      const source = await eventually(() => [...aws.images.values()][0], 30_000, "the image");
      aws.setImageState(source.imageId, "available");

      const { exit, atCrash: copiesAtCrash, next: second } = await crashed();
      expect(exit.signal).toBe("SIGKILL");
      expect(copiesAtCrash).toBe(copiedBeforeCrash);

      const copy = await eventually(
        () => [...aws.images.values()].find((i) => i.sourceImageId === source.imageId),
        30_000,
        "the copy",
      );
      aws.completeImage(copy.imageId);
      const root = await eventually(
        () => {
          const r = slack.messages.find((m) => !m.threadTs);
          return r && slack.repliesTo(r.ts).some((m) => keyOf(m) === "after_done") ? r : undefined;
        },
        30_000,
        "the summary",
      );
      await settleAndStop(second, dbPath, 500);

      expect(aws.calls("CopyImage")).toHaveLength(1);
      expect([...aws.images.values()].filter((i) => i.region === "us-east-1")).toHaveLength(1);
      expect(aws.calls("CreateImage")).toHaveLength(1);
      const keys = slack.repliesTo(root.ts).map(keyOf);
      expect(new Set(keys).size, `duplicate replies: ${keys}`).toBe(keys.length);
      expect(keys.filter((k) => !k.startsWith("progress:"))).toEqual([
        "creating",
        "pending",
        "available",
        "shared:eu-west-1",
        "copy_started:us-east-1",
        "copy_available:us-east-1",
        "shared:us-east-1",
        "after_done",
      ]);
      const { jobs, outbox } = readDatabase(dbPath);
      expect(jobs).toEqual([{ id: expect.any(String), state: "available", image_id: source.imageId }]);
      expect(outbox.filter((m) => m.state !== "delivered")).toEqual([]);
    },
  );
});
