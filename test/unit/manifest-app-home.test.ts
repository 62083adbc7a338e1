import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const manifest = parse(readFileSync(join(root, "manifest.yml"), "utf8")) as {
  features: { app_home?: Record<string, unknown> };
  settings: { event_subscriptions?: { request_url?: string; bot_events?: string[] } };
};

describe("manifest.yml: the App Home tab", () => {
  it("turns the Home tab on and keeps the Messages tab writable (updates fall back to a DM)", () => {
    expect(manifest.features.app_home).toEqual({
      home_tab_enabled: true,
      messages_tab_enabled: true,
      messages_tab_read_only_enabled: false,
    });
  });

  it("subscribes to app_home_opened only, at /slack/events in HTTP mode", () => {
    expect(manifest.settings.event_subscriptions?.bot_events).toEqual(["app_home_opened"]);
    expect(manifest.settings.event_subscriptions?.request_url).toMatch(/^https:\/\/[^/]+\/slack\/events$/);
  });
});
