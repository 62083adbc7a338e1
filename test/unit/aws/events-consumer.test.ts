/**
 * The events consumer against fake-sqs over HTTP, through a real SQSClient: what it calls back, what it
 * deletes, what it leaves for SQS to deliver again, and how it rides out a failing queue.
 */
import { setTimeout as delay } from "node:timers/promises";
import { SQSClient } from "@aws-sdk/client-sqs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AmiStateEvent } from "../../../src/aws/ami-state-events.js";
import {
  createEventsConsumer,
  type EventOutcome,
  type EventsConsumer,
  type EventsConsumerOptions,
} from "../../../src/aws/events-consumer.js";
import { type AwsTimeouts, DEFAULT_AWS_TIMEOUTS, requestHandlerOptions } from "../../../src/aws/timeouts.js";
import { createLogger } from "../../../src/logger.js";
import { type FakeSqs, INTERNAL_FAILURE, REQUEST_THROTTLED, startFakeSqs } from "../../fakes/fake-sqs.js";

const ACCOUNT = "111122223333";
const CREDENTIALS = { accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret" };

/** An AMI state event as EventBridge puts it in the queue. */
function amiEvent(imageId: string, state = "available"): string {
  return JSON.stringify({
    version: "0",
    id: "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 AMI State Change",
    source: "aws.ec2",
    account: ACCOUNT,
    time: "2026-03-04T05:06:07Z",
    region: "eu-west-1",
    resources: [`arn:aws:ec2:eu-west-1::image/${imageId}`],
    detail: { RequestId: "b7d2-4c1e", ImageId: imageId, State: state, ErrorMessage: "" },
  });
}

/**
 * Polls until `check` holds; fails the test after `timeoutMs`, with what SQS saw and the consumer logged.
 * Generous: redelivery runs on SQS's real visibility timeout, and a loaded machine stretches every call.
 */
async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end)
      throw new Error(
        `timed out waiting for ${what}; SQS calls: ${fake.calls.map((c) => c.operation).join(", ")}; logged: ${lines.map((l) => l.msg).join(" | ")}`,
      );
    await delay(10);
  }
}

let fake: FakeSqs;
let clients: SQSClient[];
let consumers: EventsConsumer[];
let lines: Record<string, unknown>[];

beforeEach(async () => {
  fake = await startFakeSqs();
  clients = [];
  consumers = [];
  lines = [];
});

afterEach(async () => {
  await Promise.all(consumers.map((c) => c.stop()));
  for (const client of clients) client.destroy();
  await fake.close();
  vi.unstubAllEnvs();
});

function sqsClient(timeouts: AwsTimeouts = DEFAULT_AWS_TIMEOUTS): SQSClient {
  const client = new SQSClient({
    region: "us-east-1",
    endpoint: fake.url,
    credentials: CREDENTIALS,
    // One attempt per send, so each fault the fake answers is one failed receive for the loop.
    maxAttempts: 1,
    requestHandler: requestHandlerOptions(timeouts),
  });
  clients.push(client);
  return client;
}

const logger = () =>
  createLogger("debug", {
    write: (line: string) => {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
const logged = (msg: string) => lines.filter((l) => l.msg === msg);

interface Started {
  readonly consumer: EventsConsumer;
  readonly counts: EventOutcome[];
  readonly events: AmiStateEvent[];
}

/** Starts a consumer on the fake's queue; by default every event is one of ours. */
function start(options: Partial<EventsConsumerOptions> = {}): Started {
  const counts: EventOutcome[] = [];
  const events: AmiStateEvent[] = [];
  const consumer = createEventsConsumer({
    queueUrl: fake.queueUrl(),
    sqs: sqsClient(),
    logger: logger(),
    onCounted: (outcome) => counts.push(outcome),
    ...options,
    onImageEvent: async (event) => {
      events.push(event);
      return options.onImageEvent ? options.onImageEvent(event) : true;
    },
  });
  consumers.push(consumer);
  consumer.start();
  return { consumer, counts, events };
}

function tally(counts: readonly EventOutcome[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const outcome of counts) out[outcome] = (out[outcome] ?? 0) + 1;
  return out;
}

describe("events consumer", () => {
  it("calls back with the event and deletes the message when the image is one of ours", async () => {
    const { counts, events } = start();
    await until(() => fake.waitingReceives === 1, "the long poll");
    fake.send(amiEvent("ami-0123456789abcdef0"));

    await until(() => fake.messages().length === 0, "the delete");
    expect(events).toEqual([
      {
        imageId: "ami-0123456789abcdef0",
        state: "available",
        region: "eu-west-1",
        account: ACCOUNT,
        time: "2026-03-04T05:06:07Z",
        errorMessage: undefined,
      },
    ]);
    expect(counts).toEqual(["received", "matched"]);
    expect(fake.callsOf("DeleteMessage")).toHaveLength(1);
    const receive = fake.callsOf("ReceiveMessage")[0]?.input;
    expect(receive).toMatchObject({
      QueueUrl: fake.queueUrl(),
      WaitTimeSeconds: 20,
      MaxNumberOfMessages: 10,
    });
  });

  it("deletes a batch in one DeleteMessageBatch call, events not ours included", async () => {
    for (const id of ["ami-00000001", "ami-00000002", "ami-00000003"]) fake.send(amiEvent(id));
    const { counts, events } = start({ onImageEvent: async (e) => e.imageId !== "ami-00000002" });

    await until(() => fake.messages().length === 0, "the deletes");
    expect(events.map((e) => e.imageId).sort()).toEqual(["ami-00000001", "ami-00000002", "ami-00000003"]);
    expect(tally(counts)).toEqual({ received: 3, matched: 2, ignored: 1 });
    expect(fake.callsOf("DeleteMessage")).toHaveLength(0);
    const batches = fake.callsOf("DeleteMessageBatch");
    expect(batches).toHaveLength(1);
    expect(batches[0]?.input.Entries).toHaveLength(3);
  });

  it("passes the visibility timeout it is given to ReceiveMessage", async () => {
    start({ visibilityTimeoutSeconds: 45, maxMessages: 3, waitTimeSeconds: 5 });
    await until(() => fake.callsOf("ReceiveMessage").length === 1, "a receive");
    expect(fake.callsOf("ReceiveMessage")[0]?.input).toMatchObject({
      VisibilityTimeout: 45,
      MaxNumberOfMessages: 3,
      WaitTimeSeconds: 5,
    });
  });

  it("deletes and counts messages that are not AMI events, and goes on to the next", async () => {
    const bad = [
      "{garbage",
      " ",
      JSON.stringify({ ...JSON.parse(amiEvent("ami-00000001")), source: "aws.s3" }),
      JSON.stringify({
        ...JSON.parse(amiEvent("ami-00000001")),
        "detail-type": "EC2 Instance State-change Notification",
      }),
      JSON.stringify({ ...JSON.parse(amiEvent("ami-00000001")), padding: "x".repeat(200 * 1024) }),
      "[1, 2, 3]",
    ];
    // One at a time, so each goes through its own receive.
    const { counts, events } = start({ maxMessages: 1 });
    for (const body of bad) fake.send(body);
    fake.send(amiEvent("ami-0000000a"));

    await until(() => fake.messages().length === 0, "every message deleted");
    expect(events.map((e) => e.imageId)).toEqual(["ami-0000000a"]);
    expect(tally(counts)).toEqual({ received: 7, malformed: 6, matched: 1 });
    expect(logged("dropping a queued message that is not an AMI state event").map((l) => l.reason)).toEqual([
      "not JSON",
      "empty body",
      "foreign source",
      "foreign detail-type",
      "too large",
      "not a JSON object",
    ]);
  });

  it("leaves the message when the callback throws, and handles it when SQS delivers it again", async () => {
    let calls = 0;
    const { counts } = start({
      visibilityTimeoutSeconds: 1,
      onImageEvent: async () => {
        calls++;
        if (calls === 1) throw new Error("database is locked");
        return true;
      },
    });
    fake.send(amiEvent("ami-0123456789abcdef0"));

    await until(() => counts.includes("error"), "the failed callback");
    expect(fake.messages()).toHaveLength(1);
    expect(fake.callsOf("DeleteMessage")).toHaveLength(0);
    expect(logged("could not handle an AMI state event; SQS will deliver it again")[0]).toMatchObject({
      imageId: "ami-0123456789abcdef0",
      receiveCount: "1",
    });

    await until(() => fake.messages().length === 0, "the redelivered message deleted");
    expect(calls).toBe(2);
    expect(counts).toEqual(["received", "error", "received", "matched"]);
  });

  it("handles again a message whose delete failed", async () => {
    fake.failNext("DeleteMessage", INTERNAL_FAILURE);
    const { counts } = start({ visibilityTimeoutSeconds: 1 });
    fake.send(amiEvent("ami-0123456789abcdef0"));

    await until(() => fake.messages().length === 0, "the second delete");
    expect(counts).toEqual(["received", "matched", "received", "matched"]);
    expect(logged("could not delete handled AMI events; they will come again")).toHaveLength(1);
  });

  it("backs off after failed receives, doubling to a 30 s cap, then recovers and starts over", async () => {
    const sleeps: number[] = [];
    for (let i = 0; i < 6; i++) fake.failNext("ReceiveMessage", INTERNAL_FAILURE);
    fake.failNext("ReceiveMessage", REQUEST_THROTTLED);
    const { events } = start({
      sleep: async (ms) => {
        sleeps.push(ms);
        await delay(1);
      },
    });
    fake.send(amiEvent("ami-0123456789abcdef0"));

    await until(() => events.length === 1, "the event after the failures");
    expect(sleeps).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    const failures = logged("could not receive AMI events from the queue");
    expect(failures.map((l) => (l.err as { name?: string }).name)).toEqual([
      ...Array(6).fill("InternalFailure"),
      "RequestThrottled",
    ]);

    // A success resets the back-off: the receive after the next event fails, and waits 1 s again.
    await until(() => fake.waitingReceives === 1, "the next long poll");
    fake.failNext("ReceiveMessage", INTERNAL_FAILURE);
    fake.send(amiEvent("ami-00000002"));
    await until(() => sleeps.length === 8, "the next failure");
    expect(sleeps[7]).toBe(1_000);
  });

  it("gives up a receive that gets no answer after the wait plus the request timeout, and goes on", async () => {
    const timeouts = { connectTimeoutMs: 200, requestTimeoutMs: 300 };
    fake.hang("ReceiveMessage", 1);
    const sleeps: number[] = [];
    const { events } = start({
      sqs: sqsClient(timeouts),
      timeouts,
      waitTimeSeconds: 1,
      sleep: async (ms) => {
        sleeps.push(ms);
        await delay(1);
      },
    });
    fake.send(amiEvent("ami-0123456789abcdef0"));

    await until(() => events.length === 1, "the event after the hung receive");
    expect(sleeps[0]).toBe(1_000);
    expect(logged("could not receive AMI events from the queue")).toHaveLength(1);
  });

  it("stops a 20 s long poll promptly, and receives no more", async () => {
    const { consumer } = start();
    await until(() => fake.waitingReceives === 1, "the long poll");

    const began = Date.now();
    await consumer.stop();
    // Generous: the abort itself takes milliseconds.
    expect(Date.now() - began).toBeLessThan(3_000);
    await until(() => fake.waitingReceives === 0, "the fake to see the poll end");
    const receives = fake.callsOf("ReceiveMessage").length;
    await delay(200);
    expect(fake.callsOf("ReceiveMessage")).toHaveLength(receives);
    // Stopping again is harmless, at once or later.
    await Promise.all([consumer.stop(), consumer.stop()]);
  });

  it("stops promptly while backing off", async () => {
    fake.failNext("ReceiveMessage", INTERNAL_FAILURE);
    const { consumer } = start({ backoff: { initialMs: 60_000, maxMs: 60_000 } });
    await until(() => logged("could not receive AMI events from the queue").length === 1, "the failure");

    const began = Date.now();
    await consumer.stop();
    expect(Date.now() - began).toBeLessThan(3_000);
  });

  it("runs again after stop and start", async () => {
    const { consumer, events } = start();
    await until(() => fake.waitingReceives === 1, "the long poll");
    await consumer.stop();
    // Until the fake sees the aborted poll end, it could still hand that poll a message.
    await until(() => fake.waitingReceives === 0, "the fake to see the poll end");
    consumer.start();
    await until(() => fake.waitingReceives === 1, "the new long poll");
    fake.send(amiEvent("ami-0123456789abcdef0"));
    await until(() => events.length === 1, "the event");
  });

  it("keeps going when counting throws", async () => {
    const { events } = start({
      onCounted: () => {
        throw new Error("metrics registry broken");
      },
    });
    fake.send(amiEvent("ami-00000001"));
    await until(() => fake.messages().length === 0, "the delete");
    fake.send(amiEvent("ami-00000002"));
    await until(() => events.length === 2, "the second event");
  });

  it("builds its own client when given none, with the region and endpoint from the environment", async () => {
    vi.stubEnv("AWS_ACCESS_KEY_ID", CREDENTIALS.accessKeyId);
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", CREDENTIALS.secretAccessKey);
    vi.stubEnv("AWS_REGION", "eu-west-1");
    vi.stubEnv("AWS_ENDPOINT_URL_SQS", fake.url);
    const { events } = start({ sqs: undefined });
    fake.send(amiEvent("ami-0123456789abcdef0"));

    await until(() => fake.messages().length === 0, "the delete");
    expect(events).toHaveLength(1);
    expect(new Set(fake.calls.map((c) => c.region))).toEqual(new Set(["eu-west-1"]));
    expect(logged("the AWS SDK warns about the events queue")).toHaveLength(0);
  });

  it("signs for the region it is given, over the environment's", async () => {
    vi.stubEnv("AWS_ACCESS_KEY_ID", CREDENTIALS.accessKeyId);
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", CREDENTIALS.secretAccessKey);
    vi.stubEnv("AWS_REGION", "eu-west-1");
    vi.stubEnv("AWS_ENDPOINT_URL_SQS", fake.url);
    start({ sqs: undefined, region: "ap-southeast-2" });
    await until(() => fake.calls.length > 0, "a receive");
    expect(fake.calls[0]?.region).toBe("ap-southeast-2");
  });

  it("logs the SDK's warning about a queue URL off its endpoint once, not per call", async () => {
    vi.stubEnv("AWS_ACCESS_KEY_ID", CREDENTIALS.accessKeyId);
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", CREDENTIALS.secretAccessKey);
    vi.stubEnv("AWS_REGION", "eu-west-1");
    // No endpoint setting: the SDK resolves sqs.eu-west-1.amazonaws.com and goes to the QueueUrl's host.
    const { events } = start({ sqs: undefined, maxMessages: 1 });
    fake.send(amiEvent("ami-00000001"));
    fake.send(amiEvent("ami-00000002"));

    await until(() => events.length === 2 && fake.messages().length === 0, "both events");
    expect(fake.calls.length).toBeGreaterThanOrEqual(4);
    expect(logged("the AWS SDK warns about the events queue")).toHaveLength(1);
  });

  it.each([
    [{ waitTimeSeconds: 21 }, /waitTimeSeconds/],
    [{ maxMessages: 0 }, /maxMessages/],
    [{ maxMessages: 11 }, /maxMessages/],
    [{ visibilityTimeoutSeconds: -1 }, /visibilityTimeoutSeconds/],
  ])("refuses the option %j", (option, message) => {
    expect(() =>
      createEventsConsumer({
        queueUrl: fake.queueUrl(),
        logger: logger(),
        onImageEvent: async () => true,
        ...option,
      }),
    ).toThrow(message);
  });
});
