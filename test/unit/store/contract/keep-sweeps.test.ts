/** The job store contract: claiming the keep rule's daily sweep of a target, once per period across replicas. */
import { describe, expect, it } from "vitest";
import { CLOCK_START } from "../../../fakes/fixed-clock.js";
import { JOB_STORES, useJobStore } from "./job-stores.js";

const T0 = CLOCK_START;
const DAY = 86_400_000;

let names = 0;
/** Each test its own target names: the sweep table outlives a test's emptied jobs on Postgres. */
const target = (label: string) => `${label}-${++names}-${Math.random().toString(36).slice(2, 8)}`;

describe.each(JOB_STORES)("the $name job store", (kind) => {
  const stores = useJobStore(kind);

  describe("claimSweep", () => {
    it("claims a target never swept before, then refuses until the period has passed", async () => {
      const { store } = stores;
      const prod = target("prod");
      expect(await store.claimSweep(prod, T0, DAY)).toBe(true);
      expect(await store.claimSweep(prod, T0, DAY)).toBe(false);
      expect(await store.claimSweep(prod, T0 + DAY - 1, DAY)).toBe(false);
      expect(await store.claimSweep(prod, T0 + DAY, DAY)).toBe(true);
      // The period counts from the latest claim, not the first.
      expect(await store.claimSweep(prod, T0 + DAY + 1, DAY)).toBe(false);
      expect(await store.claimSweep(prod, T0 + 2 * DAY, DAY)).toBe(true);
    });

    it("keeps each target's period apart", async () => {
      const { store } = stores;
      const [prod, staging] = [target("prod"), target("staging")];
      expect(await store.claimSweep(prod, T0, DAY)).toBe(true);
      expect(await store.claimSweep(staging, T0 + 1, DAY)).toBe(true);
      expect(await store.claimSweep(prod, T0 + 2, DAY)).toBe(false);
    });

    it("never claims for a clock behind the last run", async () => {
      const { store } = stores;
      const prod = target("prod");
      expect(await store.claimSweep(prod, T0 + DAY, DAY)).toBe(true);
      expect(await store.claimSweep(prod, T0, DAY)).toBe(false);
    });

    it("lets one replica claim after a restart or on another store, never two", async () => {
      const { store } = stores;
      const prod = target("prod");
      const other = await stores.open({ owner: "b" });
      expect(await store.claimSweep(prod, T0, DAY)).toBe(true);
      expect(await other.claimSweep(prod, T0 + 1000, DAY)).toBe(false);
      expect(await other.claimSweep(prod, T0 + DAY, DAY)).toBe(true);
      expect(await store.claimSweep(prod, T0 + DAY + 1000, DAY)).toBe(false);
    });

    it("gives the claim to exactly one of several replicas asking at once", async () => {
      const prod = target("prod");
      const replicas = [stores.store, await stores.open({ owner: "b" }), await stores.open({ owner: "c" })];
      for (const day of [0, 1, 2]) {
        const answers = await Promise.all(
          replicas.flatMap((r) => [0, 1].map(() => Promise.resolve(r.claimSweep(prod, T0 + day * DAY, DAY)))),
        );
        expect(answers.filter(Boolean)).toHaveLength(1);
      }
    });
  });
});
