import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseAmiStateEvent } from "../../../src/aws/ami-state-events.js";

/** The EC2 User Guide's example events (see the fixture's _source_url). */
const fixture = JSON.parse(
  readFileSync(new URL("../../fixtures/aws/ec2-ami-state-change.json", import.meta.url), "utf8"),
) as { available: Record<string, unknown>; failed: Record<string, unknown> };

const TIME = "2026-03-04T05:06:07Z";

/** The guide's event with a real time in place of its placeholder, and any fields replaced. */
function sample(overrides: Record<string, unknown> = {}, detail: Record<string, unknown> = {}) {
  const base = fixture.available;
  return {
    ...base,
    time: TIME,
    ...overrides,
    detail: { ...(base.detail as Record<string, unknown>), ...detail },
  };
}

const body = (value: unknown) => JSON.stringify(value);

describe("parseAmiStateEvent", () => {
  it("reads the EC2 User Guide's available event once its placeholder time is filled in", () => {
    expect(parseAmiStateEvent(body({ ...fixture.available, time: TIME }))).toEqual({
      ok: true,
      event: {
        imageId: "ami-0abcdef1234567890",
        state: "available",
        region: "us-east-1",
        account: "012345678901",
        time: TIME,
        errorMessage: undefined,
      },
    });
  });

  it("reads the guide's failed event with EC2's error message", () => {
    const parsed = parseAmiStateEvent(body({ ...fixture.failed, time: TIME }));
    expect(parsed).toMatchObject({
      ok: true,
      event: { state: "failed", errorMessage: "Description of failure" },
    });
  });

  it("refuses the guide's event as printed, because its time is a placeholder", () => {
    expect(parseAmiStateEvent(body(fixture.available))).toEqual({ ok: false, reason: "bad time" });
  });

  it.each(["pending", "available", "invalid", "deregistered", "transient", "failed", "error", "disabled"])(
    "reads the state %s",
    (state) => {
      const parsed = parseAmiStateEvent(body(sample({}, { State: state })));
      expect(parsed).toMatchObject({ ok: true, event: { state } });
    },
  );

  it.each(["ami-12345678", "ami-0123456789abcdef0"])("reads the image id %s (8 and 17 hex digits)", (id) => {
    expect(parseAmiStateEvent(body(sample({}, { ImageId: id })))).toMatchObject({
      ok: true,
      event: { imageId: id },
    });
  });

  it.each(["2026-03-04T05:06:07.123Z", "2026-03-04T05:06:07+00:00"])("reads the time %s", (time) => {
    expect(parseAmiStateEvent(body(sample({ time })))).toMatchObject({ ok: true, event: { time } });
  });

  it("ignores fields it does not use, at the top and in detail", () => {
    const parsed = parseAmiStateEvent(body(sample({ "replay-name": "x", extra: [1] }, { Later: { a: 1 } })));
    expect(parsed.ok).toBe(true);
  });

  it("treats an empty or null ErrorMessage as none and cuts a long one", () => {
    const of = (message: unknown) => {
      const parsed = parseAmiStateEvent(body(sample({}, { State: "failed", ErrorMessage: message })));
      return parsed.ok ? parsed.event.errorMessage : parsed.reason;
    };
    expect(of("")).toBeUndefined();
    expect(of("   ")).toBeUndefined();
    expect(of(null)).toBeUndefined();
    expect(of("x".repeat(5000))).toHaveLength(1000);
  });

  it("reads an event without ErrorMessage", () => {
    const event = sample();
    delete (event.detail as Record<string, unknown>).ErrorMessage;
    expect(parseAmiStateEvent(body(event))).toMatchObject({ ok: true, event: { errorMessage: undefined } });
  });

  it.each([
    ["an empty body", "", "empty body"],
    ["a blank body", " \n ", "empty body"],
    ["a body of 17 KiB", body(sample({}, { ErrorMessage: "x".repeat(17 * 1024) })), "too large"],
    ["garbage", "{not json", "not JSON"],
    ["a cut-off event", body(sample()).slice(0, 60), "not JSON"],
    ["an array", "[]", "not a JSON object"],
    ["null", "null", "not a JSON object"],
    ["a number", "42", "not a JSON object"],
    ["a string", '"EC2 AMI State Change"', "not a JSON object"],
    ["an empty object", "{}", "foreign source"],
    ["another service's event", body(sample({ source: "aws.s3" })), "foreign source"],
    ["a custom event posing as EC2's", body(sample({ source: "com.example.aws.ec2" })), "foreign source"],
    [
      "an instance event",
      body(sample({ "detail-type": "EC2 Instance State-change Notification" })),
      "foreign detail-type",
    ],
    ["no detail-type", body({ ...sample(), "detail-type": undefined }), "foreign detail-type"],
    ["a short account", body(sample({ account: "12345" })), "bad account"],
    ["an account as a number", body(sample({ account: 123456789012 })), "bad account"],
    ["no account", body({ ...sample(), account: undefined }), "bad account"],
    ["a made-up region", body(sample({ region: "mars" })), "bad region"],
    ["a region in capitals", body(sample({ region: "US-EAST-1" })), "bad region"],
    ["a time in words", body(sample({ time: "yesterday" })), "bad time"],
    ["a time as a number", body(sample({ time: 1_700_000_000 })), "bad time"],
    ["no detail", body({ ...sample(), detail: undefined }), "no detail"],
    ["detail as a string", body({ ...sample(), detail: "ami-12345678" }), "no detail"],
    ["an instance id", body(sample({}, { ImageId: "i-0123456789abcdef0" })), "bad image id"],
    ["an image id in capitals", body(sample({}, { ImageId: "ami-0ABCDEF1234567890" })), "bad image id"],
    ["an image id of 7 hex digits", body(sample({}, { ImageId: "ami-1234567" })), "bad image id"],
    ["an image id of 18 hex digits", body(sample({}, { ImageId: "ami-0123456789abcdef01" })), "bad image id"],
    ["no image id", body(sample({}, { ImageId: undefined })), "bad image id"],
    ["an unknown state", body(sample({}, { State: "done" })), "unknown state"],
    ["a state in capitals", body(sample({}, { State: "AVAILABLE" })), "unknown state"],
    ["no state", body(sample({}, { State: undefined })), "unknown state"],
    ["an ErrorMessage that is not text", body(sample({}, { ErrorMessage: 42 })), "bad error message"],
  ])("refuses %s: %s", (_label, text, reason) => {
    expect(parseAmiStateEvent(text)).toEqual({ ok: false, reason });
  });
});
