import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { parseDocument } from "yaml";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

type JsonObject = Record<string, unknown>;

function isRecord(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Walks `path` through nested objects/arrays; undefined as soon as a step is missing. */
function at(value: unknown, ...path: Array<string | number>): unknown {
  let current = value;
  for (const step of path) {
    if (typeof step === "number") current = Array.isArray(current) ? current[step] : undefined;
    else current = isRecord(current) ? current[step] : undefined;
  }
  return current;
}

function asArray(value: unknown): unknown[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Parses a YAML file with the default (YAML 1.2 core) schema; any error or warning fails the test. */
function loadYaml(relativePath: string): unknown {
  const doc = parseDocument(readFileSync(join(root, relativePath), "utf8"), { prettyErrors: true });
  expect(doc.errors.map(String), `${relativePath}: YAML errors`).toEqual([]);
  expect(doc.warnings.map(String), `${relativePath}: YAML warnings (short-form !Tags?)`).toEqual([]);
  return doc.toJS();
}

function loadSchema(): JsonObject {
  const schema: unknown = JSON.parse(
    readFileSync(join(root, "test/fixtures/slack/manifest.schema.json"), "utf8"),
  );
  if (!isRecord(schema)) throw new Error("manifest schema is not an object");
  return schema;
}

function compileManifestValidator() {
  const schema = loadSchema();
  // The bundled schema is draft-07 (plain Ajv). strict: false because it carries non-standard keywords
  // ("regex", "_note"); formats are not validated because ajv-formats is not a dependency.
  expect(schema.$schema).toBe("http://json-schema.org/draft-07/schema#");
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const validate = ajv.compile(schema);
  return (data: unknown): string | undefined =>
    validate(data) ? undefined : ajv.errorsText(validate.errors, { separator: "\n" });
}

describe("manifest.yml", () => {
  const manifest = loadYaml("manifest.yml");
  const validate = compileManifestValidator();

  it("is valid against Slack's app manifest schema", () => {
    expect(validate(manifest)).toBeUndefined();
  });

  it("fails validation when the slash command lacks its leading slash (the schema check is not vacuous)", () => {
    const broken: unknown = structuredClone(manifest);
    const command = at(broken, "features", "slash_commands", 0);
    if (!isRecord(command)) throw new Error("no slash command in manifest");
    command.command = "ami";
    expect(validate(broken)).toMatch(/pattern/);
  });

  it("registers /ami as the only slash command", () => {
    const commands = asArray(at(manifest, "features", "slash_commands"));
    expect(commands).toHaveLength(1);
    expect(commands[0]).toMatchObject({
      command: "/ami",
      description: "Create an AMI of an EC2 instance",
      usage_hint: "[i-0123456789abcdef0 | help | check]",
      should_escape: false,
    });
  });

  it("requests exactly the bot scopes ami-bot uses and no user scopes", () => {
    const scopes = asArray(at(manifest, "oauth_config", "scopes", "bot"));
    expect(new Set(scopes).size).toBe(scopes.length);
    expect([...scopes].sort()).toEqual(
      [
        "commands",
        "chat:write",
        "usergroups:read",
        "users:read",
        "channels:read",
        "groups:read",
        "channels:history",
        "groups:history",
        "im:history",
      ].sort(),
    );
    expect(at(manifest, "oauth_config", "scopes", "user")).toBeUndefined();
    expect(at(manifest, "oauth_config", "scopes", "bot_optional")).toBeUndefined();
  });

  it("explains every bot scope it requests in the header comment, and only those", () => {
    const text = readFileSync(join(root, "manifest.yml"), "utf8");
    const header = text.slice(0, text.search(/^[^#\s]/m));
    // One table row per scope: "#   <scope>   <why, and which API uses it>".
    const explained = [...header.matchAll(/^# {2,}([a-z]+(?::[a-z.]+)?) {2,}\S/gm)].map((m) => m[1]);
    const scopes = asArray(at(manifest, "oauth_config", "scopes", "bot"));
    expect(explained.length).toBeGreaterThan(0);
    expect(new Set(explained).size).toBe(explained.length);
    expect([...explained].sort()).toEqual([...scopes].sort());
  });

  it("enables Socket Mode and interactivity by default", () => {
    expect(at(manifest, "settings", "socket_mode_enabled")).toBe(true);
    expect(at(manifest, "settings", "interactivity", "is_enabled")).toBe(true);
    expect(at(manifest, "settings", "org_deploy_enabled")).toBe(false);
    expect(at(manifest, "settings", "token_rotation_enabled")).toBe(false);
  });

  it("points every HTTP-mode URL at /slack/events", () => {
    const urls = [
      at(manifest, "features", "slash_commands", 0, "url"),
      at(manifest, "settings", "interactivity", "request_url"),
      at(manifest, "settings", "interactivity", "message_menu_options_url"),
    ];
    for (const url of urls) expect(url).toMatch(/^https:\/\/[^/]+\/slack\/events$/);
  });
});

// ---------------------------------------------------------------------------------------------------
// CloudFormation templates

const templateFiles = readdirSync(join(root, "deploy"))
  .filter((name) => name.endsWith(".yaml") || name.endsWith(".yml"))
  .sort();

/** Fn::Sub's template string, whether written as `Fn::Sub: "..."` or `Fn::Sub: ["...", {vars}]`. */
function subTemplate(node: JsonObject): string | undefined {
  const sub = node["Fn::Sub"];
  if (typeof sub === "string") return sub;
  const first: unknown = Array.isArray(sub) ? sub[0] : undefined;
  return typeof first === "string" ? first : undefined;
}

/**
 * Every IAM policy statement anywhere in a template: in plain objects, in both branches of Fn::If, and
 * inside policy documents written as Fn::Sub JSON strings.
 */
function collectStatements(node: unknown, found: JsonObject[] = []): JsonObject[] {
  if (Array.isArray(node)) {
    for (const item of node) collectStatements(item, found);
  } else if (isRecord(node)) {
    const sub = subTemplate(node);
    if (sub?.trimStart().startsWith("{")) collectStatements(JSON.parse(sub), found);
    if ("Effect" in node && ("Action" in node || "NotAction" in node)) found.push(node);
    for (const value of Object.values(node)) collectStatements(value, found);
  }
  return found;
}

/** The resources of the given type, by logical id. */
function resourcesOfType(template: unknown, type: string): JsonObject[] {
  const resources = at(template, "Resources");
  if (!isRecord(resources)) return [];
  return Object.values(resources).filter(
    (resource): resource is JsonObject => isRecord(resource) && resource.Type === type,
  );
}

/** Resolves a Fn::Sub template string with the given values (parameter defaults, pseudo parameters). */
function substitute(template: string, values: Record<string, string>): string {
  return template.replace(/\$\{([^}!]+)\}/g, (_match, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for \${${name}}`);
    return value;
  });
}

function parameterDefaults(template: unknown): Record<string, string> {
  const defaults: Record<string, string> = {};
  const parameters = at(template, "Parameters");
  if (isRecord(parameters)) {
    for (const [name, parameter] of Object.entries(parameters)) {
      const value = at(parameter, "Default");
      if (typeof value === "string") defaults[name] = value;
    }
  }
  return defaults;
}

describe.each(templateFiles)("deploy/%s", (file) => {
  const template = loadYaml(`deploy/${file}`);
  const statements = collectStatements(template);

  it("parses as plain YAML and looks like a CloudFormation template", () => {
    expect(at(template, "AWSTemplateFormatVersion")).toBe("2010-09-09");
    expect(resourcesOfType(template, "AWS::IAM::Role").length).toBeGreaterThan(0);
    expect(isRecord(at(template, "Outputs"))).toBe(true);
  });

  it("never grants a wildcard action, NotAction or an unconditional Allow on everything", () => {
    expect(statements.length).toBeGreaterThan(0);
    for (const statement of statements) {
      expect(statement.NotAction, JSON.stringify(statement)).toBeUndefined();
      expect(statement.NotResource, JSON.stringify(statement)).toBeUndefined();
      for (const action of asArray(statement.Action)) {
        expect(action, JSON.stringify(statement)).not.toBe("*");
        expect(action, JSON.stringify(statement)).not.toBe("ec2:*");
        expect(String(action), JSON.stringify(statement)).not.toContain("*");
      }
      // Resource "*" is only acceptable for read-only Describe calls (they have no resource-level ARNs).
      if (asArray(statement.Resource).includes("*")) {
        for (const action of asArray(statement.Action)) expect(String(action)).toMatch(/^ec2:Describe/);
      }
    }
  });
});

describe("deploy/target-role.yaml", () => {
  const template = loadYaml("deploy/target-role.yaml");
  const [role] = resourcesOfType(template, "AWS::IAM::Role");
  const trust = asArray(at(role, "Properties", "AssumeRolePolicyDocument", "Statement")).filter(isRecord);
  const defaults = {
    ...parameterDefaults(template),
    "AWS::Partition": "aws",
    "AWS::AccountId": "123456789012",
  };
  /** The statements in the branch of every Fn::If that is taken when `condition` holds (nested ones too). */
  const underCondition = (condition: string): JsonObject[] => {
    const found: JsonObject[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) for (const item of node) walk(item);
      else if (isRecord(node)) {
        const fnIf = node["Fn::If"];
        if (Array.isArray(fnIf) && fnIf[0] === condition) collectStatements(fnIf[1], found);
        for (const value of Object.values(node)) walk(value);
      }
    };
    walk(template);
    return found;
  };
  // The steps after an image (copy, share, cleanup), each present only when its parameter is "true".
  const afterSteps = new Set(
    ["CopyAllowed", "ShareAllowed", "CleanupAllowed"].flatMap((condition) => underCondition(condition)),
  );
  /** The statements every deployment has, whatever the Allow* parameters say. */
  const always = () => collectStatements(template).filter((s) => !afterSteps.has(s));

  it("requires the ExternalId and a Slack SourceIdentity whenever the bot assumes the role", () => {
    const assume = trust.filter((s) => asArray(s.Action).includes("sts:AssumeRole"));
    expect(assume.length).toBeGreaterThan(0);
    for (const statement of assume) {
      expect(statement.Effect).toBe("Allow");
      expect(at(statement, "Principal", "AWS")).toEqual({ Ref: "BotPrincipalArn" });
      expect(at(statement, "Condition", "StringEquals", "sts:ExternalId")).toEqual({ Ref: "ExternalId" });
      expect(at(statement, "Condition", "StringLike", "sts:SourceIdentity")).toEqual([
        "U*",
        "W*",
        "ami-bot-*",
      ]);
    }
  });

  it("keeps the ExternalId secret, required, 16 to 256 characters from AWS's ExternalId alphabet", () => {
    const parameter = at(template, "Parameters", "ExternalId");
    expect(at(parameter, "NoEcho")).toBe(true);
    expect(at(parameter, "Default")).toBeUndefined();
    expect(at(parameter, "MinLength")).toBeGreaterThanOrEqual(16);
    expect(at(parameter, "MaxLength")).toBe(256);
    expect(at(parameter, "AllowedPattern")).toBe("^[\\w+=,.@:/-]+$");
  });

  it("allows session tags only when they are slack-user and slack-channel", () => {
    const tagSession = trust.filter((s) => asArray(s.Action).includes("sts:TagSession"));
    expect(tagSession).toHaveLength(1);
    expect(at(tagSession[0], "Condition", "ForAllValues:StringEquals", "aws:TagKeys")).toEqual([
      "slack-user",
      "slack-channel",
    ]);
    expect(trust.some((s) => asArray(s.Action).includes("sts:SetSourceIdentity"))).toBe(true);
  });

  it("allows CreateImage on new images and snapshots only when they carry the ami-bot:job-id tag", () => {
    const onImages = collectStatements(template).filter(
      (s) =>
        s.Effect === "Allow" &&
        asArray(s.Action).includes("ec2:CreateImage") &&
        asArray(s.Resource).some((r) => /::(image|snapshot)\//.test(JSON.stringify(r))),
    );
    expect(onImages).toHaveLength(1);
    expect(at(onImages[0], "Condition", "Null", "aws:RequestTag/ami-bot:job-id")).toBe("false");
  });

  it("allows CreateTags only as part of CreateImage, or of CopyImage when AllowCopy is on", () => {
    const createTags = always().filter((s) => asArray(s.Action).includes("ec2:CreateTags"));
    expect(createTags).toHaveLength(1);
    expect(at(createTags[0], "Condition", "StringEquals", "ec2:CreateAction")).toBe("CreateImage");
    const whileCopying = underCondition("CopyAllowed").filter((s) =>
      asArray(s.Action).includes("ec2:CreateTags"),
    );
    expect(whileCopying).toHaveLength(1);
    expect(at(whileCopying[0], "Condition", "StringEquals", "ec2:CreateAction")).toBe("CopyImage");
  });

  it("limits the tag keys on new images and snapshots to Name, ami-bot:* and AllowedTagKeys", () => {
    expect(at(template, "Parameters", "AllowedTagKeys")).toMatchObject({
      Type: "CommaDelimitedList",
      Default: "*",
    });
    // CloudFormation cannot concatenate lists: the fixed keys and the parameter are joined, then split.
    const allowedKeys = {
      "Fn::Split": [
        ",",
        { "Fn::Join": [",", ["Name", "ami-bot:*", { "Fn::Join": [",", { Ref: "AllowedTagKeys" }] }]] },
      ],
    };
    // CreateTags, and CreateImage / CopyImage on the new images and snapshots (the request's tags).
    const tagging = collectStatements(template).filter(
      (s) =>
        s.Effect === "Allow" &&
        (asArray(s.Action).includes("ec2:CreateTags") ||
          (["ec2:CreateImage", "ec2:CopyImage"].some((a) => asArray(s.Action).includes(a)) &&
            at(s, "Condition", "Null", "aws:RequestTag/ami-bot:job-id") === "false")),
    );
    expect(tagging).toHaveLength(4);
    for (const statement of tagging)
      expect(at(statement, "Condition", "ForAllValues:StringLike", "aws:TagKeys")).toEqual(allowedKeys);
  });

  it("denies CreateImage to sessions whose SourceIdentity is the watcher's, on every resource it touches", () => {
    const denies = collectStatements(template).filter(
      (s) => s.Effect === "Deny" && asArray(s.Action).includes("ec2:CreateImage"),
    );
    expect(denies).toHaveLength(1);
    expect(denies[0]).toMatchObject({
      Action: "ec2:CreateImage",
      Condition: { StringEquals: { "aws:SourceIdentity": "ami-bot-watcher" } },
    });
    const resources = asArray(denies[0]?.Resource).map((r) =>
      isRecord(r) && typeof r["Fn::Sub"] === "string" ? substitute(r["Fn::Sub"], defaults) : r,
    );
    expect(resources).toEqual([
      "arn:aws:ec2:*:*:instance/*",
      "arn:aws:ec2:*::image/*",
      "arn:aws:ec2:*::snapshot/*",
    ]);
  });

  it("denies deleting images and snapshots to the bot's own reader sessions (ami-bot-*)", () => {
    const denies = collectStatements(template).filter(
      (s) => s.Effect === "Deny" && asArray(s.Action).includes("ec2:DeregisterImage"),
    );
    expect(denies).toHaveLength(1);
    expect(denies[0]).toMatchObject({
      Action: ["ec2:DeregisterImage", "ec2:DeleteSnapshot"],
      Condition: { StringLike: { "aws:SourceIdentity": "ami-bot-*" } },
    });
  });

  it("limits CreateImage to opted-in instances when RequireOptInTag is true, and not when false", () => {
    const policies = asArray(at(role, "Properties", "Policies"));
    const branches = policies
      .map((policy) => at(policy, "PolicyDocument", "Fn::If"))
      .find((fnIf): fnIf is unknown[] => Array.isArray(fnIf) && fnIf[0] === "OptInRequired");
    if (!branches) throw new Error("no PolicyDocument switched on the OptInRequired condition");
    expect(at(template, "Conditions", "OptInRequired")).toEqual({
      "Fn::Equals": [{ Ref: "RequireOptInTag" }, "true"],
    });

    const whenTrue = isRecord(branches[1]) ? subTemplate(branches[1]) : undefined;
    if (whenTrue === undefined)
      throw new Error("the RequireOptInTag=true branch should be a Fn::Sub JSON string");
    const tagged = collectStatements(JSON.parse(substitute(whenTrue, defaults)));
    expect(tagged).toEqual([
      expect.objectContaining({
        Action: "ec2:CreateImage",
        Resource: "arn:aws:ec2:*:123456789012:instance/*",
        Condition: { StringEquals: { "ec2:ResourceTag/ami-bot:allowed": "true" } },
      }),
    ]);

    const untagged = collectStatements(branches[2]);
    expect(untagged).toHaveLength(1);
    expect(untagged[0]).toMatchObject({ Action: "ec2:CreateImage" });
    expect(untagged[0]?.Condition).toBeUndefined();
    const resource = at(untagged[0], "Resource", "Fn::Sub");
    expect(typeof resource === "string" ? substitute(resource, defaults) : resource).toBe(
      "arn:aws:ec2:*:123456789012:instance/*",
    );
  });

  it("allows exactly the Describe calls the bot makes, and only on the one statement", () => {
    const describes = always().filter((s) =>
      asArray(s.Action).some((a) => String(a).startsWith("ec2:Describe")),
    );
    expect(describes).toHaveLength(1);
    expect(describes[0]?.Effect).toBe("Allow");
    expect(asArray(describes[0]?.Action).map(String).sort()).toEqual([
      "ec2:DescribeImages",
      "ec2:DescribeInstances",
      "ec2:DescribeSnapshots",
      "ec2:DescribeVolumes",
    ]);
  });

  it('adds copy, share and cleanup statements only when AllowCopy, AllowShare, AllowCleanup are "true"', () => {
    const steps: [string, string][] = [
      ["AllowCopy", "CopyAllowed"],
      ["AllowShare", "ShareAllowed"],
      ["AllowCleanup", "CleanupAllowed"],
    ];
    for (const [parameter, condition] of steps) {
      expect(at(template, "Parameters", parameter), parameter).toEqual(
        expect.objectContaining({ Type: "String", Default: "false", AllowedValues: ["true", "false"] }),
      );
      expect(at(template, "Conditions", condition)).toEqual({ "Fn::Equals": [{ Ref: parameter }, "true"] });
      expect(underCondition(condition).length, condition).toBeGreaterThan(0);
    }
    // Every Fn::If on them adds nothing when false.
    const branches: unknown[][] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) for (const item of node) walk(item);
      else if (isRecord(node)) {
        const fnIf = node["Fn::If"];
        if (Array.isArray(fnIf) && fnIf[0] !== "OptInRequired") branches.push(fnIf);
        for (const value of Object.values(node)) walk(value);
      }
    };
    walk(at(role, "Properties", "Policies"));
    expect(branches.map((b) => b[0]).sort()).toEqual([
      "CleanupAllowed",
      // The keep rule's identity is let through the readers' Deny only with AllowCleanup.
      "CleanupAllowed",
      "CopyAllowed",
      "CopyWithKmsKeys",
      "CopyWithKmsKeys",
      "ShareAllowed",
    ]);
    for (const branch of branches) expect(branch[2]).toEqual({ Ref: "AWS::NoValue" });

    // Each step's actions appear under its condition only.
    const actions = (statements: JsonObject[]) =>
      new Set(statements.flatMap((s) => asArray(s.Action).map(String)));
    const alwaysActions = actions(always());
    for (const action of ["ec2:CopyImage", "ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute"])
      expect(alwaysActions.has(action), action).toBe(false);
    expect([...alwaysActions].some((a) => a.startsWith("kms:"))).toBe(false);
    expect(alwaysActions.has("ec2:DescribeLaunchTemplateVersions")).toBe(false);
    expect([...actions(underCondition("CopyAllowed"))].sort()).toEqual([
      "ec2:CopyImage",
      "ec2:CreateTags",
      "kms:CreateGrant",
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:Encrypt",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
    ]);
    expect([...actions(underCondition("ShareAllowed"))].sort()).toEqual([
      "ec2:ModifyImageAttribute",
      "ec2:ModifySnapshotAttribute",
    ]);
    expect([...actions(underCondition("CleanupAllowed"))]).toEqual(["ec2:DescribeLaunchTemplateVersions"]);
  });

  it("uses the copy's KMS keys only when listed, only through EC2, and grants only for AWS resources", () => {
    expect(at(template, "Parameters", "CopyKmsKeyArns")).toMatchObject({
      Type: "CommaDelimitedList",
      Default: "",
    });
    expect(at(template, "Conditions", "CopyWithKmsKeys")).toEqual({
      "Fn::And": [
        { Condition: "CopyAllowed" },
        { "Fn::Not": [{ "Fn::Equals": [{ "Fn::Join": ["", { Ref: "CopyKmsKeyArns" }] }, ""] }] },
      ],
    });
    const kms = underCondition("CopyWithKmsKeys");
    expect(kms).toHaveLength(2);
    for (const statement of kms) {
      expect(statement.Resource).toEqual({ Ref: "CopyKmsKeyArns" });
      const via = at(statement, "Condition", "StringLike", "kms:ViaService");
      const sub = isRecord(via) ? subTemplate(via) : undefined;
      expect(sub && substitute(sub, { "AWS::URLSuffix": "amazonaws.com" })).toBe("ec2.*.amazonaws.com");
    }
    const grant = kms.find((s) => asArray(s.Action).includes("kms:CreateGrant"));
    expect(at(grant, "Condition", "StringEquals", "kms:GrantIsForAWSResource")).toBe("true");
  });

  it("shares only what carries the job-id tag, and denies adding any group (public) to a snapshot", () => {
    const share = underCondition("ShareAllowed");
    for (const statement of share.filter((s) => s.Effect === "Allow"))
      expect(at(statement, "Condition", "Null", "aws:ResourceTag/ami-bot:job-id")).toBe("false");
    const denies = share.filter((s) => s.Effect === "Deny");
    expect(denies).toHaveLength(1);
    expect(denies[0]).toMatchObject({
      Action: "ec2:ModifySnapshotAttribute",
      Condition: { Null: { "ec2:Add/group": "false" } },
    });
  });

  it("copies only images with the job-id tag, into copies the request tags with one", () => {
    const copies = underCondition("CopyAllowed").filter((s) => asArray(s.Action).includes("ec2:CopyImage"));
    expect(copies.map((s) => at(s, "Condition", "Null"))).toEqual([
      { "aws:ResourceTag/ami-bot:job-id": "false" },
      { "aws:RequestTag/ami-bot:job-id": "false" },
    ]);
  });

  it("outputs the role ARN", () => {
    expect(at(template, "Outputs", "RoleArn", "Value")).toEqual({ "Fn::GetAtt": ["TargetRole", "Arn"] });
  });
});

describe("deploy/bot-identity.yaml", () => {
  const template = loadYaml("deploy/bot-identity.yaml");
  const [role] = resourcesOfType(template, "AWS::IAM::Role");

  it("lets the bot only assume, set SourceIdentity on and tag sessions of the listed target roles", () => {
    const permissions = collectStatements(at(role, "Properties", "Policies"));
    expect(permissions.length).toBeGreaterThan(0);
    const actions = new Set(permissions.flatMap((s) => asArray(s.Action)));
    expect([...actions].sort()).toEqual(["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]);
    for (const statement of permissions) {
      expect(statement.Effect).toBe("Allow");
      expect(statement.Resource).toEqual({ Ref: "TargetRoleArns" });
    }
    expect(at(template, "Parameters", "TargetRoleArns", "Type")).toBe("CommaDelimitedList");
  });

  it("is assumed by the ECS tasks service unless told otherwise", () => {
    expect(at(template, "Parameters", "ServicePrincipal", "Default")).toBe("ecs-tasks.amazonaws.com");
    const trust = asArray(at(role, "Properties", "AssumeRolePolicyDocument", "Statement"));
    expect(trust).toHaveLength(1);
    expect(at(trust[0], "Principal", "Service")).toEqual({ Ref: "ServicePrincipal" });
  });

  it("outputs the role ARN", () => {
    expect(at(template, "Outputs", "BotRoleArn", "Value")).toEqual({ "Fn::GetAtt": ["BotRole", "Arn"] });
  });
});
