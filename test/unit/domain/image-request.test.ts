import { describe, expect, it } from "vitest";
import {
  checkDescription,
  checkImageName,
  defaultImageName,
  type ImageRequestInput,
  isInstanceId,
  MAX_USER_TAGS,
  nextImageName,
  parseTags,
  type TargetRules,
  tagKeyAllowed,
  validateImageRequest,
} from "../../../src/domain/image-request.js";

const NOW = new Date(Date.UTC(2026, 10, 28, 2, 40, 59));
const ALLOWED = new Set(["prod|eu-west-1", "prod|us-east-1", "lab|eu-west-1"]);

/** prod lets people choose whether to reboot; lab keeps the default (never) and limits tag keys. */
const RULES: Record<string, TargetRules> = {
  prod: { name: "prod", reboot: "ask", tagKeys: undefined },
  lab: { name: "lab", reboot: "never", tagKeys: ["team", "app:*"] },
};
const rulesOf = (targetName: string): TargetRules | undefined => RULES[targetName];

function input(overrides: Partial<ImageRequestInput> = {}): ImageRequestInput {
  return {
    targetName: "prod",
    region: "eu-west-1",
    instanceId: "i-0123456789abcdef0",
    instanceLabel: "web-1",
    imageName: "web-1 nightly",
    description: "before the upgrade",
    reboot: "reboot",
    tagsText: "team=web",
    channelId: "C0UPDATES",
    ...overrides,
  };
}

function tagLines(count: number): string {
  return Array.from({ length: count }, (_, i) => `k${i}=v${i}`).join("\n");
}

describe("checkImageName", () => {
  it.each([
    ["abc", "the shortest name"],
    ["a".repeat(128), "the longest name"],
    ["web (1) [blue] v1.2/x-y 'z' @home_a", "every allowed punctuation mark"],
    ["a  b", "two spaces inside"],
  ])("accepts %j as %s", (name) => {
    expect(checkImageName(name)).toBeUndefined();
  });

  it("does not accept a name when it has fewer than 3 characters", () => {
    expect(checkImageName("ab")).toMatch(/at least 3/);
  });

  it("does not accept a name when it has more than 128 characters", () => {
    expect(checkImageName("a".repeat(129))).toBe("The name is 129 characters; the limit is 128.");
  });

  it.each([
    ["web,1", "“,”"],
    ["web#1", "“#”"],
    ["web:1", "“:”"],
    ["web+1*", "“+”, “*”"],
    ["web&1", "“&”"],
  ])("names the forbidden character when the name is %j", (name, shown) => {
    expect(checkImageName(name)).toContain(`AWS does not allow ${shown} in an image name`);
  });

  it("refuses a name when a Cyrillic look-alike letter hides in it", () => {
    // "wеb" with Cyrillic е (U+0435) looks exactly like "web".
    expect(checkImageName("w\u0435b-server")).toContain("“\u0435”");
  });

  it("refuses a name when it has a Cyrillic а among Latin letters", () => {
    expect(checkImageName("d\u0430tabase")).toMatch(/does not allow “\u0430”/);
  });

  it("shows control characters as code points when the name has them", () => {
    expect(checkImageName("web\t1")).toContain("U+0009");
    expect(checkImageName("web\u00001")).toContain("U+0000");
    expect(checkImageName("web\u202e1")).toContain("U+202E");
  });

  it("asks to remove spaces when the name starts or ends with one", () => {
    expect(checkImageName(" web-1")).toMatch(/spaces at the start or end/);
    expect(checkImageName("web-1 ")).toMatch(/spaces at the start or end/);
  });

  it("lists each forbidden character once when it repeats", () => {
    expect(checkImageName("a,b,c,d")).toContain("allow “,” in");
  });
});

describe("checkDescription", () => {
  it("accepts a description when it has 255 characters", () => {
    expect(checkDescription("d".repeat(255))).toBeUndefined();
  });

  it("refuses a description when it has 256 characters", () => {
    expect(checkDescription("d".repeat(256))).toBe("The description is 256 characters; the limit is 255.");
  });

  it("refuses a description when it contains control characters", () => {
    expect(checkDescription("before\u0007upgrade")).toMatch(/control characters/);
    expect(checkDescription("bidi \u202e trick")).toMatch(/control characters/);
  });

  it("accepts non-ASCII text when it is printable", () => {
    expect(checkDescription("Vor dem Upgrade — café ☕")).toBeUndefined();
  });
});

describe("parseTags", () => {
  it("reads key=value lines when empty lines and spaces surround them", () => {
    expect(parseTags("\n team = web \n\ncost-center=42\r\nnote=a=b\n")).toEqual({
      tags: [
        { key: "team", value: "web" },
        { key: "cost-center", value: "42" },
        { key: "note", value: "a=b" },
      ],
    });
  });

  it("gives no tags when the text is empty", () => {
    expect(parseTags("")).toEqual({ tags: [] });
  });

  it("accepts an empty value when the key is given", () => {
    expect(parseTags("backup=")).toEqual({ tags: [{ key: "backup", value: "" }] });
  });

  it("refuses a line when it has no =", () => {
    expect(parseTags("team=web\njust-a-word")).toEqual({ error: "Line 2: write each tag as key=value." });
  });

  it("refuses a line when the key is empty", () => {
    expect(parseTags("=web")).toEqual({ error: "Line 1: the tag key is empty." });
  });

  it("refuses a key when it has more than 128 characters", () => {
    expect(parseTags(`${"k".repeat(128)}=ok`)).toHaveProperty("tags");
    expect(parseTags(`${"k".repeat(129)}=v`)).toEqual({
      error: "Line 1: the key is 129 characters; the limit is 128.",
    });
  });

  it("refuses a value when it has more than 256 characters", () => {
    expect(parseTags(`k=${"v".repeat(256)}`)).toHaveProperty("tags");
    expect(parseTags(`k=${"v".repeat(257)}`)).toEqual({
      error: "Line 1: the value is 257 characters; the limit is 256.",
    });
  });

  it.each(["aws:foo=1", "AWS:foo=1", "Aws:cloudformation=1"])(
    "refuses %j because the aws: prefix is reserved in any case",
    (line) => {
      expect(parseTags(line)).toEqual({ error: "Line 1: keys starting with “aws:” are reserved by AWS." });
    },
  );

  it.each(["Name=x", "ami-bot:job-id=x", "AMI-BOT:anything=x"])(
    "refuses %j because ami-bot sets that key itself",
    (line) => {
      expect(parseTags(line)).toMatchObject({ error: expect.stringMatching(/set by ami-bot itself/) });
    },
  );

  it("accepts a lower-case name key when only Name is reserved", () => {
    expect(parseTags("name=x")).toEqual({ tags: [{ key: "name", value: "x" }] });
  });

  it("refuses a key when it is given twice", () => {
    expect(parseTags("team=web\nteam=db")).toEqual({ error: "Line 2: the key “team” is given twice." });
  });

  it("refuses a tag when it contains control characters", () => {
    expect(parseTags("team=we\u0001b")).toEqual({ error: "Line 1: remove the control characters." });
  });

  it("accepts 46 tags when 4 automatic tags make the AWS limit of 50", () => {
    expect(MAX_USER_TAGS).toBe(46);
    const parsed = parseTags(tagLines(46));
    expect("tags" in parsed && parsed.tags).toHaveLength(46);
  });

  it("refuses 47 tags when ami-bot adds 4 of its own", () => {
    expect(parseTags(tagLines(47))).toEqual({
      error: "47 tags is too many: AWS allows 50 and ami-bot adds 4, so at most 46.",
    });
  });
});

describe("tagKeyAllowed", () => {
  const allowed = ["team", "app:*"];

  it.each(["team", "app:x", "app:", "app:*"])("allows %j by team or app:*", (key) => {
    expect(tagKeyAllowed(key, allowed)).toBe(true);
  });

  it.each([
    ["teams", "an exact key is not a prefix"],
    ["Team", "case matters, as in IAM"],
    ["App:x", "a prefix is case-sensitive"],
    ["app", "the prefix includes its colon"],
    ["xapp:y", "a prefix matches at the start only"],
  ])("refuses %j because %s", (key) => {
    expect(tagKeyAllowed(key, allowed)).toBe(false);
  });

  it("allows any key when the target lists none", () => {
    expect(tagKeyAllowed("anything", undefined)).toBe(true);
  });

  it("allows no key when the list is empty", () => {
    expect(tagKeyAllowed("team", [])).toBe(false);
  });
});

describe("parseTags with a target's tag keys", () => {
  const lab: TargetRules = { name: "lab", reboot: "never", tagKeys: ["team", "app:*"] };

  it("accepts the keys the target allows", () => {
    expect(parseTags("team=web\napp:=x\napp:tier=front", lab)).toEqual({
      tags: [
        { key: "team", value: "web" },
        { key: "app:", value: "x" },
        { key: "app:tier", value: "front" },
      ],
    });
  });

  it.each([
    ["teams=x", "teams"],
    ["App:x=y", "App:x"],
  ])("refuses %j, naming the key, the target and the keys allowed", (text, key) => {
    expect(parseTags(`team=web\n${text}`, lab)).toEqual({
      error: `Line 2: the tag key “${key}” is not allowed in lab. Allowed: team, app:*.`,
    });
  });

  it("allows any key when the target has no tag keys", () => {
    expect(parseTags("owner=me", { name: "prod", reboot: "ask", tagKeys: undefined })).toEqual({
      tags: [{ key: "owner", value: "me" }],
    });
  });

  it("names the reserved prefix rather than the target's list when the key is reserved", () => {
    // The reason a person can act on is that the key is reserved, whatever the target allows.
    expect(parseTags("aws:x=1", lab)).toEqual({
      error: "Line 1: keys starting with “aws:” are reserved by AWS.",
    });
  });
});

describe("defaultImageName", () => {
  it("joins the instance name and the UTC minute when the instance has a name", () => {
    expect(defaultImageName("web-1", "i-0123456789abcdef0", NOW)).toBe("web-1 2026-11-28 0240 UTC");
  });

  it("uses the instance id when the instance has no name", () => {
    expect(defaultImageName(undefined, "i-0123456789abcdef0", NOW)).toBe(
      "i-0123456789abcdef0 2026-11-28 0240 UTC",
    );
    expect(defaultImageName("   ", "i-0123456789abcdef0", NOW)).toBe(
      "i-0123456789abcdef0 2026-11-28 0240 UTC",
    );
  });

  it("replaces characters AWS refuses when the instance name has them", () => {
    const name = defaultImageName("web#1: blue,green", "i-0123456789abcdef0", NOW);
    expect(name).toBe("web-1- blue-green 2026-11-28 0240 UTC");
    expect(checkImageName(name)).toBeUndefined();
  });

  it("makes a valid name when the instance name is Cyrillic or full of spaces", () => {
    for (const label of ["сервер", "a\t\tb\n c", "日本語のサーバー"]) {
      expect(checkImageName(defaultImageName(label, "i-0123456789abcdef0", NOW))).toBeUndefined();
    }
  });

  it("stays within 128 characters when the instance name is long", () => {
    const name = defaultImageName("x".repeat(300), "i-0123456789abcdef0", NOW);
    expect(name).toHaveLength(128);
    expect(name.endsWith(" 2026-11-28 0240 UTC")).toBe(true);
    expect(checkImageName(name)).toBeUndefined();
  });
});

describe("nextImageName", () => {
  it("adds (2) to a name, and counts on from a number already there", () => {
    expect(nextImageName("web-1 nightly")).toBe("web-1 nightly (2)");
    expect(nextImageName("web-1 nightly (2)")).toBe("web-1 nightly (3)");
    expect(nextImageName("web-1 (9)")).toBe("web-1 (10)");
    expect(nextImageName("web-1(2)")).toBe("web-1(2) (2)");
  });

  it("cuts the name so the suggestion stays within 128 characters and valid", () => {
    const long = `${"a".repeat(123)} bcd`;
    const next = nextImageName(long);
    expect(next).toBe(`${"a".repeat(123)} (2)`);
    expect(next).toHaveLength(127);
    expect(checkImageName(next)).toBeUndefined();
    expect(nextImageName("n".repeat(128))).toBe(`${"n".repeat(124)} (2)`);
  });
});

describe("isInstanceId", () => {
  it.each(["i-0123abcd", "i-0123456789abcdef0"])("accepts %s", (id) => {
    expect(isInstanceId(id)).toBe(true);
  });

  it.each(["i-0123", "i-0123456789ABCDEF0", "ami-0123abcd", "0123456789abcdef0", "i-0123abcd "])(
    "refuses %j",
    (id) => {
      expect(isInstanceId(id)).toBe(false);
    },
  );
});

describe("validateImageRequest", () => {
  it("returns the request when every field is right", () => {
    const result = validateImageRequest(input({ reboot: "no_reboot", description: "  hi  " }), ALLOWED, NOW);
    expect(result).toEqual({
      ok: true,
      request: {
        targetName: "prod",
        region: "eu-west-1",
        instanceId: "i-0123456789abcdef0",
        instanceName: undefined,
        imageName: "web-1 nightly",
        imageNameDefaulted: false,
        description: "hi",
        noReboot: true,
        tags: [{ key: "team", value: "web" }],
        channelId: "C0UPDATES",
      },
    });
  });

  it("fills in the default name from the instance id when the name is left empty", () => {
    // instanceLabel comes from the client's option text: it must not reach the image name.
    for (const imageName of ["", undefined]) {
      const result = validateImageRequest(input({ imageName, instanceLabel: "web-1" }), ALLOWED, NOW);
      expect(result).toMatchObject({
        ok: true,
        request: { imageName: "i-0123456789abcdef0 2026-11-28 0240 UTC", imageNameDefaulted: true },
      });
    }
  });

  it("never takes the instance name from the client's label", () => {
    const result = validateImageRequest(input({ instanceLabel: "web-1" }), ALLOWED, NOW);
    expect(result).toMatchObject({ ok: true, request: { instanceName: undefined } });
  });

  it("leaves description and instance name out when they are blank", () => {
    const result = validateImageRequest(
      input({ description: undefined, instanceLabel: " ", tagsText: undefined }),
      ALLOWED,
      NOW,
    );
    expect(result).toMatchObject({
      ok: true,
      request: { description: undefined, instanceName: undefined, tags: [] },
    });
  });

  it("refuses the place when it is not in the allowed set", () => {
    expect(validateImageRequest(input({ region: "ap-south-1" }), ALLOWED, NOW)).toEqual({
      ok: false,
      errors: { where: "You may not create images in that account and region." },
    });
    expect(validateImageRequest(input({ targetName: "staging" }), ALLOWED, NOW)).toMatchObject({
      ok: false,
      errors: { where: expect.stringMatching(/may not/) },
    });
  });

  it("asks for a place when none is chosen", () => {
    expect(validateImageRequest(input({ region: undefined }), ALLOWED, NOW)).toEqual({
      ok: false,
      errors: { where: "Choose an account and region." },
    });
  });

  it("refuses the instance when it is missing or not an instance id", () => {
    expect(validateImageRequest(input({ instanceId: undefined }), ALLOWED, NOW)).toEqual({
      ok: false,
      errors: { instance: "Choose an instance." },
    });
    expect(validateImageRequest(input({ instanceId: "ami-0123abcd" }), ALLOWED, NOW)).toEqual({
      ok: false,
      errors: { instance: "That is not an EC2 instance id (i-…)." },
    });
  });

  it("blames only the instance when it is missing and the optional name was left empty", () => {
    expect(validateImageRequest(input({ instanceId: undefined, imageName: "" }), ALLOWED, NOW)).toEqual({
      ok: false,
      errors: { instance: "Choose an instance." },
    });
  });

  it("refuses the name when it breaks a rule", () => {
    expect(validateImageRequest(input({ imageName: "web#1" }), ALLOWED, NOW)).toEqual({
      ok: false,
      errors: { image_name: expect.stringContaining("“#”") },
    });
  });

  it("refuses the description when it is too long", () => {
    expect(validateImageRequest(input({ description: "d".repeat(256) }), ALLOWED, NOW)).toEqual({
      ok: false,
      errors: { description: "The description is 256 characters; the limit is 255." },
    });
  });

  it("does not reboot when the person of an ask target makes no choice", () => {
    expect(validateImageRequest(input({ reboot: undefined }), ALLOWED, NOW, rulesOf)).toMatchObject({
      ok: true,
      request: { noReboot: true },
    });
  });

  it("reboots an ask target only when the person chose to", () => {
    const noRebootFor = (reboot: ImageRequestInput["reboot"]) => {
      const result = validateImageRequest(input({ reboot }), ALLOWED, NOW, rulesOf);
      return result.ok ? result.request.noReboot : result.errors;
    };
    expect(noRebootFor("reboot")).toBe(false);
    expect(noRebootFor("no_reboot")).toBe(true);
  });

  it.each([
    ["a never target", "lab", rulesOf],
    ["a target without rules", "prod", () => undefined],
  ])("never reboots %s, whatever the form says", (_label, targetName, rules) => {
    // The form's value is client-supplied: only the target's policy may allow a reboot.
    for (const reboot of ["reboot", "no_reboot", undefined] as const) {
      const result = validateImageRequest(input({ targetName, reboot, tagsText: "" }), ALLOWED, NOW, rules);
      expect(result).toMatchObject({ ok: true, request: { targetName, noReboot: true } });
    }
  });

  it("never reboots when no rules are given", () => {
    expect(validateImageRequest(input({ reboot: "reboot" }), ALLOWED, NOW)).toMatchObject({
      ok: true,
      request: { noReboot: true },
    });
  });

  it("refuses a tag key that the target does not allow", () => {
    expect(
      validateImageRequest(
        input({ targetName: "lab", tagsText: "team=web\nowner=me" }),
        ALLOWED,
        NOW,
        rulesOf,
      ),
    ).toEqual({
      ok: false,
      errors: { tags: "Line 2: the tag key “owner” is not allowed in lab. Allowed: team, app:*." },
    });
  });

  it("accepts the tag keys that the target allows", () => {
    expect(
      validateImageRequest(
        input({ targetName: "lab", tagsText: "team=web\napp:tier=front" }),
        ALLOWED,
        NOW,
        rulesOf,
      ),
    ).toMatchObject({
      ok: true,
      request: {
        tags: [
          { key: "team", value: "web" },
          { key: "app:tier", value: "front" },
        ],
      },
    });
  });

  it("refuses the tags when a line is wrong", () => {
    expect(validateImageRequest(input({ tagsText: "aws:x=1" }), ALLOWED, NOW)).toEqual({
      ok: false,
      errors: { tags: "Line 1: keys starting with “aws:” are reserved by AWS." },
    });
  });

  it("asks for a channel when it is missing or not a channel id", () => {
    for (const channelId of [undefined, "U0PERSON", "general"]) {
      expect(validateImageRequest(input({ channelId }), ALLOWED, NOW)).toEqual({
        ok: false,
        errors: { channel: "Choose a channel for the updates." },
      });
    }
  });

  it("reports every field at once when several are wrong", () => {
    const result = validateImageRequest(
      {
        targetName: undefined,
        region: undefined,
        instanceId: "nope",
        instanceLabel: undefined,
        imageName: "x",
        description: "\u0000",
        reboot: undefined,
        tagsText: "broken",
        channelId: undefined,
      },
      ALLOWED,
      NOW,
    );
    expect(result.ok).toBe(false);
    expect(!result.ok && Object.keys(result.errors).sort()).toEqual([
      "channel",
      "description",
      "image_name",
      "instance",
      "tags",
      "where",
    ]);
  });
});
