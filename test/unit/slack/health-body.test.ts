import { describe, expect, it } from "vitest";
import { healthBody } from "../../../src/slack/app.js";

describe("healthBody", () => {
  it("is healthy only while taking requests, accepted by Slack, and able to read the database", () => {
    expect(healthBody("connected", { accepting: true, unfinishedJobs: 3 })).toEqual({
      status: 200,
      body: { ok: true, slack: "connected", unfinishedJobs: 3 },
    });
  });

  it("says the database does not answer (Postgres down) rather than that the bot is stopping", () => {
    expect(healthBody("connected", { accepting: true, unfinishedJobs: -1 })).toEqual({
      status: 503,
      body: { ok: false, slack: "connected", database: "unreachable", unfinishedJobs: -1 },
    });
  });

  it("says it is stopping once it no longer takes requests", () => {
    expect(healthBody("connected", { accepting: false, unfinishedJobs: 0 })).toEqual({
      status: 503,
      body: { ok: false, slack: "connected", stopping: true, unfinishedJobs: 0 },
    });
  });
});
