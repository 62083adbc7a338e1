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
 *   plain (any value of the key matches; an absent key never matches) or with `ForAllValues:` (every value
 *   matches; an absent key or no values is true, as in IAM); and `Null`. Any other
 *   operator is refused as MalformedPolicyDocument, so a policy the fake cannot judge fails loudly
 *   instead of being judged wrong. Context keys: `aws:RequestedRegion`, `aws:SourceIdentity` (the
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
 *   - Describe* calls (DescribeVolumes too) need their action on resource `*`.
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
 *   DescribeImages/DescribeSnapshots honour Owner.N (`Owners`, `OwnerIds` in the SDK): `self` or an account
 *   id. Every image and snapshot the fake makes is owned by its one account, which is `self` to every caller
 *   (whichever role's session calls); `addImage({ ownerId })` makes one that is another's, shared with it.
 * - Session expiry only on demand: after `expireSessions()`, EC2 calls signed with a session issued before
 *   answer RequestExpired (as EC2 does for expired temporary credentials); new AssumeRole sessions work.
 * - DeregisterImage checks, in order: a well-formed id (else InvalidAMIID.Malformed), the image exists in
 *   the region (else InvalidAMIID.NotFound, also for one already deregistered), permission, DryRun. The
 *   image is removed (DescribeImages no longer returns it) and, with DeleteAssociatedSnapshots=true, so
 *   are the snapshots the session may delete; the answer lists each with its return code.
 * - Not modelled: signatures, timed session expiry, pagination of DescribeVolumes, IAM of
 *   roles/base identity, deregistration protection, the Recycle Bin, snapshots shared by several images.
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
}

export interface FakeImage {
  readonly imageId: string;
  readonly region: string;
  readonly instanceId: string;
  readonly name: string;
  readonly description: string | undefined;
  readonly noReboot: boolean;
  readonly creationDate: string;
  readonly ownerId: string;
  readonly tags: Record<string, string>;
  readonly snapshots: FakeSnapshot[];
  state: string;
  stateReason: { code: string; message: string } | undefined;
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
  /** Images turn available (snapshots 100%) this long after creation. Off by default. */
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
   * An image made outside the bot, without snapshots: by default this account's, available and untagged;
   * `ownerId` makes it another account's, shared with this one (listed unless Owner.N leaves it out).
   */
  addImage(image: {
    name: string;
    region: string;
    instanceId?: string;
    ownerId?: string;
    tags?: Record<string, string>;
    state?: string;
  }): FakeImage;
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

const asList = (v: unknown): string[] | undefined => {
  const all = typeof v === "string" ? [v] : Array.isArray(v) ? v : undefined;
  return all?.every((x): x is string => typeof x === "string") ? all : undefined;
};
const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const MODELLED_OPERATORS = /^((ForAllValues:)?String(Equals|Like)|Null)$/;

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
  const [qualifier, base] = op.includes(":") ? op.split(":", 2) : [undefined, op];
  const matches = (value: string) =>
    base === "StringEquals" ? values.includes(value) : values.some((pattern) => glob(pattern, value));
  // ForAllValues over an absent key or no values is true, as in IAM (so it never proves a key was sent).
  return qualifier === "ForAllValues" ? have.every(matches) : have.some(matches);
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
  /** What an existing resource's tags put in the request context. */
  const resourceTags = (tags: Record<string, string>): PolicyContext =>
    Object.fromEntries(
      ["aws:ResourceTag", "ec2:ResourceTag"].flatMap((prefix) =>
        Object.entries(tags).map(([k, v]) => [`${prefix}/${k}`, v]),
      ),
    );

  /**
   * MaxResults and NextToken as EC2 checks them: MaxResults 5–1000, never beside a list of ids (`idsParam`
   * names that list in the error), and only tokens the fake issued.
   */
  function paging(p: Record<string, string>, idsGiven: boolean, idsParam: string) {
    const maxResults = p.MaxResults === undefined ? undefined : Number(p.MaxResults);
    if (maxResults !== undefined && idsGiven)
      throw new AwsFault(
        "InvalidParameterCombination",
        400,
        `The parameter ${idsParam} cannot be used with the parameter maxResults`,
      );
    if (maxResults !== undefined && !(Number.isInteger(maxResults) && maxResults >= 5 && maxResults <= 1000))
      throw new AwsFault(
        "InvalidParameterValue",
        400,
        `Value ( ${p.MaxResults} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`,
      );
    let start = 0;
    if (p.NextToken !== undefined) {
      const at = pageTokens.get(p.NextToken);
      if (at === undefined) throw new AwsFault("InvalidParameterValue", 400, "Invalid NextToken");
      start = at;
    }
    // Without MaxResults, everything; a NextToken alone continues with pages of 1,000.
    const size = maxResults ?? (p.NextToken === undefined ? Number.POSITIVE_INFINITY : 1000);
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
        const tagsFor: Record<string, Record<string, string>> = {};
        for (let i = 1; p[`TagSpecification.${i}.ResourceType`] !== undefined; i++)
          tagsFor[p[`TagSpecification.${i}.ResourceType`] ?? ""] = pairs(p, `TagSpecification.${i}.Tag`);
        // The instance is judged by the tags it carries; what is made, by the tags asked for it.
        const tagContext = (prefixes: string[], tags: Record<string, string>) =>
          Object.fromEntries(
            prefixes.flatMap((prefix) => Object.entries(tags).map(([k, v]) => [`${prefix}/${k}`, v])),
          );
        const requested = (tags: Record<string, string> | undefined): PolicyContext =>
          tags ? { "aws:TagKeys": Object.keys(tags), ...tagContext(["aws:RequestTag"], tags) } : {};
        const perResource: Record<string, PolicyContext> = {
          [instanceArn]: tagContext(["aws:ResourceTag", "ec2:ResourceTag"], instance.tags),
          [imageArn]: requested(tagsFor.image),
          ...Object.fromEntries(snapArns.map((arn) => [arn, requested(tagsFor.snapshot)])),
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
          name,
          description: p.Description,
          noReboot: p.NoReboot === "true",
          creationDate: new Date().toISOString(),
          ownerId: accountId,
          tags: tagsFor.image ?? {},
          snapshots: snapshots.map((snapshotId, n) => ({
            snapshotId,
            deviceName: kept[n]?.deviceName ?? "",
            sizeGiB: kept[n]?.sizeGiB ?? 0,
            progress: 0,
            tags: { ...tagsFor.snapshot },
          })),
          state: "pending",
          stateReason: undefined,
        });
        if (options.autoComplete) {
          const timer = setTimeout(() => {
            timers.delete(timer);
            if (images.get(imageId)?.state === "pending") setImageState(imageId, "available");
          }, options.autoComplete.afterMs);
          timer.unref();
          timers.add(timer);
        }
        return xml({ imageId });
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
          }),
        );
        return xml({
          imagesSet: page.map((i) => ({
            imageId: i.imageId,
            imageState: i.state,
            imageOwnerId: i.ownerId,
            creationDate: i.creationDate,
            name: i.name,
            description: i.description,
            blockDeviceMapping: i.snapshots.map((s) => ({
              deviceName: s.deviceName,
              ebs: { snapshotId: s.snapshotId, volumeSize: s.sizeGiB, deleteOnTermination: true },
            })),
            stateReason: i.stateReason,
            tagSet: tagSet(i.tags),
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
    addImage({ name, region, instanceId, ownerId, tags, state }) {
      const image: FakeImage = {
        imageId: `ami-${hex(17)}`,
        region,
        instanceId: instanceId ?? "i-0000000000000000f",
        name,
        description: undefined,
        noReboot: true,
        creationDate: new Date().toISOString(),
        ownerId: ownerId ?? accountId,
        tags: { ...tags },
        snapshots: [],
        state: state ?? "available",
        stateReason: undefined,
      };
      images.set(image.imageId, image);
      return image;
    },
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
