/**
 * Entry point: read settings, start the bot, stop cleanly on SIGTERM/SIGINT.
 * Exit codes: 0 stopped cleanly, 1 an unexpected failure, 2 a setting to fix (named in one line on stderr).
 */
import { type RunningBot, startBot } from "./bot.js";
import { loadSettingsOrExit } from "./config.js";
import { SlackTokenRejectedError, StartupError } from "./errors.js";
import { createLogger } from "./logger.js";

async function main(): Promise<void> {
  const config = loadSettingsOrExit();
  const logger = createLogger(config.logLevel);
  // A listener or library failing outside any request (Bolt's receiver on a malformed payload, say)
  // must not take every accepted job's watcher down with it: log it and carry on.
  process.on("unhandledRejection", (reason) => logger.error({ err: reason }, "unhandled rejection"));
  let bot: RunningBot | undefined;
  let stopping = false;
  const stopThenExit = (code: number) => {
    if (stopping) return;
    stopping = true;
    // Whatever AWS or Slack do, the process is gone within 15 s of being asked to stop.
    setTimeout(() => {
      logger.error("shutdown took longer than 15 s; exiting anyway");
      process.exit(code || 1);
    }, 15_000).unref();
    (bot ? bot.stop() : Promise.resolve()).then(
      () => process.exit(code),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  /** A token Slack refuses: retrying cannot help, so say which setting to fix and exit 2. */
  const refused = (error: SlackTokenRejectedError) => {
    process.stderr.write(`ami-bot cannot start: ${error.message}\n`);
    stopThenExit(2);
  };
  process.on("SIGTERM", () => {
    logger.info({ signal: "SIGTERM" }, "shutting down");
    stopThenExit(0);
  });
  process.on("SIGINT", () => {
    logger.info({ signal: "SIGINT" }, "shutting down");
    stopThenExit(0);
  });
  bot = await startBot(config, logger, { onSlackFatal: refused });
  bot.ready.catch((error: unknown) => {
    if (error instanceof SlackTokenRejectedError) refused(error);
    else {
      logger.error({ err: error }, "could not connect to Slack");
      stopThenExit(1);
    }
  });
}

main().catch((error: unknown) => {
  if (error instanceof StartupError) {
    process.stderr.write(`ami-bot cannot start: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`ami-bot failed to start: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
