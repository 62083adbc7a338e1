/**
 * One bot per database: a second bot on the same file would claim the same jobs and call CreateImage twice.
 * The second one must exit 2 with one line naming the database, and the lock must die with its holder,
 * however it dies, so the next start (a restart, a deployment) is never blocked by a stale lock.
 */
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startBot } from "../../src/bot.js";
import { loadConfig } from "../../src/config.js";
import { StartupError } from "../../src/errors.js";
import { type Harness, startHarness } from "../support/bot-harness.js";
import { type ChildFakes, startChildFakes } from "../support/child-bot.js";

let fakes: ChildFakes | undefined;
let h: Harness | undefined;
afterEach(async () => {
  await fakes?.close();
  fakes = undefined;
  await h?.close();
  h = undefined;
});

/** Exit code 2 and exactly one line on stderr, with no stack trace. */
function expectOneLineExit2(exit: { code: number | null }, stderr: string, ...mentions: string[]): void {
  expect(exit.code, stderr).toBe(2);
  const lines = stderr.trim().split("\n");
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  for (const text of mentions) expect(lines[0]).toContain(text);
}

describe("one bot per database", () => {
  it("exits 2 with one line naming the database when another bot holds it, leaving that bot alone", async () => {
    fakes = await startChildFakes();
    const first = await fakes.start();
    const second = await fakes.start({ waitUntil: "spawned" });
    expectOneLineExit2(await second.exit, second.stderr(), "another ami-bot process", fakes.dbPath);
    expect((await first.health()).status).toBe(200);
  });

  it("starts on the database when the bot holding it was SIGKILLed", async () => {
    fakes = await startChildFakes();
    const first = await fakes.start();
    first.kill("SIGKILL");
    expect(await first.exit).toEqual({ code: null, signal: "SIGKILL" });
    // A crash leaves no stale lock behind: the kernel drops it with the process.
    const next = await fakes.start();
    expect((await next.health()).json).toMatchObject({ ok: true, unfinishedJobs: 0 });
    expect((await next.stop()).code).toBe(0);
  });

  it("refuses a second bot in the same process, and starts again in it after stop()", async () => {
    h = await startHarness();
    const config = loadConfig(h.env);
    const attempt = startBot(config, pino({ level: "silent" }));
    await expect(attempt).rejects.toBeInstanceOf(StartupError);
    await expect(attempt).rejects.toThrow(`another ami-bot process is using ${h.dbPath}`);
    // The running bot still works, and a restart on the same database (stop, then start) is allowed.
    await h.restart();
    expect(h.store.unfinishedCount()).toBe(0);
  });
});
