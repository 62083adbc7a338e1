import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { problemsOf } from "../support/config-problems.js";

const BASE = {
  SLACK_BOT_TOKEN: "xoxb-1-2-3",
  SLACK_SIGNING_SECRET: "s3cret",
  AMI_TARGET_ROLE_ARN: "arn:aws:iam::123456789012:role/ami-bot",
  AMI_TARGET_REGIONS: "eu-west-1",
};

describe("loadConfig: DATABASE_URL and AMI_LEASE", () => {
  it("uses the SQLite file with a 30 s lease when neither is set", () => {
    const config = loadConfig(BASE);
    expect(config.databaseUrl).toBeUndefined();
    expect(config.leaseMs).toBe(30_000);
  });

  it.each(["postgres://ami:pw@db.internal:5432/ami_bot", "postgresql://localhost/ami_bot?sslmode=require"])(
    "reads %s as the shared Postgres database",
    (url) => {
      expect(loadConfig({ ...BASE, DATABASE_URL: ` ${url} ` }).databaseUrl).toBe(url);
    },
  );

  it.each(["mysql://db/ami", "./data/ami-bot.db", "postgres://"])(
    "refuses %s, naming the variable and never repeating the value (it may hold a password)",
    (url) => {
      const problems = problemsOf({ ...BASE, DATABASE_URL: url });
      expect(problems).toEqual([
        "DATABASE_URL: must be a postgres:// (or postgresql://) URL; leave it unset for the embedded SQLite file (AMI_BOT_DB)",
      ]);
    },
  );

  it("reads AMI_LEASE as a duration and refuses one shorter than 2 s", () => {
    expect(loadConfig({ ...BASE, AMI_LEASE: "3s" }).leaseMs).toBe(3_000);
    expect(loadConfig({ ...BASE, AMI_LEASE: "2m" }).leaseMs).toBe(120_000);
    expect(problemsOf({ ...BASE, AMI_LEASE: "1s" })).toEqual([
      "AMI_LEASE: must be at least 2s (a claim must outlast one check)",
    ]);
    expect(problemsOf({ ...BASE, AMI_LEASE: "soon" })[0]).toMatch(/^AMI_LEASE: /);
  });
});
