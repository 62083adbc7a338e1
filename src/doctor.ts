/**
 * `npm run doctor`: checks, for operators, everything ami-bot needs before a person types /ami — the Slack
 * bot token, the app token (Socket Mode) or the signing secret (HTTP mode), the bot's own AWS identity,
 * whether each channel an allow rule lists is private (a rule grants nothing in a public channel unless the
 * target allows it), AssumeRole into every target, and a dry-run CreateImage per target and region; and,
 * only when they are configured, the Postgres database (DATABASE_URL) and the events queue
 * (AMI_EVENTS_QUEUE_URL). Each
 * check reports one PASS/WARN/FAIL/SKIP line as soon as it finishes and gives up after a time limit, so a
 * silent endpoint shows as a FAIL instead of a hang. Every FAIL and WARN says what to do next. No line ever
 * carries a secret.
 */
import type { EventsQueueCheck } from "./aws/events-queue-check.js";
import { regionOfQueueUrl } from "./aws/sqs-queue-url.js";
import type { Config, Target } from "./config.js";
import { channelRuleWarning, isDirectMessage } from "./domain/access.js";
import { checkImageAccess } from "./domain/access-check.js";
import type { ImageService } from "./domain/ports.js";
import { type AwsFailureCode, AwsRefusedError } from "./errors.js";
import type { MissingPrivilege, PostgresCheck } from "./store/postgres-check.js";

export const DEFAULT_CHECK_TIMEOUT_MS = 15_000;

/** The Slack Web API, as far as the doctor needs it (a WebClient fits). */
export interface DoctorSlack {
  readonly auth: { test(): Promise<{ team?: string; team_id?: string; user_id?: string }> };
  /** Socket Mode's handshake; called only when an app-level token is configured, with that token. */
  readonly apps: { readonly connections: { open(args: { token: string }): Promise<unknown> } };
  /** Whether a channel an allow rule lists is private. */
  readonly conversations: {
    info(args: { channel: string }): Promise<{ channel?: { is_private?: boolean } }>;
  };
}

export interface DoctorDeps {
  readonly config: Config;
  readonly slack: DoctorSlack;
  /** The bot's own AWS identity. The signal aborts the call when the check runs out of time. */
  readonly botIdentity: (signal: AbortSignal) => Promise<string>;
  /** Resolves credentials for a target's role (AssumeRole), throwing AwsRefusedError when refused. */
  readonly assumeRole: (target: Target, region: string, signal: AbortSignal) => Promise<void>;
  readonly images: ImageService;
  /** Connects to DATABASE_URL and reads its state (store/postgres-check.ts); asked only when it is set. */
  readonly checkPostgres: (url: string, signal: AbortSignal) => Promise<PostgresCheck>;
  /** GetQueueAttributes on the events queue, as the bot; asked only when AMI_EVENTS_QUEUE_URL is set. */
  readonly checkEventsQueue: (queueUrl: string, signal: AbortSignal) => Promise<EventsQueueCheck>;
  /** How long one check may take before it counts as failed, in ms (default 15 s). */
  readonly checkTimeoutMs?: number;
}

export interface DoctorOptions {
  /** Called with each line as soon as its check has finished, in order. */
  readonly onLine?: (line: DoctorLine) => void;
}

export type DoctorLine = {
  /** WARN: works, but not as the settings seem to intend; it does not fail the run. */
  readonly status: "PASS" | "WARN" | "FAIL" | "SKIP";
  readonly check: string;
  readonly detail: string;
};

type Outcome = Omit<DoctorLine, "check">;

/** Where a check's calls go: named in the advice when nothing answers. */
type Endpoint =
  | { readonly service: "slack" }
  /** The server DATABASE_URL names. */
  | { readonly service: "postgres" }
  /**
   * No region: the SDK's default one (AWS_REGION). host: where the calls go when that is not the service's
   * regional endpoint (SQS sends each call to its QueueUrl's host).
   */
  | { readonly service: "sts" | "ec2" | "sqs"; readonly region?: string; readonly host?: string };

interface Check {
  readonly name: string;
  readonly endpoint: Endpoint;
  readonly run: (signal: AbortSignal) => Promise<Outcome>;
  /** A failure in plain words: what failed and what to do next. */
  readonly explain: (error: unknown) => string;
}

const seconds = (ms: number) => `${ms / 1000} s`;

function networkAdvice(endpoint: Endpoint): string {
  if (endpoint.service === "slack") return "check network access to slack.com (or SLACK_API_URL)";
  if (endpoint.service === "postgres")
    return "check the host and port in DATABASE_URL, that the server is running, and network access from this host to it, including any firewall or security group on the way";
  const host = endpoint.host ?? `${endpoint.service}.${endpoint.region ?? "<AWS_REGION>"}.amazonaws.com`;
  const variable = `AWS_ENDPOINT_URL_${endpoint.service.toUpperCase()}`;
  return `check network access from this host to ${host} (or ${variable} / AWS_ENDPOINT_URL when set), including any proxy or firewall on the way`;
}

function noAnswer(endpoint: Endpoint, ms: number): string {
  const who =
    endpoint.service === "slack"
      ? "Slack"
      : endpoint.service === "postgres"
        ? "the Postgres server"
        : `AWS ${endpoint.service.toUpperCase()}`;
  return `no answer from ${who} within ${seconds(ms)} — ${networkAdvice(endpoint)}`;
}

/** Runs one check against the clock. A callee that ignores the signal is simply no longer waited for. */
async function runCheck(check: Check, ms: number): Promise<DoctorLine> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timed out">((resolve) => {
    timer = setTimeout(() => resolve("timed out"), ms);
  });
  try {
    const outcome = await Promise.race([check.run(controller.signal), timedOut]);
    if (outcome !== "timed out") return { check: check.name, ...outcome };
    controller.abort(new Error(`${check.name}: no answer within ${seconds(ms)}`));
    return { status: "FAIL", check: check.name, detail: noAnswer(check.endpoint, ms) };
  } catch (error) {
    return { status: "FAIL", check: check.name, detail: check.explain(error) };
  } finally {
    clearTimeout(timer);
  }
}

// --- Slack ---------------------------------------------------------------------------------------

/** What a WebClient throws, as far as the doctor reads it (branching on `code`, never on message text). */
interface SlackErrorLike {
  code?: string;
  name?: string;
  message?: string;
  data?: { error?: string };
  statusCode?: number;
  original?: { name?: string; message?: string; cause?: { code?: string } };
}

const REFUSED_TOKEN: ReadonlySet<string> = new Set([
  "invalid_auth",
  "not_authed",
  "token_revoked",
  "token_expired",
  "account_inactive",
]);

function slackFailure(error: unknown): string {
  const e = (error ?? {}) as SlackErrorLike;
  switch (e.code) {
    case "slack_webapi_platform_error":
      return `Slack answered ${e.data?.error ?? "an error"}; see https://api.slack.com/methods for what it means`;
    case "slack_webapi_rate_limited_error":
      return "Slack is rate-limiting this app; run the doctor again in a minute";
    case "slack_webapi_http_error":
      return `Slack answered HTTP ${e.statusCode ?? "error"}; if SLACK_API_URL is set, check that it points at a Slack Web API (…/api/), otherwise try again later`;
    case "slack_webapi_request_error": {
      // The client's own time limit (createBackgroundClient sets one) ends in a TimeoutError.
      if (e.original?.name === "TimeoutError" || e.original?.name === "AbortError")
        return `no answer from Slack (the Web API client stopped waiting) — ${networkAdvice({ service: "slack" })}`;
      const why = e.original?.cause?.code ?? e.original?.name ?? "no answer";
      return `could not reach Slack (${why}) — ${networkAdvice({ service: "slack" })}`;
    }
  }
  return `unexpected error from Slack (${e.name ?? "Error"}: ${e.message ?? String(error)})`;
}

function explainBotToken(error: unknown): string {
  const answer = (error as SlackErrorLike | undefined)?.data?.error;
  if (answer && REFUSED_TOKEN.has(answer))
    return `SLACK_BOT_TOKEN is not accepted by Slack (${answer}): reinstall the app to the workspace (OAuth & Permissions) and copy its Bot User OAuth Token (xoxb-…) into SLACK_BOT_TOKEN`;
  if (answer === "not_allowed_token_type")
    return "SLACK_BOT_TOKEN must be the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page";
  return slackFailure(error);
}

function explainAppToken(error: unknown): string {
  const answer = (error as SlackErrorLike | undefined)?.data?.error;
  const makeOne =
    "on the app's Basic Information page, under App-Level Tokens, generate a token with the connections:write scope and put it in SLACK_APP_TOKEN";
  if (answer && REFUSED_TOKEN.has(answer))
    return `SLACK_APP_TOKEN is not accepted by Slack (${answer}): ${makeOne}`;
  if (answer === "missing_scope") return `SLACK_APP_TOKEN lacks the connections:write scope: ${makeOne}`;
  if (answer === "not_allowed_token_type")
    return `SLACK_APP_TOKEN must be the app-level token (xapp-…), not the bot token (xoxb-…): ${makeOne}`;
  return slackFailure(error);
}

const SIGNING_SECRET = /^[0-9a-f]{32}$/;

/** Slack signs requests with a 32-hex-character secret; says what looks wrong without showing it. */
function checkSigningSecret(secret: string | undefined): Outcome {
  const fix =
    "copy it from the app's Basic Information page → App Credentials → Signing Secret into SLACK_SIGNING_SECRET";
  if (!secret)
    return {
      status: "FAIL",
      detail: `SLACK_SIGNING_SECRET is not set, and without SLACK_APP_TOKEN (Socket Mode) the bot needs it to verify Slack's requests: ${fix}`,
    };
  if (SIGNING_SECRET.test(secret))
    return {
      status: "PASS",
      detail:
        "32 lowercase hex characters, as Slack's are (whether it is this app's shows when Slack's first request arrives)",
    };
  const hint = /^(xox|xapp-)/.test(secret)
    ? "it looks like a token, not the signing secret"
    : /["'\s]/.test(secret)
      ? "it contains quotes or spaces"
      : secret.length !== 32
        ? `it has ${secret.length} characters`
        : SIGNING_SECRET.test(secret.toLowerCase())
          ? "it has uppercase letters"
          : "it has characters other than 0–9 and a–f";
  return {
    status: "FAIL",
    detail: `SLACK_SIGNING_SECRET does not look like a Slack signing secret (32 lowercase hex characters; ${hint}): ${fix}`,
  };
}

/** A channel Slack will not describe: what that means for the rule, and what to do. */
function explainChannel(error: unknown, channel: string, target: Target): string {
  const answer = (error as SlackErrorLike | undefined)?.data?.error;
  if (answer === "channel_not_found")
    return `Slack does not show ami-bot channel ${channel} (channel_not_found), so target ${target.name}'s rule for it grants nothing: if it is a private channel, invite ami-bot to it; otherwise check the id`;
  if (answer === "missing_scope")
    return "the Slack app lacks the channels:read or groups:read scope: update its scopes from manifest.yml and reinstall it to the workspace";
  return slackFailure(error);
}

// --- AWS -----------------------------------------------------------------------------------------

const NEXT_STEP: Partial<Record<AwsFailureCode, string>> = {
  throttled: "run the doctor again in a minute",
  credentials_expired: "refresh ami-bot's own AWS credentials, then run the doctor again",
};

function explainAws(error: unknown, endpoint: Endpoint, target?: Target): string {
  if (error instanceof AwsRefusedError) {
    const cause = (error.cause as { name?: string } | undefined)?.name;
    const next =
      error.code === "aws_unavailable"
        ? networkAdvice(endpoint)
        : error.code === "assume_role_failed" && target && cause !== "CredentialsProviderError"
          ? `compare the trust policy of ${target.roleArn} with the "AWS identity of the bot" line above`
          : error.code === "access_denied" && target
            ? `check the permissions policy of ${target.roleArn}`
            : NEXT_STEP[error.code];
    return next ? `${error.userMessage} Next: ${next}.` : error.userMessage;
  }
  const e = (error ?? {}) as {
    name?: string;
    message?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const name = e.name ?? "Error";
  if (name === "CredentialsProviderError")
    return "ami-bot found no AWS credentials of its own: give this host an instance or task role, or set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
  if (["InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException"].includes(name))
    return `AWS does not accept ami-bot's own credentials (${name}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the profile named in AWS_PROFILE`;
  if (["ExpiredToken", "ExpiredTokenException", "RequestExpired"].includes(name))
    return `ami-bot's own AWS credentials have expired (${name}): ${NEXT_STEP.credentials_expired}`;
  // No HTTP answer at all (refused, reset, DNS, timeout).
  if (e.$metadata?.httpStatusCode === undefined || name === "TimeoutError")
    return `could not reach AWS (${e.code ?? name}) — ${networkAdvice(endpoint)}`;
  return `AWS refused the call (${name}: ${e.message ?? ""})`;
}

// --- Postgres (DATABASE_URL) ---------------------------------------------------------------------

/** An identifier as SQL needs it written: bare when it may be, else double-quoted. */
const sqlName = (name: string) => (/^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`);

function grantFor(missing: MissingPrivilege, user: string): string {
  const on = missing.kind === "schema" ? "SCHEMA" : missing.kind === "table" ? "TABLE" : "SEQUENCE";
  return `GRANT ${missing.privilege} ON ${on} ${missing.name ?? "public"} TO ${sqlName(user)};`;
}

/** What the database's state means for the bot: PASS, a WARN for a newer schema, FAIL with what to do. */
function postgresOutcome(result: PostgresCheck): Outcome {
  if (!result.ok) return { status: "FAIL", detail: postgresFailure(result) };
  const { user, database, schema, schemaVersion: n, latestVersion: m } = result;
  const server = `PostgreSQL ${result.serverVersion}`;
  if (result.missing.length > 0) {
    const lacks = result.missing
      .map((p) => `${p.privilege} on ${p.kind} ${p.name ?? "(none on the search_path exists)"}`)
      .join(", ");
    return {
      status: "FAIL",
      detail: `${server}; user ${user} lacks ${lacks} in database ${database}, which the bot needs on every start: as the database's owner, run ${result.missing.map((p) => grantFor(p, user)).join(" ")}`,
    };
  }
  if (n === 0)
    return {
      status: "PASS",
      detail: `${server}; empty: the bot creates its tables on first start (user ${user} may create tables in schema ${schema})`,
    };
  if (n > m)
    return {
      status: "WARN",
      detail: `${server}; schema at version ${n}, newer than this ami-bot knows (${m}): a newer release migrated this database — run that release on every replica`,
    };
  const next = n < m ? ": the bot brings it up to date on its next start" : "";
  return { status: "PASS", detail: `${server}; schema at version ${n} of ${m}${next}` };
}

function postgresFailure(result: Extract<PostgresCheck, { ok: false }>): string {
  const { code, server = "the server", database = "(the database)", user = "(the user)" } = result;
  switch (result.problem) {
    case "host_not_found":
      return `the database host in DATABASE_URL (${server}) was not found (${code}): check the host name in DATABASE_URL and this host's DNS`;
    case "unreachable":
      return `could not reach the Postgres server at ${server} (${code}) — ${networkAdvice({ service: "postgres" })}`;
    case "auth_failed":
      return `the Postgres server refused the password of user ${user} (password authentication failed, ${code}): check the user name and password in DATABASE_URL (percent-encode any @ : / ? # in the password); the password is not shown here`;
    case "not_admitted":
      return `the Postgres server does not admit user ${user} to database ${database} from this host (${code}): check that the role exists and that the server's pg_hba.conf allows this host; if the server requires SSL, add ?sslmode=require to DATABASE_URL`;
    case "no_database":
      return `database ${database} does not exist on ${server} (${code}): create it (CREATE DATABASE ${sqlName(database)} OWNER ${sqlName(user)};) or fix the database name at the end of DATABASE_URL`;
    case "no_permission":
      return `user ${user} is not allowed to use database ${database} (${code}: ${result.message}): the bot needs CONNECT on the database, CREATE on its schema and SELECT, INSERT, UPDATE on its tables; ask the database's owner to grant them`;
    case "unavailable":
      return `the Postgres server at ${server} cannot take a connection now (${code}: starting up, shutting down or out of connections): run the doctor again in a minute; if it keeps failing, check the server's max_connections`;
    case "unknown":
      return `could not use the Postgres database (${code}: ${result.message})`;
  }
}

// --- Events queue (AMI_EVENTS_QUEUE_URL) ---------------------------------------------------------

const QUEUE_POLICY =
  'it needs sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes on the queue: attach deploy/events.yaml\'s managed policy (its BotPolicyArn output, or deploy the stack with BotRoleName) to the identity in the "AWS identity of the bot" line';

function eventsQueueOutcome(result: EventsQueueCheck): Outcome {
  if (!result.ok)
    return {
      status: "FAIL",
      detail:
        "AMI_EVENTS_QUEUE_URL names no AWS region (it is not an sqs.<region>.amazonaws.com URL) and AWS_REGION is not set: set AWS_REGION to the queue's region",
    };
  const waiting = `${result.waiting} message(s) waiting`;
  const dlq = result.deadLetter;
  if (!dlq)
    return {
      status: "WARN",
      detail: `${waiting}; no dead-letter queue configured: an event the bot keeps failing on would be received again forever — give the queue a RedrivePolicy (deploy/events.yaml sets one)`,
    };
  const name = dlq.targetArn.split(":").pop() || dlq.targetArn;
  const after = dlq.maxReceiveCount ? `, after ${dlq.maxReceiveCount} receives` : "";
  return { status: "PASS", detail: `${waiting}; dead-letter queue configured (${name}${after})` };
}

function explainEventsQueue(error: unknown, endpoint: Endpoint): string {
  // SQS answers in JSON with the query protocol's code alongside (Code).
  const e = (error ?? {}) as { name?: string; Code?: string };
  const codes = [e.name, e.Code];
  if (codes.includes("QueueDoesNotExist") || codes.includes("AWS.SimpleQueueService.NonExistentQueue"))
    return "SQS says the queue in AMI_EVENTS_QUEUE_URL does not exist (QueueDoesNotExist): copy the QueueUrl output of the deploy/events.yaml stack into AMI_EVENTS_QUEUE_URL, and check the account id, region and queue name in it";
  if (codes.includes("AccessDenied") || codes.includes("AccessDeniedException"))
    return `ami-bot's AWS identity may not use the events queue (AccessDenied): ${QUEUE_POLICY}`;
  return explainAws(error, endpoint);
}

/** Where the events queue's calls go: the SDK sends each to its QueueUrl's host. */
function queueEndpoint(queueUrl: string): Endpoint {
  const region = regionOfQueueUrl(queueUrl);
  let host: string | undefined;
  try {
    host = new URL(queueUrl).host;
  } catch {
    // config.ts accepts only URLs; the regional endpoint is the next best thing to name.
  }
  return { service: "sqs", ...(region && { region }), ...(host && { host }) };
}

// --- The run -------------------------------------------------------------------------------------

/** The first line an operator sees: what is about to be checked. */
export function describeDoctor(config: Config, checkTimeoutMs = DEFAULT_CHECK_TIMEOUT_MS): string {
  const regions = config.targets.reduce((n, t) => n + t.regions.length, 0);
  const slack = config.slack.appToken ? "app token (Socket Mode)" : "signing secret (HTTP mode)";
  const channels = new Set(config.targets.flatMap((t) => t.allow.channels)).size;
  const privacy = channels > 0 ? ` whether the ${channels} channel(s) in allow rules are private,` : "";
  const database = config.databaseUrl ? " the Postgres database (DATABASE_URL)," : "";
  const queue = config.eventsQueueUrl ? " the events queue (AMI_EVENTS_QUEUE_URL)," : "";
  return (
    `Checking the Slack bot token, the ${slack},${privacy}${database} the bot's AWS identity,${queue} AssumeRole into ` +
    `${config.targets.length} target(s) and a CreateImage dry run in ${regions} region(s); ` +
    `each check gives up after ${seconds(checkTimeoutMs)}.`
  );
}

/** DATABASE_URL's password, as written (percent-encoded) and as sent, and in a ?password= parameter. */
function databasePasswords(url: string | undefined): string[] {
  if (!url) return [];
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not WHATWG-readable: take what sits between the user name and the last @.
    const userinfo = url.slice(url.indexOf("://") + 3, url.lastIndexOf("@"));
    return userinfo.includes(":") ? [userinfo.slice(userinfo.indexOf(":") + 1)] : [];
  }
  const passwords = [parsed.password, parsed.searchParams.get("password") ?? ""];
  try {
    passwords.push(decodeURIComponent(parsed.password));
  } catch {
    // A malformed escape: the driver cannot send it either.
  }
  return passwords;
}

/**
 * Replaces every configured secret (the Slack ones, DATABASE_URL and its password), and anything shaped
 * like a Slack token, in a line's detail.
 */
function redact(config: Config, text: string): string {
  const { botToken, appToken, signingSecret } = config.slack;
  let out = text;
  if (config.databaseUrl) out = out.split(config.databaseUrl).join("[DATABASE_URL]");
  for (const secret of [botToken, appToken, signingSecret, ...databasePasswords(config.databaseUrl)]) {
    if (secret && secret.length >= 4) out = out.split(secret).join("[redacted]");
  }
  return out.replace(/\b(xox[a-z]|xapp)-[\w-]{4,}/g, "[redacted]");
}

export async function runDoctor(deps: DoctorDeps, options: DoctorOptions = {}): Promise<DoctorLine[]> {
  const { config } = deps;
  const ms = deps.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const lines: DoctorLine[] = [];
  const report = async (check: Check): Promise<DoctorLine> => {
    const line = await runCheck(check, ms);
    const safe = { ...line, detail: redact(config, line.detail) };
    lines.push(safe);
    options.onLine?.(safe);
    return safe;
  };
  const slack: Endpoint = { service: "slack" };
  // The doctor's sessions carry its own name as SourceIdentity, as the target role's trust policy allows.
  const requester = { userId: "ami-bot-doctor", channelId: "none" };

  const token = await report({
    name: "Slack token (auth.test)",
    endpoint: slack,
    run: async () => {
      const auth = await deps.slack.auth.test();
      return { status: "PASS", detail: `team ${auth.team ?? auth.team_id}, bot user ${auth.user_id}` };
    },
    explain: explainBotToken,
  });
  const appToken = config.slack.appToken;
  await report(
    appToken
      ? {
          name: "Socket Mode app token (apps.connections.open)",
          endpoint: slack,
          run: async () => {
            // The answer holds a one-time WebSocket URL: not worth printing.
            await deps.slack.apps.connections.open({ token: appToken });
            return { status: "PASS", detail: "Slack accepted the app-level token; Socket Mode can connect" };
          },
          explain: explainAppToken,
        }
      : {
          name: "Slack signing secret (HTTP mode)",
          endpoint: slack,
          run: async () => checkSigningSecret(config.slack.signingSecret),
          explain: slackFailure,
        },
  );
  await checkChannelRules(deps, report, token.status === "PASS");
  const databaseUrl = config.databaseUrl;
  if (databaseUrl)
    await report({
      name: "Postgres database (DATABASE_URL)",
      endpoint: { service: "postgres" },
      run: async (signal) => postgresOutcome(await deps.checkPostgres(databaseUrl, signal)),
      // checkPostgres answers every failure itself; its message could carry the URL, so only its name.
      explain: (error) => `unexpected error checking the database (${(error as Error | undefined)?.name})`,
    });
  // The identity call asks STS in the first target's region (see doctor-main.ts).
  const identityRegion = config.targets[0]?.regions[0];
  const sts: Endpoint = identityRegion ? { service: "sts", region: identityRegion } : { service: "sts" };
  await report({
    name: "AWS identity of the bot",
    endpoint: sts,
    run: async (signal) => ({ status: "PASS", detail: await deps.botIdentity(signal) }),
    explain: (error) => explainAws(error, sts),
  });
  const queueUrl = config.eventsQueueUrl;
  if (queueUrl) {
    const sqs = queueEndpoint(queueUrl);
    await report({
      name: "Events queue (AMI_EVENTS_QUEUE_URL)",
      endpoint: sqs,
      run: async (signal) => eventsQueueOutcome(await deps.checkEventsQueue(queueUrl, signal)),
      explain: (error) => explainEventsQueue(error, sqs),
    });
  }
  for (const target of config.targets) {
    const firstRegion = target.regions[0] as string;
    const roleEndpoint: Endpoint = { service: "sts", region: firstRegion };
    const role = await report({
      name: `AssumeRole ${target.name}`,
      endpoint: roleEndpoint,
      run: async (signal) => {
        await deps.assumeRole(target, firstRegion, signal);
        return { status: "PASS", detail: target.roleArn };
      },
      explain: (error) => explainAws(error, roleEndpoint, target),
    });
    if (role.status !== "PASS") continue;
    for (const region of target.regions) {
      const place = { target, region };
      const ec2: Endpoint = { service: "ec2", region };
      await report({
        name: `CreateImage dry run ${target.name} ${region}`,
        endpoint: ec2,
        run: async () => {
          const [instance] = await deps.images.findInstances(place, requester, "");
          if (!instance) return { status: "SKIP", detail: "no instance in the target's scope to try it on" };
          const result = await checkImageAccess(deps.images, place, requester, instance.instanceId);
          return { status: result.allowed ? "PASS" : "FAIL", detail: result.message };
        },
        explain: (error) => explainAws(error, ec2, target),
      });
    }
  }
  return lines;
}

/**
 * A line per channel a target's rule lists: PASS when the rule works as written, WARN when it grants nothing
 * (a public channel without allowPublicChannels, a DM), FAIL when Slack will not say. One lookup per channel.
 */
async function checkChannelRules(
  deps: DoctorDeps,
  report: (check: Check) => Promise<DoctorLine>,
  tokenWorks: boolean,
): Promise<void> {
  const lookups = new Map<string, Promise<boolean | undefined>>();
  const isPrivate = (channel: string) => {
    let lookup = lookups.get(channel);
    if (!lookup) {
      lookup = deps.slack.conversations.info({ channel }).then((res) => res.channel?.is_private);
      lookups.set(channel, lookup);
    }
    return lookup;
  };
  for (const target of deps.config.targets) {
    for (const channel of target.allow.channels) {
      await report({
        name: `Channel rule ${target.name} ${channel}`,
        endpoint: { service: "slack" },
        run: async () => {
          if (isDirectMessage(channel))
            return { status: "WARN", detail: channelRuleWarning(target, channel, undefined) ?? "" };
          if (target.allowPublicChannels)
            return {
              status: "PASS",
              detail: "the target allows public channels, so the rule counts either way",
            };
          if (!tokenWorks) return { status: "SKIP", detail: "needs a working Slack token" };
          const channelPrivate = await isPrivate(channel);
          const warning = channelRuleWarning(target, channel, channelPrivate);
          if (warning) return { status: channelPrivate === undefined ? "FAIL" : "WARN", detail: warning };
          return { status: "PASS", detail: "private: only its members can use the target through this rule" };
        },
        explain: (error) => explainChannel(error, channel, target),
      });
    }
  }
}

export function formatDoctorLine(line: DoctorLine): string {
  return `${line.status.padEnd(4)}  ${line.check}: ${line.detail}`;
}

export function formatDoctor(lines: readonly DoctorLine[]): string {
  return lines.map(formatDoctorLine).join("\n");
}
