/** Entry point: read settings, start the bot, stop cleanly on SIGTERM/SIGINT. */
import { startBot } from "./bot.js";
import { loadConfig, loadDotEnv } from "./config.js";
import { ConfigError } from "./errors.js";
import { createLogger } from "./logger.js";

async function main(): Promise<void> {
  loadDotEnv();
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
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
