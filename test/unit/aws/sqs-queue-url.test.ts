import { describe, expect, it } from "vitest";
import { queueUrlProblem, regionOfQueueUrl } from "../../../src/aws/sqs-queue-url.js";

describe("regionOfQueueUrl", () => {
  it.each([
    ["https://sqs.eu-west-1.amazonaws.com/123456789012/q", "eu-west-1"],
    ["https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q", "cn-north-1"],
    ["https://sqs.us-gov-west-1.amazonaws.com/123456789012/q", "us-gov-west-1"],
    ["https://sqs-fips.us-east-2.amazonaws.com/123456789012/q", "us-east-2"],
    ["https://sqs.ap-southeast-2.api.aws/123456789012/q", "ap-southeast-2"],
    ["https://vpce-0a1b2c3d-abcdefgh.sqs.eu-central-1.vpce.amazonaws.com/123456789012/q", "eu-central-1"],
    ["https://eu-west-2.queue.amazonaws.com/123456789012/q", "eu-west-2"],
    ["https://queue.amazonaws.com/123456789012/q", "us-east-1"],
  ])("reads the region of %s", (url, region) => {
    expect(regionOfQueueUrl(url)).toBe(region);
  });

  it.each([
    "http://127.0.0.1:9324/000000000000/q",
    "https://sqs.eu-west-1.amazonaws.com.evil.example/123456789012/q",
    "not a url",
  ])("finds no region in %s", (url) => {
    expect(regionOfQueueUrl(url)).toBeUndefined();
  });
});

describe("queueUrlProblem", () => {
  it.each([
    "https://sqs.eu-west-1.amazonaws.com/123456789012/ami-bot-events",
    "https://sqs.eu-west-1.amazonaws.com/123456789012/ami_bot.fifo",
    `https://sqs.eu-west-1.amazonaws.com/123456789012/${"a".repeat(80)}`,
    "http://127.0.0.1:9324/000000000000/ami-events",
    "http://localhost:4566/000000000000/ami-events",
    "http://[::1]:4566/000000000000/ami-events",
  ])("accepts %s", (url) => {
    expect(queueUrlProblem(url)).toBeUndefined();
  });

  it.each([
    ["not a url", /^not a URL/],
    ["http://sqs.eu-west-1.amazonaws.com/123456789012/q", /^must be https:\/\//],
    ["http://127.0.0.1.evil.example/123456789012/q", /^must be https:\/\//],
    ["ftp://127.0.0.1/123456789012/q", /^must be an https:\/\/ queue URL/],
    ["https://example.com/123456789012/q", /^is not an SQS endpoint/],
    ["https://sqs.eu-west-1.amazonaws.com/ami-bot-events", /^the path must be/],
    ["https://sqs.eu-west-1.amazonaws.com/123456789012/", /^the path must be/],
    ["https://sqs.eu-west-1.amazonaws.com/123456789012/a/b", /^the path must be/],
    [`https://sqs.eu-west-1.amazonaws.com/123456789012/${"a".repeat(81)}`, /^the path must be/],
    ["https://sqs.eu-west-1.amazonaws.com/123456789012/q?Action=ReceiveMessage", /^must be a bare queue URL/],
    ["https://user:pw@sqs.eu-west-1.amazonaws.com/123456789012/q", /^must be a bare queue URL/],
  ])("refuses %s", (url, problem) => {
    expect(queueUrlProblem(url)).toMatch(problem);
  });
});
