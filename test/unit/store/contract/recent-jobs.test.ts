/** The job store contract: recent jobs of a channel or a person, only in the places the reader may use. */
import { beforeEach, describe, expect, it } from "vitest";
import type { JobPlace, JobStore } from "../../../../src/domain/ports.js";
import { CLOCK_START } from "../../../fakes/fixed-clock.js";
import { ACCOUNT_ID, newJob } from "../../../fakes/job-fixtures.js";
import { JOB_STORES, useJobStore } from "./job-stores.js";

const T0 = CLOCK_START;
const PROD_ROLE = `arn:aws:iam::${ACCOUNT_ID}:role/ami-bot`;
const OTHER_ROLE = "arn:aws:iam::210987654321:role/ami-bot";
const PROD: JobPlace = { targetName: "prod", roleArn: PROD_ROLE, region: "eu-west-1" };
const HERE = "C0HERE0001";
const ELSEWHERE = "C0ELSEWHR1";
const ALICE = "U0ALICE001";
const BOB = "U0BOB00001";

const ids = (jobs: { id: string }[]) => jobs.map((j) => j.id);

describe.each(JOB_STORES)("recentJobs on the $name job store", (kind) => {
  const stores = useJobStore(kind);
  let store: JobStore;
  beforeEach(() => {
    store = stores.store;
  });

  describe("in a channel", () => {
    it("returns the jobs whose updates go to the channel or that were asked from it, newest first", async () => {
      await store.insert(newJob({ id: "updates-here", originChannelId: ELSEWHERE, channelId: HERE }), T0 + 1);
      await store.insert(newJob({ id: "asked-here", originChannelId: HERE, channelId: ELSEWHERE }), T0 + 2);
      await store.insert(
        newJob({ id: "elsewhere", originChannelId: ELSEWHERE, channelId: ELSEWHERE }),
        T0 + 3,
      );
      await store.insert(newJob({ id: "both-here", originChannelId: HERE, channelId: HERE }), T0 + 4);
      expect(ids(await store.recentJobs({ channelId: HERE, places: [PROD] }, 15))).toEqual([
        "both-here",
        "asked-here",
        "updates-here",
      ]);
    });

    it("finds a job whose thread moved to a direct message when listed in that message", async () => {
      await store.insert(newJob({ id: "moved", originChannelId: ELSEWHERE, channelId: ELSEWHERE }), T0);
      await store.moveThread("moved", ALICE, T0 + 1);
      await store.markRootPosted("moved", "D0ALICE001", "1.000100", T0 + 2);
      expect(ids(await store.recentJobs({ channelId: "D0ALICE001", places: [PROD] }, 15))).toEqual(["moved"]);
    });

    it("leaves out jobs of other targets, roles or regions when they are not among the places", async () => {
      await store.insert(newJob({ id: "prod", channelId: HERE }), T0);
      await store.insert(
        newJob({ id: "secret", channelId: HERE, targetName: "secret", roleArn: OTHER_ROLE }),
        T0,
      );
      // The same target name, repointed at another account since: not the place the reader may use.
      await store.insert(newJob({ id: "old-account", channelId: HERE, roleArn: OTHER_ROLE }), T0);
      await store.insert(newJob({ id: "us", channelId: HERE, region: "us-east-1" }), T0);
      expect(ids(await store.recentJobs({ channelId: HERE, places: [PROD] }, 15))).toEqual(["prod"]);
      expect(
        ids(
          await store.recentJobs(
            {
              channelId: HERE,
              places: [PROD, { targetName: "secret", roleArn: OTHER_ROLE, region: "eu-west-1" }],
            },
            15,
          ),
        ),
      ).toEqual(["secret", "prod"]);
    });

    it("returns nothing when the reader may use no place", async () => {
      await store.insert(newJob({ id: "prod", channelId: HERE }), T0);
      expect(await store.recentJobs({ channelId: HERE, places: [] }, 15)).toEqual([]);
    });

    it("returns the newest `limit` jobs, the later stored first when two share a time", async () => {
      for (let i = 1; i <= 20; i++)
        await store.insert(
          newJob({ id: `job-${String(i).padStart(2, "0")}`, channelId: HERE }),
          T0 + Math.ceil(i / 2),
        );
      expect(ids(await store.recentJobs({ channelId: HERE, places: [PROD] }, 5))).toEqual([
        "job-20",
        "job-19",
        "job-18",
        "job-17",
        "job-16",
      ]);
    });

    it("returns jobs as stored, finished ones included", async () => {
      await store.insert(newJob({ id: "done", channelId: HERE, instanceName: "web-1" }), T0);
      await store.apply("done", { type: "image_created", imageId: "ami-1" }, T0 + 1);
      await store.apply("done", { type: "image_state", state: "available" }, T0 + 2);
      expect(await store.recentJobs({ channelId: HERE, places: [PROD] }, 15)).toEqual([
        await store.get("done"),
      ]);
      expect(await store.get("done")).toMatchObject({ state: "available", imageId: "ami-1" });
    });
  });

  describe("of a person", () => {
    it("returns the jobs the person asked for, in any channel, newest first", async () => {
      await store.insert(newJob({ id: "alice-here", requestedBy: ALICE, channelId: HERE }), T0 + 1);
      await store.insert(newJob({ id: "bob-here", requestedBy: BOB, channelId: HERE }), T0 + 2);
      await store.insert(
        newJob({
          id: "alice-elsewhere",
          requestedBy: ALICE,
          originChannelId: ELSEWHERE,
          channelId: ELSEWHERE,
        }),
        T0 + 3,
      );
      expect(ids(await store.recentJobs({ requestedBy: ALICE, places: [PROD] }, 15))).toEqual([
        "alice-elsewhere",
        "alice-here",
      ]);
    });

    it("leaves out the person's jobs in places they may no longer use", async () => {
      await store.insert(newJob({ id: "prod", requestedBy: ALICE }), T0);
      await store.insert(
        newJob({ id: "secret", requestedBy: ALICE, targetName: "secret", roleArn: OTHER_ROLE }),
        T0,
      );
      expect(ids(await store.recentJobs({ requestedBy: ALICE, places: [PROD] }, 15))).toEqual(["prod"]);
    });

    it("returns at most `limit` jobs", async () => {
      for (let i = 1; i <= 4; i++) await store.insert(newJob({ id: `job-${i}`, requestedBy: ALICE }), T0 + i);
      expect(ids(await store.recentJobs({ requestedBy: ALICE, places: [PROD] }, 2))).toEqual([
        "job-4",
        "job-3",
      ]);
    });
  });
});
