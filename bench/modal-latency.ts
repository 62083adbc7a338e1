/**
 * Modal latency: Slack's trigger_id expires 3 s after the slash command, so the form must be open by then.
 * Fires bursts of 50 concurrent signed `/ami` requests at the real bot (a child process in HTTP mode) and
 * times each from the request's start to the moment its views.open (matched by trigger_id) reaches the
 * fake Slack. Also reports the acknowledgement time and the first /ami after start (lazy set-up).
 *
 * Beside it, in the same run and measured the same way, a bare Bolt app (bench/bare-bolt-app.ts: HTTP
 * receiver, signatures checked, the same fake Slack) that only acks /ami and opens the very modal the bot
 * opened: the floor Bolt itself sets. Each gets one uncounted burst to warm up, then the two take turns, one
 * burst each per round, the order swapped every round, with the same concurrency, so whatever else the
 * machine is doing falls on both alike.
 */
import { performance } from "node:perf_hooks";
import { startFakeAws } from "../test/fakes/fake-aws.js";
import { startFakeSlack } from "../test/fakes/fake-slack.js";
import { postSigned, slashCommandBody } from "../test/support/slack-requests.js";
import {
  type BareBoltProcess,
  type BotProcess,
  EXTERNAL_ID,
  figure,
  percentile,
  ROLE_ARN,
  removeTempDirs,
  SIGNING_SECRET,
  sleep,
  spawnBareBolt,
  spawnBot,
  tempDir,
  USER,
} from "./lib.js";

const CONCURRENT = 50;
/** Bursts per app after its warm-up burst: its percentiles are read from ROUNDS × CONCURRENT requests. */
const ROUNDS = 10;
/** Pause between two bursts, so one app's leftovers (log writes, say) do not land on the other's burst. */
const GAP_MS = 200;
const SLACK_LIMIT_MS = 3_000;
const P99_TARGET = 1.2;

const slack = await startFakeSlack();
const aws = await startFakeAws({ roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } } });
let bot: BotProcess | undefined;
let bare: BareBoltProcess | undefined;

/** One signed /ami; resolves with the ack time and the time until its views.open arrived. */
async function openModal(url: string, n: string): Promise<{ ackMs: number; openMs: number }> {
  const triggerId = `bench.${n}.${Math.random().toString(36).slice(2)}`;
  const body = slashCommandBody({ user_id: USER, channel_id: "C0BENCH01", trigger_id: triggerId });
  const t0 = performance.now();
  const opened = slack.waitFor("views.open", (c) => c.args.trigger_id === triggerId, 15_000);
  const res = await postSigned(url, body, SIGNING_SECRET);
  const ackMs = performance.now() - t0;
  if (res.status !== 200) throw new Error(`/ami answered ${res.status}: ${res.body}`);
  const call = await opened;
  return { ackMs, openMs: call.at - t0 };
}

interface Sample {
  readonly opens: number[];
  readonly acks: number[];
  /** p99 of each burst, in the order run. */
  readonly burstP99: number[];
}

async function burst(url: string, tag: string, into: Sample): Promise<number[]> {
  const results = await Promise.all(
    Array.from({ length: CONCURRENT }, (_, i) => openModal(url, `${tag}.${i}`)),
  );
  const o = results.map((r) => r.openMs);
  into.opens.push(...o);
  into.acks.push(...results.map((r) => r.ackMs));
  into.burstP99.push(percentile(o, 99));
  return o;
}

const ms = (n: number) => `${n.toFixed(1)} ms`;

try {
  bot = await spawnBot({ slack, aws, dbPath: `${tempDir()}/bot.db` });
  const first = await openModal(bot.url, "first");
  figure("modal: first /ami after start → views.open", first.openMs, "ms");
  // The bare app opens exactly the form the bot just opened (its blocks and signed private_metadata).
  const view = slack.callsTo("views.open")[0]?.args.view;
  if (!view) throw new Error("the bot's first views.open carried no view");
  bare = await spawnBareBolt({ slack, view });
  const bareFirst = await openModal(bare.url, "bare-first");
  figure("modal, bare Bolt app: first /ami after start → views.open", bareFirst.openMs, "ms");

  const apps = [
    { name: "ami-bot", url: bot.url, sample: { opens: [], acks: [], burstP99: [] } as Sample },
    { name: "bare Bolt", url: bare.url, sample: { opens: [], acks: [], burstP99: [] } as Sample },
  ];
  for (const app of apps) await burst(app.url, `${app.name}.warm-up`, { opens: [], acks: [], burstP99: [] });
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? apps : [...apps].reverse();
    const parts: string[] = [];
    for (const app of order) {
      await sleep(GAP_MS);
      const o = await burst(app.url, `${app.name}.${round}`, app.sample);
      parts.push(
        `${app.name} p50 ${ms(percentile(o, 50))}, p99 ${ms(percentile(o, 99))}, max ${ms(Math.max(...o))}`,
      );
    }
    console.log(`  round ${round}: ${CONCURRENT} concurrent each — ${parts.join("; ")}`);
  }

  const [ours, floor] = apps.map((a) => a.sample) as [Sample, Sample];
  const label = `${CONCURRENT} concurrent ×${ROUNDS}`;
  figure(`modal: ${label}, /ami → views.open p50`, percentile(ours.opens, 50), "ms");
  figure(`modal: ${label}, /ami → views.open p95`, percentile(ours.opens, 95), "ms");
  figure(`modal: ${label}, /ami → views.open p99`, percentile(ours.opens, 99), "ms");
  figure(`modal: ${label}, /ami → views.open max`, Math.max(...ours.opens), "ms");
  figure(`modal: ${label}, /ami → HTTP ack p99`, percentile(ours.acks, 99), "ms");
  figure(
    "modal: views.open later than Slack's 3 s",
    `${ours.opens.filter((t) => t > SLACK_LIMIT_MS).length} of ${ours.opens.length}`,
  );
  figure("modal: AWS calls made while opening forms", aws.requests.length);

  const bareLabel = `modal, bare Bolt app: ${label} (alternating with ami-bot)`;
  figure(`${bareLabel}, /ami → views.open p50`, percentile(floor.opens, 50), "ms");
  figure(`${bareLabel}, /ami → views.open p95`, percentile(floor.opens, 95), "ms");
  figure(`${bareLabel}, /ami → views.open p99`, percentile(floor.opens, 99), "ms");
  figure(`${bareLabel}, /ami → views.open max`, Math.max(...floor.opens), "ms");
  figure(`${bareLabel}, /ami → HTTP ack p99`, percentile(floor.acks, 99), "ms");

  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  // Each round's own ratio of burst p99s shows how much of the overall ratio is noise.
  const perRound = ours.burstP99.map((p, i) => p / (floor.burstP99[i] as number));
  figure(
    "modal: ami-bot ÷ bare Bolt app, /ami → views.open p50",
    ratio(percentile(ours.opens, 50), percentile(floor.opens, 50)),
  );
  figure(
    "modal: ami-bot ÷ bare Bolt app, /ami → views.open p99",
    `${ratio(percentile(ours.opens, 99), percentile(floor.opens, 99))} (target ≤ ${P99_TARGET}×; ` +
      `per round ${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}×, ` +
      `median ${percentile(perRound, 50).toFixed(2)}×)`,
  );
} finally {
  await bare?.stop();
  await bot?.stop();
  await slack.close();
  await aws.close();
  removeTempDirs();
}
