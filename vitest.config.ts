import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Focused tests would silently skip the rest of the suite in CI.
    allowOnly: false,
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
