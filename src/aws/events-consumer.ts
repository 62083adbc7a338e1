/**
 * Push mode: long-polls the SQS queue an EventBridge rule fills with "EC2 AMI State Change" events and hands
 * each one to a callback, which checks the image now instead of at its next poll. Events are best effort
 * and carry no tags, so polling stays on as the reconciliation; this only makes the common case quick.
 *
 * Per message: not an AMI event (malformed, foreign, too large) → deleted and counted "malformed"; an
 * event → the callback, then deleted ("matched" when it was one of ours, "ignored" when not). A callback
 * that throws (the database is down, say) leaves the message: SQS hands it out again after the visibility
 * timeout, and the queue's redrive policy moves a message that keeps failing to the dead-letter queue.
 */
import { setTimeout as delay } from "node:timers/promises";
import {
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { Logger } from "../logger.js";
import { type AmiStateEvent, parseAmiStateEvent } from "./ami-state-events.js";
import type { AwsCallHook } from "./aws-metrics-middleware.js";
import { createSqsClient } from "./sqs-client.js";
import { type AwsTimeouts, callDeadlineMs, DEFAULT_AWS_TIMEOUTS } from "./timeouts.js";

/** What became of a message: "received" for each, then one of the others. */
export type EventOutcome = "received" | "matched" | "ignored" | "malformed" | "error";

export interface EventsConsumerOptions {
  readonly queueUrl: string;
  /** Built from queueUrl/region when not given (and then destroyed by stop()). */
  readonly sqs?: SQSClient;
  /** The queue's region; by default the one its URL names, else the SDK's (AWS_REGION). */
  readonly region?: string;
  /** Checks the image now. Resolves true when it is one of the bot's; throws to have the event redelivered. */
  readonly onImageEvent: (event: AmiStateEvent) => Promise<boolean>;
  readonly onCounted?: (outcome: EventOutcome) => void;
  /** Told of each SQS call and its error, by operation (metrics), for the client built here. */
  readonly onAwsCall?: AwsCallHook;
  readonly logger: Logger;
  /** Long poll length, 0–20 s. Default 20. */
  readonly waitTimeSeconds?: number;
  /** Messages per receive, 1–10. Default 10. */
  readonly maxMessages?: number;
  /** Overrides the queue's visibility timeout for the messages received (0–43,200 s). */
  readonly visibilityTimeoutSeconds?: number;
  /** Waits out a back-off (or a too-quick empty receive); must end early when `signal` aborts. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly timeouts?: AwsTimeouts;
  /** Back-off after failed receives: doubling from initialMs, capped at maxMs. Default 1 s → 30 s. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
}

export interface EventsConsumer {
  /** Starts the receive loop; does nothing if it is running. */
  start(): void;
  /** Ends the long poll at once; resolves when the loop has ended (messages in hand are finished first). */
  stop(): Promise<void>;
}

const DEFAULT_BACKOFF = { initialMs: 1_000, maxMs: 30_000 };
/** An empty answer sooner than this means the wait was not honoured: pause, rather than spin. */
const MIN_EMPTY_RECEIVE_MS = 1_000;

/** Sleeps `ms`, or less if `signal` aborts. */
async function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch {
    // Aborted: stop() is under way.
  }
}

/** One run of the loop, from start() to the end of stop(). */
interface Running {
  readonly stopping: AbortController;
  readonly loop: Promise<void>;
  readonly client: SQSClient;
  /** Built here, so stop() destroys it. */
  readonly owned: boolean;
  ended?: Promise<void>;
}

function checkRange(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new RangeError(`${name} must be a whole number from ${min} to ${max}, not ${value}`);
  return value;
}

export function createEventsConsumer(options: EventsConsumerOptions): EventsConsumer {
  const { queueUrl, onImageEvent, logger } = options;
  const waitTimeSeconds = checkRange("waitTimeSeconds", options.waitTimeSeconds ?? 20, 0, 20);
  const maxMessages = checkRange("maxMessages", options.maxMessages ?? 10, 1, 10);
  const visibility = options.visibilityTimeoutSeconds;
  if (visibility !== undefined) checkRange("visibilityTimeoutSeconds", visibility, 0, 43_200);
  const timeouts = options.timeouts ?? DEFAULT_AWS_TIMEOUTS;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const sleep = options.sleep ?? sleepUnlessAborted;
  // The long poll holds the request for up to waitTimeSeconds: its socket may wait that long plus the
  // usual request timeout, and no longer, so a hung connection cannot stall the loop.
  const receiveTimeoutMs = waitTimeSeconds * 1000 + timeouts.requestTimeoutMs;
  const receiveDeadlineMs = timeouts.connectTimeoutMs + receiveTimeoutMs;

  let running: Running | undefined;

  const count = (outcome: EventOutcome) => {
    try {
      options.onCounted?.(outcome);
    } catch (error) {
      // A metrics fault must not stop the consumer.
      logger.warn({ err: error, outcome }, "counting an AMI event failed");
    }
  };

  async function receive(client: SQSClient, stopping: AbortSignal): Promise<Message[]> {
    const out = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: maxMessages,
        WaitTimeSeconds: waitTimeSeconds,
        ...(visibility !== undefined && { VisibilityTimeout: visibility }),
        MessageSystemAttributeNames: ["ApproximateReceiveCount"],
      }),
      {
        abortSignal: AbortSignal.any([stopping, AbortSignal.timeout(receiveDeadlineMs)]),
        requestTimeout: receiveTimeoutMs,
      },
    );
    return out.Messages ?? [];
  }

  /** Handles one message; true when it is done with and may be deleted. Never throws. */
  async function handle(message: Message): Promise<boolean> {
    count("received");
    const messageId = message.MessageId;
    const parsed = parseAmiStateEvent(message.Body ?? "");
    if (!parsed.ok) {
      count("malformed");
      logger.warn(
        { messageId, reason: parsed.reason, bodyChars: message.Body?.length ?? 0 },
        "dropping a queued message that is not an AMI state event",
      );
      return true;
    }
    const { event } = parsed;
    try {
      const ours = await onImageEvent(event);
      count(ours ? "matched" : "ignored");
      if (ours) logger.info({ messageId, ...event }, "AMI state event for a watched image");
      else logger.debug({ messageId, imageId: event.imageId }, "AMI state event for an image not watched");
      return true;
    } catch (error) {
      count("error");
      logger.warn(
        {
          err: error,
          messageId,
          imageId: event.imageId,
          receiveCount: message.Attributes?.ApproximateReceiveCount,
        },
        "could not handle an AMI state event; SQS will deliver it again",
      );
      return false;
    }
  }

  /** Deletes handled messages: one call for the batch. A failure only means they come again. */
  async function remove(client: SQSClient, messages: readonly Message[]): Promise<void> {
    const handles = messages.flatMap((m) => (m.ReceiptHandle ? [m.ReceiptHandle] : []));
    if (handles.length === 0) return;
    // Not tied to stop(): what was handled is deleted, so a restart does not see it again.
    const call = { abortSignal: AbortSignal.timeout(callDeadlineMs(timeouts)) };
    try {
      if (handles.length === 1) {
        await client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: handles[0] }), call);
        return;
      }
      const out = await client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: handles.map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle })),
        }),
        call,
      );
      if (out.Failed?.length)
        logger.warn(
          { failed: out.Failed.map((f) => ({ code: f.Code, message: f.Message })) },
          "SQS did not delete some handled AMI events; they will come again",
        );
    } catch (error) {
      logger.warn(
        { err: error, count: handles.length },
        "could not delete handled AMI events; they will come again",
      );
    }
  }

  const backoffMs = (failures: number) => Math.min(backoff.maxMs, backoff.initialMs * 2 ** (failures - 1));

  async function run(client: SQSClient, stopping: AbortSignal): Promise<void> {
    let failures = 0;
    while (!stopping.aborted) {
      const started = Date.now();
      try {
        const messages = await receive(client, stopping);
        failures = 0;
        if (messages.length > 0) {
          const done = await Promise.all(messages.map(handle));
          await remove(
            client,
            messages.filter((_, i) => done[i]),
          );
        } else if (Date.now() - started < MIN_EMPTY_RECEIVE_MS && !stopping.aborted)
          await sleep(MIN_EMPTY_RECEIVE_MS - (Date.now() - started), stopping);
      } catch (error) {
        if (stopping.aborted) break;
        failures++;
        const retryInMs = backoffMs(failures);
        logger.warn({ err: error, failures, retryInMs }, "could not receive AMI events from the queue");
        await sleep(retryInMs, stopping);
      }
    }
  }

  return {
    start() {
      if (running) return;
      const stopping = new AbortController();
      const owned = !options.sqs;
      const client =
        options.sqs ??
        createSqsClient({ queueUrl, region: options.region, timeouts, logger, onAwsCall: options.onAwsCall });
      // run() catches every failure of its own; this is for a fault in that very code.
      const loop = run(client, stopping.signal).catch((error: unknown) => {
        logger.error({ err: error }, "the AMI events consumer stopped unexpectedly");
      });
      running = { stopping, loop, client, owned };
      logger.info({ queueUrl, waitTimeSeconds, maxMessages }, "receiving AMI state events");
    },
    async stop() {
      const current = running;
      if (!current) return;
      // Shared, so a second stop() during the first also waits for the loop to end.
      current.ended ??= (async () => {
        current.stopping.abort();
        await current.loop;
        if (current.owned) current.client.destroy();
        if (running === current) running = undefined;
      })();
      await current.ended;
    },
  };
}
