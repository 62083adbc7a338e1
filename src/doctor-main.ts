/** Entry point of `npm run doctor`. */

import { getBotIdentity } from "./aws/bot-identity.js";
import { Ec2Images } from "./aws/ec2-images.js";
import { createSessionFactory } from "./aws/scoped-credentials.js";
import { readOnlyPolicy } from "./aws/session-policy.js";
import { loadSettingsOrExit } from "./config.js";
import { formatDoctor, runDoctor } from "./doctor.js";
import { createLogger } from "./logger.js";
import { createBackgroundClient } from "./slack/app.js";

async function main(): Promise<number> {
  const config = loadSettingsOrExit();
  const logger = createLogger("silent");
  const sessions = createSessionFactory();
  const lines = await runDoctor({
    config,
    slack: createBackgroundClient(config, logger),
    botIdentity: () => getBotIdentity(),
    assumeRole: async (target, region) => {
      const policy = readOnlyPolicy({ partition: target.partition, accountId: target.accountId, region });
      await sessions({ target, region, policy, userId: "ami-bot-doctor", channelId: "none" })();
    },
    images: new Ec2Images({ sessions }),
  });
  process.stdout.write(`${formatDoctor(lines)}\n`);
  const failed = lines.filter((l) => l.status === "FAIL").length;
  process.stdout.write(failed ? `\n${failed} check(s) failed.\n` : "\nAll checks passed.\n");
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`doctor failed: ${(error as Error).stack ?? error}\n`);
    process.exit(1);
  },
);
