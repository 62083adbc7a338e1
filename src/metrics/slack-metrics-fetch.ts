/**
 * Counts the bot's HTTP requests to Slack by Web API method, and their failures by Slack's error, as a
 * `fetch` for WebClient's `fetch` option. Bolt passes its `clientOptions` to every WebClient it makes (the
 * app's own, one per workspace for listeners' `client`, the Socket Mode client's) and uses the same fetch
 * for `respond()`, so one option reaches every call without wrapping or patching any client.
 *
 * Counted per HTTP request: a call the WebClient retries counts once per attempt (the bot's clients retry
 * at most once, the background client never). Errors: Slack's own `error` from an `ok: false` answer,
 * "ratelimited" for a 429, "http_<status>" for another status, else the network failure's code.
 */

/** Told of each request: the Web API method ("chat.postMessage") and, when it failed, why. */
export type SlackCallHook = (method: string, errorCode?: string) => void;

/** What WebClient calls as `fetch` (globalThis.fetch fits). */
export type SlackFetch = (url: string | URL, init?: RequestInit) => Promise<Response>;

/** The method label of requests that are not Web API calls: Bolt's respond() posting to a response_url. */
export const RESPONSE_URL_METHOD = "response_url";

const DEFAULT_API_URL = "https://slack.com/api/";

export function createSlackMetricsFetch(
  onSlackCall: SlackCallHook,
  options: { apiUrl?: string | undefined; fetch?: SlackFetch } = {},
): SlackFetch {
  const base = withSlash(options.apiUrl ?? DEFAULT_API_URL);
  const fetchFn = options.fetch ?? globalThis.fetch;
  return async (url, init) => {
    const href = String(url);
    const method = href.startsWith(base)
      ? (href.slice(base.length).split(/[?#]/)[0] ?? "")
      : RESPONSE_URL_METHOD;
    let response: Response;
    try {
      response = await fetchFn(url, init);
    } catch (error) {
      report(onSlackCall, method, networkCode(error));
      throw error;
    }
    report(onSlackCall, method, await errorOf(response, method !== RESPONSE_URL_METHOD));
    return response;
  };
}

/** Why Slack refused, read from a copy of the answer (the WebClient reads the original). */
async function errorOf(response: Response, isApiCall: boolean): Promise<string | undefined> {
  if (response.status === 429) return "ratelimited";
  if (response.status < 200 || response.status > 299) return `http_${response.status}`;
  if (!isApiCall || !(response.headers.get("content-type") ?? "").includes("json")) return undefined;
  try {
    const body = (await response.clone().json()) as { ok?: unknown; error?: unknown };
    if (body.ok !== false) return undefined;
    return typeof body.error === "string" ? body.error : "unknown_error";
  } catch {
    // Not JSON after all: the WebClient reports that to its caller; as a request it was answered.
    return undefined;
  }
}

/** "ECONNREFUSED" (fetch's cause), "TimeoutError" (the client's time limit), or the error's class. */
function networkCode(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  if (typeof cause?.code === "string") return cause.code;
  const name = (error as { name?: unknown } | undefined)?.name;
  return typeof name === "string" && name !== "" ? name : "Error";
}

function withSlash(url: string): string {
  return url.endsWith("/") ? url : `${url}/`;
}

/** Metrics never fail the call they count. */
function report(onSlackCall: SlackCallHook, method: string, errorCode?: string): void {
  try {
    onSlackCall(method, errorCode);
  } catch {
    // A broken hook must not turn Slack's answer into a failure; the call itself is what matters.
  }
}
