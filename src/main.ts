/** Entry point: read settings, start the bot, stop cleanly on SIGTERM/SIGINT. */
import { startBot } from "./bot.js";
import { loadSettingsOrExit } from "./config.js";
import { createLogger } from "./logger.js";

async function main(): Promise<void> {
  const config = loadSettingsOrExit();
  const logger = createLogger(config.logLevel);
  // A listener or library failing outside any request (Bolt's receiver on a malformed payload, say)
  // must not take every accepted job's watcher down with it: log it and carry on.
  process.on("unhandledRejection", (reason) => logger.error({ err: reason }, "unhandled rejection"));
  const bot = await startBot(config, logger);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    bot.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

main().catch((error: unknown) => {
  process.stderr.write(`ami-bot failed to start: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
