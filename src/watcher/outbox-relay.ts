/**
 * Delivers the messages jobs owe their threads, from the outbox table, in order and once each.
 * A message is marked "sending" before the Slack call; after a crash such a message is looked up in
 * Slack first, so a restart neither skips nor repeats an update. Posts to one channel are paced.
 */
import type { Job } from "../domain/job.js";
import type { Clock, JobStore, Notifier, OutboxMessage, StepHook } from "../domain/ports.js";
import { SlackDeliveryError, SlackRetryableError } from "../errors.js";
import type { Logger } from "../logger.js";

export interface OutboxRelayDeps {
  readonly store: JobStore;
  readonly notifier: Notifier;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Minimum gap between two posts to the same channel (Slack allows about one a second). */
  readonly channelGapMs?: number;
  /** How often to look for messages when nothing wakes the relay. */
  readonly idleMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly onStep?: StepHook;
  /**
   * Called after a message was delivered and recorded, with the job as it was delivered (the Home tabs
   * refresh from it). Whatever it throws is logged, never allowed into the relay.
   */
  readonly onDelivered?: (job: Job) => void;
}

export interface OutboxRelay {
  start(): void;
  stop(): Promise<void>;
  wake(): void;
  /** Delivers everything deliverable now; resolves when nothing is left that is due. */
  drain(): Promise<void>;
}

const MAX_RETRY_MS = 5 * 60_000;
const MAX_ATTEMPTS = 50;

export function createOutboxRelay(deps: OutboxRelayDeps): OutboxRelay {
  const { store, notifier, clock, logger } = deps;
  const gap = deps.channelGapMs ?? 1100;
  const idleMs = deps.idleMs ?? 2000;
  // The default sleep can be cut short, so a wake (a message for a free channel) or a stop need not wait.
  let cutSleep: (() => void) | undefined;
  const sleep =
    deps.sleep ??
    ((ms: number) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        cutSleep = () => {
          clearTimeout(t);
          resolve();
        };
      }).finally(() => {
        cutSleep = undefined;
      }));
  const lastPostAt = new Map<string, number>();
  /** Channels Slack rate-limited: nothing goes to them before the time given in Retry-After. */
  const heldUntil = new Map<string, number>();
  let stopping = false;
  let nextRetryAt = Number.POSITIVE_INFINITY;
  const step: StepHook = deps.onStep ?? (() => {});
  let stopped = true;
  let running: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;

  function channelOf(job: Job, message: OutboxMessage): string {
    return message.kind === "root" || message.kind === "root_update"
      ? job.channelId
      : (job.rootChannelId ?? job.channelId);
  }

  async function ensureRoot(job: Job, since: number, search: boolean): Promise<Job> {
    if (job.rootTs && job.rootChannelId) return job;
    const foundTs = search ? await notifier.findPosted(job, "root", undefined, since) : undefined;
    const root = foundTs ? { ts: foundTs, channel: job.channelId } : await notifier.postRoot(job);
    step("slack_posted:root");
    await store.markRootPosted(job.id, root.channel, root.ts, clock.now());
    lastPostAt.set(job.channelId, clock.now());
    return { ...job, rootChannelId: root.channel, rootTs: root.ts };
  }

  /** Tells the hook a message of this job went out; the hook's own failure stays its own. */
  function announce(job: Job | undefined): void {
    if (!job || !deps.onDelivered) return;
    try {
      deps.onDelivered(job);
    } catch (error) {
      logger.warn({ err: error, jobId: job.id }, "after-delivery hook failed");
    }
  }

  /** Delivers one message; returns its job once the message is recorded as delivered. */
  async function deliver(message: OutboxMessage): Promise<Job | undefined> {
    const job = await store.get(message.jobId);
    if (!job) {
      await store.markDropped(message.id, "job not found", clock.now());
      return undefined;
    }
    const since = job.createdAt - 60_000;
    const wasSending = message.sending;
    // Another replica took the message over (this one's lease ran out): it is that replica's to send now.
    if (!(await store.markSending(message.id, clock.now()))) return undefined;
    if (message.kind === "requester_note") {
      await notifier.noteRequester(job, message.key);
      await store.markDelivered(message.id, undefined, clock.now());
      return job;
    }
    if (message.kind === "approver_dm" && job.state !== "awaiting_approval") {
      // Decided (or ended) before the DM went out: asking for a decision now would only mislead.
      await store.markDropped(message.id, `job already ${job.state}`, clock.now());
      return;
    }
    if (message.kind === "approver_dm") {
      // Queued after the root and the thread's approval request, so the DM can link the thread.
      await notifier.notifyApprover(job, message.key.slice("approver_dm:".length));
      await store.markDelivered(message.id, undefined, clock.now());
      return job;
    }
    const rooted = await ensureRoot(job, since, wasSending);
    const rootTs = rooted.rootTs as string;
    if (message.kind === "root") {
      await store.markDelivered(message.id, rootTs, clock.now());
      return rooted;
    }
    if (message.kind === "root_update") {
      // Idempotent: rewriting the root twice shows the same thing.
      await notifier.updateRoot(rooted, rootTs);
      step("slack_posted:root_update");
      await store.markDelivered(message.id, rootTs, clock.now());
      return rooted;
    }
    const already = wasSending ? await notifier.findPosted(rooted, message.key, rootTs, since) : undefined;
    const ts = already ?? (await notifier.postReply(rooted, rootTs, message));
    step(`slack_posted:${message.key}`);
    lastPostAt.set(channelOf(rooted, message), clock.now());
    await store.markDelivered(message.id, ts, clock.now());
    step(`slack_recorded:${message.key}`);
    return rooted;
  }

  /** Records a failed delivery; true when the job has something due right away (thread moved, message dropped). */
  async function handleFailure(message: OutboxMessage, error: unknown): Promise<boolean> {
    const now = clock.now();
    const job = await store.get(message.jobId);
    if (error instanceof SlackDeliveryError && !error.retryable && job) {
      const toThread = message.kind !== "requester_note" && message.kind !== "approver_dm";
      if (error.channelUnusable && job.channelId !== job.requestedBy && toThread) {
        // The bot cannot post in the chosen channel: carry on in a DM with the requester and tell them why.
        logger.warn(
          { jobId: job.id, channel: job.channelId, code: error.code },
          "cannot post in channel; moving thread to DM",
        );
        await store.moveThread(job.id, job.requestedBy, now);
        await store.enqueue(
          job.id,
          { kind: "requester_note", key: `channel_unusable:${job.channelId}` },
          now,
        );
        await store.markDeliveryFailed(message.id, error.code, now);
        return true;
      }
      await store.markDropped(message.id, error.code, now);
      logger.error({ jobId: message.jobId, code: error.code }, "message dropped: Slack will not take it");
      return true;
    }
    const retryAfterMs = error instanceof SlackRetryableError ? error.retryAfterMs : undefined;
    const delay = retryAfterMs ?? Math.min(1000 * 2 ** message.attempts, MAX_RETRY_MS);
    if (retryAfterMs !== undefined && job) {
      // Slack's limit is per channel: hold every message for that channel, not just this one.
      const channel = channelOf(job, message);
      heldUntil.set(channel, Math.max(heldUntil.get(channel) ?? 0, now + retryAfterMs));
    }
    nextRetryAt = Math.min(nextRetryAt, now + delay);
    if (message.attempts + 1 >= MAX_ATTEMPTS) {
      await store.markDropped(message.id, String((error as Error).message ?? error), now);
      logger.error({ jobId: message.jobId, key: message.key }, "message dropped after too many attempts");
      return true;
    }
    logger.warn(
      { jobId: message.jobId, key: message.key, err: error, retryInMs: delay },
      "Slack delivery failed; will retry",
    );
    // Without a clear answer the post may have landed: stay "sending" so the next try looks before posting.
    // Errors that are not Slack's answers (a socket hang-up) are just as ambiguous.
    const maybeDelivered =
      error instanceof SlackRetryableError ? error.maybeDelivered : !(error instanceof SlackDeliveryError);
    await store.markDeliveryFailed(
      message.id,
      String((error as Error).message ?? error),
      now + delay,
      maybeDelivered,
    );
    return false;
  }

  async function drain(): Promise<void> {
    while (!stopping) {
      const now = clock.now();
      const batch = await store.pendingOutbox(now, 200);
      if (batch.length === 0) return;
      let delivered = 0;
      let waitMs = Number.POSITIVE_INFINITY;
      for (const message of batch) {
        if (stopping) return; // what is left stays in the outbox for the next start
        const job = await store.get(message.jobId);
        const channel = job ? channelOf(job, message) : "";
        const last = lastPostAt.get(channel) ?? Number.NEGATIVE_INFINITY;
        const paced =
          message.kind !== "root_update" &&
          message.kind !== "requester_note" &&
          message.kind !== "approver_dm";
        const free = Math.max(paced ? last + gap : 0, heldUntil.get(channel) ?? 0) - clock.now();
        if (free > 0) {
          waitMs = Math.min(waitMs, free);
          continue;
        }
        try {
          const job = await deliver(message);
          delivered++;
          announce(job);
        } catch (error) {
          // A moved thread or a dropped message leaves the job's next message due now: keep draining.
          if (await handleFailure(message, error)) delivered++;
        }
      }
      if (delivered === 0) {
        if (!Number.isFinite(waitMs)) return; // everything left is backing off
        await sleep(waitMs);
      }
    }
  }

  function schedule(ms: number): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(loop, ms);
    timer.unref?.();
  }

  function loop(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = drain()
      .catch((error) => logger.error({ err: error }, "outbox relay failed"))
      .finally(() => {
        running = undefined;
        const now = again;
        again = false;
        // Come back when the earliest failed message may be retried, or after the idle period.
        const retryIn = Math.max(0, nextRetryAt - clock.now());
        nextRetryAt = Number.POSITIVE_INFINITY;
        schedule(now ? 0 : Math.min(idleMs, retryIn));
      });
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      stopping = false;
      schedule(0);
    },
    async stop() {
      stopped = true;
      stopping = true;
      clearTimeout(timer);
      cutSleep?.();
      await running;
    },
    wake() {
      if (stopped) return;
      if (running) {
        again = true;
        cutSleep?.(); // a paced wait must not hold up a message for another channel
      } else schedule(0);
    },
    drain,
  };
}
