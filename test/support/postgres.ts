/**
 * A throwaway PostgreSQL server for tests: one cluster per test run (started by global-setup.ts), one fresh
 * database per test file. Set AMI_TEST_DATABASE_URL to use a server of your own instead; it must let that
 * user create databases.
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { chmod, chown, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { inject } from "vitest";
import { freePort } from "./free-port.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** The run's server (database `postgres`), when it started. */
    postgresUrl: string | undefined;
    /** Why the run's server did not start: Postgres tests fail with it, the others still run. */
    postgresError: string | undefined;
  }
}

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:PORT/postgres`, a superuser without a password. */
  url: string;
  /** Stops the server at once and removes its files (does nothing for AMI_TEST_DATABASE_URL). */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Where the cluster's folder goes; default os.tmpdir(). */
  tmpDir?: string;
  env?: NodeJS.ProcessEnv;
}

export interface TestDatabase {
  url: string;
  /** Drops the database, ending its open connections. */
  drop(): Promise<void>;
}

const NOT_FOUND =
  "PostgreSQL server not found: run `apt-get install -y postgresql` (Debian/Ubuntu), or set AMI_TEST_DATABASE_URL to a server you can create databases on";
// Postgres refuses to run as root: as root, its commands run as the postgres user the package creates.
const AS_ROOT = process.getuid?.() === 0;
const RUNUSER = existsSync("/usr/sbin/runuser") ? "/usr/sbin/runuser" : "runuser";
// sh -c WATCHDOG watchdog <pid> <dir> <stop command…>: once <pid> is gone, stops the server, removes <dir>.
const WATCHDOG =
  'while kill -0 "$1" 2>/dev/null; do sleep 1; done; dir=$2; shift 2; "$@" >/dev/null 2>&1; rm -rf "$dir"';

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const external = (options.env ?? process.env).AMI_TEST_DATABASE_URL;
  if (external) return { url: external, stop: async () => {} };
  const bin = await findServerBin();
  const dir = await makeClusterDir(options.tmpDir ?? tmpdir());
  const data = join(dir, "data");
  const log = join(dir, "postgres.log");
  const pgCtl = (...args: string[]) => asServerUser(join(bin, "pg_ctl"), ["-D", data, ...args]);
  const stopCommand = pgCtl("-w", "-m", "immediate", "stop");
  const removeFiles = () => rmSync(dir, { recursive: true, force: true });
  // Should this process die without stopping the server (a signal, a crash, a kill during start-up), the
  // watchdog stops it and removes its files within a second.
  const watchArgs = ["-c", WATCHDOG, "watchdog", String(process.pid), dir, ...stopCommand.flat()];
  const watchdog = spawn("sh", watchArgs, { cwd: "/", detached: true, stdio: "ignore" });
  watchdog.unref();
  try {
    await run(
      asServerUser(join(bin, "initdb"), [
        ...["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"],
        ...["--no-sync", "--no-instructions"],
      ]),
      dir,
    );
    // Sockets longer than sun_path (108 bytes) fail; the tests only use TCP anyway.
    const socketDir = dir.length > 80 ? "" : dir;
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      // No durability (a crash leaves nothing to recover: the cluster is thrown away); room for many clients.
      const settings = [
        `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='${socketDir}'`,
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
      ].join(" ");
      try {
        await run(pgCtl("-w", "-t", "30", "-l", log, "-o", settings, "start"), dir);
      } catch (error) {
        // Another process took the port between freePort() and the bind: try another one.
        if (attempt < 3 && /could not bind|already in use/i.test(await logTail(log))) continue;
        throw error;
      }
      return {
        url: `postgres://postgres@127.0.0.1:${port}/postgres`,
        stop: async () => {
          try {
            await run(stopCommand, dir);
            watchdog.kill();
          } finally {
            removeFiles();
          }
        },
      };
    }
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    const tail = await logTail(log);
    spawnSync(...stopCommand, { cwd: dir, stdio: "ignore" });
    removeFiles();
    watchdog.kill();
    throw new Error(`PostgreSQL did not start: ${detail}${tail ? `\nserver log:\n${tail}` : ""}`, {
      cause: error,
    });
  }
}

/** Creates a database with a unique name on the server (its URL with any database) and returns its URL. */
export async function createTestDatabase(serverUrl: string, prefix = "ami_test"): Promise<TestDatabase> {
  const safePrefix = prefix
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, "_")
    .slice(0, 40);
  const name = `${safePrefix}_${randomBytes(6).toString("hex")}`;
  await onServer(serverUrl, `CREATE DATABASE "${name}"`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => onServer(serverUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  };
}

/** In a test file: a fresh database on the run's server, or the reason there is none. */
export async function postgresForTest(prefix?: string): Promise<TestDatabase> {
  const error = inject("postgresError");
  if (error) throw new Error(error);
  const url = inject("postgresUrl");
  if (!url)
    throw new Error("no PostgreSQL server: test/support/global-setup.ts starts it (vitest globalSetup)");
  return createTestDatabase(url, prefix);
}

async function onServer(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** The newest /usr/lib/postgresql/N/bin (Debian, Ubuntu), else `pg_config --bindir`, else PATH. */
async function findServerBin(): Promise<string> {
  const hasServer = (dir: string) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl"));
  const versions = await readdir("/usr/lib/postgresql").catch(() => []);
  const debian = versions
    .filter((version) => /^\d+(\.\d+)?$/.test(version))
    .sort((a, b) => Number(b) - Number(a))
    .map((version) => `/usr/lib/postgresql/${version}/bin`)
    .find(hasServer);
  if (debian) return debian;
  const pgConfig = (await run(["pg_config", ["--bindir"]]).catch(() => "")).trim();
  const found = [pgConfig, ...(process.env.PATH ?? "").split(":")].find((dir) => dir && hasServer(dir));
  if (!found) throw new Error(NOT_FOUND);
  return found;
}

/** A new folder the server's user owns and can reach (as root, the server runs as postgres). */
async function makeClusterDir(base: string): Promise<string> {
  const dir = await mkdtemp(join(base, "ami-bot-postgres-"));
  if (!AS_ROOT) return dir;
  try {
    const [uid, gid] = await Promise.all([run(["id", ["-u", "postgres"]]), run(["id", ["-g", "postgres"]])]);
    await chown(dir, Number(uid), Number(gid));
    await chmod(dir, 0o700);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`running as root, PostgreSQL needs the postgres user: ${NOT_FOUND}`, { cause: error });
  }
  const reachable = await run(asServerUser("test", ["-w", dir])).then(
    () => true,
    () => false,
  );
  if (reachable) return dir;
  await rm(dir, { recursive: true, force: true });
  // A parent the postgres user cannot enter (root's 0700 TMPDIR): /tmp is open to every user.
  if (base === "/tmp") throw new Error(`the postgres user cannot reach ${dir}`);
  return makeClusterDir("/tmp");
}

function asServerUser(command: string, args: string[]): [string, string[]] {
  return AS_ROOT ? [RUNUSER, ["-u", "postgres", "--", command, ...args]] : [command, args];
}

/** Runs a command to its end; rejects with its output. */
function run([command, args]: [string, string[]], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // cwd: the postgres user may not be allowed into the test's working directory.
    execFile(command, args, { cwd, encoding: "utf8", timeout: 60_000 }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      const how = error.killed ? "timed out" : `failed (${error.code ?? error.signal})`;
      reject(
        new Error(`${[command, ...args].join(" ")} ${how}\n${stdout}${stderr}`.trim(), { cause: error }),
      );
    });
  });
}

async function logTail(log: string): Promise<string> {
  const text = await readFile(log, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-30).join("\n");
}
