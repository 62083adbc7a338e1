/**
 * fake-sqs through the real SDK: the queue semantics the events consumer's tests lean on.
 */
import {
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type FakeSqs, startFakeSqs } from "../../fakes/fake-sqs.js";

let fake: FakeSqs;
let sqs: SQSClient;
let QueueUrl: string;

beforeEach(async () => {
  fake = await startFakeSqs({ visibilityTimeoutSeconds: 1 });
  sqs = new SQSClient({
    region: "us-east-1",
    endpoint: fake.url,
    credentials: { accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret" },
    maxAttempts: 1,
  });
  QueueUrl = fake.queueUrl();
});

afterEach(async () => {
  sqs.destroy();
  await fake.close();
});

const receive = (input: Partial<ConstructorParameters<typeof ReceiveMessageCommand>[0]> = {}) =>
  sqs.send(new ReceiveMessageCommand({ QueueUrl, MessageSystemAttributeNames: ["All"], ...input }));

const counts = async () =>
  (await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["All"] }))).Attributes;

describe("fake-sqs", () => {
  it("hides a received message until its visibility timeout passes, then hands it out again", async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "one" }));
    const first = await receive();
    expect(first.Messages?.[0]).toMatchObject({ Body: "one", Attributes: { ApproximateReceiveCount: "1" } });
    expect(await counts()).toMatchObject({
      ApproximateNumberOfMessages: "0",
      ApproximateNumberOfMessagesNotVisible: "1",
    });
    expect((await receive()).Messages).toBeUndefined();

    const again = await receive({ WaitTimeSeconds: 3 });
    expect(again.Messages?.[0]).toMatchObject({ Body: "one", Attributes: { ApproximateReceiveCount: "2" } });
    expect(again.Messages?.[0]?.ReceiptHandle).not.toBe(first.Messages?.[0]?.ReceiptHandle);
  });

  it("holds a long poll until a message is sent", async () => {
    const polling = receive({ WaitTimeSeconds: 20 });
    while (fake.waitingReceives === 0) await new Promise((r) => setTimeout(r, 5));
    fake.send("late");
    expect((await polling).Messages?.map((m) => m.Body)).toEqual(["late"]);
  });

  it("deletes by the latest handle only, and ignores a stale one", async () => {
    fake.send("one");
    const stale = (await receive()).Messages?.[0]?.ReceiptHandle;
    const current = (await receive({ WaitTimeSeconds: 3 })).Messages?.[0]?.ReceiptHandle;
    await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: stale }));
    expect(fake.messages()).toHaveLength(1);
    await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: current }));
    expect(fake.messages()).toHaveLength(0);
  });

  it("answers SQS's errors for a made-up handle, a bad batch and an unknown queue", async () => {
    await expect(
      sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: "made-up" })),
    ).rejects.toMatchObject({
      name: "ReceiptHandleIsInvalid",
    });
    await expect(sqs.send(new DeleteMessageBatchCommand({ QueueUrl, Entries: [] }))).rejects.toMatchObject({
      name: "EmptyBatchRequest",
    });
    const twice = [
      { Id: "a", ReceiptHandle: "x" },
      { Id: "a", ReceiptHandle: "y" },
    ];
    await expect(sqs.send(new DeleteMessageBatchCommand({ QueueUrl, Entries: twice }))).rejects.toMatchObject(
      {
        name: "BatchEntryIdsNotDistinct",
      },
    );
    await expect(receive({ QueueUrl: `${fake.url}/${fake.accountId}/other` })).rejects.toMatchObject({
      name: "QueueDoesNotExist",
      Code: "AWS.SimpleQueueService.NonExistentQueue",
    });
    await expect(receive({ MaxNumberOfMessages: 11 })).rejects.toMatchObject({
      name: "InvalidParameterValue",
    });
  });

  it("reports a bad entry of a batch delete per entry", async () => {
    fake.send("one");
    const handle = (await receive()).Messages?.[0]?.ReceiptHandle;
    const out = await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl,
        Entries: [
          { Id: "ok", ReceiptHandle: handle },
          { Id: "bad", ReceiptHandle: "made-up" },
        ],
      }),
    );
    expect(out.Successful).toEqual([{ Id: "ok" }]);
    expect(out.Failed).toEqual([
      expect.objectContaining({ Id: "bad", Code: "ReceiptHandleIsInvalid", SenderFault: true }),
    ]);
    expect(fake.callsOf("DeleteMessageBatch")[0]?.contentType).toBe("application/x-amz-json-1.0");
  });
});
