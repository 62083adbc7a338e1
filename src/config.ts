import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { isKnownRegion, partitionOf } from "./aws/regions.js";
import {
  MAX_REQUIRED_INSTANCE_TAGS,
  MAX_SESSION_POLICY_CHARS,
  MAX_TAG_KEY_PATTERNS,
  worstCaseCreatePolicyLength,
} from "./aws/session-policy.js";
import { queueUrlProblem } from "./aws/sqs-queue-url.js";
import { editDistance } from "./domain/edit-distance.js";
import {
  type AfterImageSettings,
  NO_AFTER_STEPS,
  type Target,
  type WatcherSettings,
} from "./domain/target.js";
import { ConfigError } from "./errors.js";

export type { AccessRule, InstanceScope, Target, WatcherSettings } from "./domain/target.js";

export interface Config {
  readonly slack: {
    readonly botToken: string;
    readonly signingSecret: string | undefined;
    readonly appToken: string | undefined;
    readonly apiUrl: string | undefined;
  };
  readonly port: number;
  readonly databasePath: string;
  /**
   * DATABASE_URL: a Postgres database shared by several replicas; unset, the embedded SQLite file at
   * databasePath (one process).
   */
  readonly databaseUrl: string | undefined;
  /** AMI_LEASE: how long a replica's claim on a job or message lasts (Postgres only). */
  readonly leaseMs: number;
  readonly logLevel: string;
  readonly usergroupCacheMs: number;
  /** Testing only (NODE_ENV=test): the step at which the process kills itself (see bot.ts). */
  readonly crashAt: string | undefined;
  readonly targets: readonly Target[];
  readonly watcher: WatcherSettings;
  /** Time limits on every AWS call, so one hung connection cannot stall the watcher. */
  readonly aws: {
    readonly connectTimeoutMs: number;
    readonly requestTimeoutMs: number;
  };
  /** AMI_EVENTS_QUEUE_URL: the SQS queue of EC2 AMI state events (push mode); unset, polling alone. */
  readonly eventsQueueUrl?: string;
}

const ROLE_ARN = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/[\w+=,.@/-]+$/;
// Two to four letters first: eusc-de-east-1 (the European Sovereign Cloud) is a region too.
const REGION = /^[a-z]{2,4}(-[a-z]+)+-\d+$/;
const USER_ID = /^(\*|[UW][A-Z0-9]{2,})$/;
const GROUP_ID = /^S[A-Z0-9]{2,}$/;
const CHANNEL_ID = /^[CGD][A-Z0-9]{2,}$/;

const duration = z
  .union([
    z.number().positive("must be more than zero"),
    z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h)$/, "use a number with ms, s, m or h"),
  ])
  .transform((v) => (typeof v === "number" ? v * 1000 : parseDuration(v)))
  .refine((ms) => ms > 0, "must be more than zero");

const allowSchema = z.strictObject({
  users: z.array(z.string().regex(USER_ID, "must be a Slack user id (U…/W…) or *")).default([]),
  usergroups: z.array(z.string().regex(GROUP_ID, "must be a Slack user group id (S…)")).default([]),
  channels: z.array(z.string().regex(CHANNEL_ID, "must be a Slack channel id (C…/G…)")).default([]),
});

/** An approver: `*` is refused by name, since a rule everyone may approve under guards nothing. */
const approverUserSchema = z.string().superRefine((id, ctx) => {
  if (id === "*")
    ctx.addIssue({
      code: "custom",
      message:
        "* is not allowed among approvers: if everyone may approve, the two-person rule guards nothing; list user ids (U…/W…)",
    });
  else if (!/^[UW][A-Z0-9]{2,}$/.test(id))
    ctx.addIssue({
      code: "custom",
      message: "must be a Slack user id (U…/W…)",
      params: { envMessage: notAnApprover(id) },
    });
});

const approverGroupSchema = z.string().superRefine((id, ctx) => {
  if (!GROUP_ID.test(id))
    ctx.addIssue({
      code: "custom",
      message: "must be a Slack user group id (S…)",
      params: { envMessage: notAnApprover(id) },
    });
});

/** AMI_TARGET_APPROVERS mixes users and user groups, so its message names the value and both forms. */
function notAnApprover(id: string): string {
  return `"${id.slice(0, 40)}" is neither a Slack user id (U…/W…) nor a user group id (S…)`;
}

const MAX_APPROVER_USERS = 20;
const MAX_APPROVER_GROUPS = 5;

const approversSchema = z.strictObject(
  {
    // Every approver is named in the job's root message and thread (a section holds 3,000 characters): a
    // long list belongs in a user group.
    users: z
      .array(approverUserSchema)
      .max(MAX_APPROVER_USERS, `at most ${MAX_APPROVER_USERS} people; put more in a user group`)
      .default([]),
    usergroups: z
      .array(approverGroupSchema)
      .max(MAX_APPROVER_GROUPS, `at most ${MAX_APPROVER_GROUPS} user groups`)
      .default([]),
  },
  { error: (issue) => (issue.code === "invalid_type" ? "must hold users and/or usergroups" : undefined) },
);

const MIN_APPROVAL_EXPIRY_MS = 5 * 60_000;
const MAX_APPROVAL_EXPIRY_MS = 7 * 24 * 3_600_000;

const approvalSchema = z
  .strictObject(
    {
      approvers: approversSchema.default({ users: [], usergroups: [] }),
      // Long enough for someone to notice, short enough that a forgotten request cannot be approved weeks later.
      expiresAfter: duration
        .pipe(
          z
            .number()
            .refine(
              (ms) => ms >= MIN_APPROVAL_EXPIRY_MS && ms <= MAX_APPROVAL_EXPIRY_MS,
              "must be at least 5m and at most 168h (7 days)",
            ),
        )
        .default(4 * 3_600_000),
    },
    {
      error: (issue) =>
        issue.code === "invalid_type" ? "must hold approvers and, optionally, expiresAfter" : undefined,
    },
  )
  // Run even when expiresAfter is wrong, so both problems are reported in one round; not after an unknown
  // key, whose "did you mean" (`approver:`) already says why no approver was found.
  .superRefine(checkApprovers, {
    when: (payload) =>
      typeof payload.value === "object" &&
      payload.value !== null &&
      payload.issues.every((issue) => issue.code !== "unrecognized_keys"),
  });

/** AWS's own rule for sts:ExternalId. */
const EXTERNAL_ID = /^[\w+=,.@:/-]{2,1224}$/;
/** EC2 tag-key characters; a trailing `*` makes a prefix. Excludes quotes, so a key is safe in a policy. */
const TAG_KEY_PATTERN = /^(?:[\w .:/=+@-]{1,128}|[\w .:/=+@-]{0,127}\*)$/;
const TAG_CHARS = /^[\w .:/=+@-]*$/;

/** A key or prefix that is, or would cover, a key ami-bot or AWS reserves (`aws:x`, `ami-bot:*`, `Name`, `am*`). */
function grantsReserved(pattern: string): boolean {
  const reserved = ["aws:", "ami-bot:", "Name"];
  if (pattern.endsWith("*")) {
    const prefix = pattern.slice(0, -1).toLowerCase();
    return reserved.some((r) => r.toLowerCase().startsWith(prefix) || prefix.startsWith(r.toLowerCase()));
  }
  return /^(aws:|ami-bot:)/i.test(pattern) || pattern === "Name";
}
// Both lists go into every CreateImage session policy, which AWS caps at 2,048 characters.
const MAX_INSTANCE_TAGS = MAX_REQUIRED_INSTANCE_TAGS;

const flag = z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")], {
  error: "must be true or false",
});

/** How many regions a target may offer copies into, and accounts it may offer sharing with. */
const MAX_COPY_REGIONS = 10;
const MAX_SHARE_ACCOUNTS = 20;
const ACCOUNT_ID = /^\d{12}$/;
/** A KMS key or alias ARN: partition, region, account, and `key/…` or `alias/…`. */
const KMS_KEY_ARN =
  /^arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):(?:key\/[\w-]{1,128}|alias\/[\w/+=,.@-]{1,250})$/;
/** Words that would share with everyone (EC2's `all` group): refused by name, never treated as a typo. */
const PUBLIC_WORDS = new Set(["all", "*", "public", "everyone"]);
const MIN_KEEP_AGE_MS = 24 * 3_600_000;

/** A copy destination: a region, or `{ region, kmsKeyId }` (the key its copies are encrypted with there). */
const copyDestinationObject = z.strictObject(
  {
    region: z.string("must be a region such as eu-central-1"),
    kmsKeyId: z.string("must be a KMS key or alias ARN").optional(),
  },
  {
    error: (issue) =>
      issue.code === "invalid_type" ? "must be a region (eu-central-1) or { region, kmsKeyId }" : undefined,
  },
);
const copyDestinationSchema = z.preprocess(
  (v) => (typeof v === "string" ? { region: v } : v),
  copyDestinationObject,
);

/** The keep rule's oldest age: a duration as elsewhere, with days too (`90d`), and at least a day. */
const age = z
  .union([
    z.number().positive("must be more than zero"),
    z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h|d)$/, "use a number with d or h, e.g. 90d"),
  ])
  .transform((v) => (typeof v === "number" ? v * 1000 : parseDuration(v)))
  .refine((ms) => ms >= MIN_KEEP_AGE_MS, "must be at least 1d (a day)");

const keepSchema = z
  .strictObject(
    {
      lastPerInstance: z.coerce
        .number("must be a whole number")
        .int("must be a whole number")
        .min(1, "must be at least 1")
        .max(1000, "must be at most 1000")
        .optional(),
      maxAge: age.optional(),
      // Checked by checkKeep, so a missing channel is named with what it is for.
      channel: z.string("must be a Slack channel id (C…/G…)").optional(),
    },
    {
      error: (issue) =>
        issue.code === "invalid_type" ? "must hold lastPerInstance and/or maxAge, and channel" : undefined,
    },
  )
  .superRefine(checkKeep, {
    when: (payload) =>
      typeof payload.value === "object" &&
      payload.value !== null &&
      payload.issues.every((issue) => issue.code !== "unrecognized_keys"),
  });

const afterSchema = z.strictObject(
  {
    copyTo: z
      .array(copyDestinationSchema, "must be a list of regions")
      .max(MAX_COPY_REGIONS, `at most ${MAX_COPY_REGIONS} regions`)
      .default([]),
    // Numbers too: YAML reads an unquoted account id as one (checkAfter names a leading zero it lost).
    shareWith: z
      .array(
        z.union([z.string(), z.number()], { error: "must be a 12-digit AWS account id" }),
        "must be a list of 12-digit AWS account ids",
      )
      .max(MAX_SHARE_ACCOUNTS, `at most ${MAX_SHARE_ACCOUNTS} accounts`)
      .default([]),
    keep: keepSchema.optional(),
  },
  {
    error: (issue) => (issue.code === "invalid_type" ? "must hold copyTo, shareWith and/or keep" : undefined),
  },
);

/** Who may run `/ami cleanup`: people by id, never `*`. */
const adminSchema = z.string("must be a Slack user id (U…/W…)").superRefine((id, ctx) => {
  if (id === "*")
    ctx.addIssue({
      code: "custom",
      message: "* is not allowed among admins: list user ids (U…/W…)",
    });
  else if (!/^[UW][A-Z0-9]{2,}$/.test(id))
    ctx.addIssue({ code: "custom", message: `"${id.slice(0, 40)}" is not a Slack user id (U…/W…)` });
});

const targetSchema = z
  .strictObject({
    name: z.string().regex(/^[\w.-]{1,40}$/, "letters, digits, . _ - (at most 40)"),
    roleArn: z.string().regex(ROLE_ARN, "must look like arn:aws:iam::123456789012:role/name"),
    externalId: z
      .string()
      .regex(EXTERNAL_ID, "must be 2–1,224 characters of letters, digits and + = , . @ : / - _")
      .optional(),
    regions: z
      .array(z.string().regex(REGION, "must be an AWS region such as eu-west-1"))
      .min(1, "list at least one region, e.g. eu-west-1"),
    allow: allowSchema.default({ users: [], usergroups: [], channels: [] }),
    // Keys are checked here rather than by the record's key schema, so the message can name the key.
    instanceTags: z
      .record(
        z.string(),
        z
          .string()
          .regex(/^[\w .:/=+@-]{0,256}$/, "tag values use letters, digits, spaces and _ . : / = + @ -"),
      )
      .superRefine((tags, ctx) => {
        for (const key of Object.keys(tags))
          if (!TAG_CHARS.test(key) || key.length < 1 || key.length > 128)
            ctx.addIssue({
              code: "custom",
              message: `tag key "${key.slice(0, 40)}": 1–128 letters, digits, spaces and _ . : / = + @ -`,
            });
        if (Object.keys(tags).length > MAX_INSTANCE_TAGS)
          ctx.addIssue({ code: "custom", message: `at most ${MAX_INSTANCE_TAGS} tags` });
      })
      .default({}),
    reboot: z.enum(["never", "ask"], "must be never or ask").default("never"),
    tagKeys: z
      .array(
        z
          .string()
          .regex(TAG_KEY_PATTERN, "a tag key (team) or a prefix ending in * (app:*)")
          .refine((k) => !grantsReserved(k), {
            message: "aws:*, ami-bot:*, Name and * cannot be granted (reserved, or everything)",
          }),
      )
      .min(1, "list at least one key, or leave tagKeys out to allow any key")
      .max(MAX_TAG_KEY_PATTERNS, `at most ${MAX_TAG_KEY_PATTERNS} keys`)
      .optional(),
    jobsPerHour: z.coerce
      .number("must be a whole number")
      .int("must be a whole number")
      .min(1, "must be at least 1")
      .max(1000, "must be at most 1000")
      .default(10),
    allowGuests: flag.default(false),
    allowPublicChannels: flag.default(false),
    approval: approvalSchema.optional(),
    after: afterSchema.default({ copyTo: [], shareWith: [] }),
    admins: z.array(adminSchema, "must be a list of Slack user ids (U…/W…)").default([]),
  })
  // Run even when other fields are wrong, so a bad region is reported in the same round as they are.
  .superRefine(checkRegions, {
    when: (payload) => typeof payload.value === "object" && payload.value !== null,
  })
  .superRefine(checkAfter, {
    when: (payload) => typeof payload.value === "object" && payload.value !== null,
  });

const watcherSchema = z.strictObject({
  pollInterval: duration.optional(),
  slowAfter: duration.optional(),
  slowPollInterval: duration.optional(),
  giveUpAfter: duration.optional(),
});

const fileSchema = z.strictObject({
  targets: z.array(targetSchema).min(1, "list at least one target"),
  watcher: watcherSchema.default({}),
});

/** The keys each object of the file may hold, by path with list positions as `*`. */
const KNOWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  "": Object.keys(fileSchema.shape),
  "targets.*": Object.keys(targetSchema.shape),
  "targets.*.allow": Object.keys(allowSchema.shape),
  "targets.*.approval": Object.keys(approvalSchema.shape),
  "targets.*.approval.approvers": Object.keys(approversSchema.shape),
  "targets.*.after": Object.keys(afterSchema.shape),
  "targets.*.after.copyTo.*": Object.keys(copyDestinationObject.shape),
  "targets.*.after.keep": Object.keys(keepSchema.shape),
  watcher: Object.keys(watcherSchema.shape),
};

/**
 * Each region must be a real one of the role's partition: a region that does not exist, or exists only
 * in another partition, would fail on every request. Only names of the right shape are checked here; the
 * others already have their problem.
 */
function checkRegions(target: { roleArn: unknown; regions: unknown }, ctx: z.RefinementCtx): void {
  if (!Array.isArray(target.regions)) return;
  const arnPartition = partitionOfRole(target.roleArn);
  target.regions.forEach((region: unknown, i) => {
    if (typeof region !== "string" || !REGION.test(region)) return;
    const problem = regionProblem(region, arnPartition);
    // In the one-target set-up the partition is named only when the region lives in another one.
    if (problem)
      ctx.addIssue({
        code: "custom",
        path: ["regions", i],
        message: problem.message,
        params: { envMessage: problem.envMessage },
      });
  });
}

function partitionOfRole(roleArn: unknown): string | undefined {
  return typeof roleArn === "string" ? ROLE_ARN.exec(roleArn)?.[1] : undefined;
}

/**
 * Why `region` is not a region of the role's partition, or undefined when it is one. `envMessage` names the
 * partition only when the region lives in another one (the one-target set-up names no partition otherwise).
 */
function regionProblem(
  region: string,
  arnPartition: string | undefined,
): { message: string; envMessage: string } | undefined {
  const shaped = REGION.test(region);
  const known = shaped ? partitionOf(region) : undefined;
  if (shaped && (arnPartition ? isKnownRegion(arnPartition, region) : known !== undefined)) return undefined;
  const bare = `"${region.slice(0, 40)}" is not an AWS region`;
  const message = arnPartition ? `${bare} in partition ${arnPartition}` : bare;
  return { message, envMessage: known ? message : bare };
}

/**
 * The steps after the image, against the role: each copy region a real one of its partition, listed once,
 * with a key of that region; each account a real account id, not the target's own, never the public.
 */
function checkAfter(target: { roleArn: unknown; after?: unknown }, ctx: z.RefinementCtx): void {
  const after = target.after as { copyTo?: unknown; shareWith?: unknown } | null | undefined;
  if (typeof after !== "object" || after === null) return;
  const role = typeof target.roleArn === "string" ? ROLE_ARN.exec(target.roleArn) : null;
  const arnPartition = role?.[1];
  const ownAccount = role?.[2];
  const issue = (path: (string | number)[], message: string, envMessage = message) =>
    ctx.addIssue({ code: "custom", path: ["after", ...path], message, params: { envMessage } });

  if (Array.isArray(after.copyTo)) {
    const seen = new Set<string>();
    after.copyTo.forEach((item: unknown, i) => {
      const destination = typeof item === "string" ? { region: item } : item;
      if (typeof destination !== "object" || destination === null) return;
      const { region, kmsKeyId } = destination as { region?: unknown; kmsKeyId?: unknown };
      if (typeof region !== "string") return;
      const problem = regionProblem(region, arnPartition);
      if (problem) issue(["copyTo", i, "region"], problem.message, problem.envMessage);
      else if (seen.has(region)) issue(["copyTo", i, "region"], `"${region}" is listed twice`);
      seen.add(region);
      const keyProblem = typeof kmsKeyId === "string" && kmsKeyProblem(kmsKeyId, region, arnPartition);
      if (keyProblem) issue(["copyTo", i, "kmsKeyId"], keyProblem);
    });
  }

  if (Array.isArray(after.shareWith)) {
    const seen = new Set<string>();
    after.shareWith.forEach((raw: unknown, i) => {
      if (typeof raw !== "string" && typeof raw !== "number") return;
      const id = String(raw);
      const problem = accountProblem(id, typeof raw === "number", ownAccount, seen);
      if (problem) issue(["shareWith", i], problem);
      seen.add(id);
    });
  }
}

/** Why `id` cannot be shared with, or undefined when it can; `seen` holds the accounts listed before it. */
function accountProblem(
  id: string,
  fromNumber: boolean,
  ownAccount: string | undefined,
  seen: ReadonlySet<string>,
): string | undefined {
  if (PUBLIC_WORDS.has(id.trim().toLowerCase()))
    return `"${id.trim()}" would make the images public; ami-bot never shares publicly`;
  if (!ACCOUNT_ID.test(id))
    return fromNumber
      ? `${id.slice(0, 40)} is not an AWS account id (12 digits); quote account ids in YAML ("012345678901") so a leading 0 is kept`
      : `"${id.slice(0, 40)}" is not an AWS account id (12 digits)`;
  if (id === ownAccount) return `"${id}" is this target's own account: its images are already there`;
  if (seen.has(id)) return `"${id}" is listed twice`;
  return undefined;
}

/** A copy's key must be a KMS key or alias ARN of the region the copy is made in, in the role's partition. */
function kmsKeyProblem(arn: string, region: string, arnPartition: string | undefined): string | undefined {
  const shown = `"${arn.slice(0, 300)}"`;
  const m = KMS_KEY_ARN.exec(arn);
  if (!m)
    return `${shown} is not a KMS key or alias ARN (arn:${arnPartition ?? "aws"}:kms:${region}:123456789012:key/… or …:alias/…)`;
  if (arnPartition && m[1] !== arnPartition)
    return `${shown} is in partition ${m[1]}, not ${arnPartition}, the role's`;
  if (m[2] !== region)
    return `${shown} is a key in ${m[2]}, not ${region}: a copy is encrypted with a key of the region it is made in`;
  return undefined;
}

/** A keep rule says what to keep (a count, an age or both) and where each sweep's summary goes. */
function checkKeep(
  keep: { lastPerInstance?: unknown; maxAge?: unknown; channel?: unknown },
  ctx: z.RefinementCtx,
): void {
  if (keep.lastPerInstance === undefined && keep.maxAge === undefined)
    ctx.addIssue({
      code: "custom",
      path: [],
      message:
        "list lastPerInstance (1–1000) and/or maxAge (at least 1d, e.g. 90d): without either, the rule says nothing about what to clean up",
      params: {
        envMessage:
          "set at least one: how many images to keep per instance (1–1000), or the oldest to keep (at least 1d, e.g. 90d)",
      },
    });
  if (keep.channel === undefined)
    ctx.addIssue({
      code: "custom",
      path: ["channel"],
      message: "required: the channel (C…/G…) each cleanup's summary is posted in",
      params: {
        envMessage:
          "required when AMI_TARGET_KEEP_LAST or AMI_TARGET_KEEP_MAX_AGE is set: the channel (C…/G…) each cleanup's summary is posted in",
      },
    });
  else if (typeof keep.channel === "string" && !/^[CG][A-Z0-9]{2,}$/.test(keep.channel))
    ctx.addIssue({
      code: "custom",
      path: ["channel"],
      message: `"${keep.channel.slice(0, 40)}" is not a Slack channel id (C…/G…)`,
    });
}

/** An approval rule nobody can satisfy would leave every job waiting until it expires. */
function checkApprovers(approval: { approvers: unknown }, ctx: z.RefinementCtx): void {
  const approvers = approval.approvers as { users?: unknown; usergroups?: unknown } | null | undefined;
  if (typeof approvers !== "object" || approvers === null) return;
  const count = (v: unknown) => (Array.isArray(v) ? v.length : 0);
  if (count(approvers.users) + count(approvers.usergroups) > 0) return;
  ctx.addIssue({
    code: "custom",
    path: ["approvers"],
    message:
      "list at least one approver in users (U…/W…) or usergroups (S…); without one, every job would wait until it expires",
    params: {
      envMessage:
        "list at least one approver, a user id (U…/W…) or user group id (S…); without one, every job would wait until it expires",
    },
  });
}

type Env = Readonly<Record<string, string | undefined>>;

function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) return Number.NaN;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    m[2] as "ms" | "s" | "m" | "h" | "d"
  ];
  return Number(m[1]) * unit;
}

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** In the one-target set-up, problems are named by the variable that holds the value. */
const ENV_NAMES: Record<string, string> = {
  "targets.0.name": "AMI_TARGET_NAME",
  "targets.0.roleArn": "AMI_TARGET_ROLE_ARN",
  "targets.0.externalId": "AMI_TARGET_EXTERNAL_ID",
  "targets.0.regions": "AMI_TARGET_REGIONS",
  "targets.0.allow.users": "AMI_TARGET_ALLOW_USERS",
  "targets.0.allow.usergroups": "AMI_TARGET_ALLOW_USERGROUPS",
  "targets.0.allow.channels": "AMI_TARGET_ALLOW_CHANNELS",
  "targets.0.instanceTags": "AMI_TARGET_INSTANCE_TAGS",
  "targets.0.reboot": "AMI_TARGET_REBOOT",
  "targets.0.tagKeys": "AMI_TARGET_TAG_KEYS",
  "targets.0.jobsPerHour": "AMI_TARGET_JOBS_PER_HOUR",
  "targets.0.allowGuests": "AMI_TARGET_ALLOW_GUESTS",
  "targets.0.allowPublicChannels": "AMI_TARGET_ALLOW_PUBLIC_CHANNELS",
  "targets.0.approval.approvers": "AMI_TARGET_APPROVERS",
  "targets.0.approval.expiresAfter": "AMI_TARGET_APPROVAL_EXPIRES",
  "targets.0.after.copyTo": "AMI_TARGET_COPY_TO",
  "targets.0.after.shareWith": "AMI_TARGET_SHARE_WITH",
  // The keep rule's own fields before the rule itself: problems are named by the first key they start with.
  "targets.0.after.keep.lastPerInstance": "AMI_TARGET_KEEP_LAST",
  "targets.0.after.keep.maxAge": "AMI_TARGET_KEEP_MAX_AGE",
  "targets.0.after.keep.channel": "AMI_TARGET_KEEP_CHANNEL",
  "targets.0.after.keep": "AMI_TARGET_KEEP_LAST / AMI_TARGET_KEEP_MAX_AGE",
  "targets.0.admins": "AMI_TARGET_ADMINS",
  "watcher.pollInterval": "AMI_POLL_INTERVAL",
  "watcher.slowAfter": "AMI_SLOW_AFTER",
  "watcher.slowPollInterval": "AMI_SLOW_POLL_INTERVAL",
  "watcher.giveUpAfter": "AMI_GIVE_UP_AFTER",
};

const REGIONS_UNSET =
  "AMI_TARGET_REGIONS is not set (nor AWS_REGION): list the regions to image in, e.g. eu-west-1";

/** The variable names for this environment: regions taken from AWS_REGION are named after it. */
function envNamesFor(env: Env): Record<string, string> {
  return env.AMI_TARGET_REGIONS?.trim() ? ENV_NAMES : { ...ENV_NAMES, "targets.0.regions": "AWS_REGION" };
}

/** Problems named by file path (`config targets.0.regions.1: …`), or by variable when `envNames` is given. */
function formatIssues(error: z.ZodError, envNames?: Record<string, string>): string[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    if (issue.code === "unrecognized_keys") return issue.keys.map((key) => unknownKeyProblem(path, key));
    if (!envNames) return [`config ${path.join(".") || "(file)"}: ${issue.message}`];
    const dotted = path.join(".");
    if (dotted === "targets.0.regions" && issue.code === "too_small") return [REGIONS_UNSET];
    // Array items (targets.0.regions.1) are named by their list variable.
    const key = Object.keys(envNames).find((k) => dotted.startsWith(k));
    const envMessage = issue.code === "custom" ? issue.params?.envMessage : undefined;
    return [
      `${key ? envNames[key] : dotted}: ${typeof envMessage === "string" ? envMessage : issue.message}`,
    ];
  });
}

/**
 * An unknown key is refused rather than dropped: a misspelt `instanceTags` would otherwise open every
 * instance of the account. The message names the key most likely meant.
 */
function unknownKeyProblem(path: readonly string[], key: string): string {
  const known = KNOWN_KEYS[path.map((p) => (/^\d+$/.test(p) ? "*" : p)).join(".")] ?? [];
  const meant = closestKey(key, known);
  const hint = meant
    ? `; did you mean "${meant}"?`
    : known.length > 0
      ? `; the keys here are ${known.join(", ")}`
      : "";
  return `config ${[...path, key].join(".")}: unknown key${hint}`;
}

/** The known key nearest in spelling (case aside), or one containing the other (`tags`, `instanceTags`). */
function closestKey(key: string, known: readonly string[]): string | undefined {
  const typed = key.toLowerCase();
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const name = candidate.toLowerCase();
    const distance = editDistance(typed, name);
    const contains =
      Math.min(typed.length, name.length) >= 4 && (name.includes(typed) || typed.includes(name));
    const close = distance <= Math.max(1, Math.floor(typed.length / 3));
    if ((close || contains) && (!best || distance < best.distance)) best = { key: candidate, distance };
  }
  return best?.key;
}

/** Builds the one-target configuration from AMI_TARGET_* variables, for set-ups without a file. */
function targetsFromEnv(env: Env): unknown {
  const tagPairs = list(env.AMI_TARGET_INSTANCE_TAGS).map((pair) => pair.split("="));
  return {
    targets: [
      {
        name: env.AMI_TARGET_NAME ?? "default",
        roleArn: env.AMI_TARGET_ROLE_ARN,
        externalId: env.AMI_TARGET_EXTERNAL_ID || undefined,
        regions: list(env.AMI_TARGET_REGIONS || env.AWS_REGION),
        allow: {
          users: list(env.AMI_TARGET_ALLOW_USERS),
          usergroups: list(env.AMI_TARGET_ALLOW_USERGROUPS),
          channels: list(env.AMI_TARGET_ALLOW_CHANNELS),
        },
        instanceTags: Object.fromEntries(tagPairs.map(([k, ...v]) => [k?.trim(), v.join("=").trim()])),
        reboot: env.AMI_TARGET_REBOOT?.trim() || undefined,
        tagKeys: env.AMI_TARGET_TAG_KEYS?.trim() ? list(env.AMI_TARGET_TAG_KEYS) : undefined,
        jobsPerHour: env.AMI_TARGET_JOBS_PER_HOUR?.trim() || undefined,
        allowGuests: env.AMI_TARGET_ALLOW_GUESTS?.trim() || undefined,
        allowPublicChannels: env.AMI_TARGET_ALLOW_PUBLIC_CHANNELS?.trim() || undefined,
        approval: approvalFromEnv(env),
        after: afterFromEnv(env),
        admins: list(env.AMI_TARGET_ADMINS),
      },
    ],
    watcher: {
      pollInterval: env.AMI_POLL_INTERVAL,
      slowAfter: env.AMI_SLOW_AFTER,
      slowPollInterval: env.AMI_SLOW_POLL_INTERVAL,
      giveUpAfter: env.AMI_GIVE_UP_AFTER,
    },
  };
}

/**
 * AMI_TARGET_APPROVERS holds users and user groups in one list, told apart by prefix. Anything else goes
 * with the users, whose check names the value and both forms.
 */
function approvalFromEnv(env: Env): unknown {
  if (!env.AMI_TARGET_APPROVERS?.trim()) return undefined;
  const ids = list(env.AMI_TARGET_APPROVERS);
  return {
    approvers: {
      users: ids.filter((id) => !id.startsWith("S")),
      usergroups: ids.filter((id) => id.startsWith("S")),
    },
    expiresAfter: env.AMI_TARGET_APPROVAL_EXPIRES?.trim() || undefined,
  };
}

/**
 * The steps after the image from AMI_TARGET_COPY_TO (regions, each optionally `region=kmsKeyArn`),
 * AMI_TARGET_SHARE_WITH and the AMI_TARGET_KEEP_* variables (a keep rule when any of them is set).
 */
function afterFromEnv(env: Env): unknown {
  const keepSet = [env.AMI_TARGET_KEEP_LAST, env.AMI_TARGET_KEEP_MAX_AGE, env.AMI_TARGET_KEEP_CHANNEL].some(
    (v) => v?.trim(),
  );
  return {
    copyTo: list(env.AMI_TARGET_COPY_TO).map((item) => {
      const eq = item.indexOf("=");
      return eq < 0 ? item : { region: item.slice(0, eq).trim(), kmsKeyId: item.slice(eq + 1).trim() };
    }),
    shareWith: list(env.AMI_TARGET_SHARE_WITH),
    keep: keepSet
      ? {
          lastPerInstance: env.AMI_TARGET_KEEP_LAST?.trim() || undefined,
          maxAge: env.AMI_TARGET_KEEP_MAX_AGE?.trim() || undefined,
          channel: env.AMI_TARGET_KEEP_CHANNEL?.trim() || undefined,
        }
      : undefined,
  };
}

/** An expiry alone would be silently ignored: there is no approval rule for it to belong to. */
function envApprovalProblems(env: Env): string[] {
  if (!env.AMI_TARGET_APPROVAL_EXPIRES?.trim() || env.AMI_TARGET_APPROVERS?.trim()) return [];
  return [
    "AMI_TARGET_APPROVAL_EXPIRES is set but AMI_TARGET_APPROVERS is not: list the approvers (U…/W…/S…), or remove AMI_TARGET_APPROVAL_EXPIRES",
  ];
}

function readTargetsFile(path: string, problems: string[]): unknown {
  try {
    const text = readFileSync(path, "utf8");
    return path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    problems.push(`AMI_BOT_CONFIG: cannot read ${path} (${(error as Error).message})`);
    return undefined;
  }
}

/** Values left as shipped in .env.example (`xoxb-your-bot-token`): refused before Slack is ever called. */
const PLACEHOLDER = /your[-_]|^x(?:oxb|app)-(?:x+|\.+|…)$/i;

/** The Slack tokens and mode. Socket Mode needs the app token; HTTP mode the signing secret instead. */
function readSlack(env: Env, problems: string[]): Config["slack"] | undefined {
  const botToken = env.SLACK_BOT_TOKEN?.trim() || undefined;
  if (!botToken) problems.push("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)");
  else if (PLACEHOLDER.test(botToken))
    problems.push(
      "SLACK_BOT_TOKEN is still the placeholder from .env.example; paste the bot token (xoxb-…) from the app's OAuth & Permissions page",
    );
  else if (!botToken.startsWith("xoxb-"))
    problems.push("SLACK_BOT_TOKEN does not look right (the bot token, xoxb-…)");

  const appToken = env.SLACK_APP_TOKEN?.trim() || undefined;
  if (appToken && PLACEHOLDER.test(appToken))
    problems.push(
      "SLACK_APP_TOKEN is still the placeholder from .env.example; paste the app-level token (xapp-…) from the app's Basic Information page, under App-Level Tokens",
    );
  else if (appToken && !appToken.startsWith("xapp-"))
    problems.push("SLACK_APP_TOKEN does not look right (xapp-…)");

  const signingSecret = env.SLACK_SIGNING_SECRET?.trim() || undefined;
  if (!appToken && !signingSecret)
    problems.push(
      "SLACK_APP_TOKEN (Socket Mode, the manifest's default) or SLACK_SIGNING_SECRET (HTTP mode) must be set",
    );
  const apiUrl = env.SLACK_API_URL?.trim() || undefined;
  if (apiUrl) {
    const problem = slackApiUrlProblem(apiUrl);
    if (problem) problems.push(`SLACK_API_URL: ${problem}`);
  }
  return botToken ? { botToken, signingSecret, appToken, apiUrl } : undefined;
}

/**
 * The bot token goes to this URL with every call: it must be https, unless it stays on this machine (the
 * tests' fake Slack), so a misconfiguration cannot send the token anywhere in clear text.
 */
function slackApiUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "not a URL (Slack's is https://slack.com/api/)";
  }
  if (url.protocol === "https:") return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const loopback = host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
  if (url.protocol === "http:" && loopback) return undefined;
  return "must be https:// (plain http only to a loopback address such as 127.0.0.1), so the bot token is never sent in clear text";
}

/** Unset means 3000; set but empty is a mistake (Number("") would quietly mean "any free port"). */
function readPort(value: string | undefined, problems: string[]): number {
  if (value === undefined) return 3000;
  if (!value.trim()) {
    problems.push("PORT is empty; set a port number such as 3000, or remove the line");
    return 3000;
  }
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push("PORT must be a port number");
  return port;
}

/** A duration variable (`3s`, `500ms`), or `fallbackMs` when unset; problems are named by the variable. */
function readDuration(env: Env, name: string, fallbackMs: number, problems: string[]): number {
  const value = env[name];
  if (value === undefined) return fallbackMs;
  const parsed = duration.safeParse(value);
  if (parsed.success) return parsed.data;
  problems.push(...parsed.error.issues.map((issue) => `${name}: ${issue.message}`));
  return fallbackMs;
}

/**
 * Reads and checks every setting at once. Throws one ConfigError listing every problem, so an operator
 * fixes them in one go rather than one restart at a time.
 */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const slack = readSlack(env, problems);
  const port = readPort(env.PORT, problems);
  const cacheSeconds = Number(env.AMI_USERGROUP_CACHE_SECONDS ?? 60);
  if (!(cacheSeconds >= 0)) problems.push("AMI_USERGROUP_CACHE_SECONDS must be a number of seconds");
  const aws = {
    connectTimeoutMs: readDuration(env, "AMI_AWS_CONNECT_TIMEOUT", 3_000, problems),
    requestTimeoutMs: readDuration(env, "AMI_AWS_REQUEST_TIMEOUT", 20_000, problems),
  };

  const databaseUrl = env.DATABASE_URL?.trim() || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\/[^\s]+$/.test(databaseUrl))
    problems.push(
      "DATABASE_URL: must be a postgres:// (or postgresql://) URL; leave it unset for the embedded SQLite file (AMI_BOT_DB)",
    );
  const leaseMs = readDuration(env, "AMI_LEASE", 30_000, problems);
  if (leaseMs < 2_000) problems.push("AMI_LEASE: must be at least 2s (a claim must outlast one check)");

  const eventsQueueUrl = env.AMI_EVENTS_QUEUE_URL?.trim() || undefined;
  const queueProblem = eventsQueueUrl && queueUrlProblem(eventsQueueUrl);
  if (queueProblem) problems.push(`AMI_EVENTS_QUEUE_URL: ${queueProblem}`);

  let raw: unknown;
  const configPath = env.AMI_BOT_CONFIG?.trim();
  if (configPath) raw = readTargetsFile(configPath, problems);
  else if (env.AMI_TARGET_ROLE_ARN) {
    raw = targetsFromEnv(env);
    problems.push(...envApprovalProblems(env));
  } else
    problems.push("no targets: set AMI_BOT_CONFIG to a YAML/JSON file, or AMI_TARGET_ROLE_ARN and friends");

  let targets: Target[] = [];
  let watcher: WatcherSettings | undefined;
  if (raw !== undefined) {
    // In a file every target names its ExternalId: the confused-deputy guard is not optional there.
    // Checked on the raw file, so it is reported in the same round as every other problem.
    if (configPath) problems.push(...missingExternalIds(raw));
    const parsed = fileSchema.safeParse(raw);
    if (!parsed.success)
      problems.push(...formatIssues(parsed.error, configPath ? undefined : envNamesFor(env)));
    else {
      targets = parsed.data.targets.map(toTarget);
      targets.forEach((t, i) => {
        // Checked now, with the longest instance id, so no request can fail on a policy AWS would refuse.
        const longest = Math.max(...t.regions.map((r) => worstCaseCreatePolicyLength(t, r)));
        if (longest > MAX_SESSION_POLICY_CHARS)
          problems.push(
            `${configPath ? `config targets.${i}` : "AMI_TARGET_INSTANCE_TAGS / AMI_TARGET_TAG_KEYS"}: instanceTags and tagKeys make the session policy ${longest} characters; AWS allows ${MAX_SESSION_POLICY_CHARS}. Use fewer or shorter tags or keys.`,
          );
      });
      const names = targets.map((t) => t.name);
      for (const dup of names.filter((n, i) => names.indexOf(n) !== i))
        problems.push(`target ${dup} is listed twice`);
      // Durations are positive by their schema.
      const w = parsed.data.watcher;
      watcher = {
        pollIntervalMs: w.pollInterval ?? 15_000,
        slowAfterMs: w.slowAfter ?? 4 * 3_600_000,
        slowPollIntervalMs: w.slowPollInterval ?? 5 * 60_000,
        giveUpAfterMs: w.giveUpAfter ?? 24 * 3_600_000,
      };
    }
  }

  if (problems.length > 0 || !slack || !watcher) throw new ConfigError(problems);
  return Object.freeze({
    slack,
    port,
    databasePath: env.AMI_BOT_DB?.trim() || "./data/ami-bot.db",
    databaseUrl,
    leaseMs,
    logLevel: env.LOG_LEVEL?.trim() || "info",
    usergroupCacheMs: cacheSeconds * 1000,
    // A test-only switch: without the test harness's NODE_ENV it does nothing, so it cannot kill production.
    crashAt: env.NODE_ENV === "test" ? env.AMI_BOT_CRASH_AT?.trim() || undefined : undefined,
    targets,
    watcher,
    aws,
    eventsQueueUrl,
  });
}

/** `config targets.N.externalId: required` for each target object of a file that has none. */
function missingExternalIds(raw: unknown): string[] {
  const targets = (raw as { targets?: unknown } | null)?.targets;
  if (!Array.isArray(targets)) return [];
  return targets.flatMap((t: unknown, i) =>
    t && typeof t === "object" && !(t as { externalId?: unknown }).externalId
      ? [
          `config targets.${i}.externalId: required; set the ExternalId the target role's trust policy expects`,
        ]
      : [],
  );
}

function toTarget(t: z.infer<typeof targetSchema>): Target {
  const m = ROLE_ARN.exec(t.roleArn);
  return {
    name: t.name,
    roleArn: t.roleArn,
    partition: m?.[1] ?? "aws",
    accountId: m?.[2] ?? "",
    externalId: t.externalId,
    regions: [...new Set(t.regions)],
    allow: t.allow,
    instanceScope: { requiredTags: t.instanceTags },
    reboot: t.reboot,
    tagKeys: t.tagKeys,
    jobsPerHour: t.jobsPerHour,
    allowGuests: t.allowGuests,
    allowPublicChannels: t.allowPublicChannels,
    approval: t.approval
      ? { approvers: t.approval.approvers, expiresAfterMs: t.approval.expiresAfter }
      : undefined,
    after: toAfterSettings(t.after),
    admins: t.admins,
  };
}

function toAfterSettings(a: z.infer<typeof afterSchema>): AfterImageSettings {
  if (a.copyTo.length === 0 && a.shareWith.length === 0 && !a.keep) return NO_AFTER_STEPS;
  return {
    copyTo: a.copyTo.map((d) => ({ region: d.region, kmsKeyId: d.kmsKeyId })),
    shareWith: a.shareWith.map(String),
    keep: a.keep
      ? {
          lastPerInstance: a.keep.lastPerInstance,
          maxAgeMs: a.keep.maxAge,
          // Required by checkKeep: a rule without its channel never gets here.
          channel: a.keep.channel ?? "",
        }
      : undefined,
  };
}

/** Loads `.env` into the environment when present (the README's quick start keeps settings there). */
export function loadDotEnv(path = ".env"): void {
  try {
    process.loadEnvFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

/**
 * For the entry points: `.env`, then every setting; on a problem, the full list on stderr and exit code 2.
 */
export function loadSettingsOrExit(): Config {
  loadDotEnv();
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
}
