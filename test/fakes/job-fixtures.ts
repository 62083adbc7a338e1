/** Builders for the values tests need again and again: targets, places, new jobs, stored jobs, settings. */
import { pino } from "pino";
import type { Target, WatcherSettings } from "../../src/config.js";
import type { Job } from "../../src/domain/job.js";
import type { NewJob, Place } from "../../src/domain/ports.js";
import { NO_AFTER_STEPS } from "../../src/domain/target.js";
import type { Logger } from "../../src/logger.js";
import { openDatabase } from "../../src/store/database.js";
import { SqliteJobStore } from "../../src/store/sqlite-job-store.js";
import { CLOCK_START } from "./fixed-clock.js";

export const ACCOUNT_ID = "123456789012";
export const REQUESTER = "U0REQUESTER";
export const CHANNEL = "C0UPDATES";

export function testTarget(overrides: Partial<Target> = {}): Target {
  const name = overrides.name ?? "prod";
  const accountId = overrides.accountId ?? ACCOUNT_ID;
  return {
    name,
    roleArn: `arn:aws:iam::${accountId}:role/ami-bot`,
    accountId,
    partition: "aws",
    externalId: undefined,
    regions: ["eu-west-1"],
    allow: { users: [REQUESTER], usergroups: [], channels: [] },
    instanceScope: { requiredTags: {} },
    // The defaults a target gets from the settings when these are left out.
    reboot: "never",
    tagKeys: undefined,
    jobsPerHour: 10,
    allowGuests: false,
    allowPublicChannels: false,
    approval: undefined,
    after: NO_AFTER_STEPS,
    admins: [],
    ...overrides,
  };
}

export function placeFor(target: Target, region: string = target.regions[0] ?? "eu-west-1"): Place {
  return { target, region };
}

let counter = 0;

/** A job as the modal submission hands it to the store; ids and idempotency keys are unique per call. */
export function newJob(overrides: Partial<NewJob> = {}): NewJob {
  counter++;
  const id = overrides.id ?? `job-${String(counter).padStart(4, "0")}`;
  return {
    id,
    idempotencyKey: `view-${id}`,
    requestedBy: REQUESTER,
    originChannelId: CHANNEL,
    targetName: "prod",
    roleArn: `arn:aws:iam::${ACCOUNT_ID}:role/ami-bot`,
    region: "eu-west-1",
    instanceId: "i-0123456789abcdef0",
    instanceName: "web-1",
    imageName: `web-1 backup ${counter}`,
    description: undefined,
    noReboot: false,
    tags: [],
    excludedDevices: [],
    channelId: CHANNEL,
    requestHash: `request-${id}`,
    ...overrides,
  };
}

/** A complete job, as the store would return it, for pure functions (transition, Block Kit). */
export function makeJob(overrides: Partial<Job> = {}): Job {
  // A stored job does not carry the request's hash.
  const { requestHash: _, ...base } = newJob();
  return {
    ...base,
    id: "job-fixture",
    idempotencyKey: "view-fixture",
    imageName: "web-1 backup",
    rootChannelId: undefined,
    rootTs: undefined,
    state: "queued",
    imageId: undefined,
    createAttemptedAt: undefined,
    attempts: 0,
    lastError: undefined,
    finalReason: undefined,
    progress: 0,
    slowNotified: false,
    nextCheckAt: CLOCK_START,
    createdAt: CLOCK_START,
    updatedAt: CLOCK_START,
    finishedAt: undefined,
    approvalExpiresAt: undefined,
    decision: undefined,
    decidedBy: undefined,
    decidedAt: undefined,
    cancelledBy: undefined,
    cancelledAt: undefined,
    deregisterAttemptedAt: undefined,
    after: undefined,
    ...overrides,
  };
}

export function watcherSettings(overrides: Partial<WatcherSettings> = {}): WatcherSettings {
  return {
    pollIntervalMs: 15_000,
    slowAfterMs: 4 * 3_600_000,
    slowPollIntervalMs: 5 * 60_000,
    giveUpAfterMs: 24 * 3_600_000,
    ...overrides,
  };
}

export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/** A store on a fresh in-memory database with the real migrations. */
export function memoryStore(): SqliteJobStore {
  return new SqliteJobStore(openDatabase(":memory:"));
}
