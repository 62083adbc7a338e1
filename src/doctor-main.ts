/** Entry point of `npm run doctor`. */

import { createBotStsClient, getBotIdentity } from "./aws/bot-identity.js";
import { Ec2Images } from "./aws/ec2-images.js";
import { createSessionFactory } from "./aws/scoped-credentials.js";
import { pickerPolicy } from "./aws/session-policy.js";
import { loadSettingsOrExit } from "./config.js";
import { type DoctorDeps, describeDoctor, formatDoctorLine, runDoctor } from "./doctor.js";
import { createLogger } from "./logger.js";
import { createBackgroundClient } from "./slack/app.js";

async function main(): Promise<number> {
  const config = loadSettingsOrExit();
  const logger = createLogger("silent");
  const sessions = createSessionFactory({}, config.aws);
  // Any region serves GetCallerIdentity; a target's is one the operator already allows traffic to.
  const sts = createBotStsClient(config.targets[0]?.regions[0] ?? "us-east-1", config.aws);
  process.stdout.write(`${describeDoctor(config)}\n\n`);
  const deps: DoctorDeps = {
    config,
    slack: createBackgroundClient(config, logger),
    botIdentity: (signal) => getBotIdentity(sts, signal),
    assumeRole: async (target, region) => {
      // The narrowest session there is: AssumeRole itself is what this checks.
      const policy = pickerPolicy({ partition: target.partition, accountId: target.accountId, region });
      await sessions({ target, region, policy, userId: "ami-bot-doctor", channelId: "none" })();
    },
    images: new Ec2Images({ sessions, timeouts: config.aws }),
    // Loaded only when configured, as the bot loads the Postgres driver and the SQS client.
    checkPostgres: async (url, signal) =>
      (await import("./store/postgres-check.js")).checkPostgres(url, signal),
    checkEventsQueue: async (queueUrl, signal) => {
      const [{ createSqsClient }, { checkEventsQueue }] = await Promise.all([
        import("./aws/sqs-client.js"),
        import("./aws/events-queue-check.js"),
      ]);
      // Built as the events consumer builds its own (bot.ts gives it no region: the URL's, else AWS_REGION).
      const sqs = createSqsClient({ queueUrl, timeouts: config.aws, logger });
      try {
        return await checkEventsQueue(sqs, queueUrl, signal);
      } finally {
        sqs.destroy();
      }
    },
  };
  // Each line as soon as its check finishes, so an operator sees where the doctor is waiting.
  const lines = await runDoctor(deps, {
    onLine: (line) => process.stdout.write(`${formatDoctorLine(line)}\n`),
  });
  const failed = lines.filter((l) => l.status === "FAIL").length;
  const warned = lines.filter((l) => l.status === "WARN").length;
  // A warning is a setting that grants less than it seems to: worth reading, but not a failed run.
  const warnings = warned ? ` ${warned} warning(s): each WARN line says what to do.` : "";
  process.stdout.write(
    failed
      ? `\n${failed} check(s) failed; each FAIL line says what to do.${warnings}\n`
      : warned
        ? `\nNo check failed.${warnings}\n`
        : "\nAll checks passed.\n",
  );
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`doctor failed: ${(error as Error).stack ?? error}\n`);
    process.exit(1);
  },
);
