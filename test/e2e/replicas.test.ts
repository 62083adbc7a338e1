/**
 * Replicas: three real bot processes share one Postgres database, one fake Slack and one fake AWS, and
 * take /ami requests round-robin (a modal opened by one replica is submitted to another). One of them kills
 * itself (SIGKILL) right after a CreateImage returned and before it stored the image id, while it holds
 * other jobs mid-creation (and perhaps messages) under lease: every CreateImage is held at a per-replica
 * proxy until all requests are in, then let through at once. The others must take its work over once the
 * leases run out, find its images by their tag instead of making them again, and finish every job with one
 * image, one root message and one "available" reply.
 */
import { hostname } from "node:os";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import type { StoredMessage } from "../fakes/fake-slack.js";
import { type AwsProxy, startAwsProxy } from "../support/aws-proxy.js";
import { eventually } from "../support/bot-harness.js";
import {
  type ChildBot,
  type ChildFakes,
  eventuallyAsync,
  httpRequest,
  startChildFakes,
  viewSubmission,
} from "../support/child-bot.js";
import { postgresForTest, type TestDatabase } from "../support/postgres.js";
import { parsePrometheusText } from "../unit/metrics/prometheus-text.js";

const REPLICAS = 3;
const JOBS = 12;
const LEASE_MS = 3_000;
/** The replica armed to die right after its first CreateImage returns. */
const VICTIM = 1;
const JOB_ID_TAG = "ami-bot:job-id";
/** The watcher's cap on CreateImage calls in flight at once, per replica (image-watcher.ts). */
const CREATE_CONCURRENCY = 8;

const pad = (i: number) => String(i).padStart(2, "0");
/** Each job its own instance (one job per instance at a time) and channel (Slack posts are paced per channel). */
const instanceOf = (i: number) => `i-${String(i + 1).padStart(17, "0")}`;
const channelOf = (i: number) => `C0REPL${pad(i)}`;
const keyOf = (m: StoredMessage) => String(m.metadata?.event_payload?.key ?? "");
const jobOfMessage = (m: StoredMessage) => String(m.metadata?.event_payload?.job_id ?? "");

interface AwsCall {
  readonly action: string;
  readonly params: Readonly<Record<string, string>>;
}

/** The job an EC2 call is about: CreateImage's job-id tag, DescribeImages' job-id filter (a lookup by tag). */
function jobOfCall({ action, params: p }: AwsCall): string | undefined {
  if (action === "CreateImage")
    for (let s = 1; p[`TagSpecification.${s}.ResourceType`] !== undefined; s++)
      for (let t = 1; p[`TagSpecification.${s}.Tag.${t}.Key`] !== undefined; t++)
        if (p[`TagSpecification.${s}.Tag.${t}.Key`] === JOB_ID_TAG)
          return p[`TagSpecification.${s}.Tag.${t}.Value`];
  if (action === "DescribeImages")
    for (let f = 1; p[`Filter.${f}.Name`] !== undefined; f++)
      if (p[`Filter.${f}.Name`] === `tag:${JOB_ID_TAG}`) return p[`Filter.${f}.Value.1`];
  return undefined;
}

/** The watcher's check of pending images (by id, when there are few). */
const isImageCheck = ({ action, params: p }: AwsCall) =>
  action === "DescribeImages" &&
  Object.entries(p).some(([k, v]) => /^Filter\.\d+\.Name$/.test(k) && v === "image-id");

interface JobRow {
  id: string;
  state: string;
  image_id: string | null;
  instance_id: string;
  channel_id: string;
  root_ts: string | null;
  lease_owner: string | null;
  create_attempted_at: number | null;
}

describe("three replicas on one Postgres database", () => {
  let database: TestDatabase | undefined;
  let client: pg.Client | undefined;
  let fakes: ChildFakes | undefined;
  const proxies: AwsProxy[] = [];
  const bots: ChildBot[] = [];

  // Whatever happened: the survivors stopped, every process gone, the fakes closed and the database dropped.
  afterAll(async () => {
    const steps = [
      () => Promise.all(bots.map((b) => b.stop())),
      () => fakes?.close(),
      () => Promise.all(proxies.map((p) => p.close())),
      () => client?.end(),
      () => database?.drop(),
    ];
    const errors: unknown[] = [];
    for (const step of steps) await Promise.resolve(step()).catch((error: unknown) => errors.push(error));
    if (errors.length > 0) throw errors[0];
  }, 60_000);

  it("finishes every job once, with one image and one available reply, when a replica is killed mid-job", {
    timeout: 150_000,
  }, async ({ onTestFailed }) => {
    database = await postgresForTest("replicas");
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const db = client;
    const jobs = async () =>
      (
        await db.query<JobRow>(
          `SELECT id, state, image_id, instance_id, channel_id, root_ts, lease_owner,
             create_attempted_at::float8 AS create_attempted_at FROM jobs ORDER BY seq`,
        )
      ).rows;
    const undelivered = async () =>
      (
        await db.query<{ job_id: string; key: string; state: string }>(
          "SELECT job_id, key, state FROM outbox WHERE state <> 'delivered' ORDER BY id",
        )
      ).rows;

    fakes = await startChildFakes();
    const { slack, aws } = fakes;
    for (let i = 0; i < JOBS; i++) aws.addInstance({ instanceId: instanceOf(i), name: `web-${i}` });
    for (let r = 0; r < REPLICAS; r++) proxies.push(await startAwsProxy(aws.url));
    // Every CreateImage waits at its replica's proxy until every request is in: the victim then dies while
    // it holds jobs, and every replica has served the whole flow until then.
    for (const proxy of proxies) proxy.hold("CreateImage");

    const env = {
      DATABASE_URL: database.url,
      AMI_LEASE: `${LEASE_MS / 1000}s`,
      AMI_POLL_INTERVAL: "1s",
      AMI_TARGET_JOBS_PER_HOUR: "100",
      // CreateImage is held above while the requests come in; AWS's usual limit would cut it short.
      AMI_AWS_REQUEST_TIMEOUT: "60s",
    };
    const started = await Promise.all(
      proxies.map((proxy, r) =>
        (fakes as ChildFakes).start({
          awsUrl: proxy.url,
          env,
          readyTimeoutMs: 60_000,
          ...(r === VICTIM ? { crashAt: "create_image_returned" } : {}),
        }),
      ),
    );
    bots.push(...started);
    const victim = bots[VICTIM] as ChildBot;
    const survivors = bots.filter((b) => b !== victim);
    const ownerOf = (bot: ChildBot) => `${hostname()}:${bot.pid}:`;
    const replicaOf = (owner: string | null) => bots.findIndex((b) => owner?.startsWith(ownerOf(b)));
    // The rows are read as soon as the victim is seen dead: its leases run out LEASE_MS after its last
    // renewal, and the survivors then claim its jobs within a poll, so a read later (a slow test process)
    // could find none of them left under its lease.
    const killedAt = victim.exit.then(async (exit) => ({ exit, at: Date.now(), rows: await jobs() }));
    // Awaited below; a victim killed after a failure (the client already closed) must not leave a rejection.
    killedAt.catch(() => undefined);
    // What the database and each replica's log say, to tell which replica got stuck where.
    onTestFailed(async () => {
      console.error("jobs:", JSON.stringify(await jobs().catch(String)));
      console.error("undelivered:", JSON.stringify(await undelivered().catch(String)));
      for (const [r, b] of bots.entries())
        console.error(`replica ${r} (pid ${b.pid}):\n${b.stderr()}${b.stdout().slice(-3000)}`);
    });

    // /ami on one replica, the modal's submission on the next: its signed metadata verifies on any of them.
    const t0 = Date.now();
    for (let i = 0; i < JOBS; i++) {
      const opener = bots[i % REPLICAS] as ChildBot;
      const submitter = bots[(i + 1) % REPLICAS] as ChildBot;
      const command = await opener.command({ channel_id: channelOf(i) });
      expect(command.status, `/ami #${i}: ${command.body}`).toBe(200);
      await eventually(() => slack.callsTo("views.open").length > i, 30_000, `modal #${i}`);
      const form = {
        instanceId: instanceOf(i),
        imageName: `web-${i} replica test`,
        reboot: "no_reboot",
        channel: channelOf(i),
      } as const;
      const sent = await submitter.interaction(viewSubmission(slack, form, { viewId: `V0REPL${pad(i)}` }));
      expect({ status: sent.status, body: sent.body }, `submission #${i}`).toEqual({ status: 200, body: "" });
    }
    const submittedMs = Date.now() - t0;

    // Every job claimed and its CreateImage waiting at the proxy of the replica that claimed it (a replica
    // holding more than its cap of jobs keeps the rest waiting for a free slot, unattempted).
    await eventuallyAsync(
      async () => {
        const rows = await jobs();
        if (rows.length !== JOBS) return false;
        const attempted = rows.filter((j) => j.create_attempted_at !== null).length;
        const held = proxies.reduce((n, p) => n + p.held(), 0);
        const waiting = rows.filter((j) => j.create_attempted_at === null);
        return (
          held === attempted &&
          waiting.every((j) => (proxies[replicaOf(j.lease_owner)]?.held() ?? 0) >= CREATE_CONCURRENCY)
        );
      },
      60_000,
      "every job's CreateImage held at a proxy",
    );
    const heldByVictim = proxies[VICTIM]?.held() ?? 0;
    expect(heldByVictim, "the victim replica claimed no job; nothing to take over").toBeGreaterThan(0);

    for (const proxy of proxies) proxy.release();
    const { exit, at: deathAt, rows: atDeath } = await killedAt;
    expect(exit.signal).toBe("SIGKILL");
    // What the victim held when it died: its lease is still on them.
    const orphaned = atDeath.filter((j) => replicaOf(j.lease_owner) === VICTIM);
    expect(orphaned.length).toBeGreaterThan(0);
    const orphanIds = new Set(orphaned.map((j) => j.id));

    // Taken over: another replica asks AWS about each orphaned job (by its tag, or makes its image).
    const survivorCalls = () =>
      proxies.flatMap((p, r) => (r === VICTIM ? [] : p.calls.filter((c) => c.at >= deathAt)));
    const takeovers = await eventually(
      () => {
        const firstSeen = new Map<string, number>();
        for (const call of survivorCalls()) {
          const jobId = jobOfCall(call);
          if (jobId && orphanIds.has(jobId) && !firstSeen.has(jobId)) firstSeen.set(jobId, call.at);
        }
        return firstSeen.size === orphanIds.size ? [...firstSeen.values()] : undefined;
      },
      60_000,
      "another replica taking over the victim's jobs",
    );
    const firstTakeoverMs = Math.min(...takeovers) - deathAt;
    const lastTakeoverMs = Math.max(...takeovers) - deathAt;

    // The images stay pending for a few of the survivors' checks, then turn available.
    await eventuallyAsync(
      async () => (await jobs()).every((j) => j.state === "pending" && j.image_id !== null),
      60_000,
      "every job pending with its image id",
    );
    const checksBefore = survivorCalls().filter(isImageCheck).length;
    await eventually(
      () => survivorCalls().filter(isImageCheck).length >= checksBefore + 3,
      30_000,
      "a few checks of the pending images",
    );
    for (const image of aws.images.values()) aws.setImageState(image.imageId, "available");
    const availableAt = Date.now();

    await eventuallyAsync(
      async () => (await jobs()).every((j) => j.state === "available") && (await undelivered()).length === 0,
      60_000,
      "every job available and every message delivered",
    );
    const finishedMs = Date.now() - availableAt;

    // Takeovers each survivor counted, by kind (jobs, messages).
    const counted = await Promise.all(
      survivors.map(async (bot) => {
        const res = await httpRequest(`${bot.baseUrl}/metrics`);
        expect(res.status).toBe(200);
        const samples = parsePrometheusText(res.body).get("ami_bot_lease_takeovers_total")?.samples ?? [];
        const of = (kind: string) => samples.find((s) => s.labels.kind === kind)?.value ?? 0;
        return { job: of("job"), message: of("message") };
      }),
    );
    // Nothing more can reach Slack or AWS once the survivors have stopped: what is recorded is final.
    const stopped = await Promise.all(survivors.map((b) => b.stop()));
    expect(stopped.map((s) => s.code)).toEqual(survivors.map(() => 0));

    console.info(
      `replicas: ${JOBS} jobs submitted in ${submittedMs} ms; victim (replica ${VICTIM}) held ${heldByVictim} ` +
        `CreateImage calls and ${orphaned.length} jobs when it died; first takeover ${firstTakeoverMs} ms ` +
        `after its death, all taken over by ${lastTakeoverMs} ms (lease ${LEASE_MS} ms); every job ` +
        `finished ${finishedMs} ms after its image turned available; takeovers counted by the survivors: ` +
        `${counted.map((c) => `${c.job} jobs + ${c.message} messages`).join(", ")}`,
    );

    const final = await jobs();
    expect(final).toHaveLength(JOBS);
    expect(final.filter((j) => j.state !== "available")).toEqual([]);
    expect(await undelivered()).toEqual([]);
    expect(firstTakeoverMs).toBeLessThan(5 * LEASE_MS);
    expect(lastTakeoverMs).toBeLessThan(5 * LEASE_MS);
    expect(Math.max(...counted.map((c) => c.job + c.message))).toBeGreaterThan(0);
    // Every replica served the flow: each checked the instances of the forms submitted to it.
    for (const proxy of proxies) expect(proxy.calls.some((c) => c.action === "DescribeInstances")).toBe(true);
    expect(proxies[VICTIM]?.calls.filter((c) => c.at > deathAt)).toEqual([]);

    // One CreateImage per job, whichever replica made it; one image each, the one the job recorded.
    const creates = new Map<string, number>();
    for (const call of aws.calls("CreateImage")) {
      const jobId = jobOfCall(call) ?? "(untagged)";
      creates.set(jobId, (creates.get(jobId) ?? 0) + 1);
    }
    expect(Object.fromEntries(creates)).toEqual(Object.fromEntries(final.map((j) => [j.id, 1])));
    expect(aws.images.size).toBe(JOBS);
    const imageOfJob = new Map([...aws.images.values()].map((i) => [i.tags[JOB_ID_TAG], i.imageId]));
    for (const job of final) expect(job.image_id, job.id).toBe(imageOfJob.get(job.id));

    // One root message per job, in its channel, updated when the image was ready; in its thread each
    // update once, in order, and one "available" reply.
    const roots = slack.messages.filter((m) => !m.threadTs);
    expect(roots.map(jobOfMessage).sort()).toEqual(final.map((j) => j.id).sort());
    for (const job of final) {
      const root = roots.find((m) => jobOfMessage(m) === job.id) as StoredMessage;
      expect({ channel: root.channel, key: keyOf(root), ts: root.ts }).toEqual({
        channel: job.channel_id,
        key: "root",
        ts: job.root_ts,
      });
      expect(root.text).toContain("is available");
      const keys = slack.repliesTo(root.ts).map(keyOf);
      expect(new Set(keys).size, `duplicate replies in ${job.id}: ${keys}`).toBe(keys.length);
      expect(
        keys.filter((k) => !k.startsWith("progress:")),
        job.id,
      ).toEqual(["creating", "pending", "available"]);
    }
    // Every message is in one of the jobs' threads (no stray or orphaned posts).
    const threads = new Set(roots.map((r) => r.ts));
    expect(slack.messages.filter((m) => m.threadTs && !threads.has(m.threadTs))).toEqual([]);
  });
});
