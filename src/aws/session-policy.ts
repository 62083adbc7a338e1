/**
 * Inline session policies passed to AssumeRole. A session's permissions are the intersection of the
 * role's policies and this one, so even a broad target role can only image the one chosen instance.
 */

export interface PolicyScope {
  readonly partition: string;
  readonly accountId: string;
  readonly region: string;
}

export interface PolicyDocument {
  readonly Version: "2012-10-17";
  readonly Statement: readonly {
    readonly Sid: string;
    readonly Effect: "Allow";
    readonly Action: string | readonly string[];
    readonly Resource: string | readonly string[];
    readonly Condition?: Record<string, Record<string, string | readonly string[]>>;
  }[];
}

const DESCRIBE_ACTIONS = ["ec2:DescribeImages", "ec2:DescribeSnapshots", "ec2:DescribeInstances"];

function regionOnly(region: string) {
  return { StringEquals: { "aws:RequestedRegion": region } };
}

/** CreateImage of exactly one instance, tagging only what that call creates. */
export function createImagePolicy(scope: PolicyScope, instanceId: string): PolicyDocument {
  const { partition, accountId, region } = scope;
  // Never widen by accident: a wildcard or a malformed id must not become "instance/*".
  if (!/^i-([0-9a-f]{8}|[0-9a-f]{17})$/.test(instanceId))
    throw new Error(`not an instance id: ${instanceId}`);
  if (!/^\d{12}$/.test(accountId) || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region))
    throw new Error("a session policy needs an account id and a region");
  const created = [`arn:${partition}:ec2:${region}::image/*`, `arn:${partition}:ec2:${region}::snapshot/*`];
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ImageThisInstanceOnly",
        Effect: "Allow",
        Action: "ec2:CreateImage",
        Resource: [`arn:${partition}:ec2:${region}:${accountId}:instance/${instanceId}`, ...created],
      },
      {
        Sid: "TagOnlyWhatCreateImageMakes",
        Effect: "Allow",
        Action: "ec2:CreateTags",
        Resource: created,
        Condition: { StringEquals: { "ec2:CreateAction": "CreateImage" } },
      },
      {
        Sid: "ReadInThisRegion",
        Effect: "Allow",
        Action: DESCRIBE_ACTIONS,
        Resource: "*",
        Condition: regionOnly(region),
      },
    ],
  };
}

/** Read-only: listing instances for the picker and watching images. Describe calls take no resource ARNs. */
export function readOnlyPolicy(scope: PolicyScope): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ReadInThisRegion",
        Effect: "Allow",
        Action: DESCRIBE_ACTIONS,
        Resource: "*",
        Condition: regionOnly(scope.region),
      },
    ],
  };
}
