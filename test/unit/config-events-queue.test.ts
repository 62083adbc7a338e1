import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { problemsOf } from "../support/config-problems.js";

const BASE = {
  SLACK_BOT_TOKEN: "xoxb-1-2-3",
  SLACK_SIGNING_SECRET: "s3cret",
  AMI_TARGET_ROLE_ARN: "arn:aws:iam::123456789012:role/ami-bot",
  AMI_TARGET_REGIONS: "eu-west-1",
};

const QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/ami-bot-events";

describe("loadConfig: AMI_EVENTS_QUEUE_URL", () => {
  it("leaves push mode off when the variable is unset or blank", () => {
    expect(loadConfig(BASE).eventsQueueUrl).toBeUndefined();
    expect(loadConfig({ ...BASE, AMI_EVENTS_QUEUE_URL: "  " }).eventsQueueUrl).toBeUndefined();
  });

  it.each([QUEUE, "http://127.0.0.1:9324/000000000000/ami-events", "http://localhost:4566/000000000000/q"])(
    "reads %s because it is an SQS queue over https or a local stand-in",
    (url) => {
      expect(loadConfig({ ...BASE, AMI_EVENTS_QUEUE_URL: ` ${url} ` }).eventsQueueUrl).toBe(url);
    },
  );

  it.each([
    ["http://sqs.eu-west-1.amazonaws.com/123456789012/ami-bot-events", "must be https://"],
    ["https://sqs.eu-west-1.amazonaws.com/ami-bot-events", "the path must be"],
    ["https://example.com/123456789012/ami-bot-events", "is not an SQS endpoint"],
    ["ami-bot-events", "not a URL"],
  ])("refuses %s, naming the variable", (url, problem) => {
    const problems = problemsOf({ ...BASE, AMI_EVENTS_QUEUE_URL: url });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^AMI_EVENTS_QUEUE_URL: ${problem}`));
  });

  it("reports a bad queue URL in the same round as other problems", () => {
    const problems = problemsOf({ ...BASE, PORT: "x", AMI_EVENTS_QUEUE_URL: "nope" });
    expect(problems).toEqual([
      "PORT must be a port number",
      expect.stringMatching(/^AMI_EVENTS_QUEUE_URL: /),
    ]);
  });
});
