import type { Config } from "../config.js";
import { allowedTargets, type Principal } from "../domain/access.js";
import type { Clock, ImageService, JobStore, StepHook } from "../domain/ports.js";
import type { Logger } from "../logger.js";
import type { MetadataCodec } from "./private-metadata.js";
import type { UsergroupDirectory } from "./usergroup-directory.js";

/** What the Slack listeners need, passed in by the composition root. */
export interface SlackDeps {
  readonly config: Config;
  readonly store: JobStore;
  readonly images: ImageService;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly directory: UsergroupDirectory;
  /** Called once a job is stored, so the watcher starts on it at once. */
  readonly onJobAccepted: () => void;
  readonly newJobId: () => string;
  readonly onStep: StepHook;
  /** Signs and checks the modal's private_metadata. */
  readonly metadata: MetadataCodec;
}

export async function principalOf(
  deps: SlackDeps,
  userId: string,
  channelId: string | undefined,
): Promise<Principal> {
  return { userId, channelId, usergroupIds: await deps.directory.groupsOf(userId) };
}

/** One audit line per access decision: who, what, allowed or denied, and why. */
export function audit(
  deps: SlackDeps,
  entry: {
    user: string;
    action: string;
    allowed: boolean;
    reason: string;
    target?: string;
    region?: string;
    jobId?: string;
  },
): void {
  deps.logger.info(
    { audit: true, ...entry },
    `access ${entry.allowed ? "allowed" : "denied"}: ${entry.action}`,
  );
}

export function placesFor(deps: SlackDeps, who: Principal) {
  return allowedTargets(deps.config.targets, who).flatMap((t) =>
    t.regions.map((region) => ({ targetName: t.name, region, accountId: t.accountId })),
  );
}
