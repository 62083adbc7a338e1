import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["./test/support/global-setup.ts"],
    // Two files at a time: most end-to-end tests wait on timers and sockets rather than the CPU (vitest's
    // default on two cores is one).
    maxWorkers: 2,
    // Focused tests would silently skip the rest of the suite in CI.
    allowOnly: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ["default", "./test/support/summary-reporter.ts"],
    // The AWS SDK warns, in every worker, that its releases after January 2027 need Node 22 (see README).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  },
});
