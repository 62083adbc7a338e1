/**
 * Inline session policies passed to AssumeRole. A session's permissions are the intersection of the
 * role's policies and this one, so even a broad target role can only image the one chosen instance, and
 * each read-only session can make only the calls its user makes.
 */
import type { Target } from "../domain/target.js";

export interface PolicyScope {
  readonly partition: string;
  readonly accountId: string;
  readonly region: string;
}

/** What of a target shapes its CreateImage policy. */
export type PolicyTarget = Pick<Target, "partition" | "accountId" | "instanceScope" | "tagKeys">;

type Conditions = Record<string, Record<string, string | readonly string[]>>;

export interface PolicyDocument {
  readonly Version: "2012-10-17";
  readonly Statement: readonly {
    readonly Sid: string;
    readonly Effect: "Allow";
    readonly Action: string | readonly string[];
    readonly Resource: string | readonly string[];
    readonly Condition?: Conditions;
  }[];
}

/** AWS's limit on the plaintext of AssumeRole's Policy; a longer one makes every AssumeRole fail. */
export const MAX_SESSION_POLICY_CHARS = 2048;

/**
 * Caps for the config loader: with tags and key patterns of about 20 characters, a target at both caps
 * stays under MAX_SESSION_POLICY_CHARS in any partition and region. Longer strings can still overflow, so
 * the loader checks worstCaseCreatePolicyLength too.
 */
export const MAX_REQUIRED_INSTANCE_TAGS = 5;
export const MAX_TAG_KEY_PATTERNS = 15;

/** The longest instance id AWS issues (`i-` + 17 hex), for worst-case lengths. */
const LONGEST_INSTANCE_ID = `i-${"f".repeat(17)}`;

/** Tag keys ami-bot sets itself on every image, so always allowed whatever the target's tagKeys. */
const BOT_TAG_KEYS = ["Name", "ami-bot:*"];

function regionOnly(region: string): Conditions {
  return { StringEquals: { "aws:RequestedRegion": region } };
}

function buildCreateImagePolicy(target: PolicyTarget, region: string, instanceId: string): PolicyDocument {
  const { partition, accountId } = target;
  // Never widen by accident: a wildcard or a malformed id must not become "instance/*".
  if (!/^i-([0-9a-f]{8}|[0-9a-f]{17})$/.test(instanceId))
    throw new Error(`not an instance id: ${instanceId}`);
  if (!/^\d{12}$/.test(accountId) || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region))
    throw new Error("a session policy needs an account id and a region");
  const required = Object.entries(target.instanceScope.requiredTags);
  const created = [`arn:${partition}:ec2:${region}::image/*`, `arn:${partition}:ec2:${region}::snapshot/*`];
  // ForAllValues: every tag key in the request must match one pattern (no tags at all passes).
  const tagKeys: Conditions = target.tagKeys
    ? { "ForAllValues:StringLike": { "aws:TagKeys": [...new Set([...target.tagKeys, ...BOT_TAG_KEYS])] } }
    : {};
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ImageThisInstanceOnly",
        Effect: "Allow",
        Action: "ec2:CreateImage",
        Resource: `arn:${partition}:ec2:${region}:${accountId}:instance/${instanceId}`,
        // AWS checks the instance's tags itself, so an instance retagged after the picker saw it is refused.
        ...(required.length > 0 && {
          Condition: {
            StringEquals: Object.fromEntries(
              required.map(([key, value]) => [`aws:ResourceTag/${key}`, value]),
            ),
          },
        }),
      },
      // The new image and snapshots do not carry the instance's tags, so they cannot share its statement.
      {
        Sid: "IntoNewImageAndSnapshots",
        Effect: "Allow",
        Action: "ec2:CreateImage",
        Resource: created,
        ...(target.tagKeys && { Condition: tagKeys }),
      },
      {
        Sid: "TagOnlyWhatCreateImageMakes",
        Effect: "Allow",
        Action: "ec2:CreateTags",
        Resource: created,
        Condition: { StringEquals: { "ec2:CreateAction": "CreateImage" }, ...tagKeys },
      },
    ],
  };
}

/**
 * CreateImage of exactly one instance (only while it carries the target's required tags), tagging only
 * what that call creates, with only the target's allowed tag keys. No Describe: this session never reads.
 * Throws when the policy would be longer than AWS accepts (the config loader refuses such targets).
 */
export function createImagePolicy(target: PolicyTarget, region: string, instanceId: string): PolicyDocument {
  const policy = buildCreateImagePolicy(target, region, instanceId);
  const length = JSON.stringify(policy).length;
  if (length > MAX_SESSION_POLICY_CHARS)
    throw new Error(
      `the CreateImage session policy is ${length} characters, more than AWS's ${MAX_SESSION_POLICY_CHARS}: too many or too long instance tags or tag keys`,
    );
  return policy;
}

/** The longest CreateImage policy a target can produce in a region (any instance id), in characters. */
export function worstCaseCreatePolicyLength(target: PolicyTarget, region: string): number {
  return JSON.stringify(buildCreateImagePolicy(target, region, LONGEST_INSTANCE_ID)).length;
}

/**
 * The picker's session: search and look up instances (findInstances, describeInstance) and list an
 * instance's volumes for the form (describeVolumes), nothing else.
 */
export function pickerPolicy(scope: PolicyScope): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      // DescribeInstances and DescribeVolumes take no resource ARNs: only the region can limit them.
      {
        Sid: "FindInstancesAndVolumesInThisRegion",
        Effect: "Allow",
        Action: ["ec2:DescribeInstances", "ec2:DescribeVolumes"],
        Resource: "*",
        Condition: regionOnly(scope.region),
      },
    ],
  };
}

/** The watcher's session: image and snapshot progress, and finding a job's image by its tag. */
export function watcherPolicy(scope: PolicyScope): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "WatchImagesInThisRegion",
        Effect: "Allow",
        Action: ["ec2:DescribeImages", "ec2:DescribeSnapshots"],
        Resource: "*",
        Condition: regionOnly(scope.region),
      },
    ],
  };
}

/**
 * Cancel: DeregisterImage of exactly one image, and DeleteSnapshot of snapshots, both only while they carry
 * this job's `ami-bot:job-id` tag (AWS reads the tags at call time), so a session opened for one job cannot
 * touch another job's image or snapshots, or anything ami-bot did not make. No Describe: this session never
 * reads. DeregisterImage's DeleteAssociatedSnapshots deletes each snapshot under the caller's own
 * ec2:DeleteSnapshot permission on that snapshot; without it AWS still deregisters the image and reports
 * the snapshot as `missing-permissions`, so the second statement is what actually removes the snapshots.
 * The ARNs name the region, so no aws:RequestedRegion condition is needed (as for CreateImage).
 */
export function cancelImagePolicy(scope: PolicyScope, imageId: string, jobId: string): PolicyDocument {
  const { partition, region } = scope;
  // Never widen by accident: a wildcard or a malformed id must not become "image/*" or match any job.
  if (!/^ami-[0-9a-f]{8}([0-9a-f]{9})?$/.test(imageId)) throw new Error(`not an image id: ${imageId}`);
  if (!/^[\w-]{1,64}$/.test(jobId)) throw new Error(`not a job id: ${jobId}`);
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw new Error("a session policy needs a region");
  const thisJob: Conditions = { StringEquals: { "aws:ResourceTag/ami-bot:job-id": jobId } };
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "DeregisterThisJobsImageOnly",
        Effect: "Allow",
        Action: "ec2:DeregisterImage",
        Resource: `arn:${partition}:ec2:${region}::image/${imageId}`,
        Condition: thisJob,
      },
      // The snapshot ids are not known when the session is made (the image may still be pending): the
      // job-id tag, which CreateImage put on every snapshot it made, is what limits this statement.
      {
        Sid: "DeleteThisJobsSnapshotsOnly",
        Effect: "Allow",
        Action: "ec2:DeleteSnapshot",
        Resource: `arn:${partition}:ec2:${region}::snapshot/*`,
        Condition: thisJob,
      },
    ],
  };
}
