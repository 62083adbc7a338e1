/**
 * For `npm run doctor`: whether the Postgres database in DATABASE_URL is one the bot can start on. One
 * connection, a few catalogue reads, nothing written. The driver's errors are turned here into a problem
 * code (from the SQLSTATE or the socket's errno, never from message text), so nothing outside store/ learns
 * about `pg`. The URL and its password never leave this module.
 */
import { Socket } from "node:net";
import pg from "pg";
import { POSTGRES_MIGRATIONS } from "./postgres-schema.js";

/** Why the bot could not use the database, in terms a person can act on. */
export type PostgresProblem =
  /** The host name does not resolve (DNS). */
  | "host_not_found"
  /** Nothing answered at host:port (refused, unreachable, reset). */
  | "unreachable"
  /** The server refused the user name or password. */
  | "auth_failed"
  /** The server does not admit this user from this host (pg_hba.conf, no such role, SSL required). */
  | "not_admitted"
  | "no_database"
  | "no_permission"
  /** The server is starting up, shutting down or out of connections. */
  | "unavailable"
  | "unknown";

/** A privilege the bot needs and the user lacks. */
export interface MissingPrivilege {
  readonly privilege: "CREATE" | "SELECT" | "INSERT" | "UPDATE" | "USAGE";
  readonly kind: "schema" | "table" | "sequence";
  /**
   * The object's name as SQL writes it (quoted where it must be), as the bot's own statements find it;
   * undefined for a schema when the search_path names none that exists.
   */
  readonly name: string | undefined;
}

export type PostgresCheck =
  | {
      readonly ok: true;
      /** The server's version number, e.g. "16.4". */
      readonly serverVersion: string;
      readonly user: string;
      readonly database: string;
      /** The schema the bot's tables are in (or go in): the first one on the search_path that exists. */
      readonly schema: string | undefined;
      /** The latest migration applied (ami_bot_schema); 0 when the bot has not created its tables yet. */
      readonly schemaVersion: number;
      /** The latest migration this build of the bot knows. */
      readonly latestVersion: number;
      /** What the bot needs on every start and lacks; empty when it has everything. */
      readonly missing: readonly MissingPrivilege[];
    }
  | {
      readonly ok: false;
      readonly problem: PostgresProblem;
      /** The SQLSTATE (3D000), the socket's errno code (ECONNREFUSED) or the error's name. */
      readonly code: string;
      /** The server's or the driver's message, for no_permission and unknown; it never holds the URL. */
      readonly message: string;
      /** host:port (or the socket path) the driver connected to, when the URL could be read. */
      readonly server: string | undefined;
      readonly database: string | undefined;
      readonly user: string | undefined;
    };

const PROBLEMS: Readonly<Record<string, PostgresProblem>> = {
  ENOTFOUND: "host_not_found",
  EAI_AGAIN: "host_not_found",
  ECONNREFUSED: "unreachable",
  ECONNRESET: "unreachable",
  ETIMEDOUT: "unreachable",
  EHOSTUNREACH: "unreachable",
  ENETUNREACH: "unreachable",
  "28P01": "auth_failed",
  "28000": "not_admitted",
  "3D000": "no_database",
  "42501": "no_permission",
  "53300": "unavailable",
  "57P01": "unavailable",
  "57P03": "unavailable",
};

/** Reads the server, the schema's version and the bot's privileges; aborting `signal` drops the connection. */
export async function checkPostgres(url: string, signal: AbortSignal): Promise<PostgresCheck> {
  // Our own socket, so an abort can cut the connection whatever state it is in (even mid-handshake).
  const socket = new Socket();
  let client: pg.Client | undefined;
  const abort = () => socket.destroy(new Error("the doctor stopped waiting"));
  try {
    client = new pg.Client({ connectionString: url, stream: () => socket });
    // A connection the server ends later must not crash the doctor.
    client.on("error", () => {});
    signal.throwIfAborted();
    signal.addEventListener("abort", abort, { once: true });
    await client.connect();
    return await readState(client);
  } catch (error) {
    const e = (error ?? {}) as { code?: unknown; name?: unknown; message?: unknown };
    const code = typeof e.code === "string" ? e.code : typeof e.name === "string" ? e.name : "Error";
    return {
      ok: false,
      problem: PROBLEMS[code] ?? "unknown",
      code,
      message: withoutUrl(typeof e.message === "string" ? e.message : String(error), url),
      server: client && (client.host.startsWith("/") ? client.host : `${client.host}:${client.port}`),
      database: client?.database,
      user: client?.user,
    };
  } finally {
    // Still under the signal: a server that never acknowledges the goodbye cannot hold the doctor.
    await client?.end().catch(() => {});
    signal.removeEventListener("abort", abort);
    socket.destroy();
  }
}

async function readState(client: pg.Client): Promise<PostgresCheck> {
  const { rows } = await client.query<{
    server_version: string;
    user: string;
    database: string;
    schema: string | null;
    quoted_schema: string | null;
    can_create: boolean;
    migrated: boolean;
  }>(
    `SELECT current_setting('server_version') AS server_version, current_user AS "user",
       current_database() AS database, current_schema() AS schema, quote_ident(current_schema()) AS quoted_schema,
       COALESCE(has_schema_privilege(current_schema(), 'CREATE'), false) AS can_create,
       to_regclass('ami_bot_schema') IS NOT NULL AS migrated`,
  );
  const state = rows[0];
  if (!state) throw new Error("the server answered no row");
  // Every start runs CREATE TABLE IF NOT EXISTS ami_bot_schema, which needs CREATE on the schema even
  // when the table is there.
  const missing: MissingPrivilege[] = state.can_create
    ? []
    : [{ privilege: "CREATE", kind: "schema", name: state.quoted_schema ?? undefined }];
  let schemaVersion = 0;
  if (state.migrated) {
    const version = await client.query<{ v: number | null }>("SELECT MAX(version) AS v FROM ami_bot_schema");
    schemaVersion = version.rows[0]?.v ?? 0;
    missing.push(...(await missingOnTables(client)));
  }
  return {
    ok: true,
    serverVersion: state.server_version.split(" ")[0] ?? state.server_version,
    user: state.user,
    database: state.database,
    schema: state.schema ?? undefined,
    schemaVersion,
    latestVersion: POSTGRES_MIGRATIONS.length,
    missing,
  };
}

/** What the store does to its tables and their serial columns' sequences, and the user may not. */
async function missingOnTables(client: pg.Client): Promise<MissingPrivilege[]> {
  // Only tables that exist: a table the schema's version says is there but is not is beyond this check.
  const { rows } = await client.query<{ name: string; kind: "table" | "sequence"; privilege: string }>(
    `WITH tables AS (
       SELECT name, n, serial FROM (VALUES ('jobs', 1, 'seq'), ('outbox', 2, 'id')) AS t(name, n, serial)
       WHERE to_regclass(name) IS NOT NULL
     )
     SELECT name, kind, privilege FROM (
       SELECT quote_ident(t.name) AS name, 'table' AS kind, p.privilege, 1 AS k, t.n, p.n AS pn
         FROM tables t CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE']) WITH ORDINALITY AS p(privilege, n)
         WHERE NOT has_table_privilege(t.name, p.privilege)
       UNION ALL
       SELECT s.name, 'sequence', 'USAGE', 2, t.n, 1
         FROM tables t CROSS JOIN LATERAL pg_get_serial_sequence(t.name, t.serial) AS s(name)
         WHERE s.name IS NOT NULL AND NOT has_sequence_privilege(s.name, 'USAGE')
     ) AS missing ORDER BY k, n, pn`,
  );
  return rows.map((r) => ({
    privilege: r.privilege as MissingPrivilege["privilege"],
    kind: r.kind,
    name: r.name,
  }));
}

/** The driver's messages name hosts, never the URL; this makes sure, whatever the message. */
function withoutUrl(message: string, url: string): string {
  let out = message.split(url).join("[DATABASE_URL]");
  try {
    const parsed = new URL(url);
    const { password } = parsed;
    // The driver also reads a password from the query string (?password=…).
    for (const secret of [password, decodeURIComponent(password), parsed.searchParams.get("password")])
      if (secret) out = out.split(secret).join("[redacted]");
  } catch {
    // Not a URL the WHATWG parser reads: the whole of it was replaced above, if it appeared.
  }
  return out;
}
