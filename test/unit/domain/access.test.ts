import { describe, expect, it } from "vitest";
import type { AccessRule } from "../../../src/config.js";
import {
  allowedPlaces,
  allowedTargets,
  channelRuleWarning,
  decideAccess,
  deniedMessage,
  mayPostTo,
  mentionedChannels,
  mentionedUsergroups,
  type Principal,
  placeKey,
  type Standing,
} from "../../../src/domain/access.js";
import { testTarget } from "../../fakes/job-fixtures.js";

const rule = (allow: Partial<AccessRule>) => ({ users: [], usergroups: [], channels: [], ...allow });

/** A full member of the workspace typing in a private channel, unless told otherwise. */
function who(overrides: Partial<Principal> = {}): Principal {
  return {
    userId: "U0ALICE",
    channelId: "C0RANDOM",
    usergroupIds: new Set(),
    standing: "member",
    channelPrivate: true,
    ...overrides,
  };
}

describe("decideAccess", () => {
  it("allows a person when the rule lists their user id", () => {
    const target = testTarget({ allow: rule({ users: ["U0BOB", "U0ALICE"] }) });
    expect(decideAccess(target, who())).toEqual({ allowed: true, reason: "user is listed" });
  });

  it("allows everyone when the rule lists *", () => {
    const target = testTarget({ allow: rule({ users: ["*"] }) });
    expect(decideAccess(target, who({ userId: "U0ANYONE", channelId: undefined })).allowed).toBe(true);
  });

  it("allows a person when they are in a listed user group", () => {
    const target = testTarget({ allow: rule({ usergroups: ["S0OPS", "S0SRE"] }) });
    expect(decideAccess(target, who({ usergroupIds: new Set(["S0SRE"]) }))).toEqual({
      allowed: true,
      reason: "member of user group S0SRE",
    });
  });

  it("allows a person when they type in a listed channel", () => {
    const target = testTarget({ allow: rule({ channels: ["C0OPS"] }) });
    expect(decideAccess(target, who({ channelId: "C0OPS" }))).toEqual({
      allowed: true,
      reason: "channel C0OPS is listed",
    });
  });

  it("denies a person when the rule lists nobody", () => {
    const target = testTarget({ name: "prod", allow: rule({}) });
    expect(decideAccess(target, who())).toEqual({ allowed: false, reason: "not listed for target prod" });
  });

  it("denies a person when only someone else, another group or another channel is listed", () => {
    const target = testTarget({
      allow: rule({ users: ["U0BOB"], usergroups: ["S0OPS"], channels: ["C0OPS"] }),
    });
    expect(
      decideAccess(target, who({ usergroupIds: new Set(["S0OTHER"]), channelId: "C0RANDOM" })).allowed,
    ).toBe(false);
  });

  it("denies a channel rule when the request comes from no channel", () => {
    const target = testTarget({ allow: rule({ channels: ["C0OPS"] }) });
    expect(decideAccess(target, who({ channelId: undefined })).allowed).toBe(false);
  });
});

describe("decideAccess for guests and people from other organisations", () => {
  const everyone = rule({ users: ["*", "U0ALICE"], usergroups: ["S0OPS"], channels: ["C0OPS"] });
  const listedEveryWay = { usergroupIds: new Set(["S0OPS"]), channelId: "C0OPS" };

  it.each<Standing>(["guest", "external", "unknown"])(
    "refuses a %s user whom every rule lists when the target does not allow guests",
    (standing) => {
      const target = testTarget({ name: "prod", allow: everyone });
      expect(decideAccess(target, who({ standing, ...listedEveryWay }))).toEqual({
        allowed: false,
        reason: `${standing} user; target prod does not allow guests`,
      });
    },
  );

  it.each<Standing>(["guest", "external"])(
    "allows a listed %s user when the target allows guests",
    (standing) => {
      const target = testTarget({ allow: rule({ users: ["U0ALICE"] }), allowGuests: true });
      expect(decideAccess(target, who({ standing }))).toEqual({ allowed: true, reason: "user is listed" });
    },
  );

  it("still needs a rule for a guest when the target allows guests", () => {
    const target = testTarget({ allow: rule({ users: ["U0BOB"] }), allowGuests: true });
    expect(decideAccess(target, who({ standing: "guest" })).allowed).toBe(false);
  });

  it("refuses a deactivated account even where guests are allowed and everyone is listed", () => {
    const target = testTarget({ allow: everyone, allowGuests: true });
    expect(decideAccess(target, who({ standing: "deactivated", ...listedEveryWay }))).toEqual({
      allowed: false,
      reason: "deactivated account",
    });
  });

  it("lists no places for a guest when only `*` would let them in", () => {
    const open = testTarget({ name: "open", allow: rule({ users: ["*"] }) });
    expect(allowedPlaces([open], who({ standing: "guest" })).size).toBe(0);
    expect(mayPostTo(open, who({ standing: "guest" }), "C0OPS")).toBe(false);
  });
});

describe("decideAccess for channel rules and channel privacy", () => {
  const target = testTarget({ name: "prod", allow: rule({ channels: ["C0OPS", "D0DIRECT"] }) });

  it("refuses a channel rule in a public channel", () => {
    expect(decideAccess(target, who({ channelId: "C0OPS", channelPrivate: false }))).toEqual({
      allowed: false,
      reason: "channel C0OPS is listed but public",
    });
  });

  it("allows a channel rule in a public channel when the target allows public channels", () => {
    const open = testTarget({ allow: rule({ channels: ["C0OPS"] }), allowPublicChannels: true });
    expect(decideAccess(open, who({ channelId: "C0OPS", channelPrivate: false }))).toEqual({
      allowed: true,
      reason: "channel C0OPS is listed",
    });
  });

  it("refuses a channel rule when Slack did not say whether the channel is private", () => {
    expect(decideAccess(target, who({ channelId: "C0OPS", channelPrivate: undefined }))).toEqual({
      allowed: false,
      reason: "channel C0OPS is listed but its privacy could not be checked",
    });
  });

  it("never counts a DM as a listed channel, even where public channels are allowed", () => {
    const open = testTarget({
      name: "open",
      allow: rule({ channels: ["D0DIRECT"] }),
      allowPublicChannels: true,
    });
    expect(decideAccess(open, who({ channelId: "D0DIRECT", channelPrivate: undefined }))).toEqual({
      allowed: false,
      reason: "not listed for target open",
    });
  });

  it("still allows a listed user in a public channel", () => {
    const both = testTarget({ allow: rule({ users: ["U0ALICE"], channels: ["C0OPS"] }) });
    expect(decideAccess(both, who({ channelId: "C0OPS", channelPrivate: false })).allowed).toBe(true);
  });
});

describe("mentionedChannels and channelRuleWarning", () => {
  const prod = testTarget({ name: "prod", allow: rule({ channels: ["C0OPS", "D0DIRECT"] }) });
  const staging = testTarget({
    name: "staging",
    allow: rule({ channels: ["C0OPS", "G0LEGACY"] }),
    allowPublicChannels: true,
  });

  it("names each listed channel once and leaves DMs out", () => {
    expect(mentionedChannels([prod, staging])).toEqual(["C0OPS", "G0LEGACY"]);
  });

  it("warns about a public channel unless the target allows public channels", () => {
    expect(channelRuleWarning(prod, "C0OPS", false)).toBe(
      "channel C0OPS in target prod's allow rule is public: anyone can join it, so the rule grants nothing unless the target says allowPublicChannels: true",
    );
    expect(channelRuleWarning(staging, "C0OPS", false)).toBeUndefined();
    expect(channelRuleWarning(staging, "C0OPS", undefined)).toBeUndefined();
  });

  it("says nothing about a private channel", () => {
    expect(channelRuleWarning(prod, "C0OPS", true)).toBeUndefined();
  });

  it("warns when the privacy is unknown, and about a DM whatever Slack says", () => {
    expect(channelRuleWarning(prod, "G0LEGACY", undefined)).toMatch(
      /^ami-bot cannot tell whether channel G0LEGACY in target prod's allow rule is private, so the rule grants nothing: if it is a private channel, invite ami-bot/,
    );
    expect(channelRuleWarning(prod, "D0DIRECT", true)).toBe(
      "channel D0DIRECT in target prod's allow rule is a direct message, not a channel, so the rule grants nothing",
    );
  });
});

describe("allowedTargets and allowedPlaces", () => {
  const prod = testTarget({
    name: "prod",
    regions: ["eu-west-1", "us-east-1"],
    allow: rule({ usergroups: ["S0OPS"] }),
  });
  const staging = testTarget({ name: "staging", regions: ["eu-central-1"], allow: rule({ users: ["*"] }) });
  const secret = testTarget({ name: "secret", regions: ["eu-west-1"], allow: rule({ users: ["U0BOB"] }) });
  const targets = [prod, staging, secret];

  it("keeps configuration order when several targets allow the person", () => {
    const names = allowedTargets(targets, who({ usergroupIds: new Set(["S0OPS"]) })).map((t) => t.name);
    expect(names).toEqual(["prod", "staging"]);
  });

  it("lists every region of every allowed target when asked for places", () => {
    expect(allowedPlaces(targets, who({ usergroupIds: new Set(["S0OPS"]) }))).toEqual(
      new Set(["prod|eu-west-1", "prod|us-east-1", "staging|eu-central-1"]),
    );
  });

  it("lists only the open target's places when the person is in no group", () => {
    expect(allowedPlaces(targets, who())).toEqual(new Set([placeKey("staging", "eu-central-1")]));
  });

  it("lists no places when no target allows the person", () => {
    expect(allowedPlaces([prod, secret], who()).size).toBe(0);
  });

  it("names each mentioned user group once when several rules share it", () => {
    const other = testTarget({ name: "other", allow: rule({ usergroups: ["S0OPS", "S0DBA"] }) });
    expect(mentionedUsergroups([...targets, other])).toEqual(["S0OPS", "S0DBA"]);
  });

  it("tells a denied person whom to ask", () => {
    expect(deniedMessage(who())).toMatch(/not allowed/);
    expect(deniedMessage(who())).toMatch(/`allow` rule/);
  });
});

describe("deniedMessage", () => {
  it("tells a guest and someone from another organisation that ami-bot does not serve them", () => {
    expect(deniedMessage(who({ standing: "guest" }))).toMatch(
      /^ami-bot does not take requests from guest accounts/,
    );
    expect(deniedMessage(who({ standing: "external" }))).toMatch(
      /^ami-bot does not take requests from people from other organisations/,
    );
  });

  it("asks to try again when Slack did not confirm the account", () => {
    expect(deniedMessage(who({ standing: "unknown" }))).toMatch(
      /could not confirm your Slack account.*Try again/,
    );
  });

  it("says channel rules count only in private channels when typed in a listed public one", () => {
    expect(deniedMessage(who({ channelPrivate: false }))).toMatch(
      /channel rules count only in private channels/,
    );
    expect(deniedMessage(who({ channelPrivate: true }))).not.toMatch(/private channels/);
  });
});
