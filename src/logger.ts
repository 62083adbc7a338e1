import { pino } from "pino";

export type Logger = pino.Logger;

/**
 * Structured JSON logs. Anything that could carry a secret is redacted by path, so a token or a session
 * credential that ends up in a logged object never reaches the log.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: "ami-bot" },
      redact: {
        paths: [
          "token",
          "*.token",
          "botToken",
          "*.botToken",
          "appToken",
          "*.appToken",
          "signingSecret",
          "*.signingSecret",
          "headers.authorization",
          "*.headers.authorization",
          "credentials",
          "*.credentials",
          "SecretAccessKey",
          "*.SecretAccessKey",
          "SessionToken",
          "*.SessionToken",
          "secretAccessKey",
          "*.secretAccessKey",
          "sessionToken",
          "*.sessionToken",
        ],
        censor: "[redacted]",
      },
    },
    destination,
  );
}
