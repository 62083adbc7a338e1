/**
 * Smoke test of the compiled bot on another Node.js release (Node 24 in CI, see scripts/node24-smoke.sh):
 * the fakes run here, under the Node that runs this file; the bot runs as a child on the given binary, from
 * a folder holding `dist/` and production node_modules built for that binary. One /ami round trip to
 * "available", then a clean SIGTERM exit. Prints one PASS or FAIL line; exits 1 on failure.
 *
 *   npx tsx test/smoke/node24-smoke.ts <node binary> <app dir> [expected major, default 24]
 */
import { execFileSync } from "node:child_process";
import { existsSync, readlinkSync, realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import { eventually } from "../support/bot-harness.js";
import { type ChildBot, startChildFakes, viewSubmission } from "../support/child-bot.js";

const INSTANCE = "i-0123456789abcdef0";
const FORM = { instanceId: INSTANCE, imageName: "web-1 node smoke", reboot: "no_reboot" } as const;
const OVERALL_TIMEOUT_MS = 120_000;

function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(what);
}

/** Runs the round trip; resolves with what the PASS line reports, throws with what went wrong. */
async function runSmoke(nodeBinary: string, appDir: string, version: string): Promise<string> {
  const fakes = await startChildFakes();
  const { slack, aws } = fakes;
  aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
  let bot: ChildBot | undefined;
  try {
    bot = await fakes.start({ nodeBinary, appDir, readyTimeoutMs: 30_000 });
    // On Linux, make sure the child really is the binary under test, not the Node running this file.
    if (existsSync(`/proc/${bot.pid}/exe`)) {
      const running = readlinkSync(`/proc/${bot.pid}/exe`);
      check(running === realpathSync(nodeBinary), `the bot runs ${running}, not ${nodeBinary}`);
    }
    const health = await bot.health();
    check(health.status === 200, `GET /healthz answered ${health.status}: ${health.body}`);

    const command = await bot.command();
    check(command.status === 200, `/ami answered ${command.status}: ${command.body}`);
    await slack.waitFor("views.open", undefined, 10_000);
    const submitted = await bot.interaction(viewSubmission(slack, FORM, { viewId: "V0SMOKE001" }));
    check(submitted.status === 200, `view_submission answered ${submitted.status}: ${submitted.body}`);

    const image = await eventually(() => [...aws.images.values()][0], 20_000, "CreateImage on fake AWS");
    aws.setImageState(image.imageId, "available");
    const root = await eventually(() => slack.messages.find((m) => !m.threadTs), 20_000, "the root message");
    await eventually(
      () => slack.repliesTo(root.ts).find((m) => m.text.includes("is available")),
      20_000,
      'a thread reply saying "is available"',
    );

    const opened = slack.callsTo("views.open").length;
    check(opened === 1, `views.open was called ${opened} times, expected 1`);
    const roots = slack.messages.filter((m) => !m.threadTs).length;
    check(roots === 1, `${roots} root messages, expected 1`);
    const creates = aws.calls("CreateImage").length;
    check(creates === 1, `CreateImage was called ${creates} times, expected 1`);

    const exit = await bot.stop();
    check(exit.code === 0, `after SIGTERM the bot exited with ${exit.code ?? exit.signal}, expected code 0`);
    return `ami-bot on Node ${version}: /healthz 200, /ami round trip to available (${image.imageId}), exit 0 on SIGTERM`;
  } catch (error) {
    // The details go first, so the last line stays the one FAIL line.
    if (bot) {
      console.error(`--- bot stderr ---\n${bot.stderr()}`);
      console.error(`--- bot stdout (last 3000 characters) ---\n${bot.stdout().slice(-3000)}`);
    }
    throw error;
  } finally {
    await fakes.close();
  }
}

async function main(): Promise<number> {
  const [nodeArg, appArg, majorArg = "24"] = process.argv.slice(2);
  if (!nodeArg || !appArg) {
    console.error("usage: tsx test/smoke/node24-smoke.ts <node binary> <app dir> [expected major]");
    return 2;
  }
  const nodeBinary = resolve(nodeArg);
  const appDir = resolve(appArg);
  let version = "unknown";
  const started = Date.now();
  try {
    version = execFileSync(nodeBinary, ["--version"], { encoding: "utf8" }).trim();
    check(version.startsWith(`v${majorArg}.`), `${nodeBinary} is ${version}, expected Node ${majorArg}`);
    check(existsSync(join(appDir, "dist/src/main.js")), `${appDir} has no dist/src/main.js`);
    let timer: NodeJS.Timeout | undefined;
    const summary = await Promise.race([
      runSmoke(nodeBinary, appDir, version).finally(() => clearTimeout(timer)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no result within ${OVERALL_TIMEOUT_MS} ms`)),
          OVERALL_TIMEOUT_MS,
        );
      }),
    ]);
    console.log(`PASS node${majorArg}-smoke: ${summary} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return 0;
  } catch (error) {
    // The whole message (it may carry the bot's output) first, then one FAIL line to grep for.
    const [headline, ...rest] = String((error as Error).message).split("\n");
    if (rest.length > 0) console.error(rest.join("\n"));
    console.error(`FAIL node${majorArg}-smoke: ami-bot on Node ${version}: ${headline}`);
    return 1;
  }
}

// Exit explicitly: a socket left open by a failed run must not keep the smoke (and CI) waiting.
process.exit(await main());
