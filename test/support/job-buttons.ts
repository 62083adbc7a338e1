/** Clicks on a job's buttons (Approve, Deny, Cancel, Try again) as Slack sends them, and the deny form. */
import type { StoredMessage } from "../fakes/fake-slack.js";

type Block = { block_id?: string; elements?: Record<string, unknown>[] };

/** The button with this action id in a message's blocks, as the bot drew it. */
export function buttonIn(
  message: StoredMessage | undefined,
  actionId: string,
): Record<string, unknown> | undefined {
  const blocks = (message?.blocks ?? []) as Block[];
  return blocks.flatMap((b) => b.elements ?? []).find((e) => e.action_id === actionId);
}

/** A block_actions payload for a click on a button of a message (in a channel, a thread or a DM). */
export function messageButtonPayload(options: {
  userId: string;
  channel: string;
  messageTs: string;
  threadTs?: string | undefined;
  action: Record<string, unknown>;
  blockId?: string;
}): Record<string, unknown> {
  return {
    type: "block_actions",
    user: { id: options.userId, username: "someone", name: "someone", team_id: "T111" },
    api_app_id: "A111",
    token: "verification_token",
    container: {
      type: "message",
      message_ts: options.messageTs,
      channel_id: options.channel,
      is_ephemeral: false,
    },
    trigger_id: "111.222.valid",
    team: { id: "T111", domain: "workspace-domain" },
    channel: { id: options.channel, name: "ops" },
    message: {
      type: "message",
      ts: options.messageTs,
      ...(options.threadTs ? { thread_ts: options.threadTs } : {}),
      text: "…",
    },
    response_url: "https://hooks.slack.com/actions/T111/1/x",
    actions: [
      {
        block_id: options.blockId ?? "job_actions",
        action_ts: "1596530385.194939",
        type: "button",
        ...options.action,
      },
    ],
  };
}

/** The deny form sent back, as Slack sends a view_submission for the view the bot opened. */
export function denySubmissionPayload(options: {
  userId: string;
  privateMetadata: string;
  reason?: string | null;
}): Record<string, unknown> {
  return {
    type: "view_submission",
    team: { id: "T111", domain: "workspace-domain" },
    user: { id: options.userId, username: "someone", name: "someone", team_id: "T111" },
    api_app_id: "A111",
    token: "verification_token",
    trigger_id: "111.222.valid",
    view: {
      id: "V0DENY0001",
      team_id: "T111",
      type: "modal",
      callback_id: "ami_deny",
      private_metadata: options.privateMetadata,
      hash: "1596530361.3wRYuk3R",
      blocks: [],
      state: {
        values: {
          deny_reason: { deny_reason_input: { type: "plain_text_input", value: options.reason ?? null } },
        },
      },
    },
  };
}
