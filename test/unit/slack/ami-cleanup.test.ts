import type { RespondArguments } from "@slack/bolt";
import { beforeEach, describe, expect, it } from "vitest";
import type { BotImage, SweepReport } from "../../../src/domain/keep-rule.js";
import type { KeepRule, Target } from "../../../src/domain/target.js";
import {
  type CleanupArgs,
  chooseCleanupTarget,
  cleanupCommand,
  cleanupRefusal,
  parseCleanupArgs,
} from "../../../src/slack/commands/ami-cleanup.js";
import { createKeepSweep, type KeepSweep } from "../../../src/watcher/keep-sweep.js";
import { CLOCK_START, createFixedClock } from "../../fakes/fixed-clock.js";
import { memoryStore, newJob, silentLogger, testTarget } from "../../fakes/job-fixtures.js";
import { MemoryImageCleanup } from "../../fakes/memory-image-cleanup.js";

const ADMIN = "U0ADMIN1";
const OTHER_ADMIN = "U0ADMIN2";
const STRANGER = "U0STRANGER";
const keep: KeepRule = { lastPerInstance: 1, maxAgeMs: undefined, channel: "C0CLEANUP" };

function target(name: string, rule: KeepRule | "none" = keep, admins = [ADMIN, OTHER_ADMIN]): Target {
  const after = { copyTo: [], shareWith: [], keep: rule === "none" ? undefined : rule };
  return testTarget({ name, admins, after });
}

describe("parseCleanupArgs", () => {
  it("reads a mode and an optional target", () => {
    expect(parseCleanupArgs(["preview"])).toEqual({ mode: "preview", targetName: undefined });
    expect(parseCleanupArgs(["RUN", "prod"])).toEqual({ mode: "run", targetName: "prod" });
  });

  it.each([[[]], [["now"]], [["run", "a", "b"]]])("answers %j with how to use it", (words) => {
    expect(parseCleanupArgs(words)).toEqual({
      usage: expect.stringContaining("`/ami cleanup preview [target]`"),
    });
  });
});

describe("chooseCleanupTarget", () => {
  const prod = target("prod");
  const staging = target("staging");
  const plain = target("plain", "none");

  it("defaults to the only target with a keep rule", () => {
    expect(chooseCleanupTarget([prod, plain], undefined, "run")).toEqual({ target: prod });
  });

  it("asks for a name when several targets have a rule, listing them", () => {
    expect(chooseCleanupTarget([prod, staging, plain], undefined, "preview")).toEqual({
      message:
        "Name the target: `/ami cleanup preview <target>`. Targets with a keep rule: `prod`, `staging`.",
    });
  });

  it("finds a named target, exactly or else by case", () => {
    expect(chooseCleanupTarget([prod, staging], "staging", "run")).toEqual({ target: staging });
    expect(chooseCleanupTarget([prod, staging], "PROD", "run")).toEqual({ target: prod });
  });

  it("says plainly when the target is unknown or has no rule", () => {
    expect(chooseCleanupTarget([prod, plain], "nope<x>", "run")).toEqual({
      message: "There is no target named “nope&lt;x&gt;”. Targets with a keep rule: `prod`.",
    });
    expect(chooseCleanupTarget([prod, plain], "plain", "run")).toEqual({
      message: expect.stringContaining("Target `plain` has no keep rule"),
    });
    expect(chooseCleanupTarget([plain], undefined, "run")).toEqual({
      message: expect.stringContaining("No target has a keep rule"),
    });
  });
});

describe("cleanupRefusal", () => {
  it("lets the target's admins through and names them to anyone else", () => {
    expect(cleanupRefusal(target("prod"), ADMIN)).toBeUndefined();
    expect(cleanupRefusal(target("prod"), STRANGER)).toBe(
      `Only the admins of target \`prod\` may run \`/ami cleanup\` for it: <@${ADMIN}>, <@${OTHER_ADMIN}>.`,
    );
    expect(cleanupRefusal(target("prod", keep, []), ADMIN)).toContain("it lists none");
  });
});

describe("/ami cleanup", () => {
  let images: MemoryImageCleanup;
  let posted: { channel: string; report: SweepReport }[];
  let acks: string[];
  let responses: RespondArguments[];
  let prod: Target;
  let sweep: KeepSweep;

  const old = (id: string, ageDays: number): BotImage => ({
    imageId: `ami-${id.padStart(17, "0")}`,
    region: "eu-west-1",
    name: `web-1 ${id}`,
    createdAt: CLOCK_START - ageDays * 86_400_000,
    instanceId: "i-0aaaaaaaaaaaaaaaa",
    jobId: `job-${id}`,
    state: "available",
    protected: false,
    snapshotIds: [],
  });

  beforeEach(() => {
    images = new MemoryImageCleanup();
    posted = [];
    acks = [];
    responses = [];
    prod = target("prod");
    const store = memoryStore();
    for (const image of [old("1", 1), old("2", 2)]) {
      // The rule weighs only images of prod's finished jobs.
      const id = image.jobId as string;
      store.insert(newJob({ id, targetName: "prod" }), CLOCK_START);
      store.apply(id, { type: "image_created", imageId: image.imageId }, CLOCK_START);
      store.apply(id, { type: "image_state", state: "available" }, CLOCK_START);
      images.add(image);
    }
    sweep = createKeepSweep({
      store,
      cleanup: images,
      targets: [prod],
      clock: createFixedClock(),
      logger: silentLogger(),
      postSummary: async (channel, report) => void posted.push({ channel, report }),
    });
  });

  async function run(userId: string, text: string, targets: Target[] = [prod]) {
    const args: CleanupArgs = {
      command: { user_id: userId, channel_id: "C0OPS" },
      ack: async (r) => void acks.push(r.text),
      respond: async (m) => void responses.push(m),
    };
    await cleanupCommand(
      { config: { targets }, logger: silentLogger(), cleanup: sweep },
      args,
      text.split(" ").filter(Boolean),
    );
  }

  it("previews for an admin: answers privately with what would go, deregisters and posts nothing", async () => {
    await run(ADMIN, "preview");
    expect(acks[0]).toContain("nothing will be removed");
    expect(responses).toHaveLength(1);
    expect(responses[0]).toMatchObject({ response_type: "ephemeral", replace_original: false });
    expect(JSON.stringify(responses[0])).toContain("*Would remove 1 image*");
    expect(images.calls.filter((c) => c.startsWith("deregister"))).toEqual([]);
    expect(posted).toEqual([]);
  });

  it("runs for an admin: removes, answers with the summary and posts it to the rule's channel", async () => {
    await run(ADMIN, "run prod");
    expect(images.deregistered).toEqual([
      { region: "eu-west-1", imageId: old("2", 2).imageId, requester: { userId: ADMIN, channelId: "C0OPS" } },
    ]);
    expect(JSON.stringify(responses[0])).toContain("*Removed 1 image*");
    expect(posted.map((p) => p.channel)).toEqual(["C0CLEANUP"]);
  });

  it("posts even when nothing was removed, as the person asked", async () => {
    await run(ADMIN, "run");
    await run(ADMIN, "run");
    expect(posted).toHaveLength(2);
    expect(posted[1]?.report.removed).toEqual([]);
  });

  it("refuses anyone not listed as the target's admin, naming who may, and touches nothing", async () => {
    await run(STRANGER, "run");
    expect(acks).toEqual([
      `Only the admins of target \`prod\` may run \`/ami cleanup\` for it: <@${ADMIN}>, <@${OTHER_ADMIN}>.`,
    ]);
    expect(images.calls).toEqual([]);
    expect(responses).toEqual([]);
  });

  it("answers an unknown target or usage mistake with a plain message", async () => {
    await run(ADMIN, "run staging");
    await run(ADMIN, "purge");
    expect(acks[0]).toContain("There is no target named “staging”");
    expect(acks[1]).toContain("`/ami cleanup run [target]`");
    expect(images.calls).toEqual([]);
  });

  it("says so when the bot runs no sweep", async () => {
    await cleanupCommand(
      { config: { targets: [prod] }, logger: silentLogger() },
      {
        command: { user_id: ADMIN, channel_id: "C0OPS" },
        ack: async (r) => void acks.push(r.text),
        respond: async (m) => void responses.push(m),
      },
      ["run"],
    );
    expect(acks).toEqual(["This ami-bot does not run the keep rule, so there is nothing to clean up."]);
  });
});
