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

// ---------------------------------------------------------------------------------------------------
// After the image: copies into other regions, sharing with other accounts, and the keep rule's sweep.

const IMAGE_ID = /^ami-[0-9a-f]{8}([0-9a-f]{9})?$/;
const SNAPSHOT_ID = /^snap-([0-9a-f]{8}|[0-9a-f]{17})$/;
const JOB_ID = /^[\w-]{1,64}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;
const PARTITION = /^aws(-[a-z]+)*$/;
const ACCOUNT_ID = /^\d{12}$/;
/**
 * The part of a KMS ARN after the account: a key id, or an alias name. The characters the config loader
 * accepts, and never IAM's wildcards (`*`, `?`) or a policy variable (`${…}`).
 */
const KMS_KEY = /^key\/[\w-]{1,128}$/;
const KMS_ALIAS = /^alias\/[\w/+=,.@-]{1,250}$/;

/** The tag ami-bot puts on every image and snapshot it makes (and the copies of them). */
const JOB_TAG = "aws:ResourceTag/ami-bot:job-id";

/** Throws unless the scope's partition and region are well formed (they go into ARNs and conditions). */
function checkScope({ partition, region }: { partition: string; region: string }): void {
  if (!PARTITION.test(partition)) throw new Error(`not a partition: ${partition}`);
  if (!REGION.test(region)) throw new Error(`not a region: ${region}`);
}

function checkImageId(imageId: string): void {
  if (!IMAGE_ID.test(imageId)) throw new Error(`not an image id: ${imageId}`);
}

function checkJobId(jobId: string): void {
  if (!JOB_ID.test(jobId)) throw new Error(`not a job id: ${jobId}`);
}

/** Returns the policy, or throws when AWS would refuse it for its length (every AssumeRole would fail). */
function withinLimit(what: string, policy: PolicyDocument): PolicyDocument {
  const length = JSON.stringify(policy).length;
  if (length > MAX_SESSION_POLICY_CHARS)
    throw new Error(
      `the ${what} session policy is ${length} characters, more than AWS's ${MAX_SESSION_POLICY_CHARS}`,
    );
  return policy;
}

/** The DNS suffix of a partition's endpoints, as kms:ViaService names them (`ec2.<region>.<suffix>`). */
function endpointSuffix(partition: string): string {
  return partition === "aws-cn" ? "amazonaws.com.cn" : "amazonaws.com";
}

/**
 * KMS permissions for EBS to encrypt a copy's snapshots with a customer managed key, as the EBS user guide
 * lists them (CreateGrant, Decrypt, DescribeKey, GenerateDataKeyWithoutPlaintext, ReEncrypt; Encrypt as
 * well), only when EC2 in the destination region makes the call (kms:ViaService), and CreateGrant only for
 * grants to an AWS service (kms:GrantIsForAWSResource; AWS's example uses `Bool`, which the fake does not
 * evaluate, so it is written as `StringEquals "true"`).
 *
 * An alias ARN in Resource names the alias, never its key (KMS's "Use aliases to control access" page), so
 * for an alias the statements name every key of that account and region and require the key's aliases to
 * be exactly that alias: `ForAllValues` with `Null: false` (a key with no alias fails `Null`). A key that
 * has other aliases as well is refused (the copy fails, nothing is widened).
 */
function kmsStatements(destination: PolicyScope, kmsKeyId: string): PolicyDocument["Statement"] {
  const { partition, region } = destination;
  // Partition and region are checked already: letters, digits and dashes only, nothing a regex reads.
  const [, account = "", name = ""] =
    new RegExp(`^arn:${partition}:kms:${region}:(\\d{12}):(.+)$`).exec(kmsKeyId) ?? [];
  if (!(KMS_KEY.test(name) || KMS_ALIAS.test(name)))
    throw new Error(`not a KMS key or alias ARN in ${partition} ${region}: ${kmsKeyId}`);
  const alias = KMS_ALIAS.test(name);
  const resource = alias ? `arn:${partition}:kms:${region}:${account}:key/*` : kmsKeyId;
  const viaEc2 = { "kms:ViaService": `ec2.${region}.${endpointSuffix(partition)}` };
  const aliasOnly: Conditions = alias
    ? {
        "ForAllValues:StringEquals": { "kms:ResourceAliases": [name] },
        Null: { "kms:ResourceAliases": "false" },
      }
    : {};
  return [
    {
      Sid: "UseThisKeyOnlyThroughEc2",
      Effect: "Allow",
      Action: [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:DescribeKey",
      ],
      Resource: resource,
      Condition: { StringEquals: viaEc2, ...aliasOnly },
    },
    {
      Sid: "GrantOnThisKeyOnlyToEbs",
      Effect: "Allow",
      Action: "kms:CreateGrant",
      Resource: resource,
      Condition: { StringEquals: { ...viaEc2, "kms:GrantIsForAWSResource": "true" }, ...aliasOnly },
    },
  ];
}

/**
 * A copy into another region, for the session opened in the DESTINATION region (CopyImage is called
 * there). CopyImage authorizes the image and, for EBS-backed images, the snapshots, both the source's and
 * the new ones (the EC2 user guide's "Grant permissions to copy Amazon EC2 AMIs"; source-side
 * resource-level permissions since 28 October 2024):
 * - the source image and its snapshots, only while they carry this job's `ami-bot:job-id` tag (CreateImage
 *   put it on both), so no other image can be copied;
 * - new images and snapshots in the destination region only (`aws:RequestedRegion` too);
 * - CreateTags on those only as part of CopyImage (its TagSpecifications), never on existing resources;
 * - with a KMS key, what EBS needs to encrypt the copy with that key, only through EC2 in that region.
 * A source encrypted with a customer managed key probably needs that key (in the source region) as well,
 * which this session does not grant (not confirmed against AWS). The source and destination must differ: in one region the destination's
 * `image/*` would name any source image, without the tag condition.
 */
export function copyImagePolicy(
  destination: PolicyScope,
  source: { region: string; imageId: string },
  jobId: string,
  kmsKeyId: string | undefined,
): PolicyDocument {
  const { partition, region } = destination;
  checkScope(destination);
  if (!REGION.test(source.region)) throw new Error(`not a region: ${source.region}`);
  if (source.region === region) throw new Error(`a copy must go to another region than ${region}`);
  checkImageId(source.imageId);
  checkJobId(jobId);
  const created = [`arn:${partition}:ec2:${region}::image/*`, `arn:${partition}:ec2:${region}::snapshot/*`];
  return withinLimit("CopyImage", {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "CopyThisJobsImageOnly",
        Effect: "Allow",
        Action: "ec2:CopyImage",
        Resource: [
          `arn:${partition}:ec2:${source.region}::image/${source.imageId}`,
          `arn:${partition}:ec2:${source.region}::snapshot/*`,
        ],
        Condition: { StringEquals: { [JOB_TAG]: jobId } },
      },
      {
        Sid: "IntoNewImageInDestinationRegion",
        Effect: "Allow",
        Action: "ec2:CopyImage",
        Resource: created,
        Condition: regionOnly(region),
      },
      {
        Sid: "TagOnlyWhatCopyImageMakes",
        Effect: "Allow",
        Action: "ec2:CreateTags",
        Resource: created,
        Condition: { StringEquals: { "ec2:CreateAction": "CopyImage" } },
      },
      ...(kmsKeyId === undefined ? [] : kmsStatements(destination, kmsKeyId)),
    ],
  });
}

/**
 * Sharing one image (the source or a copy) with the chosen accounts: launch permission on the image and
 * create-volume permission on its snapshots, each only while it carries this job's `ami-bot:job-id` tag.
 *
 * The snapshots' statement names the accounts: `ForAllValues:StringEquals ec2:Add/userId` (every account
 * added is one of them) and `Null ec2:Add/group` (no group, i.e. never `all`, so never public). The
 * Service Authorization Reference lists `ec2:Add/userId` and `ec2:Add/group` only for
 * ModifySnapshotAttribute on snapshots: ModifyImageAttribute supports neither, so the image's statement
 * cannot limit the accounts or forbid a public image. It limits the call to this one image of this job;
 * AMI "block public access" (EnableImageBlockPublicAccess) is what stops an image going public.
 * An empty snapshot list (an image without EBS snapshots) leaves the snapshot statement out.
 */
export function shareImagePolicy(
  scope: PolicyScope,
  imageId: string,
  snapshotIds: readonly string[],
  jobId: string,
  accounts: readonly string[],
): PolicyDocument {
  const { partition, region } = scope;
  checkScope(scope);
  checkImageId(imageId);
  for (const id of snapshotIds) if (!SNAPSHOT_ID.test(id)) throw new Error(`not a snapshot id: ${id}`);
  checkJobId(jobId);
  if (accounts.length === 0) throw new Error("sharing needs at least one account");
  for (const account of accounts)
    if (!ACCOUNT_ID.test(account)) throw new Error(`not an account id: ${account}`);
  const thisJob = { [JOB_TAG]: jobId };
  return withinLimit("sharing", {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ShareThisJobsImageOnly",
        Effect: "Allow",
        Action: "ec2:ModifyImageAttribute",
        Resource: `arn:${partition}:ec2:${region}::image/${imageId}`,
        Condition: { StringEquals: thisJob },
      },
      ...(snapshotIds.length === 0
        ? []
        : [
            {
              Sid: "ShareSnapshotsWithTheseAccountsOnly",
              Effect: "Allow" as const,
              Action: "ec2:ModifySnapshotAttribute",
              Resource: [...new Set(snapshotIds)].map(
                (id) => `arn:${partition}:ec2:${region}::snapshot/${id}`,
              ),
              Condition: {
                StringEquals: thisJob,
                "ForAllValues:StringEquals": { "ec2:Add/userId": [...new Set(accounts)] },
                Null: { "ec2:Add/group": "true" },
              },
            },
          ]),
    ],
  });
}

/**
 * The sweep's reads: the images of a region (to find ami-bot's old ones) and launch template versions (so an
 * image a launch template still uses is kept). Neither call takes resource ARNs: only the region limits them.
 */
export function cleanupReadPolicy(scope: PolicyScope): PolicyDocument {
  checkScope(scope);
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "FindImagesAndLaunchTemplatesInThisRegion",
        Effect: "Allow",
        Action: ["ec2:DescribeImages", "ec2:DescribeLaunchTemplateVersions"],
        Resource: "*",
        Condition: regionOnly(scope.region),
      },
    ],
  };
}

/**
 * The sweep's removal of one old image: DeregisterImage of exactly that image, and DeleteSnapshot of
 * exactly its snapshots as DescribeImages listed them (DeleteAssociatedSnapshots deletes each under the
 * caller's own permission, as for Cancel), both only while the resource carries an `ami-bot:job-id` tag,
 * whatever its value (`Null: false`): an image or snapshot ami-bot did not make is refused by AWS, whatever
 * the sweep decided. No snapshot ids (an image without EBS snapshots): no DeleteSnapshot statement at all.
 * Throws on a malformed id, and when the ARNs make the policy longer than AWS accepts (the image is then
 * not removed; nothing is widened).
 */
export function cleanupImagePolicy(
  scope: PolicyScope,
  imageId: string,
  snapshotIds: readonly string[],
): PolicyDocument {
  const { partition, region } = scope;
  checkScope(scope);
  checkImageId(imageId);
  for (const id of snapshotIds) if (!SNAPSHOT_ID.test(id)) throw new Error(`not a snapshot id: ${id}`);
  const madeByAmiBot: Conditions = { Null: { [JOB_TAG]: "false" } };
  return withinLimit("cleanup", {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "DeregisterThisAmiBotImageOnly",
        Effect: "Allow",
        Action: "ec2:DeregisterImage",
        Resource: `arn:${partition}:ec2:${region}::image/${imageId}`,
        Condition: madeByAmiBot,
      },
      ...(snapshotIds.length === 0
        ? []
        : [
            {
              Sid: "DeleteThisImagesAmiBotSnapshotsOnly",
              Effect: "Allow" as const,
              Action: "ec2:DeleteSnapshot",
              Resource: [...new Set(snapshotIds)].map(
                (id) => `arn:${partition}:ec2:${region}::snapshot/${id}`,
              ),
              Condition: madeByAmiBot,
            },
          ]),
    ],
  });
}
