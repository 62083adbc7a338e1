/**
 * What every button on a job's messages (Approve, Deny, Cancel, Try again) shares: reading the job id it
 * carries (untrusted: a forged payload can send anything), and answering the clicker privately.
 */
import type { BlockAction, ButtonAction, webApi } from "@slack/bolt";
import type { Job } from "../../domain/job.js";
import type { SlackDeps } from "../deps.js";

// Job ids are UUIDs; a longer value is not worth a lookup.
const MAX_JOB_ID = 64;

export interface Clicked {
  readonly userId: string;
  /** The conversation the button was in; undefined on the Home tab. */
  readonly channelId: string | undefined;
  readonly threadTs: string | undefined;
}

export function clicked(body: BlockAction<ButtonAction>): Clicked {
  return {
    userId: body.user.id,
    channelId: body.channel?.id,
    threadTs: (body.message as { thread_ts?: string } | undefined)?.thread_ts,
  };
}

/** The job id a button carries, or "" when it is not a string. */
export function jobIdOf(button: ButtonAction): string {
  const value: unknown = button.value;
  return typeof value === "string" ? value : "";
}

/** The job a job id names, when it is one worth looking up. */
export async function findJob(deps: SlackDeps, jobId: string): Promise<Job | undefined> {
  return jobId.length > 0 && jobId.length <= MAX_JOB_ID ? await deps.store.get(jobId) : undefined;
}

/** Tells the clicker privately: ephemeral where they clicked, or a DM when they clicked on the Home tab. */
export async function tellClicker(
  deps: SlackDeps,
  client: webApi.WebClient,
  where: Clicked,
  text: string,
): Promise<void> {
  try {
    if (where.channelId)
      await client.chat.postEphemeral({
        channel: where.channelId,
        user: where.userId,
        text,
        ...(where.threadTs ? { thread_ts: where.threadTs } : {}),
      });
    else await client.chat.postMessage({ channel: where.userId, text });
  } catch (error) {
    deps.logger.warn({ err: error, user: where.userId }, "could not answer a button click");
  }
}
