/** An outbox relay over an in-memory store and a RecordingNotifier, on a fixed clock that sleeps instantly. */
import type { Job } from "../../src/domain/job.js";
import { createOutboxRelay } from "../../src/watcher/outbox-relay.js";
import { FixedClock } from "../fakes/fixed-clock.js";
import { memoryStore, silentLogger } from "../fakes/job-fixtures.js";
import { RecordingNotifier } from "../fakes/recording-notifier.js";

export function recordingRelay(options: { onDelivered?: (job: Job) => void } = {}) {
  const clock = new FixedClock();
  const store = memoryStore();
  const notifier = new RecordingNotifier(clock);
  const relay = createOutboxRelay({
    store,
    notifier,
    clock,
    logger: silentLogger(),
    channelGapMs: 0,
    sleep: async (ms) => {
      clock.advance(ms);
    },
    ...(options.onDelivered ? { onDelivered: options.onDelivered } : {}),
  });
  return { clock, store, notifier, relay };
}
