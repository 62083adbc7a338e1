/**
 * Crash anywhere: the bot runs as a real child process that SIGKILLs itself at one step of a job's life
 * (AMI_BOT_CRASH_AT), is started again on the same database, and must finish the job as if nothing had
 * happened: one root message, each update once and in order, one final message, one image.
 */
import Database from "better-sqlite3";
import { describe, it } from "vitest";
import { createSemaphore } from "../../src/watcher/semaphore.js";
import type { StoredMessage } from "../fakes/fake-slack.js";
import { eventually } from "../support/bot-harness.js";
import { type ChildExit, eventuallyAsync, startChildFakes, viewSubmission } from "../support/child-bot.js";

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

/** At most this many steps run at once: each starts two bot processes, on a machine with two cores. */
const slots = createSemaphore(3);

describe.concurrent("a crash at any step of a job", () => {
  // Two processes per step, a few steps at once (and others waiting for a slot): allow well over the
  // default 30 s on a busy machine.
  it.for(STEPS)(
    "finishes the job exactly once when the bot is killed at %s",
    { timeout: 180_000 },
    async (step, { expect, onTestFinished }) => {
      // The test's own hook (not the global one, which concurrent tests must not use) frees the slot.
      await slots.acquire();
      onTestFinished(() => slots.release());
      const fakes = await startChildFakes();
      const { slack, aws, dbPath } = fakes;
      aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
      try {
        const first = await fakes.start({ crashAt: step });
        // As soon as the hook fires, start again without it; the test carries on against the new process.
        const restarted = first.exit.then(async (exit: ChildExit) => ({ exit, next: await fakes.start() }));
        restarted.catch(() => undefined);

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

        const { exit, next: second } = await withinMs(restarted, 30_000, `the crash at ${step}`);
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
        await eventuallyAsync(
          async () => (await second.health()).json.unfinishedJobs === 0,
          10_000,
          "no unfinished jobs",
        );
        // Stop cleanly, so the database can be read; nothing may be left to post (checked below).
        const stopped = await second.stop();
        expect(stopped.code, second.stderr()).toBe(0);

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
      } finally {
        await fakes.close();
      }
    },
  );
});
