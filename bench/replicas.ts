/**
 * Replicas: 1 vs 3 real bot processes sharing one Postgres database (a throwaway cluster), one fake Slack
 * and one fake EC2, each replica behind its own pass-through proxy so every AWS call is known by who made
 * it. Queued jobs are inserted straight into Postgres with the store (as /ami would leave them) once the
 * replicas are up, one transaction each, so the replicas claim them as they arrive; every replica then
 * calls CreateImage under its lease (the fencing is what keeps it to one call per job). The fake EC2 keeps
 * each image pending for a few polls, then makes it available. Poll 1 s, AMI_LEASE=3s.
 *
 * With 3 replicas, one is SIGKILLed mid-run (once half the jobs have had CreateImage attempted): the one
 * holding the most unfinished jobs. The single replica is not killed (no one would be left to take over): it
 * is the baseline for the wall time. Each scenario gets a fresh database and fresh fakes. Figures: jobs finished, duplicate "available" posts and duplicate
 * CreateImage calls (both must be 0), how soon the survivors take over the dead replica's jobs, and the wall
 * time from the first job inserted until every job has ended and every message is delivered. About 2.5
 * minutes in all on 2 busy cores.
 */
import { join } from "node:path";
import pg from "pg";
import type { NewJob } from "../src/domain/ports.js";
import { UNFINISHED } from "../src/store/job-rows.js";
import { openPostgresJobStore } from "../src/store/postgres-job-store.js";
import { startFakeAws } from "../test/fakes/fake-aws.js";
import { startFakeSlack } from "../test/fakes/fake-slack.js";
import { type AwsProxy, type ProxiedCall, startAwsProxy } from "../test/support/aws-proxy.js";
import { createTestDatabase, startPostgres } from "../test/support/postgres.js";
import {
  type BotProcess,
  benchJob,
  EXTERNAL_ID,
  figure,
  INSTANCE,
  mapLimited,
  ROLE_ARN,
  removeTempDirs,
  sleep,
  spawnBot,
  tempDir,
} from "./lib.js";

const JOBS = 1_000;
const LEASE_MS = 3_000;
/** Images stay pending this long after CreateImage: a few of the 1 s polls. */
const PENDING_MS = 3_000;
/** One scenario may take this long before it is reported as not finished. */
const SCENARIO_DEADLINE_MS = 100_000;
const JOB_ID_TAG = "ami-bot:job-id";

/** Each job its own channel: Slack posts are paced per channel (1.1 s apart), and that is not measured here. */
const channelOf = (i: number) => `C0REP${String(i).padStart(5, "0")}`;

function newJob(i: number): NewJob {
  return benchJob(i, channelOf(i), "bench-replica");
}

/** CreateImage's job-id tag, or undefined for other calls. */
function createdFor(call: ProxiedCall): string | undefined {
  const p = call.params;
  if (call.action !== "CreateImage" || p.DryRun === "true") return undefined;
  for (let t = 1; p[`TagSpecification.1.Tag.${t}.Key`] !== undefined; t++)
    if (p[`TagSpecification.1.Tag.${t}.Key`] === JOB_ID_TAG) return p[`TagSpecification.1.Tag.${t}.Value`];
  return undefined;
}

/** Whether a call names one of these jobs or images (CreateImage's tag, a lookup by tag, a check by id). */
function namesAny(call: ProxiedCall, jobIds: ReadonlySet<string>, imageIds: ReadonlySet<string>): boolean {
  return Object.values(call.params).some((value) => jobIds.has(value) || imageIds.has(value));
}

/** How many times each key occurs more than once: the extra ones. */
function extras(keys: readonly string[]): number {
  const seen = new Map<string, number>();
  for (const key of keys) seen.set(key, (seen.get(key) ?? 0) + 1);
  return [...seen.values()].reduce((sum, n) => sum + Math.max(0, n - 1), 0);
}

/** The lease takeovers a replica counted, by kind (its /metrics); none when it cannot be asked. */
async function takeoversCounted(bot: BotProcess): Promise<{ job: number; message: number }> {
  const text = await fetch(`http://127.0.0.1:${bot.port}/metrics`)
    .then((res) => (res.ok ? res.text() : ""))
    .catch(() => "");
  const of = (kind: string) =>
    [...text.matchAll(/^ami_bot_lease_takeovers_total\{([^}]*)\} (\S+)$/gm)]
      .filter((m) => m[1]?.includes(`kind="${kind}"`))
      .reduce((sum, m) => sum + Number(m[2]), 0);
  return { job: of("job"), message: of("message") };
}

interface Takeover {
  /** Unfinished jobs each replica held when one was killed. */
  readonly heldPerReplica: readonly number[];
  readonly heldJobs: number;
  readonly heldMessages: number;
  /** ms from the kill until a survivor had claimed the first / every job the dead replica held. */
  readonly firstClaimMs: number | undefined;
  readonly allClaimedMs: number | undefined;
  /** ms from the kill until a survivor's first AWS call naming one of those jobs or their images. */
  readonly firstCallMs: number | undefined;
  readonly countedBySurvivors: { readonly job: number; readonly message: number };
}

interface Outcome {
  readonly seedMs: number;
  readonly wallMs: number | undefined;
  readonly states: Record<string, number>;
  readonly undelivered: number;
  readonly duplicateAvailable: number;
  readonly duplicatePosts: number;
  readonly duplicateCreates: number;
  readonly createsPerReplica: number[];
  readonly takeover: Takeover | undefined;
}

async function scenario(serverUrl: string, replicas: number, kill: boolean): Promise<Outcome> {
  const database = await createTestDatabase(serverUrl, `bench_replicas_${replicas}`);
  const db = new pg.Client({ connectionString: database.url });
  await db.connect();
  const slack = await startFakeSlack();
  const aws = await startFakeAws({
    roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } },
    autoComplete: { afterMs: PENDING_MS },
  });
  aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
  const proxies: AwsProxy[] = [];
  const bots: BotProcess[] = [];
  const seeder = await openPostgresJobStore(database.url, { owner: "seed", leaseMs: LEASE_MS });
  const count = async (sql: string, params: unknown[] = []) =>
    (await db.query<{ n: number }>(sql, params)).rows[0]?.n ?? 0;
  try {
    for (let r = 0; r < replicas; r++) proxies.push(await startAwsProxy(aws.url));
    const dbPath = join(tempDir(), "unused.db"); // DATABASE_URL wins; the SQLite path is never opened
    const env = (proxy: AwsProxy) => ({
      DATABASE_URL: database.url,
      AMI_LEASE: `${LEASE_MS / 1000}s`,
      AMI_POLL_INTERVAL: "1s",
      AWS_ENDPOINT_URL: proxy.url,
    });
    bots.push(...(await Promise.all(proxies.map((p) => spawnBot({ slack, aws, dbPath, env: env(p) })))));
    const ownerOf = (bot: BotProcess) => `%:${bot.pid}:%`;

    const started = Date.now();
    await mapLimited(
      Array.from({ length: JOBS }, (_, i) => i),
      8,
      (i) => seeder.insert(newJob(i), Date.now()),
    );
    const seedMs = Date.now() - started;

    let victim: BotProcess | undefined;
    let killedAt = 0;
    let orphans: { id: string; image_id: string | null }[] = [];
    let heldMessages = 0;
    let heldAtKill: number[] = [];
    let firstClaimAt: number | undefined;
    let allClaimedAt: number | undefined;
    let finishedAt: number | undefined;
    while (finishedAt === undefined && Date.now() - started < SCENARIO_DEADLINE_MS) {
      if (kill && !victim) {
        const attempted = await count(
          "SELECT COUNT(*)::int AS n FROM jobs WHERE create_attempted_at IS NOT NULL",
        );
        if (attempted >= JOBS / 2) {
          // The replica holding the most unfinished jobs right now.
          const held = await Promise.all(
            bots.map((bot) =>
              count(
                `SELECT COUNT(*)::int AS n FROM jobs WHERE state IN ${UNFINISHED} AND lease_owner LIKE $1`,
                [ownerOf(bot)],
              ),
            ),
          );
          heldAtKill = held;
          const most = held.indexOf(Math.max(...held));
          victim = bots[most] as BotProcess;
          process.kill(victim.pid, "SIGKILL");
          killedAt = Date.now();
          // Its leases stay in place until they run out and a survivor claims the work.
          orphans = (
            await db.query<{ id: string; image_id: string | null }>(
              `SELECT id, image_id FROM jobs WHERE state IN ${UNFINISHED} AND lease_owner LIKE $1`,
              [ownerOf(victim)],
            )
          ).rows;
          heldMessages = await count(
            "SELECT COUNT(*)::int AS n FROM outbox WHERE state IN ('queued','sending') AND lease_owner LIKE $1",
            [ownerOf(victim)],
          );
        }
      }
      if (victim && orphans.length > 0 && allClaimedAt === undefined) {
        const claimed = await count(
          "SELECT COUNT(*)::int AS n FROM jobs WHERE id = ANY($1) AND lease_owner NOT LIKE $2",
          [orphans.map((o) => o.id), ownerOf(victim)],
        );
        const seen = Date.now();
        if (claimed > 0) firstClaimAt ??= seen;
        if (claimed === orphans.length) allClaimedAt = seen;
      }
      const unfinished = await count(`SELECT COUNT(*)::int AS n FROM jobs WHERE state IN ${UNFINISHED}`);
      const backlog = await count(
        "SELECT COUNT(*)::int AS n FROM outbox WHERE state IN ('queued','sending')",
      );
      // Seen at most one 50 ms round of queries after it happened.
      if (unfinished === 0 && backlog === 0 && (!kill || victim)) finishedAt = Date.now();
      else await sleep(50);
    }

    // Survivors' lease takeovers, then a graceful stop: nothing reaches Slack or AWS after this.
    const survivors = bots.filter((b) => b !== victim);
    const counted = await Promise.all(survivors.map(takeoversCounted));
    await Promise.all(bots.map((b) => b.stop()));

    const states: Record<string, number> = {};
    for (const row of (
      await db.query<{ state: string; n: number }>(
        "SELECT state, COUNT(*)::int AS n FROM jobs GROUP BY state",
      )
    ).rows)
      states[row.state] = row.n;
    const undelivered = await count(
      "SELECT COUNT(*)::int AS n FROM outbox WHERE state IN ('queued','sending')",
    );
    const posts = slack
      .callsTo("chat.postMessage")
      .filter((c) => c.outcome === "ok")
      .map((c) => (c.args.metadata as { event_payload?: Record<string, unknown> } | undefined)?.event_payload)
      .filter((p) => p?.job_id !== undefined)
      .map((p) => `${String(p?.job_id)}|${String(p?.key)}`);
    const creates = proxies.map((p) => p.calls.flatMap((c) => createdFor(c) ?? []));

    let takeover: Takeover | undefined;
    if (victim) {
      const jobIds = new Set(orphans.map((o) => o.id));
      const imageIds = new Set(orphans.flatMap((o) => o.image_id ?? []));
      const firstCall = Math.min(
        ...proxies
          .filter((_, r) => bots[r] !== victim)
          .flatMap((p) => p.calls.filter((c) => c.at >= killedAt && namesAny(c, jobIds, imageIds)))
          .map((c) => c.at),
      );
      takeover = {
        heldPerReplica: heldAtKill,
        heldJobs: orphans.length,
        heldMessages,
        firstClaimMs: firstClaimAt === undefined ? undefined : firstClaimAt - killedAt,
        allClaimedMs: allClaimedAt === undefined ? undefined : allClaimedAt - killedAt,
        firstCallMs: Number.isFinite(firstCall) ? firstCall - killedAt : undefined,
        countedBySurvivors: {
          job: counted.reduce((sum, c) => sum + c.job, 0),
          message: counted.reduce((sum, c) => sum + c.message, 0),
        },
      };
    }
    return {
      seedMs,
      wallMs: finishedAt === undefined ? undefined : finishedAt - started,
      states,
      undelivered,
      duplicateAvailable: extras(posts.filter((k) => k.endsWith("|available"))),
      duplicatePosts: extras(posts),
      duplicateCreates: extras(creates.flat()),
      createsPerReplica: creates.map((c) => c.length),
      takeover,
    };
  } finally {
    await Promise.all(bots.map((b) => b.stop()));
    await seeder.close();
    await db.end();
    await Promise.all(proxies.map((p) => p.close()));
    await slack.close();
    await aws.close();
    await database.drop();
  }
}

function report(label: string, o: Outcome): void {
  const finished = o.states.available ?? 0;
  const others = Object.entries(o.states)
    .filter(([state]) => state !== "available")
    .map(([state, n]) => `${n} ${state}`);
  figure(`${label}: jobs seeded (inserted queued)`, `${JOBS} in ${(o.seedMs / 1000).toFixed(1)} s`);
  figure(
    `${label}: jobs finished available`,
    `${finished}/${JOBS}${others.length > 0 ? ` (${others.join(", ")})` : ""}`,
  );
  figure(`${label}: messages left undelivered`, o.undelivered);
  figure(`${label}: duplicate "available" posts`, o.duplicateAvailable);
  figure(`${label}: duplicate thread posts, any kind`, o.duplicatePosts);
  figure(`${label}: duplicate CreateImage calls`, o.duplicateCreates);
  figure(`${label}: CreateImage calls per replica`, o.createsPerReplica.join(" / "));
  figure(
    `${label}: wall time, first job inserted → all ended and delivered`,
    o.wallMs === undefined ? `not finished in ${SCENARIO_DEADLINE_MS / 1000} s` : o.wallMs / 1000,
    o.wallMs === undefined ? "" : "s",
  );
  const t = o.takeover;
  if (!t) return;
  const ms = (value: number | undefined) => (value === undefined ? "never" : value);
  const unit = (value: number | undefined) => (value === undefined ? "" : "ms");
  figure(`${label}: unfinished jobs held per replica at the kill`, t.heldPerReplica.join(" / "));
  figure(`${label}: killed replica held`, `${t.heldJobs} jobs, ${t.heldMessages} messages`);
  figure(
    `${label}: takeover, kill → first held job claimed by a survivor`,
    ms(t.firstClaimMs),
    unit(t.firstClaimMs),
  );
  figure(`${label}: takeover, kill → every held job claimed`, ms(t.allClaimedMs), unit(t.allClaimedMs));
  figure(
    `${label}: takeover, kill → first survivor AWS call naming a held job`,
    ms(t.firstCallMs),
    unit(t.firstCallMs),
  );
  const { job, message } = t.countedBySurvivors;
  figure(`${label}: lease takeovers counted by survivors (metrics)`, `${job} jobs, ${message} messages`);
}

const server = await startPostgres();
try {
  report(`replicas, 1 replica, ${JOBS} jobs`, await scenario(server.url, 1, false));
  report(`replicas, 3 replicas (one SIGKILLed mid-run), ${JOBS} jobs`, await scenario(server.url, 3, true));
} finally {
  await server.stop();
  removeTempDirs();
}
