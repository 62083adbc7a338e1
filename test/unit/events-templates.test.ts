/**
 * deploy/events.yaml and deploy/events-forwarder.yaml: the properties push mode relies on. Generic checks
 * (no wildcard actions, plain YAML) are in manifest.test.ts for every template.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

type Node = Record<string, unknown>;

const load = (file: string) =>
  parse(readFileSync(new URL(`../../deploy/${file}`, import.meta.url), "utf8")) as {
    Resources: Record<string, { Type: string; Condition?: string; Properties: Node }>;
  };

const AMI_EVENTS = { source: ["aws.ec2"], "detail-type": ["EC2 AMI State Change"] };

describe("deploy/events.yaml", () => {
  const { Resources: r } = load("events.yaml");

  it("keeps events encrypted, short-lived, and moves a message failed five times to the DLQ", () => {
    const queue = r.Queue?.Properties ?? {};
    expect(queue.SqsManagedSseEnabled).toBe(true);
    expect(r.DeadLetterQueue?.Properties.SqsManagedSseEnabled).toBe(true);
    expect(queue.MessageRetentionPeriod).toBe(86400);
    expect(queue.RedrivePolicy).toEqual({
      deadLetterTargetArn: { "Fn::GetAtt": ["DeadLetterQueue", "Arn"] },
      maxReceiveCount: 5,
    });
    // Longer than the bot's handling (a look-up and a DescribeImages call) and than its 20 s long poll.
    expect(queue.VisibilityTimeout).toBeGreaterThan(20);
  });

  it("routes only AMI state events from the bot's bus to the queue", () => {
    const rule = r.QueueRule?.Properties ?? {};
    expect(rule.EventBusName).toEqual({ Ref: "EventBus" });
    expect(rule.EventPattern).toEqual(AMI_EVENTS);
    const targets = rule.Targets as Node[];
    expect(targets).toHaveLength(1);
    expect(targets[0]?.Arn).toEqual({ "Fn::GetAtt": ["Queue", "Arn"] });
    // SQS targets are authorised by the queue policy; a RoleArn would break delivery.
    expect(targets[0]).not.toHaveProperty("RoleArn");
  });

  it("lets only that rule send to the queues", () => {
    for (const name of ["QueuePolicy", "DeadLetterQueuePolicy"]) {
      const statements = (r[name]?.Properties.PolicyDocument as { Statement: Node[] } | undefined)?.Statement;
      expect(statements).toEqual([
        expect.objectContaining({
          Effect: "Allow",
          Principal: { Service: "events.amazonaws.com" },
          Action: "sqs:SendMessage",
          Condition: { ArnEquals: { "aws:SourceArn": { "Fn::GetAtt": ["QueueRule", "Arn"] } } },
        }),
      ]);
    }
  });

  it("lets the listed target accounts put only EC2's AMI events on the bus", () => {
    const policy = r.EventBus?.Properties.Policy as { "Fn::If": [string, { Statement: Node[] }, unknown] };
    const [condition, document] = policy["Fn::If"];
    expect(condition).toBe("HasTargetAccounts");
    expect(document.Statement).toEqual([
      expect.objectContaining({
        Principal: { AWS: { Ref: "TargetAccountIds" } },
        Action: "events:PutEvents",
        Condition: {
          "ForAllValues:StringEquals": { "events:source": "aws.ec2" },
          StringEquals: { "events:detail-type": "EC2 AMI State Change" },
        },
      }),
    ]);
  });

  it("gives the bot receive, delete and attribute reads on the queue alone", () => {
    const statements = (r.BotPolicy?.Properties.PolicyDocument as { Statement: Node[] } | undefined)
      ?.Statement;
    expect(statements).toEqual([
      {
        Sid: "ReceiveAmiEvents",
        Effect: "Allow",
        Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
        Resource: { "Fn::GetAtt": ["Queue", "Arn"] },
      },
    ]);
  });
});

describe("deploy/events-forwarder.yaml", () => {
  const { Resources: r } = load("events-forwarder.yaml");

  it("forwards AMI state events from the default bus to the bot's bus with its own role", () => {
    const rule = r.ForwardRule?.Properties ?? {};
    expect(rule.EventBusName).toBe("default");
    expect(rule.EventPattern).toEqual(AMI_EVENTS);
    expect(rule.Targets).toEqual([
      expect.objectContaining({
        Arn: { Ref: "HubEventBusArn" },
        RoleArn: { "Fn::GetAtt": ["ForwardRole", "Arn"] },
      }),
    ]);
  });

  it("lets the role put events on the bot's bus only, and only this stack's rule assume it", () => {
    const role = r.ForwardRole?.Properties ?? {};
    const policies = role.Policies as { PolicyDocument: { Statement: Node[] } }[];
    expect(policies.flatMap((p) => p.PolicyDocument.Statement)).toEqual([
      {
        Sid: "PutOnAmiBotBus",
        Effect: "Allow",
        Action: "events:PutEvents",
        Resource: { Ref: "HubEventBusArn" },
      },
    ]);
    const trust = (role.AssumeRolePolicyDocument as { Statement: Node[] }).Statement;
    expect(trust).toEqual([
      expect.objectContaining({
        Principal: { Service: "events.amazonaws.com" },
        Condition: {
          StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } },
          ArnEquals: {
            "aws:SourceArn": {
              "Fn::Sub": expect.stringMatching(/^arn:\$\{AWS::Partition\}:events:.*:rule\/\$\{RuleName\}$/),
            },
          },
        },
      }),
    ]);
  });
});
