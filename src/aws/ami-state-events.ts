/**
 * EC2's "EC2 AMI State Change" events, as EventBridge delivers them to an SQS queue: the message body is
 * the event itself. The shape (EC2 User Guide, "Monitor AMI events using Amazon EventBridge"):
 *
 *   { "version": "0", "id": "…", "detail-type": "EC2 AMI State Change", "source": "aws.ec2",
 *     "account": "123456789012", "time": "2026-01-01T12:00:00Z", "region": "eu-west-1",
 *     "resources": ["arn:aws:ec2:eu-west-1::image/ami-…"],
 *     "detail": { "RequestId": "…", "ImageId": "ami-…", "State": "available", "ErrorMessage": "" } }
 *
 * Events are only a hint to check an image now: they carry no tags, arrive at best effort, and the watcher's
 * polling stays the source of truth. So anything not exactly of this shape is refused, with a reason for
 * the log, rather than guessed at.
 */
import { z } from "zod";
import { IMAGE_STATES, type ImageState } from "../domain/job.js";

/** One image's state change, from the event. */
export interface AmiStateEvent {
  readonly imageId: string;
  readonly state: ImageState;
  /** Where the image is: the account and region EC2 raised the event in (forwarding keeps both). */
  readonly region: string;
  readonly account: string;
  /** When EC2 raised it (ISO 8601). */
  readonly time: string;
  /** EC2's reason, for a failed image; undefined when EC2 gave none. */
  readonly errorMessage: string | undefined;
}

export type AmiStateEventParse =
  | { readonly ok: true; readonly event: AmiStateEvent }
  | { readonly ok: false; readonly reason: string };

export const AMI_STATE_CHANGE = "EC2 AMI State Change";
export const EC2_SOURCE = "aws.ec2";

/** An AMI event is about 500 bytes; anything far larger is not one, and is not worth parsing. */
const MAX_BODY_CHARS = 16 * 1024;
const MAX_ERROR_MESSAGE_CHARS = 1000;

const ACCOUNT = /^\d{12}$/;
const REGION = /^[a-z]{2,4}(-[a-z]+)+-\d+$/;
const IMAGE_ID = /^ami-[0-9a-f]{8,17}$/;

/** Checked first: an event of another kind is "foreign", not "malformed". */
const kindSchema = z.object(
  {
    source: z.literal(EC2_SOURCE, { error: "foreign source" }),
    "detail-type": z.literal(AMI_STATE_CHANGE, { error: "foreign detail-type" }),
  },
  { error: "not a JSON object" },
);

const eventSchema = z.object({
  account: z.string({ error: "bad account" }).regex(ACCOUNT, { error: "bad account" }),
  region: z.string({ error: "bad region" }).regex(REGION, { error: "bad region" }),
  time: z.iso.datetime({ offset: true, error: "bad time" }),
  detail: z.object(
    {
      ImageId: z.string({ error: "bad image id" }).regex(IMAGE_ID, { error: "bad image id" }),
      State: z.enum(IMAGE_STATES, { error: "unknown state" }),
      ErrorMessage: z.string({ error: "bad error message" }).nullish(),
    },
    { error: "no detail" },
  ),
});

/** Parses one message body; never throws. */
export function parseAmiStateEvent(body: string): AmiStateEventParse {
  if (body.trim() === "") return { ok: false, reason: "empty body" };
  if (body.length > MAX_BODY_CHARS) return { ok: false, reason: "too large" };
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return { ok: false, reason: "not JSON" };
  }
  const kind = kindSchema.safeParse(raw);
  if (!kind.success) return { ok: false, reason: kind.error.issues[0]?.message ?? "foreign event" };
  const parsed = eventSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: parsed.error.issues[0]?.message ?? "malformed" };
  const { account, region, time, detail } = parsed.data;
  const errorMessage = detail.ErrorMessage?.trim().slice(0, MAX_ERROR_MESSAGE_CHARS) || undefined;
  return {
    ok: true,
    event: { imageId: detail.ImageId, state: detail.State, region, account, time, errorMessage },
  };
}
