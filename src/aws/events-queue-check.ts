/**
 * For `npm run doctor`: what the events queue (AMI_EVENTS_QUEUE_URL) looks like to the bot's own
 * identity, through a client built as the consumer's is (createSqsClient). One GetQueueAttributes call:
 * it reads nothing off the queue, so it cannot push an event towards the dead-letter queue. SDK errors are
 * thrown as they are, for the doctor to explain.
 */
import { GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";

/** Where SQS moves a message received maxReceiveCount times without being deleted. */
export interface DeadLetterQueue {
  readonly targetArn: string;
  readonly maxReceiveCount: number | undefined;
}

export type EventsQueueCheck =
  | {
      readonly ok: true;
      /** ApproximateNumberOfMessages: events waiting to be received. */
      readonly waiting: number;
      /** From the queue's RedrivePolicy; undefined when it has none. */
      readonly deadLetter: DeadLetterQueue | undefined;
    }
  /** No region to sign for: the URL names none (a local stand-in) and the SDK has none (AWS_REGION). */
  | { readonly ok: false; readonly problem: "no_region" };

export async function checkEventsQueue(
  sqs: SQSClient,
  queueUrl: string,
  signal: AbortSignal,
): Promise<EventsQueueCheck> {
  // The SDK would fail the call with a bare "Region is missing", which reads like a network fault.
  const region = await sqs.config.region().catch(() => undefined);
  if (!region) return { ok: false, problem: "no_region" };
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "RedrivePolicy"],
    }),
    { abortSignal: signal },
  );
  const attributes = out.Attributes ?? {};
  return {
    ok: true,
    waiting: Number(attributes.ApproximateNumberOfMessages ?? 0),
    deadLetter: parseRedrivePolicy(attributes.RedrivePolicy),
  };
}

/** `{"deadLetterTargetArn": "arn:…", "maxReceiveCount": 5}` (the count is a string when set as one). */
function parseRedrivePolicy(text: string | undefined): DeadLetterQueue | undefined {
  if (!text) return undefined;
  try {
    const policy = JSON.parse(text) as { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown };
    if (typeof policy.deadLetterTargetArn !== "string" || !policy.deadLetterTargetArn) return undefined;
    const count = Number(policy.maxReceiveCount);
    return {
      targetArn: policy.deadLetterTargetArn,
      maxReceiveCount: Number.isInteger(count) && count > 0 ? count : undefined,
    };
  } catch {
    return undefined;
  }
}
