/** The people directory against the fake Slack Web API, through a real WebClient. */
import { performance } from "node:perf_hooks";
import { webApi } from "@slack/bolt";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AccessRule, Target } from "../../../src/domain/target.js";
import { createLogger, type Logger } from "../../../src/logger.js";
import { createAccessCheck } from "../../../src/slack/deps.js";
import {
  createPeopleDirectory,
  type PeopleDirectory,
  type PeopleDirectoryDeps,
  reportChannelRules,
} from "../../../src/slack/people-directory.js";
import { type FakeSlack, type FakeSlackOptions, startFakeSlack } from "../../fakes/fake-slack.js";
import { FixedClock } from "../../fakes/fixed-clock.js";
import { testTarget } from "../../fakes/job-fixtures.js";

const TTL_MS = 60_000;
/** Short, for the tests where Slack is made slower than it. */
const SHORT_BUDGET_MS = 50;
/** How late Slack answers in those tests: far past the short budget. */
const SLOW_MS = 400;

const rule = (allow: Partial<AccessRule>): AccessRule => ({
  users: [],
  usergroups: [],
  channels: [],
  ...allow,
});

/** A logger whose lines the test can read. */
function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger("info", {
    write: (line: string) => {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  return { logger, lines };
}

describe("people directory", () => {
  let slack: FakeSlack;
  let clock: FixedClock;
  let logs: ReturnType<typeof capturingLogger>;

  async function directoryFor(
    targets: readonly Target[],
    options: { slack?: FakeSlackOptions; deps?: Partial<PeopleDirectoryDeps> } = {},
  ): Promise<PeopleDirectory> {
    slack = await startFakeSlack(options.slack);
    return createPeopleDirectory({
      client: new webApi.WebClient("xoxb-test-token", {
        slackApiUrl: slack.url,
        retryConfig: { retries: 0 },
      }),
      targets,
      ttlMs: TTL_MS,
      clock,
      logger: logs.logger,
      ...options.deps,
    });
  }

  beforeEach(() => {
    clock = new FixedClock();
    logs = capturingLogger();
  });
  afterEach(async () => {
    await slack?.close();
  });

  describe("standingOf", () => {
    const targets = [testTarget()];

    it("says member for someone of the installing workspace with no guest flag", async () => {
      const directory = await directoryFor(targets);
      expect(await directory.standingOf("U0ALICE")).toBe("member");
      expect(slack.callsTo("users.info").map((c) => c.args.user)).toEqual(["U0ALICE"]);
    });

    it.each([
      ["guest", "a multi-channel guest", { is_restricted: true }],
      ["guest", "a single-channel guest", { is_restricted: true, is_ultra_restricted: true }],
      ["guest", "an ultra-restricted account", { is_ultra_restricted: true }],
      ["external", "someone whose team is another one", { team_id: "T999" }],
      ["external", "a stranger, even with this team's id", { is_stranger: true }],
      ["external", "a guest of another organisation", { team_id: "T999", is_restricted: true }],
      ["deactivated", "a deactivated account", { deleted: true }],
    ] as const)("says %s for %s", async (standing, _, user) => {
      const directory = await directoryFor(targets, { slack: { users: { U0GUEST: user } } });
      expect(await directory.standingOf("U0GUEST")).toBe(standing);
    });

    it("counts a colleague from another workspace of the same Enterprise Grid organisation as a member", async () => {
      const directory = await directoryFor(targets, {
        slack: {
          enterpriseId: "E111",
          users: {
            U0SIBLING: { team_id: "T222", enterprise_user: { enterprise_id: "E111" } },
            U0OTHERORG: { team_id: "T333", enterprise_user: { enterprise_id: "E999" } },
          },
        },
      });
      expect(await directory.standingOf("U0SIBLING")).toBe("member");
      expect(await directory.standingOf("U0OTHERORG")).toBe("external");
    });

    it("says unknown when Slack does not know the user, and asks again next time", async () => {
      const directory = await directoryFor(targets, { slack: { users: { U0GONE: "not_found" } } });
      expect(await directory.standingOf("U0GONE")).toBe("unknown");
      expect(logs.lines.at(-1)).toMatchObject({
        level: 40,
        user: "U0GONE",
        msg: "cannot read from Slack: who the user is",
      });
      slack.setUser("U0GONE", {});
      expect(await directory.standingOf("U0GONE")).toBe("member");
      expect(slack.callsTo("users.info")).toHaveLength(2);
    });

    it("says unknown when auth.test fails, and asks auth.test again next time", async () => {
      const directory = await directoryFor(targets);
      slack.failNext("auth.test", { error: "fatal_error" });
      expect(await directory.standingOf("U0ALICE")).toBe("unknown");
      expect(await directory.standingOf("U0ALICE")).toBe("member");
      expect(slack.callsTo("auth.test")).toHaveLength(2);
    });

    it("asks auth.test once for every user once it has answered", async () => {
      const directory = await directoryFor(targets);
      await directory.standingOf("U0ALICE");
      await directory.standingOf("U0BOB");
      clock.advance(TTL_MS * 10);
      await directory.standingOf("U0ALICE");
      expect(slack.callsTo("auth.test")).toHaveLength(1);
      expect(slack.callsTo("users.info")).toHaveLength(3);
    });

    it("keeps an answer for the cache time and asks again after it", async () => {
      const directory = await directoryFor(targets);
      await directory.standingOf("U0ALICE");
      slack.setUser("U0ALICE", { is_restricted: true });
      clock.advance(TTL_MS - 1);
      expect(await directory.standingOf("U0ALICE")).toBe("member");
      expect(slack.callsTo("users.info")).toHaveLength(1);
      clock.advance(1);
      expect(await directory.standingOf("U0ALICE")).toBe("guest");
      expect(slack.callsTo("users.info")).toHaveLength(2);
    });

    it("asks every time when the cache time is 0", async () => {
      const directory = await directoryFor(targets, { deps: { ttlMs: 0 } });
      await directory.standingOf("U0ALICE");
      await directory.standingOf("U0ALICE");
      expect(slack.callsTo("users.info")).toHaveLength(2);
    });

    it("shares one users.info call among requests that ask at the same time", async () => {
      const directory = await directoryFor(targets);
      const answers = await Promise.all([1, 2, 3].map(() => directory.standingOf("U0ALICE")));
      expect(answers).toEqual(["member", "member", "member"]);
      expect(slack.callsTo("users.info")).toHaveLength(1);
    });

    it("says unknown once the budget is spent, and keeps Slack's late answer for the next request", async () => {
      const directory = await directoryFor(targets, { deps: { budgetMs: SHORT_BUDGET_MS } });
      slack.delayNext("users.info", SLOW_MS);
      const started = performance.now();
      expect(await directory.standingOf("U0ALICE")).toBe("unknown");
      expect(performance.now() - started).toBeLessThan(SLOW_MS);
      expect(logs.lines.at(-1)).toMatchObject({ user: "U0ALICE", budgetMs: SHORT_BUDGET_MS });
      expect(logs.lines.at(-1)?.msg).toBe("Slack did not answer in time: who the user is");
      await vi.waitFor(async () => expect(await directory.standingOf("U0ALICE")).toBe("member"), {
        timeout: 5_000,
      });
      expect(slack.callsTo("users.info")).toHaveLength(1);
    });
  });

  describe("groupsOf", () => {
    const targets = [
      testTarget({ name: "prod", allow: rule({ usergroups: ["S0OPS", "S0SRE"] }) }),
      testTarget({ name: "staging", allow: rule({ usergroups: ["S0OPS", "S0DEV"] }) }),
    ];
    const usergroups = { S0OPS: ["U0ALICE"], S0SRE: ["U0BOB"], S0DEV: ["U0ALICE"], S0UNLISTED: ["U0ALICE"] };

    it("names the listed groups the person is in, reading each group once within the cache time", async () => {
      const directory = await directoryFor(targets, { slack: { usergroups } });
      expect(await directory.groupsOf("U0ALICE")).toEqual(new Set(["S0OPS", "S0DEV"]));
      expect(await directory.groupsOf("U0BOB")).toEqual(new Set(["S0SRE"]));
      expect(slack.callsTo("usergroups.users.list").map((c) => c.args.usergroup)).toEqual([
        "S0OPS",
        "S0SRE",
        "S0DEV",
      ]);
    });

    it("grants nothing through a group Slack will not list, and asks again next time", async () => {
      const directory = await directoryFor(targets, { slack: { usergroups } });
      slack.failNext("usergroups.users.list", { error: "missing_scope" }, 3);
      expect(await directory.groupsOf("U0ALICE")).toEqual(new Set());
      expect(await directory.groupsOf("U0ALICE")).toEqual(new Set(["S0OPS", "S0DEV"]));
    });

    it("grants nothing through a group Slack lists too slowly, and keeps the late list for the next request", async () => {
      const onlyOps = [testTarget({ allow: rule({ usergroups: ["S0OPS"] }) })];
      const directory = await directoryFor(onlyOps, {
        slack: { usergroups },
        deps: { budgetMs: SHORT_BUDGET_MS },
      });
      slack.delayNext("usergroups.users.list", SLOW_MS);
      expect(await directory.groupsOf("U0ALICE")).toEqual(new Set());
      await vi.waitFor(async () => expect(await directory.groupsOf("U0ALICE")).toEqual(new Set(["S0OPS"])), {
        timeout: 5_000,
      });
      expect(slack.callsTo("usergroups.users.list")).toHaveLength(1);
    });
  });

  describe("channelPrivacy", () => {
    const targets = [
      testTarget({ name: "prod", allow: rule({ channels: ["C0PRIVATE", "C0PUBLIC", "D0DIRECT"] }) }),
      testTarget({ name: "staging", allow: rule({ channels: ["C0PRIVATE", "C0HIDDEN"] }) }),
    ];
    const channels = { C0PRIVATE: "private", C0PUBLIC: "public", C0HIDDEN: "not_found" } as const;

    it("says whether a listed channel is private, asking once per channel within the cache time", async () => {
      const directory = await directoryFor(targets, { slack: { channels } });
      expect(await directory.channelPrivacy("C0PRIVATE")).toBe(true);
      expect(await directory.channelPrivacy("C0PUBLIC")).toBe(false);
      expect(await directory.channelPrivacy("C0PRIVATE")).toBe(true);
      expect(slack.callsTo("conversations.info").map((c) => c.args.channel)).toEqual([
        "C0PRIVATE",
        "C0PUBLIC",
      ]);
      clock.advance(TTL_MS);
      slack.setChannelPrivacy("C0PRIVATE", "public");
      expect(await directory.channelPrivacy("C0PRIVATE")).toBe(false);
    });

    it("does not ask Slack about a channel listed only where public channels are allowed", async () => {
      const open = [
        ...targets,
        testTarget({ name: "open", allow: rule({ channels: ["C0OPEN"] }), allowPublicChannels: true }),
      ];
      const directory = await directoryFor(open, { slack: { channels: { C0OPEN: "public" } } });
      expect(await directory.channelPrivacy("C0OPEN")).toBeUndefined();
      expect(slack.callsTo("conversations.info")).toEqual([]);
    });

    it("does not ask Slack about a channel no rule lists, nor about a DM", async () => {
      const directory = await directoryFor(targets, { slack: { channels: { C0ELSEWHERE: "public" } } });
      expect(await directory.channelPrivacy("C0ELSEWHERE")).toBeUndefined();
      expect(await directory.channelPrivacy("D0DIRECT")).toBeUndefined();
      expect(slack.callsTo("conversations.info")).toEqual([]);
    });

    it("says nothing when Slack does not show the channel, and asks again next time", async () => {
      const directory = await directoryFor(targets, { slack: { channels } });
      expect(await directory.channelPrivacy("C0HIDDEN")).toBeUndefined();
      slack.setChannelPrivacy("C0HIDDEN", "private");
      expect(await directory.channelPrivacy("C0HIDDEN")).toBe(true);
    });

    it("says nothing once the budget is spent, and keeps Slack's late answer", async () => {
      const directory = await directoryFor(targets, {
        slack: { channels },
        deps: { budgetMs: SHORT_BUDGET_MS },
      });
      slack.delayNext("conversations.info", SLOW_MS);
      expect(await directory.channelPrivacy("C0PRIVATE")).toBeUndefined();
      // The late answer is kept, as for users.
      await vi.waitFor(async () => expect(await directory.channelPrivacy("C0PRIVATE")).toBe(true), {
        timeout: 5_000,
      });
      expect(slack.callsTo("conversations.info")).toHaveLength(1);
    });
  });

  describe("reportChannelRules", () => {
    it("logs one warning per channel whose rule grants nothing, and none for rules that work", async () => {
      const targets = [
        testTarget({ name: "prod", allow: rule({ channels: ["C0PUBLIC", "C0PRIVATE", "C0HIDDEN"] }) }),
        testTarget({ name: "staging", allow: rule({ channels: ["C0PUBLIC", "D0DIRECT"] }) }),
        testTarget({ name: "open", allow: rule({ channels: ["C0OPEN"] }), allowPublicChannels: true }),
      ];
      const directory = await directoryFor(targets, {
        slack: {
          channels: { C0PUBLIC: "public", C0PRIVATE: "private", C0HIDDEN: "not_found", C0OPEN: "public" },
        },
      });
      await reportChannelRules(directory, targets, logs.logger);
      const warnings = logs.lines.filter((l) => l.level === 40 && "targets" in l);
      expect(warnings.map((w) => [w.channel, w.targets])).toEqual(
        expect.arrayContaining([
          ["C0PUBLIC", ["prod", "staging"]],
          ["C0HIDDEN", ["prod"]],
          ["D0DIRECT", ["staging"]],
        ]),
      );
      expect(warnings).toHaveLength(3);
      expect(warnings.find((w) => w.channel === "C0PUBLIC")?.msg).toBe(
        "channel C0PUBLIC in target prod's allow rule is public: anyone can join it, so the rule grants nothing unless the target says allowPublicChannels: true; " +
          "channel C0PUBLIC in target staging's allow rule is public: anyone can join it, so the rule grants nothing unless the target says allowPublicChannels: true",
      );
      // Privacy decides nothing for C0OPEN: only a target that allows public channels lists it.
      const asked = slack.callsTo("conversations.info").map((c) => c.args.channel);
      expect(asked.sort()).toEqual(["C0HIDDEN", "C0PRIVATE", "C0PUBLIC"]);
    });
  });

  describe("createAccessCheck", () => {
    const targets = [
      testTarget({ name: "prod", allow: rule({ users: ["U0ALICE"], channels: ["C0OPS"] }) }),
      testTarget({ name: "guests", allow: rule({ users: ["U0GUEST"] }), allowGuests: true }),
    ];

    it("allows a listed member, and refuses someone the rules do not list, for certain", async () => {
      const check = createAccessCheck(await directoryFor(targets), targets);
      expect(await check("U0ALICE", "C0ELSEWHERE", "prod")).toEqual({
        allowed: true,
        reason: "user is listed",
        inconclusive: false,
      });
      expect(await check("U0BOB", "C0ELSEWHERE", "prod")).toEqual({
        allowed: false,
        reason: "not listed for target prod",
        inconclusive: false,
      });
    });

    it("refuses a member who has become a guest, unless the target allows guests", async () => {
      const check = createAccessCheck(
        await directoryFor(targets, {
          slack: { users: { U0ALICE: { is_restricted: true }, U0GUEST: { is_restricted: true } } },
        }),
        targets,
      );
      expect(await check("U0ALICE", undefined, "prod")).toMatchObject({
        allowed: false,
        inconclusive: false,
      });
      expect(await check("U0GUEST", undefined, "guests")).toMatchObject({ allowed: true });
    });

    it("refuses a target that is no longer configured, without asking Slack", async () => {
      const check = createAccessCheck(await directoryFor(targets), targets);
      expect(await check("U0ALICE", "C0OPS", "retired")).toEqual({
        allowed: false,
        reason: "target retired is no longer configured",
        inconclusive: false,
      });
      expect(slack.calls).toEqual([]);
    });

    it("marks a refusal that rests only on what Slack did not answer as inconclusive", async () => {
      const check = createAccessCheck(
        await directoryFor(targets, { slack: { users: { U0ALICE: "not_found", U0BOB: "not_found" } } }),
        targets,
      );
      expect(await check("U0ALICE", undefined, "prod")).toMatchObject({ allowed: false, inconclusive: true });
      // Listed nowhere: no answer Slack could give would let them in.
      expect(await check("U0BOB", undefined, "prod")).toMatchObject({ allowed: false, inconclusive: false });
    });

    it("looks up a listed channel's privacy and refuses the rule in a public channel for certain", async () => {
      const check = createAccessCheck(
        await directoryFor(targets, { slack: { channels: { C0OPS: "public" } } }),
        targets,
      );
      expect(await check("U0BOB", "C0OPS", "prod")).toEqual({
        allowed: false,
        reason: "channel C0OPS is listed but public",
        inconclusive: false,
      });
      slack.setChannelPrivacy("C0OPS", "private");
      clock.advance(TTL_MS);
      expect(await check("U0BOB", "C0OPS", "prod")).toMatchObject({ allowed: true });
    });

    it("marks a channel rule refused because Slack would not describe the channel as inconclusive", async () => {
      const check = createAccessCheck(
        await directoryFor(targets, { slack: { channels: { C0OPS: "not_found" } } }),
        targets,
      );
      expect(await check("U0BOB", "C0OPS", "prod")).toEqual({
        allowed: false,
        reason: "channel C0OPS is listed but its privacy could not be checked",
        inconclusive: true,
      });
    });
  });
});
