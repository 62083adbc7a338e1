import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ConfigError } from "./errors.js";

/** Who may use a target. Nobody unless listed; `*` in `users` means everyone. */
export interface AccessRule {
  readonly users: readonly string[];
  readonly usergroups: readonly string[];
  readonly channels: readonly string[];
}

/** Which instances of a target may be imaged: all of them, or only those carrying every listed tag. */
export interface InstanceScope {
  readonly requiredTags: Readonly<Record<string, string>>;
}

export interface Target {
  readonly name: string;
  readonly roleArn: string;
  readonly accountId: string;
  readonly partition: string;
  readonly externalId: string | undefined;
  readonly regions: readonly string[];
  readonly allow: AccessRule;
  readonly instanceScope: InstanceScope;
}

export interface WatcherSettings {
  /** How often a pending image is checked, in ms. */
  readonly pollIntervalMs: number;
  /** After this long pending, the thread is told and checks slow down. */
  readonly slowAfterMs: number;
  readonly slowPollIntervalMs: number;
  /** After this long the job is given up as timed out. */
  readonly giveUpAfterMs: number;
}

export interface Config {
  readonly slack: {
    readonly botToken: string;
    readonly signingSecret: string | undefined;
    readonly appToken: string | undefined;
    readonly apiUrl: string | undefined;
  };
  readonly port: number;
  readonly databasePath: string;
  readonly logLevel: string;
  readonly usergroupCacheMs: number;
  /** Testing only: the step at which the process kills itself (see bot.ts). */
  readonly crashAt: string | undefined;
  readonly targets: readonly Target[];
  readonly watcher: WatcherSettings;
}

const ROLE_ARN = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/[\w+=,.@/-]+$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;
const USER_ID = /^(\*|[UW][A-Z0-9]{2,})$/;
const GROUP_ID = /^S[A-Z0-9]{2,}$/;
const CHANNEL_ID = /^[CGD][A-Z0-9]{2,}$/;

const duration = z
  .union([
    z.number().positive(),
    z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h)$/, "use a number with ms, s, m or h"),
  ])
  .transform((v) => (typeof v === "number" ? v * 1000 : parseDuration(v)));

const targetSchema = z.object({
  name: z.string().regex(/^[\w.-]{1,40}$/, "letters, digits, . _ - (at most 40)"),
  roleArn: z.string().regex(ROLE_ARN, "must look like arn:aws:iam::123456789012:role/name"),
  externalId: z.string().min(2).max(1224).optional(),
  regions: z.array(z.string().regex(REGION, "must be an AWS region such as eu-west-1")).min(1),
  allow: z
    .object({
      users: z.array(z.string().regex(USER_ID, "must be a Slack user id (U…/W…) or *")).default([]),
      usergroups: z.array(z.string().regex(GROUP_ID, "must be a Slack user group id (S…)")).default([]),
      channels: z.array(z.string().regex(CHANNEL_ID, "must be a Slack channel id (C…/G…)")).default([]),
    })
    .default({ users: [], usergroups: [], channels: [] }),
  instanceTags: z.record(z.string().min(1).max(128), z.string().max(256)).default({}),
});

const fileSchema = z.object({
  targets: z.array(targetSchema).min(1, "list at least one target"),
  watcher: z
    .object({
      pollInterval: duration.optional(),
      slowAfter: duration.optional(),
      slowPollInterval: duration.optional(),
      giveUpAfter: duration.optional(),
    })
    .default({}),
});

type Env = Readonly<Record<string, string | undefined>>;

function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/.exec(text.trim());
  if (!m) return Number.NaN;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
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
  "watcher.pollInterval": "AMI_POLL_INTERVAL",
  "watcher.slowAfter": "AMI_SLOW_AFTER",
  "watcher.slowPollInterval": "AMI_SLOW_POLL_INTERVAL",
  "watcher.giveUpAfter": "AMI_GIVE_UP_AFTER",
};

function formatIssues(fromFile: boolean, error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String);
    if (fromFile) return `config ${path.join(".") || "(file)"}: ${issue.message}`;
    // Array items (targets.0.regions.1) are named by their list variable.
    const key = Object.keys(ENV_NAMES).find((k) => path.join(".").startsWith(k));
    return `${key ? ENV_NAMES[key] : path.join(".")}: ${issue.message}`;
  });
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

function readTargetsFile(path: string, problems: string[]): unknown {
  try {
    const text = readFileSync(path, "utf8");
    return path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    problems.push(`AMI_BOT_CONFIG: cannot read ${path} (${(error as Error).message})`);
    return undefined;
  }
}

/**
 * Reads and checks every setting at once. Throws one ConfigError listing every problem, so an operator
 * fixes them in one go rather than one restart at a time.
 */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const need = (name: string, pattern?: RegExp, hint?: string): string | undefined => {
    const value = env[name]?.trim();
    if (!value) problems.push(`${name} is not set${hint ? ` (${hint})` : ""}`);
    else if (pattern && !pattern.test(value)) problems.push(`${name} does not look right (${hint})`);
    return value || undefined;
  };

  const botToken = need("SLACK_BOT_TOKEN", /^xoxb-/, "the bot token, xoxb-…");
  const appToken = env.SLACK_APP_TOKEN?.trim() || undefined;
  if (appToken && !appToken.startsWith("xapp-"))
    problems.push("SLACK_APP_TOKEN does not look right (xapp-…)");
  const signingSecret = appToken
    ? env.SLACK_SIGNING_SECRET?.trim() || undefined
    : need("SLACK_SIGNING_SECRET", undefined, "required in HTTP mode, from the app's Basic Information page");

  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push("PORT must be a port number");
  const cacheSeconds = Number(env.AMI_USERGROUP_CACHE_SECONDS ?? 60);
  if (!(cacheSeconds >= 0)) problems.push("AMI_USERGROUP_CACHE_SECONDS must be a number of seconds");

  let raw: unknown;
  const configPath = env.AMI_BOT_CONFIG?.trim();
  if (configPath) raw = readTargetsFile(configPath, problems);
  else if (env.AMI_TARGET_ROLE_ARN) raw = targetsFromEnv(env);
  else
    problems.push("no targets: set AMI_BOT_CONFIG to a YAML/JSON file, or AMI_TARGET_ROLE_ARN and friends");

  let targets: Target[] = [];
  let watcher: WatcherSettings | undefined;
  if (raw !== undefined) {
    const parsed = fileSchema.safeParse(raw);
    if (!parsed.success) problems.push(...formatIssues(Boolean(configPath), parsed.error));
    else {
      targets = parsed.data.targets.map(toTarget);
      const names = targets.map((t) => t.name);
      for (const dup of names.filter((n, i) => names.indexOf(n) !== i))
        problems.push(`target ${dup} is listed twice`);
      const w = parsed.data.watcher;
      watcher = {
        pollIntervalMs: w.pollInterval ?? 15_000,
        slowAfterMs: w.slowAfter ?? 4 * 3_600_000,
        slowPollIntervalMs: w.slowPollInterval ?? 5 * 60_000,
        giveUpAfterMs: w.giveUpAfter ?? 24 * 3_600_000,
      };
      for (const [k, v] of Object.entries(watcher))
        if (!(v > 0)) problems.push(`watcher.${k} must be positive`);
    }
  }

  if (problems.length > 0 || !botToken || !watcher) throw new ConfigError(problems);
  return Object.freeze({
    slack: { botToken, signingSecret, appToken, apiUrl: env.SLACK_API_URL?.trim() || undefined },
    port,
    databasePath: env.AMI_BOT_DB?.trim() || "./data/ami-bot.db",
    logLevel: env.LOG_LEVEL?.trim() || "info",
    usergroupCacheMs: cacheSeconds * 1000,
    crashAt: env.AMI_BOT_CRASH_AT?.trim() || undefined,
    targets,
    watcher,
  });
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
