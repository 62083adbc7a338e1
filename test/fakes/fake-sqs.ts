/**
 * A local stand-in for Amazon SQS on 127.0.0.1, speaking the JSON protocol @aws-sdk/client-sqs sends
 * (checked against its serializers): every call is `POST /`, `content-type: application/x-amz-json-1.0`,
 * `x-amz-target: AmazonSQS.<Operation>`, a JSON body naming the QueueUrl. Answers are JSON; errors are
 * `{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": …}` with the HTTP status AWS uses and
 * the `x-amzn-query-error` header SQS adds for query-compatible clients. Signatures are not checked; the
 * SigV4 credential scope's region is recorded.
 *
 * What is modelled, deliberately little:
 * - Queues named at start (`queues`), addressed by the path `/<account>/<name>` of the QueueUrl, whatever
 *   its host; any other QueueUrl is QueueDoesNotExist.
 * - SendMessage (1 byte to 1 MiB, DelaySeconds), with the body's MD5 (the SDK checks it).
 * - ReceiveMessage: MaxNumberOfMessages 1–10, VisibilityTimeout 0–43200 (else the queue's), WaitTimeSeconds
 *   0–20: with no visible message the request is held until one becomes visible (sent, or its visibility
 *   timeout passed) or the wait ends; a request the client gave up on (aborted) takes no message. Each
 *   receipt gets a new ReceiptHandle; ApproximateReceiveCount, SentTimestamp and
 *   ApproximateFirstReceiveTimestamp come back when asked for (MessageSystemAttributeNames or the older
 *   AttributeNames, or All). Messages come oldest first (the fake is FIFO-ish; SQS standard queues are not).
 * - DeleteMessage and DeleteMessageBatch (1–10 entries, distinct ids of [A-Za-z0-9_-]{1,80}): a current
 *   handle deletes; a handle this fake issued earlier (the message was received again since, or is gone)
 *   succeeds and deletes nothing, as SQS may; any other handle is ReceiptHandleIsInvalid (per entry in a
 *   batch).
 * - GetQueueAttributes: ApproximateNumberOfMessages (visible), ApproximateNumberOfMessagesNotVisible (in
 *   flight), VisibilityTimeout, and RedrivePolicy for a queue given one (`redrivePolicies`; reported only).
 * - Faults on demand: `failNext` (the next N calls of an operation answer an error), `hang` (calls are
 *   accepted and never answered).
 * - Not modelled: signatures, FIFO queues, message attributes, dead-letter redrive, retention, batch sends.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeSqsCall {
  readonly operation: string;
  readonly input: Readonly<Record<string, unknown>>;
  /** The region of the SigV4 credential scope, when the request was signed. */
  readonly region: string | undefined;
  readonly contentType: string | undefined;
  readonly at: number;
}

export interface FakeSqsMessage {
  readonly messageId: string;
  readonly body: string;
  readonly sentAt: number;
  receiveCount: number;
  firstReceivedAt: number | undefined;
  /** Not received before this time (a delay, or the visibility timeout of its last receipt). */
  visibleAt: number;
  /** The handle of its latest receipt. */
  receiptHandle: string | undefined;
}

/** An error answer: HTTP status, the JSON `__type`, and the `x-amzn-query-error` code. */
export interface FakeSqsFault {
  readonly status: number;
  readonly type: string;
  readonly queryCode?: string;
  readonly message?: string;
  readonly count?: number;
}

/** SQS's own 500. */
export const INTERNAL_FAILURE: FakeSqsFault = {
  status: 500,
  type: "com.amazon.coral.service#InternalFailure",
  queryCode: "InternalFailure",
  message: "We encountered an internal error. Please try again.",
};

/** Throttling, as the SDK's model declares it for SQS. */
export const REQUEST_THROTTLED: FakeSqsFault = {
  status: 403,
  type: "com.amazonaws.sqs#RequestThrottled",
  queryCode: "RequestThrottled",
  message: "Rate exceeded",
};

export interface FakeSqsOptions {
  readonly accountId?: string;
  /** Queue names; default one, `ami-events`. */
  readonly queues?: readonly string[];
  /** The queues' default visibility timeout; SQS's default is 30 s. */
  readonly visibilityTimeoutSeconds?: number;
  /** A queue's RedrivePolicy by queue name, as GetQueueAttributes reports it; nothing is ever moved. */
  readonly redrivePolicies?: Readonly<
    Record<string, { readonly deadLetterTargetArn: string; readonly maxReceiveCount: number }>
  >;
  readonly port?: number;
}

export interface FakeSqs {
  readonly url: string;
  readonly accountId: string;
  /** The QueueUrl of a queue (default: the first). */
  queueUrl(name?: string): string;
  /** Every call received (failed ones too), oldest first; `calls.length = 0` clears it. */
  readonly calls: FakeSqsCall[];
  callsOf(operation: string): FakeSqsCall[];
  /** Puts a message in a queue directly, as EventBridge would; returns its id. */
  send(body: string, queue?: string): string;
  /** The queue's messages not yet deleted, visible or in flight. */
  messages(queue?: string): readonly FakeSqsMessage[];
  /** Receives being held right now (long polls waiting for a message). */
  readonly waitingReceives: number;
  /** The next `count` calls (default 1) of `operation` answer this error. */
  failNext(operation: string, fault: FakeSqsFault): void;
  /** The next `count` calls of `operation` (default: all until stopHanging) are never answered. */
  hang(operation: string, count?: number): void;
  stopHanging(): void;
  close(): Promise<void>;
}

/** An SQS error answer. */
class SqsFault extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly queryCode: string,
    message: string,
  ) {
    super(message);
  }
}

const invalidParameter = (message: string) =>
  new SqsFault(400, "com.amazonaws.sqs#InvalidParameterValue", "InvalidParameterValue", message);

const MAX_BODY_BYTES = 1024 * 1024;
const RECEIPT_PREFIX = "fake-sqs-";

const md5 = (text: string) => createHash("md5").update(text, "utf8").digest("hex");

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** An integer parameter within bounds, or `fallback` when absent. */
function intParam(input: Record<string, unknown>, name: string, min: number, max: number, fallback: number) {
  const value = input[name];
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
    throw invalidParameter(
      `Value ${String(value)} for parameter ${name} is invalid. Must be between ${min} and ${max}.`,
    );
  return value;
}

export async function startFakeSqs(options: FakeSqsOptions = {}): Promise<FakeSqs> {
  const accountId = options.accountId ?? "123456789012";
  const names = options.queues ?? ["ami-events"];
  const defaultVisibility = options.visibilityTimeoutSeconds ?? 30;
  const queues = new Map(names.map((name) => [name, [] as FakeSqsMessage[]]));
  const calls: FakeSqsCall[] = [];
  const faults = new Map<string, (FakeSqsFault & { left: number })[]>();
  const hangs = new Map<string, number>();
  /** Every handle ever issued, so a stale one is told apart from a made-up one. */
  const issuedHandles = new Set<string>();
  /** Woken whenever a message is sent, so held receives look again. */
  const wakers = new Set<() => void>();
  let waitingReceives = 0;
  let baseUrl = "";

  const queueOf = (input: Record<string, unknown>): FakeSqsMessage[] => {
    const url = typeof input.QueueUrl === "string" ? input.QueueUrl : "";
    let path = "";
    try {
      path = new URL(url).pathname;
    } catch {
      // Not a URL: no such queue.
    }
    const [, account, name] = path.split("/");
    const queue = account === accountId && name !== undefined ? queues.get(name) : undefined;
    if (!queue)
      throw new SqsFault(
        400,
        "com.amazonaws.sqs#QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        "The specified queue does not exist.",
      );
    return queue;
  };

  const sendTo = (queue: FakeSqsMessage[], body: string, delaySeconds = 0): FakeSqsMessage => {
    const now = Date.now();
    const message: FakeSqsMessage = {
      messageId: randomUUID(),
      body,
      sentAt: now,
      receiveCount: 0,
      firstReceivedAt: undefined,
      visibleAt: now + delaySeconds * 1000,
      receiptHandle: undefined,
    };
    queue.push(message);
    for (const wake of wakers) wake();
    return message;
  };

  const checkBody = (body: unknown): string => {
    if (typeof body !== "string" || body.length === 0)
      throw new SqsFault(
        400,
        "com.amazonaws.sqs#MissingParameter",
        "MissingParameter",
        "The request must contain the parameter MessageBody.",
      );
    if (Buffer.byteLength(body, "utf8") > MAX_BODY_BYTES)
      throw invalidParameter(
        `One or more parameters are invalid. Reason: Message must be shorter than ${MAX_BODY_BYTES} bytes.`,
      );
    // SQS accepts only the characters XML allows.
    if (/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\uD800-\uDFFF]/.test(body))
      throw new SqsFault(
        400,
        "com.amazonaws.sqs#InvalidMessageContents",
        "InvalidMessageContents",
        "Invalid characters found.",
      );
    return body;
  };

  const visible = (queue: FakeSqsMessage[], now: number) => queue.filter((m) => m.visibleAt <= now);

  /** Resolves when a message may have become visible, the wait ends, or the client went away. */
  const waitForMessages = (queue: FakeSqsMessage[], until: number, gone: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      const now = Date.now();
      const nextVisible = Math.min(...queue.map((m) => m.visibleAt).filter((t) => t > now));
      const timer = setTimeout(done, Math.max(0, Math.min(until, nextVisible) - now));
      const poll = setInterval(() => gone() && done(), 20);
      function done() {
        clearTimeout(timer);
        clearInterval(poll);
        wakers.delete(done);
        resolve();
      }
      wakers.add(done);
    });

  const wantsAttribute = (input: Record<string, unknown>, name: string) => {
    const asked = [input.MessageSystemAttributeNames, input.AttributeNames].flatMap((v) =>
      Array.isArray(v) ? v : [],
    );
    return asked.includes("All") || asked.includes(name);
  };

  async function receive(input: Record<string, unknown>, gone: () => boolean) {
    const queue = queueOf(input);
    const max = intParam(input, "MaxNumberOfMessages", 1, 10, 1);
    const visibility = intParam(input, "VisibilityTimeout", 0, 43_200, defaultVisibility);
    const wait = intParam(input, "WaitTimeSeconds", 0, 20, 0);
    const until = Date.now() + wait * 1000;
    waitingReceives++;
    try {
      while (visible(queue, Date.now()).length === 0 && Date.now() < until && !gone())
        await waitForMessages(queue, until, gone);
    } finally {
      waitingReceives--;
    }
    if (gone()) return {};
    const now = Date.now();
    const picked = visible(queue, now).slice(0, max);
    const attributes = (m: FakeSqsMessage): Record<string, string> => {
      const all: Record<string, string> = {
        ApproximateReceiveCount: String(m.receiveCount),
        SentTimestamp: String(m.sentAt),
        ApproximateFirstReceiveTimestamp: String(m.firstReceivedAt ?? now),
      };
      return Object.fromEntries(Object.entries(all).filter(([name]) => wantsAttribute(input, name)));
    };
    const messages = picked.map((m) => {
      m.receiveCount++;
      m.firstReceivedAt ??= now;
      m.visibleAt = now + visibility * 1000;
      m.receiptHandle = `${RECEIPT_PREFIX}${randomBytes(24).toString("base64url")}`;
      issuedHandles.add(m.receiptHandle);
      const attrs = attributes(m);
      return {
        MessageId: m.messageId,
        ReceiptHandle: m.receiptHandle,
        MD5OfBody: md5(m.body),
        Body: m.body,
        ...(Object.keys(attrs).length > 0 && { Attributes: attrs }),
      };
    });
    return messages.length > 0 ? { Messages: messages } : {};
  }

  /** Deletes by handle; throws ReceiptHandleIsInvalid for a handle this fake never issued. */
  function deleteByHandle(queue: FakeSqsMessage[], handle: unknown) {
    if (typeof handle !== "string" || !issuedHandles.has(handle))
      throw new SqsFault(
        404,
        "com.amazonaws.sqs#ReceiptHandleIsInvalid",
        "ReceiptHandleIsInvalid",
        `The input receipt handle "${String(handle)}" is not a valid receipt handle.`,
      );
    const at = queue.findIndex((m) => m.receiptHandle === handle);
    if (at >= 0) queue.splice(at, 1);
  }

  function deleteBatch(input: Record<string, unknown>) {
    const queue = queueOf(input);
    const entries = Array.isArray(input.Entries) ? (input.Entries as Record<string, unknown>[]) : [];
    if (entries.length === 0)
      throw new SqsFault(
        400,
        "com.amazonaws.sqs#EmptyBatchRequest",
        "AWS.SimpleQueueService.EmptyBatchRequest",
        "There should be at least one DeleteMessageBatchRequestEntry in the request.",
      );
    if (entries.length > 10)
      throw new SqsFault(
        400,
        "com.amazonaws.sqs#TooManyEntriesInBatchRequest",
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        `Maximum number of entries per request are 10. You have sent ${entries.length}.`,
      );
    const ids = entries.map((e) => e.Id);
    if (ids.some((id) => typeof id !== "string" || !/^[\w-]{1,80}$/.test(id)))
      throw new SqsFault(
        400,
        "com.amazonaws.sqs#InvalidBatchEntryId",
        "AWS.SimpleQueueService.InvalidBatchEntryId",
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
      );
    if (new Set(ids).size !== ids.length)
      throw new SqsFault(
        400,
        "com.amazonaws.sqs#BatchEntryIdsNotDistinct",
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        "Id is repeated.",
      );
    const successful: { Id: unknown }[] = [];
    const failed: { Id: unknown; SenderFault: boolean; Code: string; Message: string }[] = [];
    for (const entry of entries) {
      try {
        deleteByHandle(queue, entry.ReceiptHandle);
        successful.push({ Id: entry.Id });
      } catch (error) {
        const fault = error as SqsFault;
        failed.push({ Id: entry.Id, SenderFault: true, Code: fault.queryCode, Message: fault.message });
      }
    }
    return { Successful: successful, Failed: failed };
  }

  function attributes(input: Record<string, unknown>) {
    const queue = queueOf(input);
    const now = Date.now();
    const asked = Array.isArray(input.AttributeNames) ? input.AttributeNames : [];
    const redrive = options.redrivePolicies?.[[...queues].find(([, q]) => q === queue)?.[0] ?? ""];
    const all: Record<string, string> = {
      ApproximateNumberOfMessages: String(visible(queue, now).length),
      ApproximateNumberOfMessagesNotVisible: String(queue.filter((m) => m.visibleAt > now).length),
      VisibilityTimeout: String(defaultVisibility),
      ...(redrive && { RedrivePolicy: JSON.stringify(redrive) }),
    };
    return {
      Attributes: Object.fromEntries(
        Object.entries(all).filter(([name]) => asked.includes("All") || asked.includes(name)),
      ),
    };
  }

  async function answer(operation: string, input: Record<string, unknown>, gone: () => boolean) {
    switch (operation) {
      case "SendMessage": {
        const body = checkBody(input.MessageBody);
        const delay = intParam(input, "DelaySeconds", 0, 900, 0);
        const message = sendTo(queueOf(input), body, delay);
        return { MD5OfMessageBody: md5(body), MessageId: message.messageId };
      }
      case "ReceiveMessage":
        return receive(input, gone);
      case "DeleteMessage":
        deleteByHandle(queueOf(input), input.ReceiptHandle);
        return {};
      case "DeleteMessageBatch":
        return deleteBatch(input);
      case "GetQueueAttributes":
        return attributes(input);
      default:
        throw new SqsFault(
          400,
          "com.amazon.coral.service#UnknownOperationException",
          "UnknownOperation",
          `fake-sqs does not model ${operation}`,
        );
    }
  }

  function reply(res: ServerResponse, status: number, body: unknown, queryCode?: string) {
    if (res.destroyed) return;
    res.writeHead(status, {
      "content-type": "application/x-amz-json-1.0",
      "x-amzn-requestid": randomUUID(),
      ...(queryCode && { "x-amzn-query-error": `${queryCode};${status >= 500 ? "Receiver" : "Sender"}` }),
    });
    res.end(JSON.stringify(body));
  }

  const server = createServer((req, res) => {
    void (async () => {
      const text = await readBody(req);
      const target = String(req.headers["x-amz-target"] ?? "");
      const contentType = req.headers["content-type"];
      const region = /Credential=[^/,\s]+\/\d{8}\/([^/]+)\/sqs\/aws4_request/.exec(
        req.headers.authorization ?? "",
      )?.[1];
      const operation = target.startsWith("AmazonSQS.") ? target.slice("AmazonSQS.".length) : "";
      let input: Record<string, unknown> = {};
      try {
        input = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        // Answered below as a SerializationException.
      }
      calls.push({ operation, input, region, contentType, at: Date.now() });
      const hung = hangs.get(operation);
      if (hung !== undefined) {
        if (hung <= 1) hangs.delete(operation);
        else hangs.set(operation, hung - 1);
        return;
      }
      let gone = false;
      res.on("close", () => {
        gone = !res.writableEnded;
      });
      try {
        if (req.method !== "POST" || !operation || contentType !== "application/x-amz-json-1.0")
          throw new SqsFault(
            400,
            "com.amazon.coral.service#UnknownOperationException",
            "UnknownOperation",
            "fake-sqs: expected POST, x-amz-target AmazonSQS.<Op>, content-type application/x-amz-json-1.0",
          );
        if (text && Object.keys(input).length === 0 && text.trim() !== "{}")
          throw new SqsFault(
            400,
            "com.amazon.coral.service#SerializationException",
            "SerializationException",
            "Malformed JSON body",
          );
        const queued = faults.get(operation) ?? [];
        const fault = queued[0];
        if (fault) {
          if (--fault.left <= 0) queued.shift();
          throw new SqsFault(
            fault.status,
            fault.type,
            fault.queryCode ?? fault.type.split("#").pop() ?? "",
            fault.message ?? fault.type,
          );
        }
        reply(res, 200, await answer(operation, input, () => gone));
      } catch (error) {
        const fault =
          error instanceof SqsFault
            ? error
            : new SqsFault(500, "com.amazon.coral.service#InternalFailure", "InternalFailure", String(error));
        reply(res, fault.status, { __type: fault.type, message: fault.message }, fault.queryCode);
      }
    })().catch((error: unknown) => {
      res.statusCode = 500;
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const nameOf = (queue?: string) => queue ?? names[0] ?? "ami-events";
  const queueNamed = (queue?: string) => {
    const found = queues.get(nameOf(queue));
    if (!found) throw new Error(`fake-sqs: no queue ${nameOf(queue)}`);
    return found;
  };

  return {
    url: baseUrl,
    accountId,
    queueUrl: (name) => `${baseUrl}/${accountId}/${nameOf(name)}`,
    calls,
    callsOf: (operation) => calls.filter((c) => c.operation === operation),
    send: (body, queue) => sendTo(queueNamed(queue), checkBody(body)).messageId,
    messages: (queue) => [...queueNamed(queue)],
    get waitingReceives() {
      return waitingReceives;
    },
    failNext(operation, fault) {
      faults.set(operation, [...(faults.get(operation) ?? []), { ...fault, left: fault.count ?? 1 }]);
    },
    hang(operation, count = Number.POSITIVE_INFINITY) {
      hangs.set(operation, count);
    },
    stopHanging() {
      hangs.clear();
    },
    async close() {
      for (const wake of wakers) wake();
      // The SDK keeps connections alive; without closing them, close() would wait for their timeout.
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
