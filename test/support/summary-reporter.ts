/**
 * Prints one plain closing line, "N passed, N failed, N skipped", that any CI log reader understands.
 * Tests that never ran because their suite or file failed (a beforeAll that threw, a file that did not
 * load) count as failed, not skipped: a missing Postgres server must not read as "0 failed".
 */
import type { Reporter, TestCase, TestModule } from "vitest/node";

/**
 * Whether the suite or file holding the test failed around it: an error of its own (a hook that threw, a
 * file that did not load), not merely a failed test inside it.
 */
function failedAround(test: TestCase): boolean {
  let parent: TestCase["parent"] = test.parent;
  for (;;) {
    if (parent.errors().length > 0) return true;
    if (parent.type === "module") return false;
    parent = parent.parent;
  }
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      let tests = 0;
      for (const test of module.children.allTests()) {
        tests++;
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed" || failedAround(test)) failed++;
        else skipped++;
      }
      // A file that failed before any test was collected still fails the run.
      if (tests === 0 && module.errors().length > 0) failed++;
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
