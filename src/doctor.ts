/**
 * `npm run doctor`: checks, for operators, everything ami-bot needs before a person types /ami — the Slack
 * token, the bot's own AWS identity, AssumeRole into every target, and a dry-run CreateImage per target and
 * region — and prints one PASS/FAIL/SKIP line each. Exits non-zero when anything fails.
 */
import type { Config } from "./config.js";
import { checkImageAccess } from "./domain/access-check.js";
import type { ImageService } from "./domain/ports.js";
import { AwsRefusedError } from "./errors.js";

export interface DoctorDeps {
  readonly config: Config;
  /** The Slack Web API, as far as the doctor needs it (a WebClient fits). */
  readonly slack: { auth: { test(): Promise<{ team?: string; team_id?: string; user_id?: string }> } };
  readonly botIdentity: () => Promise<string>;
  /** Resolves credentials for a target's role (AssumeRole), throwing AwsRefusedError when refused. */
  readonly assumeRole: (target: Config["targets"][number], region: string) => Promise<void>;
  readonly images: ImageService;
}

export type DoctorLine = {
  readonly status: "PASS" | "FAIL" | "SKIP";
  readonly check: string;
  readonly detail: string;
};

function reason(error: unknown): string {
  if (error instanceof AwsRefusedError) return error.userMessage;
  const e = error as { name?: string; message?: string; data?: { error?: string } };
  return e.data?.error ?? (e.name && e.message ? `${e.name}: ${e.message}` : String(error));
}

export async function runDoctor(deps: DoctorDeps): Promise<DoctorLine[]> {
  const lines: DoctorLine[] = [];
  // The doctor's sessions carry its own name as SourceIdentity, as the target role's trust policy allows.
  const requester = { userId: "ami-bot-doctor", channelId: "none" };
  try {
    const auth = await deps.slack.auth.test();
    lines.push({
      status: "PASS",
      check: "Slack token (auth.test)",
      detail: `team ${auth.team ?? auth.team_id}, bot user ${auth.user_id}`,
    });
  } catch (error) {
    lines.push({ status: "FAIL", check: "Slack token (auth.test)", detail: reason(error) });
  }
  try {
    lines.push({ status: "PASS", check: "AWS identity of the bot", detail: await deps.botIdentity() });
  } catch (error) {
    lines.push({ status: "FAIL", check: "AWS identity of the bot", detail: reason(error) });
  }
  for (const target of deps.config.targets) {
    const firstRegion = target.regions[0] as string;
    try {
      await deps.assumeRole(target, firstRegion);
      lines.push({ status: "PASS", check: `AssumeRole ${target.name}`, detail: target.roleArn });
    } catch (error) {
      lines.push({ status: "FAIL", check: `AssumeRole ${target.name}`, detail: reason(error) });
      continue;
    }
    for (const region of target.regions) {
      const check = `CreateImage dry run ${target.name} ${region}`;
      const place = { target, region };
      try {
        const [instance] = await deps.images.findInstances(place, requester, "");
        if (!instance) {
          lines.push({ status: "SKIP", check, detail: "no instance in the target's scope to try it on" });
          continue;
        }
        const result = await checkImageAccess(deps.images, place, requester, instance.instanceId);
        lines.push({ status: result.allowed ? "PASS" : "FAIL", check, detail: result.message });
      } catch (error) {
        lines.push({ status: "FAIL", check, detail: reason(error) });
      }
    }
  }
  return lines;
}

export function formatDoctor(lines: readonly DoctorLine[]): string {
  return lines.map((l) => `${l.status.padEnd(4)}  ${l.check}: ${l.detail}`).join("\n");
}
