/**
 * Approve, Deny and Cancel: buttons on a job's root message, in an approver's DM and on the Home tab. A
 * button's value (a job id) is untrusted, and rules change: every click looks the job up, decides again
 * whether this person may do this to it now, and changes the job in one transaction, so of two clicks at
 * once (Approve and Cancel, a double click) exactly one takes effect and the other is told what happened.
 */
import type {
  AllMiddlewareArgs,
  BlockAction,
  ButtonAction,
  SlackActionMiddlewareArgs,
  SlackViewMiddlewareArgs,
  ViewSubmitAction,
} from "@slack/bolt";
import { decideAccess, deniedMessage, isApprover } from "../../domain/access.js";
import type { Job, JobEvent } from "../../domain/job.js";
import type { Target } from "../../domain/target.js";
import { literal } from "../blocks/format.js";
import { clockTime } from "../blocks/messages.js";
import { audit, principalOf, type SlackDeps } from "../deps.js";
import { ACTION, BLOCK, DENY_VIEW } from "../ids.js";
import { type Clicked, clicked, findJob, jobIdOf, tellClicker } from "./job-click.js";

type ActionArgs = SlackActionMiddlewareArgs<BlockAction<ButtonAction>> & AllMiddlewareArgs;
type ViewArgs = SlackViewMiddlewareArgs<ViewSubmitAction> & AllMiddlewareArgs;

export type JobAction = "approve" | "deny" | "cancel";

/** Hooks a decision needs beyond the store: wake the watcher and relay, refresh Home tabs. */
export interface DecisionHooks {
  /** A job changed because of a click: its messages and (after approval or cancel) the watcher's work are due. */
  readonly onJobChanged: (job: Job) => void;
}

export const UNKNOWN_JOB_TEXT =
  "That image request does not exist (or no longer does), so nothing was changed. Type `/ami list` to see the latest ones.";
export const OWN_APPROVAL_TEXT =
  "You asked for this image, so someone else must approve it: the two-person rule. Nothing was changed.";
/** Slack shows at most 3,000 characters of a plain_text_input; a reason needs far fewer. */
export const MAX_DENY_REASON = 500;

/** What a click on a job that is no longer in the state the button was drawn for is told: its real state. */
export function stateNowText(job: Job): string {
  const by = (user: string | undefined, at: number | undefined) =>
    user ? ` by <@${user}>${at ? ` at ${clockTime(at)}` : ""}` : "";
  const what = literal(job.imageName);
  switch (job.state) {
    case "awaiting_approval":
      return `${what} is still waiting for approval.`;
    case "queued":
    case "pending":
      return job.decision === "approved"
        ? `${what} was already approved${by(job.decidedBy, job.decidedAt)}; the image is being made.`
        : `${what} is being made; see its thread.`;
    case "cancelling":
      return `${what} is already being cancelled${by(job.cancelledBy, job.cancelledAt)}.`;
    case "cancelled":
      return `${what} was already cancelled${by(job.cancelledBy, job.cancelledAt)}.`;
    case "denied":
      return `${what} was already denied${by(job.decidedBy, job.decidedAt)}.`;
    case "expired":
      return `${what} expired: nobody decided in time. Nothing was created.`;
    case "finishing":
    case "available":
      return `${what} is already made: \`${job.imageId ?? ""}\` is available. Removing finished images is not something ami-bot does; use the EC2 console.`;
    case "failed":
    case "refused":
    case "timed_out":
      return `${what} has already ended (${job.state.replace("_", " ")}); see its thread.`;
  }
}

type Permission =
  | { ok: true; job: Job; target: Target }
  | { ok: false; reason: string; text: string; job?: Job };

/**
 * Whether this person may do this to this job now. The requester may cancel their own job (stopping is always
 * safe); approvers, never the requester, may approve or deny, and may cancel; each approver must also still
 * be allowed to use the target from where they clicked.
 */
async function permission(
  deps: SlackDeps,
  action: JobAction,
  jobId: string,
  where: Clicked,
): Promise<Permission> {
  const job = await findJob(deps, jobId);
  if (!job) return { ok: false, reason: "unknown job", text: UNKNOWN_JOB_TEXT };
  const target = deps.config.targets.find((t) => t.name === job.targetName);
  // A target renamed onto another role is another account: the job's place is gone.
  if (!target || target.roleArn !== job.roleArn)
    return {
      ok: false,
      reason: "target no longer configured",
      text: `Target ${job.targetName} is no longer configured in ami-bot, so nobody can ${action} this request from Slack. Ask ami-bot's admins.`,
      job,
    };
  const own = job.requestedBy === where.userId;
  if (own && action === "cancel") return { ok: true, job, target };
  if (own)
    return { ok: false, reason: "requester may not decide on their own job", text: OWN_APPROVAL_TEXT, job };
  const who = await principalOf(deps, where.userId, where.channelId);
  if (!isApprover(target, who))
    return {
      ok: false,
      reason: "not an approver of this target",
      text:
        action === "cancel"
          ? "Only the person who asked for this image, or one of its approvers, can cancel it. Nothing was changed."
          : `Only the approvers of target ${target.name} can ${action} this request, and you are not one of them now. Nothing was changed.`,
      job,
    };
  const access = decideAccess(target, who);
  if (!access.allowed)
    return {
      ok: false,
      reason: `approver without access now: ${access.reason}`,
      text: `You are an approver of target ${target.name}, but you may not use it from here now, so you cannot ${action} this request. ${deniedMessage(who)}`,
      job,
    };
  return { ok: true, job, target };
}

function eventFor(action: Exclude<JobAction, "deny">, userId: string): JobEvent {
  return action === "approve" ? { type: "approved", by: userId } : { type: "cancel_requested", by: userId };
}

/** Approve or Cancel: checked, then decided in one transaction. */
export function createJobButton(deps: SlackDeps, hooks: DecisionHooks, action: Exclude<JobAction, "deny">) {
  return async ({ ack, body, action: button, client }: ActionArgs): Promise<void> => {
    await ack();
    const where = clicked(body);
    const jobId = jobIdOf(button);
    const allowed = await permission(deps, action, jobId, where);
    audit(deps, {
      user: where.userId,
      action,
      allowed: allowed.ok,
      reason: allowed.ok ? "allowed" : allowed.reason,
      ...(allowed.job
        ? { target: allowed.job.targetName, region: allowed.job.region, jobId: allowed.job.id }
        : {}),
    });
    if (!allowed.ok) {
      await tellClicker(deps, client, where, allowed.text);
      return;
    }
    const result = await deps.store.decide(allowed.job.id, eventFor(action, where.userId), deps.clock.now());
    if (!result?.applied) {
      await tellClicker(deps, client, where, result ? stateNowText(result.job) : UNKNOWN_JOB_TEXT);
      return;
    }
    hooks.onJobChanged(result.job);
    // Clicked after the deadline, before the watcher had ended it: the click ended it as expired instead.
    if (result.job.state === "expired") {
      await tellClicker(deps, client, where, stateNowText(result.job));
      return;
    }
    deps.logger.info(
      { audit: true, user: where.userId, action, jobId: result.job.id, state: result.job.state },
      action === "approve" ? "job approved" : "job cancelled",
    );
  };
}

/** Deny: checked, then a small form for an optional reason; the decision is made when it is sent. */
export function createDenyButton(deps: SlackDeps) {
  return async ({ ack, body, action: button, client }: ActionArgs): Promise<void> => {
    await ack();
    const where = clicked(body);
    const allowed = await permission(deps, "deny", jobIdOf(button), where);
    if (!allowed.ok) {
      audit(deps, {
        user: where.userId,
        action: "deny",
        allowed: false,
        reason: allowed.reason,
        ...(allowed.job
          ? { target: allowed.job.targetName, region: allowed.job.region, jobId: allowed.job.id }
          : {}),
      });
      await tellClicker(deps, client, where, allowed.text);
      return;
    }
    if (allowed.job.state !== "awaiting_approval") {
      await tellClicker(deps, client, where, stateNowText(allowed.job));
      return;
    }
    await client.views.open({
      trigger_id: body.trigger_id,
      view: denyModal(
        allowed.job,
        deps.metadata.seal("deny", JSON.stringify([allowed.job.id, where.channelId ?? ""])),
      ),
    });
  };
}

/** The deny form: what is denied, and an optional reason for the requester. */
export function denyModal(job: Job, privateMetadata: string) {
  return {
    type: "modal" as const,
    callback_id: DENY_VIEW,
    private_metadata: privateMetadata,
    title: { type: "plain_text" as const, text: "Deny this image" },
    submit: { type: "plain_text" as const, text: "Deny" },
    close: { type: "plain_text" as const, text: "Back" },
    blocks: [
      {
        type: "section" as const,
        text: {
          type: "mrkdwn" as const,
          text: `Deny <@${job.requestedBy}>'s AMI of ${literal(job.instanceName ?? job.instanceId)} (${literal(job.imageName)})? Nothing will be created, and the thread will say who denied it and why.`,
          verbatim: true,
        },
      },
      {
        type: "input" as const,
        block_id: BLOCK.denyReason,
        optional: true,
        label: { type: "plain_text" as const, text: "Reason (shown in the thread)" },
        element: {
          type: "plain_text_input" as const,
          action_id: ACTION.denyReason,
          multiline: true,
          max_length: MAX_DENY_REASON,
        },
      },
    ],
  };
}

/** The deny form sent: everything is checked again (time has passed, and a view can be forged), then decided. */
export function createDenySubmission(deps: SlackDeps, hooks: DecisionHooks) {
  return async ({ ack, body, view }: ViewArgs): Promise<void> => {
    const sealed = deps.metadata.unseal("deny", view.private_metadata);
    const [jobId, channelId] = sealed ? (JSON.parse(sealed) as [string, string]) : ["", ""];
    const where: Clicked = { userId: body.user.id, channelId: channelId || undefined, threadTs: undefined };
    const reasonError = (text: string) =>
      ack({ response_action: "errors", errors: { [BLOCK.denyReason]: text } });
    const typed: unknown = view.state.values[BLOCK.denyReason]?.[ACTION.denyReason]?.value;
    // A forged form can send anything as the reason: only text is taken.
    if (typed !== undefined && typed !== null && typeof typed !== "string") {
      await reasonError("The reason must be text.");
      return;
    }
    const raw = typed ?? "";
    if (raw.length > MAX_DENY_REASON) {
      await reasonError(`Keep the reason under ${MAX_DENY_REASON} characters.`);
      return;
    }
    const allowed = await permission(deps, "deny", jobId, where);
    audit(deps, {
      user: where.userId,
      action: "deny",
      allowed: allowed.ok,
      reason: allowed.ok ? "allowed" : sealed ? allowed.reason : "form not signed by ami-bot",
      ...(allowed.job
        ? { target: allowed.job.targetName, region: allowed.job.region, jobId: allowed.job.id }
        : {}),
    });
    if (!allowed.ok) {
      await reasonError(allowed.text);
      return;
    }
    const result = await deps.store.decide(
      allowed.job.id,
      { type: "denied", by: where.userId, reason: raw.trim() || undefined },
      deps.clock.now(),
    );
    if (!result?.applied || result.job.state === "expired") {
      if (result?.applied) hooks.onJobChanged(result.job);
      await reasonError(result ? stateNowText(result.job) : UNKNOWN_JOB_TEXT);
      return;
    }
    await ack();
    deps.logger.info({ audit: true, user: where.userId, action: "deny", jobId: result.job.id }, "job denied");
    hooks.onJobChanged(result.job);
  };
}
