/**
 * Decisions: the two-person rule's buttons and the Home tabs they refresh. Runs the real bot (child process,
 * HTTP mode) for a target with approvals (one approver, a listed approver user who is not the requester)
 * and AMI_POLL_INTERVAL=1s, and asks for images through the real /ami form (a signed slash command, then
 * the view_submission of the form it opened), one job per instance and channel, all by one requester.
 *   A. 30 jobs approved one at a time: Approve click → HTTP ack, and → CreateImage at the fake EC2 (the
 *      click wakes the watcher, so this should be far below the 1 s poll interval). Then 10 of them, their
 *      images pending, cancelled one at a time by the requester: Cancel click → DeregisterImage.
 *   B. 30 new jobs approved all at once (30 concurrent clicks): CreateImage calls (must be 30) and duplicate
 *      "approved" replies (must be 0); then the 30 images turn available over a few seconds. Counts the
 *      views.publish calls for the requester's and the approver's Home tabs (both opened, as people with
 *      the tab open) from the first click until all is quiet, against the jobs' state changes, and the
 *      busiest 60 s of publishes against Slack's Tier 4 (about 100 a minute).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { type FakeAws, startFakeAws } from "../test/fakes/fake-aws.js";
import {
  type FakeSlack,
  type SlackCall,
  type StoredMessage,
  startFakeSlack,
} from "../test/fakes/fake-slack.js";
import { buttonIn, messageButtonPayload } from "../test/support/job-buttons.js";
import {
  appHomeOpenedPayload,
  interactionBody,
  postSigned,
  postSignedEvent,
  slashCommandBody,
} from "../test/support/slack-requests.js";
import {
  type BotProcess,
  EXTERNAL_ID,
  figure,
  mapLimited,
  percentile,
  REPO_ROOT,
  ROLE_ARN,
  removeTempDirs,
  SIGNING_SECRET,
  seededRandom,
  sleep,
  spawnBot,
  tempDir,
  USER,
  until,
} from "./lib.js";

const JOBS = 30;
const CANCELS = 10;
const APPROVER = "U0BENCHAPR";
const POLL = "1s";
/** Phase B's images turn available at random moments within this window. */
const AVAILABLE_WINDOW_MS = 5_000;
/** Slack's Tier 4 (views.publish): about 100 calls a minute. */
const TIER4_PER_MIN = 100;
/** The Home loop publishes one person at most once per 2 s: this long without a publish means all is shown. */
const QUIET_MS = 2_500;

const fixture = JSON.parse(
  readFileSync(join(REPO_ROOT, "test/fixtures/slack/view_submission.bolt-python.json"), "utf8"),
) as { view: Record<string, unknown> } & Record<string, unknown>;

const keyOf = (m: StoredMessage) => String(m.metadata?.event_payload?.key ?? "");
const instanceOf = (phase: string, i: number) =>
  `i-0b${phase === "A" ? "a" : "b"}${String(i).padStart(14, "0")}`;
const channelOf = (phase: string, i: number) => `C0${phase}${String(i).padStart(3, "0")}`;

interface AskedJob {
  readonly instanceId: string;
  readonly channel: string;
  readonly root: StoredMessage;
  readonly jobId: string;
}

const slack: FakeSlack = await startFakeSlack();
const aws: FakeAws = await startFakeAws({ roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } } });
let bot: BotProcess | undefined;

/** The form's answers as Slack sends them in view.state.values. */
function formValues(instanceId: string, imageName: string, channel: string) {
  return {
    instance: {
      instance_select: {
        type: "external_select",
        selected_option: {
          value: instanceId,
          text: { type: "plain_text", text: `web (${instanceId}) · running · t3.micro` },
        },
      },
    },
    image_name: { image_name_input: { type: "plain_text_input", value: imageName } },
    description: { description_input: { type: "plain_text_input", value: null } },
    reboot: { reboot_choice: { type: "radio_buttons", selected_option: null } },
    tags: { tags_input: { type: "plain_text_input", value: null } },
    channel: { channel_select: { type: "conversations_select", selected_conversation: channel } },
  };
}

/** /ami in the job's channel, then the form it opened sent back filled in; waits for the job's root. */
async function ask(url: string, phase: string, i: number): Promise<AskedJob> {
  const instanceId = instanceOf(phase, i);
  const channel = channelOf(phase, i);
  const triggerId = `bench.${phase}.${i}.${Math.random().toString(36).slice(2)}`;
  const opened = slack.waitFor("views.open", (c) => c.args.trigger_id === triggerId, 15_000);
  const cmd = await postSigned(
    url,
    slashCommandBody({ user_id: USER, channel_id: channel, trigger_id: triggerId }),
    SIGNING_SECRET,
  );
  if (cmd.status !== 200) throw new Error(`/ami answered ${cmd.status}: ${cmd.body}`);
  const view = (await opened).args.view as { blocks?: unknown[]; private_metadata?: string };
  const submission = {
    ...fixture,
    user: { id: USER, username: "someone", name: "someone", team_id: "T111" },
    view: {
      ...fixture.view,
      id: `V0${phase}${String(i).padStart(6, "0")}`,
      callback_id: "ami_create",
      blocks: view.blocks ?? [],
      private_metadata: view.private_metadata ?? "",
      state: { values: formValues(instanceId, `bench ${phase} ${i}`, channel) },
    },
  };
  const res = await postSigned(url, interactionBody(submission), SIGNING_SECRET);
  if (res.status !== 200 || res.body !== "")
    throw new Error(`form ${phase}${i} refused (${res.status}): ${res.body}`);
  const root = await until(
    () =>
      slack.messages.find(
        (m) => m.channel === channel && !m.threadTs && buttonIn(m, "job_approve") !== undefined,
      ),
    20_000,
    `the root of ${phase}${i}`,
  );
  const jobId = String(buttonIn(root, "job_approve")?.value ?? "");
  return { instanceId, channel, root, jobId };
}

/** Asks for `JOBS` images, then waits until each thread has its approval request and the approver their DM. */
async function askAll(url: string, phase: string): Promise<AskedJob[]> {
  for (let i = 0; i < JOBS; i++)
    aws.addInstance({ instanceId: instanceOf(phase, i), name: `web-${phase}${i}` });
  const jobs = await mapLimited(
    Array.from({ length: JOBS }, (_, i) => i),
    6,
    (i) => ask(url, phase, i),
  );
  await until(
    () =>
      jobs.every((j) => slack.repliesTo(j.root.ts).some((m) => keyOf(m) === "approval_request")) &&
      jobs.every((j) =>
        slack.messages.some(
          (m) => m.channel === `D${APPROVER.slice(1)}` && buttonIn(m, "job_approve")?.value === j.jobId,
        ),
      ),
    30_000,
    `phase ${phase}'s approval requests and DMs`,
  );
  return jobs;
}

const rootNow = (root: StoredMessage) =>
  slack.messages.find((m) => m.channel === root.channel && m.ts === root.ts) ?? root;

/** A click on a button of the job's root as it stands now (as drawn by the bot), by `userId`. */
async function click(url: string, userId: string, job: AskedJob, actionId: string) {
  const button = buttonIn(rootNow(job.root), actionId) ?? { action_id: actionId, value: job.jobId };
  const payload = messageButtonPayload({
    userId,
    channel: job.root.channel,
    messageTs: job.root.ts,
    action: button,
  });
  const t0 = performance.now();
  const epoch0 = Date.now();
  const res = await postSigned(url, interactionBody(payload), SIGNING_SECRET);
  if (res.status !== 200) throw new Error(`${actionId} answered ${res.status}: ${res.body}`);
  return { ackMs: performance.now() - t0, epoch0 };
}

/** ms from `epoch0` to the first `action` request at the fake AWS matching `match`, once it arrives. */
async function awsLatency(
  action: string,
  match: (p: Readonly<Record<string, string>>) => boolean,
  epoch0: number,
) {
  const call = await until(
    () => aws.calls(action).find((r) => r.at >= epoch0 && match(r.params)),
    20_000,
    action,
  );
  return call.at - epoch0;
}

/** Resolves once no views.publish has arrived for `QUIET_MS` (or after 20 s). */
async function homesQuiet(): Promise<void> {
  const deadline = performance.now() + 20_000;
  for (;;) {
    const last = slack.callsTo("views.publish").at(-1)?.at ?? 0;
    if (performance.now() - last >= QUIET_MS || performance.now() > deadline) return;
    await sleep(100);
  }
}

const ms = (values: number[], p: number) => percentile(values, p);

try {
  bot = await spawnBot({
    slack,
    aws,
    dbPath: join(tempDir(), "bot.db"),
    env: {
      AMI_TARGET_ALLOW_USERS: `${USER},${APPROVER}`,
      AMI_TARGET_APPROVERS: APPROVER,
      AMI_TARGET_APPROVAL_EXPIRES: "30m",
      AMI_TARGET_JOBS_PER_HOUR: "200",
      AMI_POLL_INTERVAL: POLL,
    },
  });
  const url = bot.url;
  // Both have their Home tab open (so the bot knows their App Home DM and looks up thread links).
  for (const user of [USER, APPROVER]) {
    const res = await postSignedEvent(
      url,
      appHomeOpenedPayload({ user, channel: `D${user.slice(1)}` }),
      SIGNING_SECRET,
    );
    if (res.status !== 200) throw new Error(`app_home_opened answered ${res.status}`);
  }
  console.log(
    `  ${JOBS} jobs awaiting approval per phase: 1 requester (${USER}), 1 approver (${APPROVER}, listed in ` +
      `AMI_TARGET_APPROVERS), ${JOBS} instances, 1 channel each; AMI_POLL_INTERVAL=${POLL}`,
  );

  // ---- A: approvals one at a time, then cancels of pending images ----
  const a = await askAll(url, "A");
  const acks: number[] = [];
  const creates: number[] = [];
  for (const job of a) {
    const { ackMs, epoch0 } = await click(url, APPROVER, job, "job_approve");
    acks.push(ackMs);
    creates.push(await awsLatency("CreateImage", (p) => p.InstanceId === job.instanceId, epoch0));
    await sleep(100);
  }
  const label = `approve, ${JOBS} jobs one at a time`;
  figure(`${label}: click → HTTP ack p50`, ms(acks, 50), "ms");
  figure(`${label}: click → HTTP ack p95`, ms(acks, 95), "ms");
  figure(`${label}: click → HTTP ack max`, Math.max(...acks), "ms");
  figure(`${label}, AMI_POLL_INTERVAL=${POLL}: click → CreateImage at EC2 p50`, ms(creates, 50), "ms");
  figure(`${label}, AMI_POLL_INTERVAL=${POLL}: click → CreateImage at EC2 p95`, ms(creates, 95), "ms");
  figure(`${label}, AMI_POLL_INTERVAL=${POLL}: click → CreateImage at EC2 max`, Math.max(...creates), "ms");

  // The job must be pending (its "pending" reply out) before a cancel has an image to remove.
  await until(
    () => a.every((j) => slack.repliesTo(j.root.ts).some((m) => keyOf(m) === "pending")),
    20_000,
    "phase A's pending replies",
  );
  const imageOf = (job: AskedJob) =>
    [...aws.images.values()].find((im) => im.instanceId === job.instanceId)?.imageId as string;
  const cancels: number[] = [];
  for (const job of a.slice(0, CANCELS)) {
    const imageId = imageOf(job);
    const { epoch0 } = await click(url, USER, job, "job_cancel");
    cancels.push(await awsLatency("DeregisterImage", (p) => p.ImageId === imageId, epoch0));
    await sleep(100);
  }
  const cancelLabel = `cancel by the requester, ${CANCELS} pending images one at a time, AMI_POLL_INTERVAL=${POLL}`;
  figure(`${cancelLabel}: click → DeregisterImage at EC2 p50`, ms(cancels, 50), "ms");
  figure(`${cancelLabel}: click → DeregisterImage at EC2 max`, Math.max(...cancels), "ms");

  // Finish phase A, so its instances and threads are quiet before the burst.
  for (const job of a.slice(CANCELS)) aws.setImageState(imageOf(job), "available");
  await until(
    () =>
      a.every((j, i) =>
        slack.repliesTo(j.root.ts).some((m) => keyOf(m) === (i < CANCELS ? "cancelled" : "available")),
      ),
    20_000,
    "phase A's jobs to end",
  );

  // ---- B: 30 approvals at once, then 30 images available ----
  const b = await askAll(url, "B");
  await homesQuiet();
  const startPerf = performance.now();
  const startEpoch = Date.now();
  const publishesBefore = slack.callsTo("views.publish").length;
  const burst = await Promise.all(b.map((job) => click(url, APPROVER, job, "job_approve")));
  const burstAcks = burst.map((r) => r.ackMs);
  const burstCreates = await Promise.all(
    b.map((job, i) =>
      awsLatency("CreateImage", (p) => p.InstanceId === job.instanceId, burst[i]?.epoch0 ?? startEpoch),
    ),
  );
  await until(
    () => b.every((j) => slack.repliesTo(j.root.ts).some((m) => keyOf(m) === "pending")),
    20_000,
    "phase B's pending replies",
  );
  await sleep(500); // room for a duplicate to show
  const bInstances = new Set(b.map((j) => j.instanceId));
  const createCalls = aws
    .calls("CreateImage")
    .filter((r) => r.at >= startEpoch && bInstances.has(r.params.InstanceId ?? "")).length;
  const approvedReplies = b.map(
    (j) => slack.repliesTo(j.root.ts).filter((m) => keyOf(m) === "approved").length,
  );
  const duplicates = approvedReplies.reduce((s, n) => s + Math.max(0, n - 1), 0);
  const missing = approvedReplies.filter((n) => n === 0).length;
  const refusals = slack
    .callsTo("chat.postEphemeral")
    .filter((c) => c.args.user === APPROVER && c.at >= startPerf).length;
  const burstLabel = `approve, ${JOBS} clicks at once`;
  figure(`${burstLabel}: click → HTTP ack p50`, ms(burstAcks, 50), "ms");
  figure(`${burstLabel}: click → HTTP ack p95`, ms(burstAcks, 95), "ms");
  figure(`${burstLabel}: click → HTTP ack max`, Math.max(...burstAcks), "ms");
  figure(`${burstLabel}: click → CreateImage at EC2 p50`, ms(burstCreates, 50), "ms");
  figure(`${burstLabel}: click → CreateImage at EC2 max`, Math.max(...burstCreates), "ms");
  figure(`${burstLabel}: CreateImage calls`, `${createCalls} (expected ${JOBS})`);
  figure(
    `${burstLabel}: duplicate "approved" replies`,
    `${duplicates}${missing > 0 ? ` (and ${missing} threads without one)` : ""}`,
  );
  figure(`${burstLabel}: clicks refused or told "already"`, refusals);

  const random = seededRandom(11);
  await Promise.all(
    b.map(async (job) => {
      await sleep(random() * AVAILABLE_WINDOW_MS);
      aws.setImageState(imageOf(job), "available");
    }),
  );
  await until(
    () => b.every((j) => slack.repliesTo(j.root.ts).some((m) => keyOf(m) === "available")),
    20_000,
    "phase B's available replies",
  );
  await homesQuiet();
  const publishes = slack.callsTo("views.publish").slice(publishesBefore);
  const endPerf = Math.max(publishes.at(-1)?.at ?? startPerf, performance.now() - QUIET_MS);
  const forUser = (user: string) => publishes.filter((c) => c.args.user_id === user);
  // Every message the relay delivered (and every click) marks both tabs out of date.
  const delivered = slack.calls.filter(
    (c: SlackCall) =>
      c.at >= startPerf &&
      c.outcome === "ok" &&
      (c.method === "chat.postMessage" || c.method === "chat.update"),
  ).length;
  const homeLabel = `Home tabs, ${JOBS} approvals at once + ${JOBS} images available over ${AVAILABLE_WINDOW_MS / 1000} s`;
  figure(`${homeLabel}: job state changes`, `${3 * JOBS} (approved, pending, available ×${JOBS})`);
  figure(`${homeLabel}: refresh triggers (clicks + messages delivered)`, JOBS + delivered);
  figure(`${homeLabel}: views.publish for the requester`, forUser(USER).length);
  figure(`${homeLabel}: views.publish for the approver`, forUser(APPROVER).length);
  figure(`${homeLabel}: views.publish failed`, publishes.filter((c) => c.outcome !== "ok").length);
  figure(`${homeLabel}: span, first click → last publish`, (endPerf - startPerf) / 1000, "s");

  // The whole run's publishes: the busiest 60 s, and the closest two came (the loop keeps ≥700 ms).
  const all = slack.callsTo("views.publish").map((c) => c.at);
  let busiest = 0;
  for (let i = 0, j = 0; i < all.length; i++) {
    while ((all[i] as number) - (all[j] as number) >= 60_000) j++;
    busiest = Math.max(busiest, i - j + 1);
  }
  const gaps = all.slice(1).map((at, i) => at - (all[i] as number));
  const perUserGaps = [USER, APPROVER].flatMap((u) => {
    const ats = slack
      .callsTo("views.publish")
      .filter((c) => c.args.user_id === u)
      .map((c) => c.at);
    return ats.slice(1).map((at, i) => at - (ats[i] as number));
  });
  const runSeconds = (performance.now() - (all[0] ?? performance.now())) / 1000;
  figure(
    `views.publish, whole run (${runSeconds.toFixed(0)} s): busiest 60 s window`,
    `${busiest} (Slack Tier 4 ≈ ${TIER4_PER_MIN}/min)`,
  );
  figure("views.publish, whole run: least gap between two publishes", Math.min(...gaps), "ms");
  figure("views.publish, whole run: least gap between two for one person", Math.min(...perUserGaps), "ms");
  console.log(
    "  (the Home loop spaces the starts of publishes, ≥700 ms apart and ≥2 s per person; their arrival at " +
      "Slack also varies with each view's render time, thread links included)",
  );
} finally {
  await bot?.stop();
  await slack.close();
  await aws.close();
  removeTempDirs();
}
