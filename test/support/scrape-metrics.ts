/**
 * GET /metrics from a running bot (the same port as /slack/events), read with the small Prometheus text
 * parser the unit tests use.
 */
import { type Family, parsePrometheusText, sampleValue } from "../unit/metrics/prometheus-text.js";
import type { Harness } from "./bot-harness.js";

export interface Scrape {
  readonly status: number;
  readonly contentType: string | null;
  readonly body: string;
  readonly families: Map<string, Family>;
  /** The value of the one sample with exactly these labels, or undefined. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

export async function scrapeMetrics(h: Harness): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${h.bot.port}/metrics`);
  const body = await res.text();
  const families = res.status === 200 ? parsePrometheusText(body) : new Map<string, Family>();
  return {
    status: res.status,
    contentType: res.headers.get("content-type"),
    body,
    families,
    value: (name, labels = {}) => sampleValue(families, name, labels),
  };
}

/** Scrapes until `check` accepts a scrape (for figures background work settles), and returns that scrape. */
export async function scrapeUntil(
  h: Harness,
  check: (scrape: Scrape) => boolean,
  timeoutMs = 15_000,
  what = "metrics",
): Promise<Scrape> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const scrape = await scrapeMetrics(h);
    if (check(scrape)) return scrape;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last scrape:\n${relevant(scrape.body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The bot's own lines of a scrape (not the process defaults), for a failure message. */
function relevant(body: string): string {
  return body
    .split("\n")
    .filter((line) => line.startsWith("ami_bot_"))
    .join("\n");
}
