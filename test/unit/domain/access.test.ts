import { describe, expect, it } from "vitest";
import type { AccessRule } from "../../../src/config.js";
import {
  allowedPlaces,
  allowedTargets,
  decideAccess,
  deniedMessage,
  mentionedUsergroups,
  type Principal,
  placeKey,
} from "../../../src/domain/access.js";
import { testTarget } from "../../fakes/job-fixtures.js";

const rule = (allow: Partial<AccessRule>) => ({ users: [], usergroups: [], channels: [], ...allow });

function who(overrides: Partial<Principal> = {}): Principal {
  return { userId: "U0ALICE", channelId: "C0RANDOM", usergroupIds: new Set(), ...overrides };
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
    expect(deniedMessage()).toMatch(/not allowed/);
    expect(deniedMessage()).toMatch(/`allow` rule/);
  });
});
