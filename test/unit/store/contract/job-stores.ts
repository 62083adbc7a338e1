/**
 * The job stores the contract suite runs against, behind the JobStore port: SQLite (a fresh database file per
 * test) and Postgres (a fresh database per test file on the run's throwaway server, emptied before each test,
 * its stores' pools kept from test to test).
 * A test file runs its cases once per store with `describe.each(JOB_STORES)` and `useJobStore(kind)`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import type { Awaitable, ImageEventPlace, JobStore } from "../../../../src/domain/ports.js";
import { openDatabase } from "../../../../src/store/database.js";
import { openPostgresJobStore, type PostgresJobStore } from "../../../../src/store/postgres-job-store.js";
import { SqliteJobStore } from "../../../../src/store/sqlite-job-store.js";
import { ACCOUNT_ID } from "../../../fakes/job-fixtures.js";
import { postgresForTest } from "../../../support/postgres.js";

export interface StoreOptions {
  /** The replica's name in Postgres leases; "a" unless told. SQLite has one process per database. */
  readonly owner?: string;
  /** How long a Postgres claim lasts; a minute unless told, longer than any contract test needs. */
  readonly leaseMs?: number;
  readonly onTakeover?: (kind: "job" | "message", count: number) => void;
}

interface OpenedStore {
  readonly store: JobStore;
  /** The test is done with it: Postgres keeps its pool for the file's next test (a connection takes ~60 ms). */
  release(): Promise<void>;
  /** Closes it for good, as a restart does. */
  close(): Promise<void>;
}

/** One test file's database. */
interface TestStoreDatabase {
  /** Empties it, so the next test starts from nothing. */
  reset(): Promise<void>;
  /** A store on it: each call is a connection of its own (a restart, or another replica). */
  open(options: StoreOptions): Promise<OpenedStore>;
  /** Makes the outbox refuse messages with this key: a write failing inside a store's transaction. */
  refuseOutboxKey(key: string): Promise<void>;
  drop(): Promise<void>;
}

export interface JobStoreKind {
  readonly name: "sqlite" | "postgres";
  createDatabase(): Promise<TestStoreDatabase>;
}

export const SQLITE: JobStoreKind = {
  name: "sqlite",
  async createDatabase() {
    const dir = mkdtempSync(join(tmpdir(), "ami-bot-contract-"));
    let tests = 0;
    let path = "";
    return {
      async reset() {
        tests++;
        path = join(dir, `jobs-${tests}.db`);
      },
      async open() {
        const db = openDatabase(path);
        const close = async () => void db.close();
        return { store: new SqliteJobStore(db), release: close, close };
      },
      async refuseOutboxKey(key) {
        const db = new Database(path);
        try {
          db.exec(
            `CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox WHEN NEW.key = '${key.replaceAll("'", "''")}'
             BEGIN SELECT RAISE(ABORT, 'disk full'); END`,
          );
        } finally {
          db.close();
        }
      },
      async drop() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

export const POSTGRES: JobStoreKind = {
  name: "postgres",
  async createDatabase() {
    const database = await postgresForTest("store_contract");
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    // The schema once; each store's own migration then finds nothing to do.
    await (await openPostgresJobStore(database.url, { owner: "setup", leaseMs: 1 })).close();
    /** Released stores by owner and lease, for the next test that asks for the same. */
    const idle = new Map<string, PostgresJobStore[]>();
    const listeners = new Map<PostgresJobStore, StoreOptions["onTakeover"]>();
    return {
      async reset() {
        // Measured on the test server: DELETE takes ~4 ms on these few rows, TRUNCATE ~25 ms, a new
        // database ~600 ms.
        await admin.query(`DROP TRIGGER IF EXISTS refuse_outbox ON outbox; DELETE FROM outbox; DELETE FROM jobs;
          ALTER SEQUENCE outbox_id_seq RESTART; ALTER SEQUENCE jobs_seq_seq RESTART`);
      },
      async open({ owner = "a", leaseMs = 60_000, onTakeover }) {
        const key = `${owner}/${leaseMs}`;
        const store: PostgresJobStore =
          idle.get(key)?.pop() ??
          (await openPostgresJobStore(database.url, {
            owner,
            leaseMs,
            onTakeover: (kind, count) => listeners.get(store)?.(kind, count),
          }));
        listeners.set(store, onTakeover);
        return {
          store,
          async release() {
            listeners.delete(store);
            idle.set(key, [...(idle.get(key) ?? []), store]);
          },
          async close() {
            listeners.delete(store);
            await store.close();
          },
        };
      },
      async refuseOutboxKey(key) {
        await admin.query(
          `CREATE OR REPLACE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN IF NEW.key = TG_ARGV[0] THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$`,
        );
        await admin.query(
          `CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox FOR EACH ROW
           EXECUTE FUNCTION refuse_outbox(${admin.escapeLiteral(key)})`,
        );
      },
      async drop() {
        for (const store of [...idle.values()].flat()) await store.close();
        await admin.end();
        await database.drop();
      },
    };
  },
};

export const JOB_STORES: readonly JobStoreKind[] = [SQLITE, POSTGRES];

export interface StoreHandle {
  /** This test's store (replica "a"), on empty tables. */
  readonly store: JobStore;
  /** Another store on the same database: the bot restarted, or another replica. Closed after the test. */
  open(options?: StoreOptions): Promise<JobStore>;
  /** Closes a store before the test ends (to open the database again, as a restart does). */
  close(store: JobStore): Promise<void>;
  refuseOutboxKey(key: string): Promise<void>;
}

/** Registers the hooks that give each test of the enclosing describe a store of this kind on empty tables. */
export function useJobStore(kind: JobStoreKind): StoreHandle {
  let database: TestStoreDatabase | undefined;
  let current: JobStore | undefined;
  const opened = new Map<JobStore, OpenedStore>();
  const started = () => {
    if (!database) throw new Error(`the ${kind.name} test database did not start`);
    return database;
  };
  const handle: StoreHandle = {
    get store() {
      if (!current) throw new Error("the store is only open inside a test");
      return current;
    },
    async open(options = {}) {
      const one = await started().open(options);
      opened.set(one.store, one);
      return one.store;
    },
    async close(store) {
      await opened.get(store)?.close();
      opened.delete(store);
    },
    refuseOutboxKey: (key) => started().refuseOutboxKey(key),
  };
  beforeAll(async () => {
    database = await kind.createDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });
  beforeEach(async () => {
    await started().reset();
    current = await handle.open();
  });
  afterEach(async () => {
    current = undefined;
    for (const one of opened.values()) await one.release();
    opened.clear();
  });
  return handle;
}

/** Runs a store call as a promise, so a synchronous store's throw is a rejection like an asynchronous one's. */
export function attempt<T>(work: () => Awaitable<T>): Promise<T> {
  return Promise.resolve().then(work);
}

/** An image event (push mode) from the test jobs' own account and region (newJob's), unless told otherwise. */
export function imageEvent(imageId: string, region = "eu-west-1", accountId = ACCOUNT_ID): ImageEventPlace {
  return { imageId, region, accountId };
}
