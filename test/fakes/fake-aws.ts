/**
 * A local stand-in for AWS EC2 and STS on 127.0.0.1, speaking the wire protocols AWS SDK v3 really sends
 * (captured from @aws-sdk/client-ec2, @aws-sdk/client-sts and the nested STS client behind
 * fromTemporaryCredentials): every call is `POST /`, `content-type: application/x-www-form-urlencoded`,
 * body `Action=…&Version=…&flat.params` — the EC2 query protocol (Version 2016-11-15) and STS's awsQuery
 * protocol (Version 2011-06-15). Both answer in XML. They share one port: the SigV4 Authorization header's
 * credential scope (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`) names the service and the region.
 * Signatures are not checked.
 *
 * What is modelled, deliberately little:
 * - STS AssumeRole only for roles listed in `options.roles` (or `addRole`), with their ExternalId; each
 *   session gets unique keys and remembers its inline session Policy and SourceIdentity. A Policy longer
 *   than 2048 characters is a ValidationError, as in STS.
 * - Session policy enforcement, so scoping is testable: an EC2 call signed with a session's key must be
 *   allowed by that session's Policy, resource by resource: an explicit Deny wins, else some Allow must
 *   apply. Action and Resource match with `*`/`?` wildcards. Conditions: StringEquals and StringLike,
 *   plain (any value of the key matches; an absent key never matches), with `ForAllValues:` (every value
 *   matches; an absent key or no values is true, as in IAM) or `ForAnyValue:` (some value matches; an
 *   absent key is false); their negations StringNotEquals and StringNotLike (plain: no value matches, an
 *   absent key is true; `ForAllValues:` every value fails to match; `ForAnyValue:` some value does); and
 *   `Null`. Any other operator is refused as MalformedPolicyDocument, so a policy the fake cannot judge fails
 *   loudly instead of being judged wrong. Context keys: `aws:RequestedRegion`, `aws:SourceIdentity` (the
 *   session's), and per call:
 *   - CreateImage needs ec2:CreateImage on the instance ARN (context `aws:ResourceTag/<key>` and
 *     `ec2:ResourceTag/<key>` from the instance's tags) and on the new image and snapshot ARNs (context
 *     `aws:TagKeys` and `aws:RequestTag/<key>` from the TagSpecification for that resource type), plus,
 *     when TagSpecifications are sent, ec2:CreateTags on the tagged resources with the same tag context
 *     and `ec2:CreateAction=CreateImage`.
 *   - DeregisterImage needs ec2:DeregisterImage on the image ARN (context `aws:ResourceTag/<key>` and
 *     `ec2:ResourceTag/<key>` from the image's tags); with DeleteAssociatedSnapshots, each snapshot is
 *     deleted only if ec2:DeleteSnapshot on its ARN is allowed (context from the snapshot's tags). As in
 *     EC2, a snapshot that may not be deleted does not fail the call: the image is still deregistered,
 *     the snapshot stays (see `snapshots`) and is reported as `missing-permissions`.
 *   - CopyImage (signed for the destination region, so `aws:RequestedRegion` is the destination) needs
 *     ec2:CopyImage on the source image ARN `arn:aws:ec2:<SourceRegion>::image/<id>` (context
 *     `aws:ResourceTag/<key>` and `ec2:ResourceTag/<key>` from the source's tags) and on the new image's ARN
 *     in the destination (context `aws:TagKeys` and `aws:RequestTag/<key>` from the image TagSpecification),
 *     plus, when TagSpecifications are sent, ec2:CreateTags on the new image and snapshot ARNs with that tag
 *     context and `ec2:CreateAction=CopyImage`, as for CreateImage.
 *   - ModifyImageAttribute needs ec2:ModifyImageAttribute on the image ARN, ModifySnapshotAttribute
 *     ec2:ModifySnapshotAttribute on `arn:aws:ec2:<region>::snapshot/<id>`; context `aws:ResourceTag/<key>`
 *     and `ec2:ResourceTag/<key>` from that resource's tags, and the multi-valued `ec2:Add/userId`,
 *     `ec2:Add/group`, `ec2:Remove/userId`, `ec2:Remove/group` (each only when the call names some).
 *   - Describe* calls (DescribeVolumes, DescribeImageAttribute, DescribeSnapshotAttribute and
 *     DescribeLaunchTemplateVersions too) need their action on resource `*`.
 *   A session without a Policy, and any non-session key (the bot's own `test` key), may do anything: the
 *   fake does not model the role's or the base identity's IAM.
 * - CreateImage checks, in order: instance exists, permission, DryRun (→ DryRunOperation 412, nothing made),
 *   instance running/stopped, Name unused in the region, then its BlockDeviceMapping.N: only NoDevice
 *   mappings are modelled (anything else is InvalidParameterValue, so the bot cannot rely on more); each
 *   must name one of the instance's devices (else InvalidBlockDeviceMapping, as EC2 answers) and, by the
 *   fake's own rule, not its root device (an image needs one). The image gets one snapshot per volume
 *   not left out. Unknown filter names are InvalidParameterValue,
 *   as in EC2, so a misspelt filter in the bot fails loudly instead of matching nothing.
 * - Instances have EBS volumes (a root device and others, each with an id, size and type): DescribeInstances
 *   returns rootDeviceName and blockDeviceMapping, DescribeVolumes their size, type and attachment
 *   (VolumeId.N, or filters volume-id, attachment.instance-id, attachment.device; an unknown VolumeId is
 *   InvalidVolume.NotFound), DescribeImages each snapshot under its device name and size.
 * - DescribeInstances, DescribeImages and DescribeSnapshots page as EC2 does: MaxResults 5–1000
 *   (InvalidParameterValue otherwise; beside InstanceId, ImageId or SnapshotId it is
 *   InvalidParameterCombination), and a NextToken while results remain; without MaxResults, one answer with
 *   everything. A DescribeInstances page is cut from the region's instances before filtering, so it may hold
 *   fewer matches than MaxResults, or none, and still have a NextToken; images and snapshots are filtered
 *   first and then cut (full pages). A token the fake did not issue is InvalidParameterValue.
 * - Filters: the ones each Describe call names, `tag:<key>` and `tag-key` (any of the resource's tag keys).
 *   DescribeImages: image-id, name, state, is-public, owner-id, creation-date (wildcards, as in EC2); it
 *   answers creationDate, isPublic, deregistrationProtection and, as EC2 does for each kind, sourceInstanceId
 *   or sourceImageId/sourceImageRegion, for every image of the region, copies included.
 *   DescribeImages/DescribeSnapshots honour Owner.N (`Owners`, `OwnerIds` in the SDK): `self` or an account
 *   id. Every image and snapshot the fake makes is owned by its one account, which is `self` to every caller
 *   (whichever role's session calls); `addImage({ ownerId })` makes one that is another's, shared with it.
 * - Session expiry only on demand: after `expireSessions()`, EC2 calls signed with a session issued before
 *   answer RequestExpired (as EC2 does for expired temporary credentials); new AssumeRole sessions work.
 * - DeregisterImage checks, in order: a well-formed id (else InvalidAMIID.Malformed), the image exists in
 *   the region (else InvalidAMIID.NotFound, also for one already deregistered), permission, DryRun. The
 *   image is removed (DescribeImages no longer returns it) and, with DeleteAssociatedSnapshots=true, so
 *   are the snapshots the session may delete; the answer lists each with its return code.
 * - Deregistration protection: `addImage({ deregistrationProtection })` (true is EC2's
 *   `enabled-without-cooldown`; DescribeImages shows `disabled` otherwise). DeregisterImage of a protected
 *   image fails, after the permission and DryRun checks, with InvalidParameterValue (the fake's choice of
 *   code: EC2's exact answer was not found in its documentation) and nothing is removed.
 * - CopyImage (called in the destination region) checks, in order: SourceRegion, SourceImageId and Name
 *   given (else MissingParameter), KmsKeyId only with Encrypted=true (else InvalidParameterCombination, the
 *   fake's rule from EC2's documentation), the source image exists in SourceRegion (else
 *   InvalidAMIID.NotFound), permission, DryRun, then the ClientToken: per destination region, a repeat with
 *   the same parameters answers the first copy's ImageId and makes nothing, different parameters are
 *   IdempotentParameterMismatch. Then the source must be available (else InvalidAMIID.Unavailable, "is
 *   currently pending and may not be used for this operation", EC2's answer to sharing a pending image) and
 *   Name unused in the destination (InvalidAMIName.Duplicate). The copy is a pending image in the
 *   destination with one new snapshot per source snapshot (tagged by the snapshot TagSpecification;
 *   CopyImageTags=true also copies the source's tags onto the image), and remembers its source, `encrypted`
 *   and `kmsKeyId` (DescribeImages shows them in blockDeviceMapping). DescribeImages
 *   shows sourceImageId/sourceImageRegion for copies and sourceInstanceId only for CreateImage's images,
 *   as EC2 does. A copy completes like a created image (`autoComplete`, or `completeImage`), but ends
 *   `failed` instead when its KmsKeyId was given to `denyKmsKey` (StateReason
 *   Client.InvalidKMSKey.InvalidState, as EC2 reports an unusable key: after the call, not in it) or its
 *   region to `failCopiesTo`.
 * - ModifyImageAttribute: launch permission only, as `LaunchPermission.Add|Remove.N.UserId|Group` or the
 *   older `UserId.N`/`UserGroup.N` with OperationType and Attribute=launchPermission (organization ARNs and
 *   other attributes are InvalidParameterValue: not modelled). Checks: image exists in the region
 *   (InvalidAMIID.NotFound), permission, DryRun, the image is available (else InvalidAMIID.Unavailable, as
 *   EC2 answers for a pending one), then every account id is 12 digits and not one given to
 *   `addUnknownAccount`, every group is `all` (else InvalidAMIAttributeItemValue, nothing changed). Kept in
 *   the image's `launchPermissions` (account ids and groups); the group `all` sets `public`, so a test can
 *   assert that never happens. ModifySnapshotAttribute is the same for createVolumePermission
 *   (`CreateVolumePermission.Add|Remove.N.UserId|Group`, or `UserId.N` and `UserGroup.N`, which is what the
 *   SDK sends for GroupNames, with OperationType), on any snapshot of the region, the images' and those a
 *   deregistration left (else InvalidSnapshot.NotFound); a bad or unknown account is InvalidParameterValue.
 *   DescribeImageAttribute (launchPermission, description, deregistrationProtection) and
 *   DescribeSnapshotAttribute (createVolumePermission) read them back.
 * - Launch templates, for the cleanup sweep: `addLaunchTemplate` and `addLaunchTemplateVersion` make them
 *   (per region); DescribeLaunchTemplateVersions takes LaunchTemplateId or LaunchTemplateName (not both)
 *   with versions (`$Latest`, `$Default`, numbers), MinVersion/MaxVersion or none (every version), or
 *   neither with only `$Latest` and/or `$Default`: that version of every template in the region, as EC2
 *   allows. Filters image-id and is-default-version; MaxResults 1–200 and NextToken as elsewhere.
 * - Not modelled: signatures, timed session expiry, pagination of DescribeVolumes, IAM of
 *   roles/base identity, the Recycle Bin, snapshots shared by several images, KMS itself (a key is an
 *   opaque string), image ownership checks on ModifyImageAttribute/ModifySnapshotAttribute.
 * - Partition is always `aws`. An instance added without `region` exists in whichever region is asked.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

export type FakeService = "sts" | "ec2";

/** A session policy as parsed from AssumeRole's Policy, with Action/Resource normalized to arrays. */
export interface FakePolicy {
  readonly Version: string | undefined;
  readonly Statement: readonly {
    readonly Effect: string;
    readonly Action: readonly string[];
    readonly Resource: readonly string[];
    readonly Condition: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;
  }[];
}

export interface FakeRequest {
  readonly service: FakeService;
  readonly action: string;
  /** The decoded flat query params, e.g. `TagSpecification.1.Tag.2.Key`. */
  readonly params: Readonly<Record<string, string>>;
  readonly accessKeyId: string | undefined;
  readonly region: string;
  readonly at: number;
  /** AssumeRole only: the parsed session Policy. */
  readonly policy: FakePolicy | undefined;
}

/** An EBS volume attached to an instance. */
export interface FakeVolume {
  readonly deviceName: string;
  readonly volumeId: string;
  readonly sizeGiB: number;
  readonly volumeType: string;
}

/** A volume as a test describes it; what it leaves out is made up (an id) or defaulted (8 GiB gp3). */
export interface FakeVolumeSpec {
  readonly deviceName: string;
  readonly sizeGiB?: number;
  readonly volumeType?: string;
  readonly volumeId?: string;
}

export interface FakeInstance {
  readonly instanceId: string;
  state: string;
  readonly instanceType: string;
  readonly tags: Record<string, string>;
  readonly rootDeviceName: string;
  /** Its EBS volumes, the root among them. */
  readonly volumes: readonly FakeVolume[];
  readonly region: string | undefined;
}

export interface FakeSnapshot {
  readonly snapshotId: string;
  /** The instance device whose volume it copies. */
  readonly deviceName: string;
  readonly sizeGiB: number;
  progress: number;
  readonly tags: Record<string, string>;
  /** ModifySnapshotAttribute's createVolumePermission: account ids and groups (`all`). */
  readonly createVolumePermissions: Set<string>;
  /** Shared with the group `all`. */
  public: boolean;
}

/** A snapshot as a test describes it for `addImage`; what it leaves out is made up or defaulted. */
export interface FakeSnapshotSpec {
  readonly snapshotId?: string;
  readonly deviceName?: string;
  readonly sizeGiB?: number;
  /** Default: the image's tags (ami-bot tags its snapshots as it tags the image). */
  readonly tags?: Record<string, string>;
}

export interface FakeImage {
  readonly imageId: string;
  readonly region: string;
  /** The instance it was made from; a copy has its source's. */
  readonly instanceId: string;
  /** What DescribeImages shows as sourceInstanceId: CreateImage's images only, as in EC2. */
  readonly sourceInstanceId: string | undefined;
  readonly name: string;
  readonly description: string | undefined;
  readonly noReboot: boolean;
  readonly creationDate: string;
  readonly ownerId: string;
  readonly tags: Record<string, string>;
  readonly snapshots: FakeSnapshot[];
  state: string;
  stateReason: { code: string; message: string } | undefined;
  /** A copy's source (CopyImage's SourceImageId and SourceRegion). */
  readonly sourceImageId: string | undefined;
  readonly sourceRegion: string | undefined;
  readonly encrypted: boolean;
  readonly kmsKeyId: string | undefined;
  /** ModifyImageAttribute's launchPermission: account ids and groups (`all`). */
  readonly launchPermissions: Set<string>;
  /** Shared with the group `all`. */
  public: boolean;
  /** As EC2 spells it: `disabled`, `enabled-without-cooldown` or `enabled-with-cooldown`. */
  deregistrationProtection: string;
}

export interface FakeLaunchTemplateVersion {
  readonly versionNumber: number;
  /** launchTemplateData.imageId; a version may have none. */
  readonly imageId: string | undefined;
  readonly createTime: string;
}

export interface FakeLaunchTemplate {
  readonly launchTemplateId: string;
  readonly name: string;
  readonly region: string;
  /** Its versions, 1, 2, …: the last is `$Latest`. */
  readonly versions: FakeLaunchTemplateVersion[];
  /** Which version is `$Default`. */
  defaultVersion: number;
}

export interface FakeSession {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly roleArn: string;
  readonly sessionName: string;
  readonly sourceIdentity: string | undefined;
  readonly tags: Record<string, string>;
  readonly policy: FakePolicy | undefined;
  readonly expiration: Date;
}

export interface FakeFault {
  readonly code: string;
  readonly status: number;
  readonly message?: string;
  readonly count?: number;
  /** Only calls this accepts are failed (say, the AssumeRole whose session policy allows CreateImage). */
  readonly when?: (request: FakeRequest) => boolean;
}

export interface FakeAwsOptions {
  readonly accountId?: string;
  readonly roles?: Record<string, { externalId?: string }>;
  /** Delay before every answer. */
  readonly latencyMs?: number;
  /**
   * Images (CreateImage's and CopyImage's) turn available (snapshots 100%) this long after creation, or
   * failed for copies `failCopiesTo`/`denyKmsKey` apply to. Off by default.
   */
  readonly autoComplete?: { readonly afterMs: number };
  readonly port?: number;
}

export interface FakeAws {
  readonly url: string;
  readonly port: number;
  readonly accountId: string;
  /** Every request received (failed ones too), oldest first; `requests.length = 0` clears it. */
  readonly requests: FakeRequest[];
  /** The requests of one action. */
  calls(action: string): FakeRequest[];
  /** Stored images by id, in creation order (a deregistered image is removed). */
  readonly images: ReadonlyMap<string, FakeImage>;
  /** Every snapshot that exists by id: the images' and those a deregistration left behind. */
  readonly snapshots: ReadonlyMap<string, FakeSnapshot>;
  readonly instances: ReadonlyMap<string, FakeInstance>;
  /** AssumeRole sessions by AccessKeyId, with their parsed session policy. */
  readonly sessions: ReadonlyMap<string, FakeSession>;
  addInstance(instance: {
    instanceId: string;
    name?: string;
    state?: string;
    instanceType?: string;
    tags?: Record<string, string>;
    /**
     * Its EBS volumes: a count (the root /dev/xvda, then /dev/sdb, /dev/sdc, …, 8 GiB gp3 each) or each one
     * (ids made up when not given). Default: one.
     */
    volumes?: number | readonly FakeVolumeSpec[];
    /** Default: the first volume's device. */
    rootDeviceName?: string;
    region?: string;
  }): FakeInstance;
  /**
   * An image made outside the bot (or an older one of the bot's, for the cleanup sweep): by default this
   * account's, available, untagged, made now, unprotected and without snapshots. `ownerId` makes it another
   * account's, shared with this one (listed unless Owner.N leaves it out). `snapshots`: a count (devices
   * /dev/xvda, /dev/sdb, …, 8 GiB, tagged as the image) or each one. `sourceInstanceId` is what
   * DescribeImages shows (as for CreateImage's images); `instanceId` alone does not show.
   */
  addImage(image: {
    name: string;
    region: string;
    instanceId?: string;
    sourceInstanceId?: string;
    ownerId?: string;
    tags?: Record<string, string>;
    state?: string;
    /** An ISO date string or milliseconds since the epoch. Default: now. */
    creationDate?: string | number;
    /** true is EC2's `enabled-without-cooldown`; or EC2's own string. Default: disabled. */
    deregistrationProtection?: boolean | "enabled-without-cooldown" | "enabled-with-cooldown";
    snapshots?: number | readonly FakeSnapshotSpec[];
    description?: string;
  }): FakeImage;
  /** Launch templates by id, in creation order. */
  readonly launchTemplates: ReadonlyMap<string, FakeLaunchTemplate>;
  /**
   * A launch template in `region` whose launch data names `imageId`. Without `version`, one version (1,
   * both `$Latest` and `$Default`); with `$Latest`, version 1 (the default) has no image and version 2 (the
   * latest) has `imageId`; with `$Default`, version 1 (the default) has `imageId` and version 2 (the latest)
   * none. A name is unique per region.
   */
  addLaunchTemplate(template: {
    region: string;
    name: string;
    imageId?: string;
    version?: "$Latest" | "$Default";
  }): FakeLaunchTemplate;
  /** A new (latest) version of a launch template; `makeDefault` also makes it `$Default`. */
  addLaunchTemplateVersion(
    launchTemplateId: string,
    version: { imageId?: string; makeDefault?: boolean },
  ): FakeLaunchTemplateVersion;
  /**
   * Copies into `region` that complete from now on end `failed` with this StateReason (a string is the
   * message, with code Server.InternalError) instead of available; `undefined` clears it.
   */
  failCopiesTo(region: string, reason: string | { code: string; message: string } | undefined): void;
  /**
   * A copy with this KmsKeyId (as sent: id, ARN or alias) ends `failed` with StateReason
   * Client.InvalidKMSKey.InvalidState when it completes, as EC2 reports a key it cannot use.
   */
  denyKmsKey(keyId: string): void;
  /** An account id EC2 does not know: sharing with it is refused (InvalidAMIAttributeItemValue and so on). */
  addUnknownAccount(accountId: string): void;
  /**
   * What `autoComplete` does, now: a pending image turns available (snapshots 100%), or failed for a copy
   * `failCopiesTo`/`denyKmsKey` applies to. Answers the image's state after; an image not pending is left.
   */
  completeImage(imageId: string): string;
  addRole(roleArn: string, role?: { externalId?: string }): void;
  setImageState(imageId: string, state: string, reason?: string): void;
  setSnapshotProgress(imageId: string, percent: number): void;
  /** The next `count` calls of `action` fail with this error (in that service's error format). */
  failNext(action: string, fault: FakeFault): void;
  /** Every session issued so far expires now: EC2 calls signed with one answer RequestExpired. */
  expireSessions(): void;
  /** The next call of `action` is answered `ms` later than usual (a slow CreateImage, say). */
  delayNext(action: string, ms: number): void;
  /**
   * Calls of `action` that `when` accepts (all by default) are never answered: the connection is accepted
   * and left open, as by a hung endpoint. With `afterEffect`, the call takes effect first (an image is made)
   * and only the answer is lost. `count` limits how many calls hang (default: every one until cleared).
   */
  hang(
    action: string,
    options?: { when?: (request: FakeRequest) => boolean; afterEffect?: boolean; count?: number },
  ): void;
  /** Calls stop hanging (those already hung stay so). */
  stopHanging(): void;
  latencyMs: number;
  close(): Promise<void>;
}

/** An AWS error answer; the service decides its XML shape. */
class AwsFault extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message?: string,
  ) {
    super(message ?? code);
  }
}

const STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/";
const EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/";
const STS_ACTIONS = new Set(["AssumeRole", "GetCallerIdentity"]);
// biome-ignore format: a table
const STATE_CODES: Record<string, number> = { pending: 0, running: 16, "shutting-down": 32, terminated: 48, stopping: 64, stopped: 80 };

const esc = (s: string) =>
  s.replace(/[<>&"']/g, (c) => `&${{ "<": "lt", ">": "gt", "&": "amp", '"': "quot", "'": "apos" }[c]};`);
interface XmlObject {
  readonly [name: string]: string | number | boolean | undefined | XmlObject | readonly XmlObject[];
}
/** Objects become nested elements, arrays EC2's `<item>` lists; undefined fields are left out. */
function xml(fields: XmlObject): string {
  return Object.entries(fields)
    .map(([name, v]) => {
      if (v === undefined) return "";
      const inner = Array.isArray(v)
        ? v.map((i: XmlObject) => `<item>${xml(i)}</item>`).join("")
        : typeof v === "object"
          ? xml(v as XmlObject)
          : esc(String(v));
      return `<${name}>${inner}</${name}>`;
    })
    .join("");
}
/** When every fake volume was attached (EC2 reports a time; its value does not matter here). */
const ATTACH_TIME = "2026-01-01T00:00:00.000Z";

/**
 * CreateImage's BlockDeviceMapping.N as sent: the devices to leave out (NoDevice). Any other kind of
 * mapping (a new volume, a size, an instance store) is not modelled and is refused loudly.
 */
function noDevices(params: Record<string, string>): string[] {
  const out: string[] = [];
  for (let i = 1; Object.keys(params).some((k) => k.startsWith(`BlockDeviceMapping.${i}.`)); i++) {
    const keys = Object.keys(params).filter((k) => k.startsWith(`BlockDeviceMapping.${i}.`));
    const device = params[`BlockDeviceMapping.${i}.DeviceName`];
    const only = keys.every((k) => k.endsWith(".DeviceName") || k.endsWith(".NoDevice"));
    if (!device || params[`BlockDeviceMapping.${i}.NoDevice`] === undefined || !only)
      throw new AwsFault(
        "InvalidParameterValue",
        400,
        `fake-aws models only NoDevice mappings (BlockDeviceMapping.${i}: ${keys.join(", ")})`,
      );
    out.push(device);
  }
  return out;
}

const tagSet = (tags: Record<string, string>) => Object.entries(tags).map(([key, value]) => ({ key, value }));
const hex = (n: number) =>
  randomBytes(Math.ceil(n / 2))
    .toString("hex")
    .slice(0, n);

/** IAM-style and EC2-filter-style wildcards: `*` any run, `?` one character. */
function glob(pattern: string, value: string, ignoreCase = false): boolean {
  // Most patterns are plain ids: compared as they are, the fake stays quick with thousands of images.
  if (!/[*?]/.test(pattern))
    return ignoreCase ? pattern.toLowerCase() === value.toLowerCase() : pattern === value;
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${source}$`, ignoreCase ? "is" : "s").test(value);
}

/** `Prefix.1`, `Prefix.2`, … in order. */
function list(params: Record<string, string>, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; params[`${prefix}.${i}`] !== undefined; i++) out.push(params[`${prefix}.${i}`] ?? "");
  return out;
}

function pairs(params: Record<string, string>, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 1; params[`${prefix}.${i}.Key`] !== undefined; i++)
    out[params[`${prefix}.${i}.Key`] ?? ""] = params[`${prefix}.${i}.Value`] ?? "";
  return out;
}

/** EC2 filters; an unknown filter name is an error, as in EC2, so the bot's filters are checked too. */
function filterBy<T extends { tags: Record<string, string> }>(
  params: Record<string, string>,
  rows: T[],
  fields: Record<string, (row: T) => string>,
): T[] {
  const filters: { name: string; values: string[] }[] = [];
  for (let i = 1; params[`Filter.${i}.Name`] !== undefined; i++)
    filters.push({ name: params[`Filter.${i}.Name`] ?? "", values: list(params, `Filter.${i}.Value`) });
  for (const { name } of filters)
    if (!name.startsWith("tag:") && name !== "tag-key" && !fields[name])
      throw new AwsFault("InvalidParameterValue", 400, `The filter '${name}' is invalid`);
  return rows.filter((row) =>
    filters.every(({ name, values }) => {
      if (name === "tag-key") return Object.keys(row.tags).some((key) => values.some((v) => glob(v, key)));
      const have = name.startsWith("tag:") ? row.tags[name.slice(4)] : fields[name]?.(row);
      return have !== undefined && values.some((v) => glob(v, have));
    }),
  );
}

/** TagSpecification.N as sent: ResourceType (image, snapshot) → its tags. */
function tagSpecifications(params: Record<string, string>): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (let i = 1; params[`TagSpecification.${i}.ResourceType`] !== undefined; i++)
    out[params[`TagSpecification.${i}.ResourceType`] ?? ""] = pairs(params, `TagSpecification.${i}.Tag`);
  return out;
}

/** What tags asked for a resource being made put in the request context. */
const requestedTags = (tags: Record<string, string> | undefined): PolicyContext =>
  tags
    ? {
        "aws:TagKeys": Object.keys(tags),
        ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])),
      }
    : {};

/** What an existing resource's tags put in the request context. */
const resourceTags = (tags: Record<string, string>): PolicyContext =>
  Object.fromEntries(
    ["aws:ResourceTag", "ec2:ResourceTag"].flatMap((prefix) =>
      Object.entries(tags).map(([k, v]) => [`${prefix}/${k}`, v]),
    ),
  );

interface PermissionChange {
  readonly add: { readonly userIds: string[]; readonly groups: string[] };
  readonly remove: { readonly userIds: string[]; readonly groups: string[] };
  /** `ec2:Add/userId` and the like, each only when the call names some. */
  readonly context: PolicyContext;
}

/**
 * ModifyImageAttribute's launch permission or ModifySnapshotAttribute's create-volume permission as sent:
 * `<structured>.Add|Remove.N.UserId|Group`, or the older `UserId.N` and `UserGroup.N` (`GroupName.N` too)
 * with OperationType. Anything else (organization ARNs, other attributes) is not modelled and refused.
 */
function permissionChange(
  params: Record<string, string>,
  idParam: string,
  attribute: string,
  structured: string,
): PermissionChange {
  const add = { userIds: [] as string[], groups: [] as string[] };
  const remove = { userIds: [] as string[], groups: [] as string[] };
  const used = new Set(["Action", "Version", "DryRun", idParam, "Attribute", "OperationType"]);
  for (const [op, into] of [
    ["Add", add],
    ["Remove", remove],
  ] as const)
    for (let i = 1; Object.keys(params).some((k) => k.startsWith(`${structured}.${op}.${i}.`)); i++) {
      const at = `${structured}.${op}.${i}`;
      const userId = params[`${at}.UserId`];
      const group = params[`${at}.Group`];
      if (userId !== undefined) into.userIds.push(userId);
      if (group !== undefined) into.groups.push(group);
      used.add(`${at}.UserId`).add(`${at}.Group`);
    }
  const legacy = {
    userIds: list(params, "UserId"),
    groups: [...list(params, "UserGroup"), ...list(params, "GroupName")],
  };
  for (const prefix of ["UserId", "UserGroup", "GroupName"])
    for (let i = 1; params[`${prefix}.${i}`] !== undefined; i++) used.add(`${prefix}.${i}`);
  if (legacy.userIds.length + legacy.groups.length > 0) {
    const into =
      params.OperationType === "add" ? add : params.OperationType === "remove" ? remove : undefined;
    if (!into)
      throw new AwsFault(
        "MissingParameter",
        400,
        "The request must contain the parameter operationType (add or remove)",
      );
    into.userIds.push(...legacy.userIds);
    into.groups.push(...legacy.groups);
  }
  const notModelled = Object.keys(params).filter((k) => !used.has(k));
  if ((params.Attribute !== undefined && params.Attribute !== attribute) || notModelled.length > 0)
    throw new AwsFault(
      "InvalidParameterValue",
      400,
      `fake-aws models only the ${attribute} attribute by account id and group (got: ${[
        ...(params.Attribute !== undefined && params.Attribute !== attribute
          ? [`Attribute=${params.Attribute}`]
          : []),
        ...notModelled,
      ].join(", ")})`,
    );
  const all = [add, remove].flatMap((c) => [...c.userIds, ...c.groups]);
  if (all.length === 0)
    throw new AwsFault("MissingParameter", 400, `The request must contain the parameter ${structured}`);
  const context: Record<string, string[]> = {};
  for (const [name, values] of [
    ["ec2:Add/userId", add.userIds],
    ["ec2:Add/group", add.groups],
    ["ec2:Remove/userId", remove.userIds],
    ["ec2:Remove/group", remove.groups],
  ] as const)
    if (values.length > 0) context[name] = [...values];
  return { add, remove, context };
}

/** EC2's answer for an image that is not (yet) available to copy or share. */
const unavailable = (imageId: string, state: string) =>
  new AwsFault(
    "InvalidAMIID.Unavailable",
    400,
    `The AMI ID '${imageId}' is currently ${state} and may not be used for this operation`,
  );

/** Launch or create-volume permissions as EC2 lists them: an account id as userId, else a group. */
const permissionItems = (permissions: ReadonlySet<string>) =>
  [...permissions].map((v) => (/^\d{12}$/.test(v) ? { userId: v } : { group: v }));

const asList = (v: unknown): string[] | undefined => {
  const all = typeof v === "string" ? [v] : Array.isArray(v) ? v : undefined;
  return all?.every((x): x is string => typeof x === "string") ? all : undefined;
};
const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const MODELLED_OPERATORS = /^((ForAllValues:|ForAnyValue:)?String(Not)?(Equals|Like)|Null)$/;

/** Parses a policy JSON; throws MalformedPolicyDocument for shapes the fake cannot evaluate. */
function parsePolicy(text: string): FakePolicy {
  const bad = () => new AwsFault("MalformedPolicyDocument", 400, "The policy is not valid JSON or IAM");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad();
  }
  if (!isRecord(raw)) throw bad();
  const statements = Array.isArray(raw.Statement) ? raw.Statement : [raw.Statement];
  return {
    Version: typeof raw.Version === "string" ? raw.Version : undefined,
    Statement: statements.map((s: unknown) => {
      if (!isRecord(s) || typeof s.Effect !== "string") throw bad();
      const condition: Record<string, Record<string, string[]>> = {};
      for (const [op, keys] of Object.entries(isRecord(s.Condition) ? s.Condition : {})) {
        if (!isRecord(keys) || !MODELLED_OPERATORS.test(op)) throw bad();
        condition[op] = Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, asList(v) ?? []]));
      }
      return {
        Effect: s.Effect,
        Action: asList(s.Action) ?? [],
        Resource: asList(s.Resource) ?? [],
        Condition: condition,
      };
    }),
  };
}

/** Request context: a key's value, or values for a multi-valued key such as `aws:TagKeys`. */
export type PolicyContext = Readonly<Record<string, string | readonly string[]>>;

/** Does one condition (operator, key, the policy's values) hold in this context? */
function holds(op: string, key: string, values: readonly string[], context: PolicyContext): boolean {
  const raw = context[key];
  const have = raw === undefined ? [] : typeof raw === "string" ? [raw] : raw;
  if (op === "Null") return values.every((v) => (v === "true") === (raw === undefined));
  const [qualifier, base = ""] = op.includes(":") ? op.split(":", 2) : [undefined, op];
  const negated = base.startsWith("StringNot");
  const hit = (value: string) =>
    base.endsWith("Equals") ? values.includes(value) : values.some((pattern) => glob(pattern, value));
  const matches = (value: string) => hit(value) !== negated;
  // ForAllValues over an absent key or no values is true, as in IAM (so it never proves a key was sent);
  // ForAnyValue over them is false.
  if (qualifier === "ForAllValues") return have.every(matches);
  if (qualifier === "ForAnyValue") return have.some(matches);
  // Plain: a negated operator holds when no value matches (an absent key too), the others when one does.
  return negated ? !have.some(hit) : have.some(hit);
}

/**
 * True when the policy allows `action` on every resource (an explicit Deny wins). `context` holds for every
 * resource; `perResource` adds keys for one resource (its tags, or the tags requested for it).
 */
function permits(
  policy: FakePolicy,
  action: string,
  resources: readonly string[],
  context: PolicyContext,
  perResource: Readonly<Record<string, PolicyContext>> = {},
): boolean {
  const applies = (s: FakePolicy["Statement"][number], resource: string) => {
    const here = { ...context, ...perResource[resource] };
    return (
      s.Action.some((a) => glob(a, action, true)) &&
      s.Resource.some((r) => glob(r, resource)) &&
      Object.entries(s.Condition).every(([op, keys]) =>
        Object.entries(keys).every(([key, values]) => holds(op, key, values, here)),
      )
    );
  };
  return resources.every(
    (r) =>
      !policy.Statement.some((s) => s.Effect === "Deny" && applies(s, r)) &&
      policy.Statement.some((s) => s.Effect === "Allow" && applies(s, r)),
  );
}

/**
 * The fake's own policy evaluation, for tests that ask "would this session policy allow X on Y?" about
 * calls the fake does not serve (a bare CreateTags on an existing image, say). Same rules as above, with
 * one context for every resource.
 */
export function sessionPolicyPermits(
  policyJson: string,
  action: string,
  resources: readonly string[],
  context: PolicyContext,
): boolean {
  return permits(parsePolicy(policyJson), action, resources, context);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export async function startFakeAws(options: FakeAwsOptions = {}): Promise<FakeAws> {
  const accountId = options.accountId ?? "123456789012";
  const roles = new Map(Object.entries(options.roles ?? {}));
  const requests: FakeRequest[] = [];
  const instances = new Map<string, FakeInstance>();
  const images = new Map<string, FakeImage>();
  // Snapshots whose image was deregistered without deleting them, with what DescribeSnapshots shows.
  const leftSnapshots = new Map<
    string,
    { snapshot: FakeSnapshot; region: string; ownerId: string; startTime: string }
  >();
  const sessions = new Map<string, FakeSession>();
  const launchTemplates = new Map<string, FakeLaunchTemplate>();
  // CopyImage's ClientToken, per destination region → the first call's parameters and copy.
  const copyTokens = new Map<string, { fingerprint: string; imageId: string }>();
  const copyFailures = new Map<string, { code: string; message: string }>();
  const deniedKmsKeys = new Set<string>();
  const unknownAccounts = new Set<string>();
  const faults = new Map<string, (FakeFault & { left: number })[]>();
  const expired = new Set<string>();
  // A Describe call's NextToken → where its page starts.
  const pageTokens = new Map<string, number>();
  const delays = new Map<string, number[]>();
  const timers = new Set<NodeJS.Timeout>();
  const hangs: {
    action: string;
    when: (r: FakeRequest) => boolean;
    afterEffect: boolean;
    left: number;
  }[] = [];

  const setImageState = (imageId: string, state: string, reason?: string) => {
    const image = images.get(imageId);
    if (!image) throw new Error(`fake-aws: no image ${imageId}`);
    image.state = state;
    image.stateReason = reason === undefined ? undefined : { code: "Server.InternalError", message: reason };
    if (state === "available") for (const s of image.snapshots) s.progress = 100;
  };

  /** A pending image completes: available, or failed for a copy into a failing region or with a denied key. */
  const completeImage = (imageId: string): string => {
    const image = images.get(imageId);
    if (!image) throw new Error(`fake-aws: no image ${imageId}`);
    if (image.state !== "pending") return image.state;
    const copy = image.sourceImageId !== undefined;
    const failure =
      copy && image.kmsKeyId !== undefined && deniedKmsKeys.has(image.kmsKeyId)
        ? {
            code: "Client.InvalidKMSKey.InvalidState",
            message: `The KMS key ${image.kmsKeyId} is not accessible: it does not exist, is disabled, or this account may not use it.`,
          }
        : copy
          ? copyFailures.get(image.region)
          : undefined;
    if (failure) {
      image.state = "failed";
      image.stateReason = { ...failure };
    } else setImageState(imageId, "available");
    return image.state;
  };

  /** With `autoComplete`, the image completes that long after it was made. */
  const scheduleCompletion = (imageId: string) => {
    if (!options.autoComplete) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (images.has(imageId)) completeImage(imageId);
    }, options.autoComplete.afterMs);
    timer.unref();
    timers.add(timer);
  };

  /** A snapshot of the region by id: an image's, or one a deregistration left. */
  const snapshotIn = (region: string, snapshotId: string): FakeSnapshot | undefined => {
    for (const image of images.values())
      if (image.region === region)
        for (const snapshot of image.snapshots) if (snapshot.snapshotId === snapshotId) return snapshot;
    const left = leftSnapshots.get(snapshotId);
    return left?.region === region ? left.snapshot : undefined;
  };

  const newSnapshot = (deviceName: string, sizeGiB: number, tags: Record<string, string>, progress = 0) => ({
    snapshotId: `snap-${hex(17)}`,
    deviceName,
    sizeGiB,
    progress,
    tags: { ...tags },
    createVolumePermissions: new Set<string>(),
    public: false,
  });

  /** Whether a session's policy allows this; keys that are not sessions may do anything (see the file comment). */
  function allowed(
    key: string | undefined,
    region: string,
    action: string,
    resources: string[],
    extra: PolicyContext = {},
    perResource: Readonly<Record<string, PolicyContext>> = {},
  ): boolean {
    const session = key === undefined ? undefined : sessions.get(key);
    const policy = session?.policy;
    const context: PolicyContext = {
      "aws:RequestedRegion": region,
      ...(session?.sourceIdentity !== undefined && { "aws:SourceIdentity": session.sourceIdentity }),
      ...extra,
    };
    return !policy || permits(policy, action, resources, context, perResource);
  }

  /** Enforces a session's policy: UnauthorizedOperation unless `allowed`. */
  function authorize(
    key: string | undefined,
    region: string,
    action: string,
    resources: string[],
    extra: PolicyContext = {},
    perResource: Readonly<Record<string, PolicyContext>> = {},
  ) {
    if (allowed(key, region, action, resources, extra, perResource)) return;
    throw new AwsFault(
      "UnauthorizedOperation",
      403,
      `You are not authorized to perform this operation. (fake-aws: the session policy does not allow ${action} on ${resources.join(", ")})`,
    );
  }

  const visibleInstances = (region: string) =>
    [...instances.values()].filter((i) => i.region === undefined || i.region === region);
  const imagesIn = (region: string) => [...images.values()].filter((i) => i.region === region);
  /** Without a copy of every image per call: benchmarks make thousands. */
  const nameInUse = (region: string, name: string) => {
    for (const i of images.values())
      if (i.region === region && i.name === name && i.state !== "deregistered") return true;
    return false;
  };
  /**
   * MaxResults and NextToken as EC2 checks them: MaxResults 5–1000, never beside a list of ids (`idsParam`
   * names that list in the error), and only tokens the fake issued.
   */
  function paging(
    p: Record<string, string>,
    idsGiven: boolean,
    idsParam: string,
    range: { min: number; max: number } = { min: 5, max: 1000 },
  ) {
    const maxResults = p.MaxResults === undefined ? undefined : Number(p.MaxResults);
    if (maxResults !== undefined && idsGiven)
      throw new AwsFault(
        "InvalidParameterCombination",
        400,
        `The parameter ${idsParam} cannot be used with the parameter maxResults`,
      );
    if (
      maxResults !== undefined &&
      !(Number.isInteger(maxResults) && maxResults >= range.min && maxResults <= range.max)
    )
      throw new AwsFault(
        "InvalidParameterValue",
        400,
        `Value ( ${p.MaxResults} ) for parameter maxResults is invalid. Expecting a value between ${range.min} and ${range.max}.`,
      );
    let start = 0;
    if (p.NextToken !== undefined) {
      const at = pageTokens.get(p.NextToken);
      if (at === undefined) throw new AwsFault("InvalidParameterValue", 400, "Invalid NextToken");
      start = at;
    }
    // Without MaxResults, everything; a NextToken alone continues with pages of the most allowed.
    const size = maxResults ?? (p.NextToken === undefined ? Number.POSITIVE_INFINITY : range.max);
    return <T>(rows: readonly T[]): { page: T[]; nextToken: string | undefined } => {
      const page = rows.slice(start, start + size);
      if (start + size >= rows.length) return { page, nextToken: undefined };
      const nextToken = hex(32);
      pageTokens.set(nextToken, start + size);
      return { page, nextToken };
    };
  }

  /** Owner.N: none means every image or snapshot the caller may see; `self` is the fake's one account. */
  const ownedBy = (p: Record<string, string>) => {
    const owners = list(p, "Owner");
    return (ownerId: string) =>
      owners.length === 0 || owners.some((o) => o === ownerId || (o === "self" && ownerId === accountId));
  };

  function ec2(action: string, p: Record<string, string>, key: string | undefined, region: string): string {
    switch (action) {
      case "CreateImage": {
        const instance = visibleInstances(region).find((i) => i.instanceId === p.InstanceId);
        if (!instance)
          throw new AwsFault(
            "InvalidInstanceID.NotFound",
            400,
            `The instance '${p.InstanceId}' does not exist`,
          );
        const name = p.Name ?? "";
        if (!name) throw new AwsFault("MissingParameter", 400, "The request must contain the parameter name");
        const imageId = `ami-${hex(17)}`;
        const left = noDevices(p);
        const kept = instance.volumes.filter((v) => !left.includes(v.deviceName));
        const snapshots = kept.map(() => `snap-${hex(17)}`);
        const imageArn = `arn:aws:ec2:${region}::image/${imageId}`;
        const snapArns = snapshots.map((s) => `arn:aws:ec2:${region}::snapshot/${s}`);
        const instanceArn = `arn:aws:ec2:${region}:${accountId}:instance/${instance.instanceId}`;
        // TagSpecification.N: ResourceType image → image tags, snapshot → every snapshot's tags.
        const tagsFor = tagSpecifications(p);
        // The instance is judged by the tags it carries; what is made, by the tags asked for it.
        const perResource: Record<string, PolicyContext> = {
          [instanceArn]: resourceTags(instance.tags),
          [imageArn]: requestedTags(tagsFor.image),
          ...Object.fromEntries(snapArns.map((arn) => [arn, requestedTags(tagsFor.snapshot)])),
        };
        authorize(key, region, "ec2:CreateImage", [instanceArn, imageArn, ...snapArns], {}, perResource);
        const tagged = [...(tagsFor.image ? [imageArn] : []), ...(tagsFor.snapshot ? snapArns : [])];
        if (tagged.length > 0)
          authorize(
            key,
            region,
            "ec2:CreateTags",
            tagged,
            { "ec2:CreateAction": "CreateImage" },
            perResource,
          );
        // As in EC2, DryRun answers after the permission check and before the remaining validation.
        if (p.DryRun === "true")
          throw new AwsFault("DryRunOperation", 412, "Request would have succeeded, but DryRun flag is set.");
        if (!["running", "stopped"].includes(instance.state))
          throw new AwsFault("IncorrectInstanceState", 400, `The instance is ${instance.state}`);
        if (nameInUse(region, name))
          throw new AwsFault("InvalidAMIName.Duplicate", 400, `AMI name ${name} is already in use`);
        for (const device of left) {
          if (!instance.volumes.some((v) => v.deviceName === device))
            throw new AwsFault(
              "InvalidBlockDeviceMapping",
              400,
              `The device '${device}' is not a block device of instance ${instance.instanceId}`,
            );
          if (device === instance.rootDeviceName)
            throw new AwsFault(
              "InvalidBlockDeviceMapping",
              400,
              `The root device '${device}' cannot be left out (fake-aws's rule)`,
            );
        }
        images.set(imageId, {
          imageId,
          region,
          instanceId: instance.instanceId,
          sourceInstanceId: instance.instanceId,
          name,
          description: p.Description,
          noReboot: p.NoReboot === "true",
          creationDate: new Date().toISOString(),
          ownerId: accountId,
          tags: tagsFor.image ?? {},
          snapshots: snapshots.map((snapshotId, n) => ({
            ...newSnapshot(kept[n]?.deviceName ?? "", kept[n]?.sizeGiB ?? 0, tagsFor.snapshot ?? {}),
            snapshotId,
          })),
          state: "pending",
          stateReason: undefined,
          sourceImageId: undefined,
          sourceRegion: undefined,
          encrypted: false,
          kmsKeyId: undefined,
          launchPermissions: new Set(),
          public: false,
          deregistrationProtection: "disabled",
        });
        scheduleCompletion(imageId);
        return xml({ imageId });
      }
      case "CopyImage": {
        for (const required of ["SourceRegion", "SourceImageId", "Name"])
          if (!p[required])
            throw new AwsFault("MissingParameter", 400, `The request must contain the parameter ${required}`);
        const sourceRegion = p.SourceRegion ?? "";
        const sourceImageId = p.SourceImageId ?? "";
        const name = p.Name ?? "";
        const encrypted = p.Encrypted === "true";
        if (p.KmsKeyId !== undefined && !encrypted)
          throw new AwsFault(
            "InvalidParameterCombination",
            400,
            "KmsKeyId requires Encrypted=true (fake-aws follows EC2's documented rule)",
          );
        const source = images.get(sourceImageId);
        if (source?.region !== sourceRegion)
          throw new AwsFault(
            "InvalidAMIID.NotFound",
            400,
            `The image id '[${sourceImageId}]' does not exist`,
          );
        const tagsFor = tagSpecifications(p);
        // A repeat is judged on the copy it would answer with; a first call on the one it would make.
        const tokenKey = p.ClientToken === undefined ? undefined : `${region}\n${p.ClientToken}`;
        const earlier = tokenKey === undefined ? undefined : copyTokens.get(tokenKey);
        const imageId = earlier?.imageId ?? `ami-${hex(17)}`;
        const snapshots =
          images.get(imageId)?.snapshots ??
          source.snapshots.map((s) => newSnapshot(s.deviceName, s.sizeGiB, tagsFor.snapshot ?? {}));
        const sourceArn = `arn:aws:ec2:${sourceRegion}::image/${sourceImageId}`;
        const imageArn = `arn:aws:ec2:${region}::image/${imageId}`;
        const snapArns = snapshots.map((s) => `arn:aws:ec2:${region}::snapshot/${s.snapshotId}`);
        const perResource: Record<string, PolicyContext> = {
          [sourceArn]: resourceTags(source.tags),
          [imageArn]: requestedTags(tagsFor.image),
          ...Object.fromEntries(snapArns.map((arn) => [arn, requestedTags(tagsFor.snapshot)])),
        };
        authorize(key, region, "ec2:CopyImage", [sourceArn, imageArn], {}, perResource);
        const tagged = [...(tagsFor.image ? [imageArn] : []), ...(tagsFor.snapshot ? snapArns : [])];
        if (tagged.length > 0)
          authorize(key, region, "ec2:CreateTags", tagged, { "ec2:CreateAction": "CopyImage" }, perResource);
        if (p.DryRun === "true")
          throw new AwsFault("DryRunOperation", 412, "Request would have succeeded, but DryRun flag is set.");
        const fingerprint = JSON.stringify(
          Object.entries(p)
            .filter(([k]) => !["Action", "Version", "DryRun"].includes(k))
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        );
        if (earlier) {
          if (earlier.fingerprint !== fingerprint)
            throw new AwsFault(
              "IdempotentParameterMismatch",
              400,
              `The client token '${p.ClientToken}' was used before with different parameters.`,
            );
          return xml({ imageId });
        }
        if (source.state !== "available") throw unavailable(sourceImageId, source.state);
        if (nameInUse(region, name))
          throw new AwsFault("InvalidAMIName.Duplicate", 400, `AMI name ${name} is already in use`);
        images.set(imageId, {
          imageId,
          region,
          instanceId: source.instanceId,
          sourceInstanceId: undefined,
          name,
          description: p.Description,
          noReboot: source.noReboot,
          creationDate: new Date().toISOString(),
          ownerId: accountId,
          tags: { ...(p.CopyImageTags === "true" ? source.tags : {}), ...tagsFor.image },
          snapshots,
          state: "pending",
          stateReason: undefined,
          sourceImageId,
          sourceRegion,
          encrypted: encrypted || source.encrypted,
          kmsKeyId: p.KmsKeyId,
          launchPermissions: new Set(),
          public: false,
          deregistrationProtection: "disabled",
        });
        if (tokenKey !== undefined) copyTokens.set(tokenKey, { fingerprint, imageId });
        scheduleCompletion(imageId);
        return xml({ imageId });
      }
      case "ModifyImageAttribute": {
        const imageId = p.ImageId ?? "";
        const image = images.get(imageId);
        if (image?.region !== region)
          throw new AwsFault("InvalidAMIID.NotFound", 400, `The image id '[${imageId}]' does not exist`);
        const change = permissionChange(p, "ImageId", "launchPermission", "LaunchPermission");
        const arn = `arn:aws:ec2:${region}::image/${imageId}`;
        authorize(key, region, "ec2:ModifyImageAttribute", [arn], change.context, {
          [arn]: resourceTags(image.tags),
        });
        if (p.DryRun === "true")
          throw new AwsFault("DryRunOperation", 412, "Request would have succeeded, but DryRun flag is set.");
        if (image.state !== "available") throw unavailable(imageId, image.state);
        const badItem = (value: string, type: string) =>
          new AwsFault(
            "InvalidAMIAttributeItemValue",
            400,
            `Invalid attribute item value "${value}" for ${type} item type.`,
          );
        for (const id of [...change.add.userIds, ...change.remove.userIds])
          if (!/^\d{12}$/.test(id) || (change.add.userIds.includes(id) && unknownAccounts.has(id)))
            throw badItem(id, "userId");
        for (const group of [...change.add.groups, ...change.remove.groups])
          if (group !== "all") throw badItem(group, "group");
        for (const v of [...change.add.userIds, ...change.add.groups]) image.launchPermissions.add(v);
        for (const v of [...change.remove.userIds, ...change.remove.groups])
          image.launchPermissions.delete(v);
        image.public = image.launchPermissions.has("all");
        return xml({ return: true });
      }
      case "ModifySnapshotAttribute": {
        const snapshotId = p.SnapshotId ?? "";
        const snapshot = snapshotIn(region, snapshotId);
        if (!snapshot)
          throw new AwsFault("InvalidSnapshot.NotFound", 400, `The snapshot '${snapshotId}' does not exist.`);
        const change = permissionChange(p, "SnapshotId", "createVolumePermission", "CreateVolumePermission");
        const arn = `arn:aws:ec2:${region}::snapshot/${snapshotId}`;
        authorize(key, region, "ec2:ModifySnapshotAttribute", [arn], change.context, {
          [arn]: resourceTags(snapshot.tags),
        });
        if (p.DryRun === "true")
          throw new AwsFault("DryRunOperation", 412, "Request would have succeeded, but DryRun flag is set.");
        for (const id of [...change.add.userIds, ...change.remove.userIds])
          if (!/^\d{12}$/.test(id) || (change.add.userIds.includes(id) && unknownAccounts.has(id)))
            throw new AwsFault(
              "InvalidParameterValue",
              400,
              `Value (${id}) for parameter userId is invalid. It is not a valid AWS account id.`,
            );
        for (const group of [...change.add.groups, ...change.remove.groups])
          if (group !== "all")
            throw new AwsFault(
              "InvalidParameterValue",
              400,
              `Value (${group}) for parameter group is invalid. Only "all" is supported.`,
            );
        for (const v of [...change.add.userIds, ...change.add.groups])
          snapshot.createVolumePermissions.add(v);
        for (const v of [...change.remove.userIds, ...change.remove.groups])
          snapshot.createVolumePermissions.delete(v);
        snapshot.public = snapshot.createVolumePermissions.has("all");
        return xml({ return: true });
      }
      case "DescribeImageAttribute": {
        authorize(key, region, "ec2:DescribeImageAttribute", ["*"]);
        const imageId = p.ImageId ?? "";
        const image = images.get(imageId);
        if (image?.region !== region)
          throw new AwsFault("InvalidAMIID.NotFound", 400, `The image id '[${imageId}]' does not exist`);
        switch (p.Attribute) {
          case "launchPermission":
            return xml({ imageId, launchPermission: permissionItems(image.launchPermissions) });
          case "description":
            return xml({ imageId, description: { value: image.description } });
          case "deregistrationProtection":
            return xml({ imageId, deregistrationProtection: { value: image.deregistrationProtection } });
          default:
            throw new AwsFault(
              "InvalidParameterValue",
              400,
              `fake-aws models DescribeImageAttribute for launchPermission, description and deregistrationProtection only (got ${p.Attribute})`,
            );
        }
      }
      case "DescribeSnapshotAttribute": {
        authorize(key, region, "ec2:DescribeSnapshotAttribute", ["*"]);
        const snapshotId = p.SnapshotId ?? "";
        const snapshot = snapshotIn(region, snapshotId);
        if (!snapshot)
          throw new AwsFault("InvalidSnapshot.NotFound", 400, `The snapshot '${snapshotId}' does not exist.`);
        if (p.Attribute !== "createVolumePermission")
          throw new AwsFault(
            "InvalidParameterValue",
            400,
            `fake-aws models DescribeSnapshotAttribute for createVolumePermission only (got ${p.Attribute})`,
          );
        return xml({ snapshotId, createVolumePermission: permissionItems(snapshot.createVolumePermissions) });
      }
      case "DescribeLaunchTemplateVersions": {
        authorize(key, region, "ec2:DescribeLaunchTemplateVersions", ["*"]);
        const versions = list(p, "LaunchTemplateVersion");
        const byId = p.LaunchTemplateId;
        const byName = p.LaunchTemplateName;
        if (byId !== undefined && byName !== undefined)
          throw new AwsFault(
            "InvalidParameterCombination",
            400,
            "Specify either the launch template ID or the launch template name, but not both.",
          );
        const inRegion = [...launchTemplates.values()].filter((t) => t.region === region);
        const latest = (t: FakeLaunchTemplate) => t.versions.length;
        let rows: { t: FakeLaunchTemplate; v: FakeLaunchTemplateVersion }[];
        if (byId !== undefined || byName !== undefined) {
          const template = inRegion.find((t) =>
            byId !== undefined ? t.launchTemplateId === byId : t.name === byName,
          );
          if (!template)
            throw byId !== undefined
              ? new AwsFault(
                  "InvalidLaunchTemplateId.NotFound",
                  400,
                  `The specified launch template, with template ID ${byId}, does not exist.`,
                )
              : new AwsFault(
                  "InvalidLaunchTemplateName.NotFoundException",
                  400,
                  `The specified launch template, with template name ${byName}, does not exist.`,
                );
          const min = p.MinVersion === undefined ? 1 : Number(p.MinVersion);
          const max = p.MaxVersion === undefined ? Number.POSITIVE_INFINITY : Number(p.MaxVersion);
          const wanted = (n: number) =>
            versions.length === 0 ||
            versions.some((v) =>
              v === "$Latest"
                ? n === latest(template)
                : v === "$Default"
                  ? n === template.defaultVersion
                  : Number(v) === n,
            );
          rows = template.versions
            .filter((v) => wanted(v.versionNumber) && v.versionNumber >= min && v.versionNumber <= max)
            .map((v) => ({ t: template, v }));
        } else {
          if (versions.length === 0)
            throw new AwsFault(
              "MissingParameter",
              400,
              "The request must contain the parameter LaunchTemplateId or LaunchTemplateName, or the versions $Latest or $Default",
            );
          const bad = versions.find((v) => v !== "$Latest" && v !== "$Default");
          if (bad !== undefined)
            throw new AwsFault(
              "InvalidParameterValue",
              400,
              `Version ${bad} needs a launch template: without LaunchTemplateId or LaunchTemplateName only $Latest and $Default are allowed.`,
            );
          rows = inRegion.flatMap((t) =>
            t.versions
              .filter(
                (v) =>
                  (versions.includes("$Latest") && v.versionNumber === latest(t)) ||
                  (versions.includes("$Default") && v.versionNumber === t.defaultVersion),
              )
              .map((v) => ({ t, v })),
          );
        }
        const cut = paging(p, false, "LaunchTemplateVersions", { min: 1, max: 200 });
        const { page, nextToken } = cut(
          filterBy(
            p,
            rows.map((r) => ({ ...r, tags: {} })),
            {
              "image-id": (r) => r.v.imageId ?? "",
              "is-default-version": (r) => String(r.v.versionNumber === r.t.defaultVersion),
            },
          ),
        );
        return xml({
          launchTemplateVersionSet: page.map(({ t, v }) => ({
            launchTemplateId: t.launchTemplateId,
            launchTemplateName: t.name,
            versionNumber: v.versionNumber,
            createTime: v.createTime,
            createdBy: `arn:aws:iam::${accountId}:root`,
            defaultVersion: v.versionNumber === t.defaultVersion,
            launchTemplateData: { imageId: v.imageId },
          })),
          nextToken,
        });
      }
      case "DeregisterImage": {
        const imageId = p.ImageId ?? "";
        if (!/^ami-([0-9a-f]{8}|[0-9a-f]{17})$/.test(imageId))
          throw new AwsFault("InvalidAMIID.Malformed", 400, `Invalid id: "${imageId}"`);
        const image = images.get(imageId);
        if (image?.region !== region)
          throw new AwsFault("InvalidAMIID.NotFound", 400, `The image id '[${imageId}]' does not exist`);
        const imageArn = `arn:aws:ec2:${region}::image/${imageId}`;
        authorize(
          key,
          region,
          "ec2:DeregisterImage",
          [imageArn],
          {},
          { [imageArn]: resourceTags(image.tags) },
        );
        if (p.DryRun === "true")
          throw new AwsFault("DryRunOperation", 412, "Request would have succeeded, but DryRun flag is set.");
        if (image.deregistrationProtection !== "disabled")
          throw new AwsFault(
            "InvalidParameterValue",
            400,
            `Deregistration protection is enabled for ${imageId} (${image.deregistrationProtection}): disable it before you deregister the image.`,
          );
        images.delete(imageId);
        const deleting = p.DeleteAssociatedSnapshots === "true";
        const results = image.snapshots.map((snapshot) => {
          const arn = `arn:aws:ec2:${region}::snapshot/${snapshot.snapshotId}`;
          // Each snapshot under the caller's own ec2:DeleteSnapshot; a refusal keeps it, and the call goes on.
          const deleted =
            deleting &&
            allowed(key, region, "ec2:DeleteSnapshot", [arn], {}, { [arn]: resourceTags(snapshot.tags) });
          if (!deleted)
            leftSnapshots.set(snapshot.snapshotId, {
              snapshot,
              region,
              ownerId: image.ownerId,
              startTime: image.creationDate,
            });
          return { snapshotId: snapshot.snapshotId, returnCode: deleted ? "success" : "missing-permissions" };
        });
        return xml({ return: true, deleteSnapshotResultSet: deleting ? results : undefined });
      }
      case "DescribeImages": {
        authorize(key, region, "ec2:DescribeImages", ["*"]);
        const ids = list(p, "ImageId");
        for (const id of ids)
          if (images.get(id)?.region !== region)
            throw new AwsFault("InvalidAMIID.NotFound", 400, `The image id '[${id}]' does not exist`);
        const cut = paging(p, ids.length > 0, "ImageIds");
        const owned = ownedBy(p);
        // By id straight from the map: a per-image waiter's thousands of calls stay quick.
        const rows = (
          ids.length > 0 ? [...new Set(ids)].map((id) => images.get(id) as FakeImage) : imagesIn(region)
        ).filter((i) => owned(i.ownerId));
        // Filtered first, then cut into pages: with the filters the bot sends, EC2 answers full pages.
        const { page, nextToken } = cut(
          filterBy(p, rows, {
            "image-id": (i) => i.imageId,
            name: (i) => i.name,
            state: (i) => i.state,
            "is-public": (i) => String(i.public),
            "owner-id": (i) => i.ownerId,
            "creation-date": (i) => i.creationDate,
          }),
        );
        return xml({
          imagesSet: page.map((i) => ({
            imageId: i.imageId,
            imageState: i.state,
            imageOwnerId: i.ownerId,
            creationDate: i.creationDate,
            isPublic: i.public,
            name: i.name,
            description: i.description,
            blockDeviceMapping: i.snapshots.map((s) => ({
              deviceName: s.deviceName,
              ebs: {
                snapshotId: s.snapshotId,
                volumeSize: s.sizeGiB,
                deleteOnTermination: true,
                encrypted: i.encrypted,
                kmsKeyId: i.kmsKeyId,
              },
            })),
            stateReason: i.stateReason,
            tagSet: tagSet(i.tags),
            sourceInstanceId: i.sourceInstanceId,
            deregistrationProtection: i.deregistrationProtection,
            sourceImageId: i.sourceImageId,
            sourceImageRegion: i.sourceRegion,
          })),
          nextToken,
        });
      }
      case "DescribeSnapshots": {
        authorize(key, region, "ec2:DescribeSnapshots", ["*"]);
        const all = [
          ...imagesIn(region).flatMap((image) =>
            image.snapshots.map((s) => ({ startTime: image.creationDate, ownerId: image.ownerId, s })),
          ),
          ...[...leftSnapshots.values()]
            .filter((left) => left.region === region)
            .map(({ snapshot, ownerId, startTime }) => ({ startTime, ownerId, s: snapshot })),
        ].map((x) => ({ ...x, tags: x.s.tags }));
        const ids = list(p, "SnapshotId");
        for (const id of ids)
          if (!all.some((x) => x.s.snapshotId === id))
            throw new AwsFault("InvalidSnapshot.NotFound", 400, `The snapshot '${id}' does not exist.`);
        const cut = paging(p, ids.length > 0, "SnapshotIds");
        const owned = ownedBy(p);
        const status = (pct: number) => (pct >= 100 ? "completed" : "pending");
        const rows = all.filter(
          (x) => owned(x.ownerId) && (ids.length === 0 || ids.includes(x.s.snapshotId)),
        );
        const { page, nextToken } = cut(
          filterBy(p, rows, {
            "snapshot-id": (x) => x.s.snapshotId,
            status: (x) => status(x.s.progress),
          }),
        );
        return xml({
          snapshotSet: page.map(({ startTime, ownerId, s }) => ({
            snapshotId: s.snapshotId,
            status: status(s.progress),
            startTime,
            progress: `${s.progress}%`,
            ownerId,
            tagSet: tagSet(s.tags),
          })),
          nextToken,
        });
      }
      case "DescribeInstances": {
        authorize(key, region, "ec2:DescribeInstances", ["*"]);
        const ids = list(p, "InstanceId");
        const cut = paging(p, ids.length > 0, "instancesSet");
        const visible = visibleInstances(region);
        for (const id of ids)
          if (!visible.some((i) => i.instanceId === id))
            throw new AwsFault("InvalidInstanceID.NotFound", 400, `The instance ID '${id}' does not exist`);
        const rows = visible.filter((i) => ids.length === 0 || ids.includes(i.instanceId));
        // Cut the page first, then filter, as EC2 does: a page may hold few matches, or none.
        const { page, nextToken } = cut(rows);
        const found = filterBy(p, page, {
          "instance-id": (i) => i.instanceId,
          "instance-state-name": (i) => i.state,
        });
        return xml({
          reservationSet: found.map((i) => ({
            reservationId: `r-${i.instanceId.slice(2)}`,
            ownerId: accountId,
            instancesSet: [
              {
                instanceId: i.instanceId,
                instanceState: { code: STATE_CODES[i.state] ?? 0, name: i.state },
                instanceType: i.instanceType,
                tagSet: tagSet(i.tags),
                rootDeviceType: "ebs",
                rootDeviceName: i.rootDeviceName,
                blockDeviceMapping: i.volumes.map((v) => ({
                  deviceName: v.deviceName,
                  ebs: {
                    volumeId: v.volumeId,
                    status: "attached",
                    attachTime: ATTACH_TIME,
                    deleteOnTermination: v.deviceName === i.rootDeviceName,
                  },
                })),
              },
            ],
          })),
          nextToken,
        });
      }
      case "DescribeVolumes": {
        authorize(key, region, "ec2:DescribeVolumes", ["*"]);
        const all = visibleInstances(region).flatMap((instance) =>
          instance.volumes.map((v) => ({ instance, v, tags: {} })),
        );
        const ids = list(p, "VolumeId");
        for (const id of ids)
          if (!all.some((x) => x.v.volumeId === id))
            throw new AwsFault("InvalidVolume.NotFound", 400, `The volume '${id}' does not exist.`);
        const rows = all.filter((x) => ids.length === 0 || ids.includes(x.v.volumeId));
        const found = filterBy(p, rows, {
          "volume-id": (x) => x.v.volumeId,
          "attachment.instance-id": (x) => x.instance.instanceId,
          "attachment.device": (x) => x.v.deviceName,
        });
        return xml({
          volumeSet: found.map(({ instance, v }) => ({
            volumeId: v.volumeId,
            size: v.sizeGiB,
            availabilityZone: `${region}a`,
            status: "in-use",
            createTime: ATTACH_TIME,
            attachmentSet: [
              {
                volumeId: v.volumeId,
                instanceId: instance.instanceId,
                device: v.deviceName,
                status: "attached",
                attachTime: ATTACH_TIME,
                deleteOnTermination: v.deviceName === instance.rootDeviceName,
              },
            ],
            volumeType: v.volumeType,
            encrypted: false,
          })),
        });
      }
      default:
        throw new AwsFault("InvalidAction", 400, `The action ${action} is not valid for this web service.`);
    }
  }

  function sts(action: string, p: Record<string, string>, key: string | undefined): string {
    if (action === "GetCallerIdentity") {
      const session = key === undefined ? undefined : sessions.get(key);
      const account = session ? (session.roleArn.split(":")[4] ?? accountId) : accountId;
      const arn = session
        ? `arn:aws:sts::${account}:assumed-role/${session.roleArn.split("/").pop()}/${session.sessionName}`
        : `arn:aws:iam::${accountId}:user/${key ?? "anonymous"}`;
      return xml({
        Arn: arn,
        UserId: session ? `AROAFAKE:${session.sessionName}` : "AIDAFAKE",
        Account: account,
      });
    }
    if (action !== "AssumeRole")
      throw new AwsFault("InvalidAction", 400, `Could not find operation ${action} for version 2011-06-15`);
    const roleArn = p.RoleArn ?? "";
    const role = roles.get(roleArn);
    // One message for both cases, as in AWS: the caller cannot tell a missing role from a bad ExternalId.
    if (!role || (role.externalId !== undefined && p.ExternalId !== role.externalId))
      throw new AwsFault(
        "AccessDenied",
        403,
        `User: arn:aws:iam::${accountId}:user/${key ?? "anonymous"} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
      );
    if (p.Policy !== undefined && p.Policy.length > 2048)
      throw new AwsFault(
        "ValidationError",
        400,
        "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length less than or equal to 2048",
      );
    const sessionName = p.RoleSessionName ?? "session";
    let accessKeyId = `ASIA${hex(16).toUpperCase()}`;
    while (sessions.has(accessKeyId)) accessKeyId = `ASIA${hex(16).toUpperCase()}`;
    const expiration = new Date(Date.now() + Number(p.DurationSeconds ?? 3600) * 1000);
    const session: FakeSession = {
      accessKeyId,
      secretAccessKey: randomBytes(30).toString("base64"),
      sessionToken: `FQoGZXIvYXdzE${randomBytes(48).toString("base64")}`,
      roleArn,
      sessionName,
      sourceIdentity: p.SourceIdentity,
      tags: pairs(p, "Tags.member"),
      policy: p.Policy === undefined ? undefined : parsePolicy(p.Policy),
      expiration,
    };
    sessions.set(accessKeyId, session);
    const account = roleArn.split(":")[4] ?? accountId;
    return xml({
      SourceIdentity: session.sourceIdentity,
      AssumedRoleUser: {
        Arn: `arn:aws:sts::${account}:assumed-role/${roleArn.split("/").pop()}/${sessionName}`,
        AssumedRoleId: `AROAFAKE:${sessionName}`,
      },
      Credentials: {
        AccessKeyId: accessKeyId,
        SecretAccessKey: session.secretAccessKey,
        SessionToken: session.sessionToken,
        Expiration: `${expiration.toISOString().slice(0, 19)}Z`,
      },
    });
  }

  const state = { latencyMs: options.latencyMs ?? 0 };
  const server = createServer((req, res) => {
    void (async () => {
      const params: Record<string, string> = Object.fromEntries(new URLSearchParams(await readBody(req)));
      const scope = /Credential=([^/,\s]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(
        req.headers.authorization ?? "",
      );
      const action = params.Action ?? "";
      const service: FakeService = (scope ? scope[3] === "sts" : STS_ACTIONS.has(action)) ? "sts" : "ec2";
      const region = scope?.[2] ?? "us-east-1";
      const accessKeyId = scope?.[1];
      const requestId = randomUUID();
      let policy: FakePolicy | undefined;
      try {
        if (action === "AssumeRole" && params.Policy !== undefined) policy = parsePolicy(params.Policy);
      } catch {
        // AssumeRole itself answers MalformedPolicyDocument below.
      }
      const received: FakeRequest = { service, action, params, accessKeyId, region, at: Date.now(), policy };
      requests.push(received);
      const hung = hangs.find((h) => h.action === action && h.when(received));
      if (hung && --hung.left <= 0) hangs.splice(hangs.indexOf(hung), 1);
      if (hung && !hung.afterEffect) return;
      const wait = state.latencyMs + (delays.get(action)?.shift() ?? 0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      let status = 200;
      let body: string;
      try {
        const queued = faults.get(action) ?? [];
        const fault = queued.find((f) => f.when?.(received) ?? true);
        if (fault) {
          if (--fault.left <= 0) queued.splice(queued.indexOf(fault), 1);
          throw new AwsFault(fault.code, fault.status, fault.message);
        }
        if (service === "ec2" && accessKeyId !== undefined && expired.has(accessKeyId))
          throw new AwsFault("RequestExpired", 400, "Request has expired.");
        const result =
          service === "sts" ? sts(action, params, accessKeyId) : ec2(action, params, accessKeyId, region);
        body =
          service === "sts"
            ? `<${action}Response xmlns="${STS_NS}"><${action}Result>${result}</${action}Result>${xml({ ResponseMetadata: { RequestId: requestId } })}</${action}Response>`
            : `<${action}Response xmlns="${EC2_NS}">${xml({ requestId })}${result}</${action}Response>`;
      } catch (error) {
        const fault = error instanceof AwsFault ? error : new AwsFault("InternalError", 500, String(error));
        status = fault.status;
        // STS (awsQuery) and EC2 write errors differently; the SDK reads the code from each shape.
        const detail = { Code: fault.code, Message: fault.message };
        body =
          service === "sts"
            ? `<ErrorResponse xmlns="${STS_NS}">${xml({ Error: { Type: status >= 500 ? "Receiver" : "Sender", ...detail }, RequestId: requestId })}</ErrorResponse>`
            : `<Response>${xml({ Errors: { Error: detail }, RequestID: requestId })}</Response>`;
      }
      if (hung) return;
      res.writeHead(status, { "content-type": "text/xml;charset=UTF-8", "x-amzn-requestid": requestId });
      res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
    })().catch((error: unknown) => {
      res.statusCode = 500;
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    accountId,
    requests,
    calls: (action) => requests.filter((r) => r.action === action),
    images,
    get snapshots() {
      return new Map([
        ...[...images.values()].flatMap((i) => i.snapshots.map((s) => [s.snapshotId, s] as const)),
        ...[...leftSnapshots.values()].map((left) => [left.snapshot.snapshotId, left.snapshot] as const),
      ]);
    },
    instances,
    sessions,
    addImage(spec) {
      const { name, region, tags = {}, state = "available" } = spec;
      const specs: readonly FakeSnapshotSpec[] =
        typeof spec.snapshots === "object"
          ? spec.snapshots
          : Array.from({ length: spec.snapshots ?? 0 }, (_, n) => ({
              deviceName: n === 0 ? "/dev/xvda" : `/dev/sd${String.fromCharCode(97 + n)}`,
            }));
      const protection = spec.deregistrationProtection;
      const image: FakeImage = {
        imageId: `ami-${hex(17)}`,
        region,
        instanceId: spec.instanceId ?? spec.sourceInstanceId ?? "i-0000000000000000f",
        sourceInstanceId: spec.sourceInstanceId,
        name,
        description: spec.description,
        noReboot: true,
        creationDate:
          spec.creationDate === undefined
            ? new Date().toISOString()
            : new Date(spec.creationDate).toISOString(),
        ownerId: spec.ownerId ?? accountId,
        tags: { ...tags },
        snapshots: specs.map((s, n) => ({
          ...newSnapshot(
            s.deviceName ?? (n === 0 ? "/dev/xvda" : `/dev/sd${String.fromCharCode(97 + n)}`),
            s.sizeGiB ?? 8,
            s.tags ?? tags,
            state === "available" ? 100 : 0,
          ),
          ...(s.snapshotId !== undefined && { snapshotId: s.snapshotId }),
        })),
        state,
        stateReason: undefined,
        sourceImageId: undefined,
        sourceRegion: undefined,
        encrypted: false,
        kmsKeyId: undefined,
        launchPermissions: new Set(),
        public: false,
        deregistrationProtection:
          protection === true ? "enabled-without-cooldown" : protection ? protection : "disabled",
      };
      images.set(image.imageId, image);
      return image;
    },
    launchTemplates,
    addLaunchTemplate({ region, name, imageId, version }) {
      for (const t of launchTemplates.values())
        if (t.region === region && t.name === name)
          throw new Error(`fake-aws: a launch template ${name} already exists in ${region}`);
      const createTime = new Date().toISOString();
      const template: FakeLaunchTemplate = {
        launchTemplateId: `lt-${hex(17)}`,
        name,
        region,
        versions:
          version === undefined
            ? [{ versionNumber: 1, imageId, createTime }]
            : [
                { versionNumber: 1, imageId: version === "$Default" ? imageId : undefined, createTime },
                { versionNumber: 2, imageId: version === "$Latest" ? imageId : undefined, createTime },
              ],
        defaultVersion: 1,
      };
      launchTemplates.set(template.launchTemplateId, template);
      return template;
    },
    addLaunchTemplateVersion(launchTemplateId, { imageId, makeDefault = false }) {
      const template = launchTemplates.get(launchTemplateId);
      if (!template) throw new Error(`fake-aws: no launch template ${launchTemplateId}`);
      const version = {
        versionNumber: template.versions.length + 1,
        imageId,
        createTime: new Date().toISOString(),
      };
      template.versions.push(version);
      if (makeDefault) template.defaultVersion = version.versionNumber;
      return version;
    },
    failCopiesTo(region, reason) {
      if (reason === undefined) copyFailures.delete(region);
      else
        copyFailures.set(
          region,
          typeof reason === "string" ? { code: "Server.InternalError", message: reason } : { ...reason },
        );
    },
    denyKmsKey: (keyId) => void deniedKmsKeys.add(keyId),
    addUnknownAccount: (id) => void unknownAccounts.add(id),
    completeImage,
    addInstance(i) {
      const specs: readonly FakeVolumeSpec[] =
        typeof i.volumes === "object"
          ? i.volumes
          : Array.from({ length: i.volumes ?? 1 }, (_, n) => ({
              deviceName: n === 0 ? "/dev/xvda" : `/dev/sd${String.fromCharCode(97 + n)}`,
            }));
      const volumes = specs.map((v) => ({
        deviceName: v.deviceName,
        volumeId: v.volumeId ?? `vol-${hex(17)}`,
        sizeGiB: v.sizeGiB ?? 8,
        volumeType: v.volumeType ?? "gp3",
      }));
      const instance: FakeInstance = {
        instanceId: i.instanceId,
        state: i.state ?? "running",
        instanceType: i.instanceType ?? "t3.micro",
        tags: { ...(i.name === undefined ? {} : { Name: i.name }), ...i.tags },
        rootDeviceName: i.rootDeviceName ?? volumes[0]?.deviceName ?? "/dev/xvda",
        volumes,
        region: i.region,
      };
      instances.set(i.instanceId, instance);
      return instance;
    },
    addRole: (roleArn, role = {}) => void roles.set(roleArn, role),
    setImageState,
    setSnapshotProgress(imageId, percent) {
      const image = images.get(imageId);
      if (!image) throw new Error(`fake-aws: no image ${imageId}`);
      for (const s of image.snapshots) s.progress = percent;
    },
    failNext(action, fault) {
      faults.set(action, [...(faults.get(action) ?? []), { ...fault, left: fault.count ?? 1 }]);
    },
    expireSessions() {
      for (const key of sessions.keys()) expired.add(key);
    },
    delayNext(action, ms) {
      delays.set(action, [...(delays.get(action) ?? []), ms]);
    },
    hang(action, { when = () => true, afterEffect = false, count = Number.POSITIVE_INFINITY } = {}) {
      hangs.push({ action, when, afterEffect, left: count });
    },
    stopHanging() {
      hangs.length = 0;
    },
    get latencyMs() {
      return state.latencyMs;
    },
    set latencyMs(ms) {
      state.latencyMs = ms;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      // The SDK keeps connections alive; without closing them, close() would wait for their timeout.
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
