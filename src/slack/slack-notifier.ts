/**
 * The Notifier port on Slack's Web API: posts the root message, threaded replies, the in-place final
 * update and notes to the requester. Each post carries metadata naming its job and key, so after a
 * crash the bot can tell whether a message already went out.
 */
import type { webApi } from "@slack/bolt";
import type { Config } from "../config.js";
import type { Job } from "../domain/job.js";
import type { Clock, Notifier, OutboxMessage } from "../domain/ports.js";
import { SlackDeliveryError, SlackRetryableError } from "../errors.js";
import {
  approverMessage,
  type MessageContext,
  replyMessage,
  requesterNote,
  rootMessage,
} from "./blocks/messages.js";
import { METADATA_EVENT } from "./ids.js";

type WebClient = webApi.WebClient;

/**
 * Sorts a WebClient failure: try later (rate limits, outages, no answer), or a refusal that retrying will not
 * fix — a SlackDeliveryError whose `channelUnusable` says whether the thread must move.
 */
export function translateSlackError(error: unknown): Error {
  const e = error as { code?: string; data?: { error?: string }; retryAfter?: number; statusCode?: number };
  if (e.code === "slack_webapi_rate_limited_error")
    return new SlackRetryableError("rate limited", (e.retryAfter ?? 1) * 1000, { cause: error });
  if (e.code === "slack_webapi_platform_error") {
    const code = e.data?.error ?? "unknown_error";
    // Slack says part of the operation may have succeeded on these: look before posting again.
    if (["internal_error", "fatal_error", "request_timeout"].includes(code))
      return new SlackRetryableError(code, undefined, { cause: error, maybeDelivered: true });
    if (["service_unavailable", "ratelimited"].includes(code))
      return new SlackRetryableError(code, undefined, { cause: error });
    if (["invalid_auth", "not_authed", "account_inactive", "token_revoked", "missing_scope"].includes(code))
      return new SlackRetryableError(`Slack token problem: ${code}`, 60_000, { cause: error });
    return new SlackDeliveryError(code, false, { cause: error });
  }
  return new SlackRetryableError(String((error as Error)?.message ?? error), undefined, {
    cause: error,
    maybeDelivered: true,
  });
}

export interface SlackNotifierDeps {
  readonly client: WebClient;
  readonly config: Pick<Config, "targets" | "watcher">;
  readonly clock: Clock;
}

export class SlackNotifier implements Notifier {
  constructor(private readonly deps: SlackNotifierDeps) {}

  private context(job: Job): MessageContext {
    return {
      target: this.deps.config.targets.find((t) => t.name === job.targetName),
      now: this.deps.clock.now(),
      watcher: this.deps.config.watcher,
    };
  }

  private metadata(job: Job, key: string) {
    return { event_type: METADATA_EVENT, event_payload: { job_id: job.id, key } };
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw translateSlackError(error);
    }
  }

  async postRoot(job: Job): Promise<{ ts: string; channel: string }> {
    const message = rootMessage(job, this.context(job));
    const res = await this.call(() =>
      this.deps.client.chat.postMessage({
        channel: job.channelId,
        text: message.text,
        blocks: message.blocks ?? [],
        metadata: this.metadata(job, "root"),
        unfurl_links: false,
      }),
    );
    if (!res.ts) throw new SlackRetryableError("chat.postMessage returned no ts", undefined);
    // Posting to a user id lands in a DM whose own id (D…) is what later calls need.
    return { ts: res.ts, channel: res.channel ?? job.channelId };
  }

  async postReply(job: Job, rootTs: string, outbox: OutboxMessage): Promise<string> {
    const message = replyMessage(job, outbox.key, this.context(job));
    const res = await this.call(() =>
      this.deps.client.chat.postMessage({
        channel: job.rootChannelId ?? job.channelId,
        thread_ts: rootTs,
        text: message.text,
        // The blocks carry verbatim: true, so user text in a reply is never linked or turned into mentions.
        blocks: message.blocks ?? [],
        reply_broadcast: message.broadcast ?? false,
        metadata: this.metadata(job, outbox.key),
        unfurl_links: false,
      }),
    );
    if (!res.ts) throw new SlackRetryableError("chat.postMessage returned no ts", undefined);
    return res.ts;
  }

  async updateRoot(job: Job, rootTs: string): Promise<void> {
    const message = rootMessage(job, this.context(job));
    await this.call(() =>
      this.deps.client.chat.update({
        channel: job.rootChannelId ?? job.channelId,
        ts: rootTs,
        text: message.text,
        blocks: message.blocks ?? [],
        metadata: this.metadata(job, "root"),
      }),
    );
  }

  async noteRequester(job: Job, key: string): Promise<void> {
    const { text, blocks = [] } = requesterNote(job, key);
    try {
      await this.deps.client.chat.postEphemeral({
        channel: job.originChannelId,
        user: job.requestedBy,
        text,
        blocks,
      });
    } catch {
      // Ephemeral needs the bot in the channel; a DM always reaches the person.
      await this.call(() => this.deps.client.chat.postMessage({ channel: job.requestedBy, text, blocks }));
    }
  }

  async notifyApprover(job: Job, userId: string): Promise<void> {
    // The thread's link is a courtesy: without it the DM still carries the buttons.
    const permalink =
      job.rootTs && job.rootChannelId
        ? await this.deps.client.chat
            .getPermalink({ channel: job.rootChannelId, message_ts: job.rootTs })
            .then((r) => r.permalink)
            .catch(() => undefined)
        : undefined;
    const { text, blocks = [] } = approverMessage(job, this.context(job), permalink);
    await this.call(() =>
      this.deps.client.chat.postMessage({ channel: userId, text, blocks, unfurl_links: false }),
    );
  }

  async findPosted(
    job: Job,
    key: string,
    rootTs: string | undefined,
    since: number,
  ): Promise<string | undefined> {
    const matches = (m: { metadata?: { event_type?: string; event_payload?: Record<string, unknown> } }) =>
      m.metadata?.event_type === METADATA_EVENT &&
      m.metadata.event_payload?.job_id === job.id &&
      m.metadata.event_payload?.key === key;
    const res = await this.call(() =>
      rootTs
        ? this.deps.client.conversations.replies({
            channel: job.rootChannelId ?? job.channelId,
            ts: rootTs,
            include_all_metadata: true,
            limit: 200,
          })
        : this.deps.client.conversations.history({
            channel: job.channelId,
            oldest: (since / 1000).toFixed(6),
            include_all_metadata: true,
            limit: 200,
          }),
    );
    const found = (res.messages ?? []).find((m) => matches(m as Parameters<typeof matches>[0]));
    return found?.ts;
  }
}
