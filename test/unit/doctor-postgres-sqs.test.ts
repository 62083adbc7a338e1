/**
 * The doctor's lines for the two optional dependencies: the Postgres database (DATABASE_URL), against the
 * run's throwaway Postgres server, and the events queue (AMI_EVENTS_QUEUE_URL), against the SQS stand-in.
 */
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { checkEventsQueue } from "../../src/aws/events-queue-check.js";
import { createSqsClient } from "../../src/aws/sqs-client.js";
import { type Config, loadConfig } from "../../src/config.js";
import {
  type DoctorDeps,
  type DoctorLine,
  describeDoctor,
  formatDoctor,
  runDoctor,
} from "../../src/doctor.js";
import { createLogger } from "../../src/logger.js";
import { checkPostgres } from "../../src/store/postgres-check.js";
import { openPostgresJobStore } from "../../src/store/postgres-job-store.js";
import { POSTGRES_MIGRATIONS } from "../../src/store/postgres-schema.js";
import { type FakeSqs, startFakeSqs } from "../fakes/fake-sqs.js";
import { freePort as closedPort } from "../support/free-port.js";
import { postgresForTest, type TestDatabase } from "../support/postgres.js";

/** The schema version the store migrates to. */
const LATEST = POSTGRES_MIGRATIONS.length;

const DATABASE_CHECK = "Postgres database (DATABASE_URL)";
const QUEUE_CHECK = "Events queue (AMI_EVENTS_QUEUE_URL)";
const hangForever = () => new Promise<never>(() => {});

function configWith(env: Record<string, string>): Config {
  return loadConfig({
    SLACK_BOT_TOKEN: "xoxb-test-token",
    SLACK_SIGNING_SECRET: "8f14e45fceea167a5a36dedd4bea2543",
    AMI_TARGET_ROLE_ARN: "arn:aws:iam::123456789012:role/ami-bot-target",
    AMI_TARGET_REGIONS: "eu-west-1",
    ...env,
  });
}

/** Slack and the target answer at once; the two checks under test are wired as doctor-main.ts wires them. */
function deps(config: Config, overrides: Partial<DoctorDeps> = {}): DoctorDeps {
  return {
    config,
    slack: {
      auth: { test: async () => ({ team: "T", user_id: "U" }) },
      apps: { connections: { open: async () => ({}) } },
      conversations: { info: async () => ({ channel: { is_private: true } }) },
    },
    botIdentity: async () => "arn:aws:sts::123456789012:assumed-role/ami-bot/i-0",
    assumeRole: async () => {},
    images: { findInstances: async () => [] } as unknown as DoctorDeps["images"],
    checkPostgres,
    checkEventsQueue: async (queueUrl, signal) => {
      const sqs = createSqsClient({
        queueUrl,
        timeouts: { connectTimeoutMs: 1_000, requestTimeoutMs: 3_000 },
        logger: createLogger("silent"),
      });
      try {
        return await checkEventsQueue(sqs, queueUrl, signal);
      } finally {
        sqs.destroy();
      }
    },
    checkTimeoutMs: 10_000,
    ...overrides,
  };
}

const lineFor = (lines: readonly DoctorLine[], check: string) => lines.find((l) => l.check === check);

/** A TCP server on 127.0.0.1 that hands each connection to `onSocket`. */
async function tcpServer(onSocket: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onSocket);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, port: (server.address() as { port: number }).port };
}

/** Postgres wire protocol: a backend message of this type with this body. */
function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, "latin1");
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/**
 * Speaks just enough of Postgres to refuse a password: asks for it in clear text, then answers 28P01 as a
 * server does. Records what the client sent.
 */
async function refusingServer(): Promise<{ server: Server; port: number; received: Buffer[] }> {
  const received: Buffer[] = [];
  const { server, port } = await tcpServer((socket) => {
    let asked = false;
    socket.on("data", (chunk: Buffer) => {
      received.push(chunk);
      if (!asked) {
        asked = true;
        const cleartext = Buffer.alloc(4);
        cleartext.writeInt32BE(3);
        socket.write(message("R", cleartext));
        return;
      }
      const fields = ["SFATAL", "VFATAL", "C28P01", 'Mpassword authentication failed for user "ami"'];
      socket.end(message("E", Buffer.from(`${fields.join("\0")}\0\0`, "utf8")));
    });
    socket.on("error", () => {});
  });
  return { server, port, received };
}

async function asSuperuser(url: string, ...statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const sql of statements) await client.query(sql);
  } finally {
    await client.end();
  }
}

/** The URL as another role, with a password (the run's server trusts every local connection). */
function asRole(url: string, role: string, password = "role-password-1234"): string {
  const other = new URL(url);
  other.username = role;
  other.password = password;
  return other.toString();
}

describe("npm run doctor: optional dependencies", () => {
  it("prints neither line when neither is configured, and names both when they are", async () => {
    const config = configWith({});
    const lines = await runDoctor(
      deps(config, { checkPostgres: hangForever, checkEventsQueue: hangForever, checkTimeoutMs: 5_000 }),
    );
    expect(lines.map((l) => l.check)).toEqual([
      "Slack token (auth.test)",
      "Slack signing secret (HTTP mode)",
      "AWS identity of the bot",
      "AssumeRole default",
      "CreateImage dry run default eu-west-1",
    ]);
    expect(describeDoctor(config)).not.toMatch(/DATABASE_URL|AMI_EVENTS_QUEUE_URL/);
    const both = configWith({
      DATABASE_URL: "postgres://ami:secret-password@db.internal:5432/ami",
      AMI_EVENTS_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/ami-bot-events",
    });
    expect(describeDoctor(both)).toBe(
      "Checking the Slack bot token, the signing secret (HTTP mode), the Postgres database (DATABASE_URL), the bot's AWS identity, the events queue (AMI_EVENTS_QUEUE_URL), AssumeRole into 1 target(s) and a CreateImage dry run in 1 region(s); each check gives up after 15 s.",
    );
  });

  describe("Postgres database (DATABASE_URL)", () => {
    let database: TestDatabase;
    const roles: string[] = [];
    const servers: Server[] = [];

    beforeAll(async () => {
      database = await postgresForTest("doctor");
    });
    afterAll(async () => {
      if (database) for (const role of roles) await asSuperuser(database.url, `DROP ROLE IF EXISTS ${role}`);
      await database?.drop();
    });
    afterEach(async () => {
      for (const server of servers.splice(0)) server.close();
    });

    const doctorOn = async (url: string, overrides: Partial<DoctorDeps> = {}) => {
      const lines = await runDoctor(deps(configWith({ DATABASE_URL: url }), overrides));
      return { lines, line: lineFor(lines, DATABASE_CHECK), text: formatDoctor(lines) };
    };

    /** A fresh database, and a login role of its own that owns nothing in it. */
    async function databaseWithRole(): Promise<{ db: TestDatabase; role: string }> {
      const db = await postgresForTest("doctor_role");
      const role = `ami_doctor_${Math.random().toString(36).slice(2, 10)}`;
      roles.push(role);
      await asSuperuser(db.url, `CREATE ROLE ${role} LOGIN`);
      return { db, role };
    }

    it("passes with the server version on an empty database, after the Slack lines", async () => {
      const { lines, line, text } = await doctorOn(database.url);
      expect(lines.map((l) => l.check).slice(0, 4)).toEqual([
        "Slack token (auth.test)",
        "Slack signing secret (HTTP mode)",
        DATABASE_CHECK,
        "AWS identity of the bot",
      ]);
      expect(line?.status).toBe("PASS");
      expect(text).toMatch(
        /^PASS {2}Postgres database \(DATABASE_URL\): PostgreSQL \d+\.\d+; empty: the bot creates its tables on first start \(user postgres may create tables in schema public\)$/m,
      );
    });

    it("passes with the schema's version once the store has migrated it", async () => {
      const migrated = await postgresForTest("doctor_migrated");
      try {
        const store = await openPostgresJobStore(migrated.url, { owner: "t", leaseMs: 30_000 });
        await store.close();
        const { line } = await doctorOn(migrated.url);
        expect(line?.status).toBe("PASS");
        expect(line?.detail).toMatch(
          new RegExp(`^PostgreSQL \\d+\\.\\d+; schema at version ${LATEST} of ${LATEST}$`),
        );

        // A newer release migrated further: this one would run on a schema it does not know.
        await asSuperuser(
          migrated.url,
          `INSERT INTO ami_bot_schema (version, applied_at) VALUES (${LATEST + 1}, now())`,
        );
        const newer = await doctorOn(migrated.url);
        expect(newer.line?.status).toBe("WARN");
        expect(newer.line?.detail).toContain(
          `; schema at version ${LATEST + 1}, newer than this ami-bot knows (${LATEST}): a newer release migrated this database — run that release on every replica`,
        );
      } finally {
        await migrated.drop();
      }
    });

    it("fails without printing the password when the database does not exist", async () => {
      const missing = new URL(database.url);
      missing.pathname = "/ami_doctor_no_such_db";
      missing.password = "p@ss:w0rd/secret";
      const url = missing.toString();
      const { line, text } = await doctorOn(url);
      expect(line).toEqual({
        status: "FAIL",
        check: DATABASE_CHECK,
        detail: `database ami_doctor_no_such_db does not exist on ${missing.hostname}:${missing.port} (3D000): create it (CREATE DATABASE ami_doctor_no_such_db OWNER postgres;) or fix the database name at the end of DATABASE_URL`,
      });
      for (const secret of ["p@ss:w0rd/secret", missing.password, url]) expect(text).not.toContain(secret);
    });

    it("fails with network advice when nothing listens on the port", async () => {
      const port = await closedPort();
      const url = `postgres://ami:hunter2-secret@127.0.0.1:${port}/ami`;
      const { line, text } = await doctorOn(url);
      expect(line).toEqual({
        status: "FAIL",
        check: DATABASE_CHECK,
        detail: `could not reach the Postgres server at 127.0.0.1:${port} (ECONNREFUSED) — check the host and port in DATABASE_URL, that the server is running, and network access from this host to it, including any firewall or security group on the way`,
      });
      expect(text).not.toContain("hunter2-secret");
    });

    it("fails with DNS advice when the host is not found", async () => {
      const { line } = await doctorOn("postgres://ami:hunter2-secret@no-such-host.invalid:5432/ami");
      expect(line?.status).toBe("FAIL");
      expect(line?.detail).toMatch(
        /^the database host in DATABASE_URL \(no-such-host\.invalid:5432\) was not found \((ENOTFOUND|EAI_AGAIN)\): check the host name/,
      );
    });

    it("fails with credentials advice, and no password, when the server refuses the password", async () => {
      // The run's server trusts local connections, so a stand-in refuses as Postgres does.
      const refusing = await refusingServer();
      servers.push(refusing.server);
      const password = "hunter2-Secret";
      const { line, text } = await doctorOn(`postgres://ami:${password}@127.0.0.1:${refusing.port}/ami`);
      expect(line).toEqual({
        status: "FAIL",
        check: DATABASE_CHECK,
        detail:
          "the Postgres server refused the password of user ami (password authentication failed, 28P01): check the user name and password in DATABASE_URL (percent-encode any @ : / ? # in the password); the password is not shown here",
      });
      // The client did send it: the line leaves it out, not the check.
      expect(Buffer.concat(refusing.received).toString("utf8")).toContain(password);
      expect(text).not.toContain(password);
    });

    it("fails with what to grant when the user may not connect", async () => {
      const { db, role } = await databaseWithRole();
      try {
        const name = new URL(db.url).pathname.slice(1);
        await asSuperuser(db.url, `REVOKE CONNECT ON DATABASE "${name}" FROM PUBLIC`);
        const { line, text } = await doctorOn(asRole(db.url, role));
        expect(line?.status).toBe("FAIL");
        expect(line?.detail).toBe(
          `user ${role} is not allowed to use database ${name} (42501: permission denied for database "${name}"): the bot needs CONNECT on the database, CREATE on its schema and SELECT, INSERT, UPDATE on its tables; ask the database's owner to grant them`,
        );
        expect(text).not.toContain("role-password-1234");
      } finally {
        await db.drop();
      }
    });

    it("fails with the GRANT statements for what the user lacks, and passes once they are run", async () => {
      const { db, role } = await databaseWithRole();
      try {
        // Postgres 15 and later give no one CREATE on schema public; make it so on older servers too.
        await asSuperuser(db.url, "REVOKE CREATE ON SCHEMA public FROM PUBLIC");
        const empty = await doctorOn(asRole(db.url, role));
        expect(empty.line?.status).toBe("FAIL");
        expect(empty.line?.detail).toMatch(
          new RegExp(
            `; user ${role} lacks CREATE on schema public in database \\w+, which the bot needs on every start: as the database's owner, run GRANT CREATE ON SCHEMA public TO ${role};$`,
          ),
        );

        // Tables made by someone else: the bot still needs CREATE on the schema, and rights on each table.
        const store = await openPostgresJobStore(db.url, { owner: "t", leaseMs: 30_000 });
        await store.close();
        await asSuperuser(db.url, `GRANT SELECT ON ami_bot_schema, jobs TO ${role}`);
        const migrated = await doctorOn(asRole(db.url, role));
        expect(migrated.line?.status).toBe("FAIL");
        const grants = migrated.line?.detail.split("as the database's owner, run ")[1] ?? "";
        expect(grants.split("; ")).toEqual([
          `GRANT CREATE ON SCHEMA public TO ${role}`,
          `GRANT INSERT ON TABLE jobs TO ${role}`,
          `GRANT UPDATE ON TABLE jobs TO ${role}`,
          `GRANT SELECT ON TABLE outbox TO ${role}`,
          `GRANT INSERT ON TABLE outbox TO ${role}`,
          `GRANT UPDATE ON TABLE outbox TO ${role}`,
          `GRANT USAGE ON SEQUENCE public.jobs_seq_seq TO ${role}`,
          `GRANT USAGE ON SEQUENCE public.outbox_id_seq TO ${role};`,
        ]);

        await asSuperuser(db.url, grants);
        const granted = await doctorOn(asRole(db.url, role));
        expect(granted.line?.status).toBe("PASS");
        expect(granted.line?.detail).toMatch(new RegExp(`; schema at version ${LATEST} of ${LATEST}$`));
      } finally {
        await db.drop();
      }
    });

    it("never prints DATABASE_URL or its password, even when a message carries them", async () => {
      const url = "postgres://ami:Pa%24%24word-1234@db.internal:5432/ami?sslmode=require";
      const lines = await runDoctor(
        deps(configWith({ DATABASE_URL: url }), {
          checkPostgres: async () => ({
            ok: false,
            problem: "unknown",
            code: "Error",
            message: `cannot use ${url}: Pa$$word-1234 and Pa%24%24word-1234 rejected`,
            server: "db.internal:5432",
            database: "ami",
            user: "ami",
          }),
        }),
      );
      expect(lineFor(lines, DATABASE_CHECK)).toEqual({
        status: "FAIL",
        check: DATABASE_CHECK,
        detail:
          "could not use the Postgres database (Error: cannot use [DATABASE_URL]: [redacted] and [redacted] rejected)",
      });
    });

    it("gives up in time on a server that never answers, and drops the connection", async () => {
      const sockets: Socket[] = [];
      const silent = await tcpServer((socket) => {
        sockets.push(socket);
        // Reads (and ignores) the startup message, so the client's close shows.
        socket.resume();
        socket.on("error", () => {});
      });
      servers.push(silent.server);
      const { line } = await doctorOn(`postgres://ami:hunter2-secret@127.0.0.1:${silent.port}/ami`, {
        checkTimeoutMs: 300,
      });
      expect(line).toEqual({
        status: "FAIL",
        check: DATABASE_CHECK,
        detail:
          "no answer from the Postgres server within 0.3 s — check the host and port in DATABASE_URL, that the server is running, and network access from this host to it, including any firewall or security group on the way",
      });
      await vi.waitFor(() => expect(sockets.length > 0 && sockets.every((s) => s.destroyed)).toBe(true));
    });
  });

  describe("Events queue (AMI_EVENTS_QUEUE_URL)", () => {
    let fake: FakeSqs;

    beforeEach(async () => {
      // The bot's own credentials, and AWS_REGION: a local stand-in's URL names no region.
      vi.stubEnv("AWS_ACCESS_KEY_ID", "test");
      vi.stubEnv("AWS_SECRET_ACCESS_KEY", "test");
      vi.stubEnv("AWS_SESSION_TOKEN", "");
      vi.stubEnv("AWS_REGION", "eu-west-1");
      fake = await startFakeSqs({
        redrivePolicies: {
          "ami-events": {
            deadLetterTargetArn: "arn:aws:sqs:eu-west-1:123456789012:ami-events-dlq",
            maxReceiveCount: 5,
          },
        },
        queues: ["ami-events", "no-dlq"],
      });
    });
    afterEach(async () => {
      vi.unstubAllEnvs();
      await fake.close();
    });

    const doctorOn = async (queueUrl: string, overrides: Partial<DoctorDeps> = {}) => {
      const lines = await runDoctor(deps(configWith({ AMI_EVENTS_QUEUE_URL: queueUrl }), overrides));
      return { lines, line: lineFor(lines, QUEUE_CHECK) };
    };

    it("passes with the messages waiting and the dead-letter queue, after the identity line, receiving nothing", async () => {
      fake.send("{}");
      fake.send("{}");
      const { lines, line } = await doctorOn(fake.queueUrl());
      expect(lines.map((l) => l.check).slice(2, 4)).toEqual(["AWS identity of the bot", QUEUE_CHECK]);
      expect(line).toEqual({
        status: "PASS",
        check: QUEUE_CHECK,
        detail: "2 message(s) waiting; dead-letter queue configured (ami-events-dlq, after 5 receives)",
      });
      expect(fake.calls.map((c) => [c.operation, c.input.AttributeNames, c.region])).toEqual([
        ["GetQueueAttributes", ["ApproximateNumberOfMessages", "RedrivePolicy"], "eu-west-1"],
      ]);
      expect(fake.messages().map((m) => m.receiveCount)).toEqual([0, 0]);
    });

    it("warns when the queue has no dead-letter queue", async () => {
      const { line } = await doctorOn(fake.queueUrl("no-dlq"));
      expect(line).toEqual({
        status: "WARN",
        check: QUEUE_CHECK,
        detail:
          "0 message(s) waiting; no dead-letter queue configured: an event the bot keeps failing on would be received again forever — give the queue a RedrivePolicy (deploy/events.yaml sets one)",
      });
    });

    it("fails with where to find the URL when the queue does not exist", async () => {
      const { line } = await doctorOn(fake.queueUrl("ami-events-typo"));
      expect(line).toEqual({
        status: "FAIL",
        check: QUEUE_CHECK,
        detail:
          "SQS says the queue in AMI_EVENTS_QUEUE_URL does not exist (QueueDoesNotExist): copy the QueueUrl output of the deploy/events.yaml stack into AMI_EVENTS_QUEUE_URL, and check the account id, region and queue name in it",
      });
    });

    it("fails with the permissions the bot needs when SQS denies access", async () => {
      fake.failNext("GetQueueAttributes", {
        status: 403,
        type: "com.amazon.coral.service#AccessDeniedException",
        queryCode: "AccessDenied",
        message: "User: arn:aws:sts::123456789012:assumed-role/ami-bot/i-0 is not authorized",
      });
      const { line } = await doctorOn(fake.queueUrl());
      expect(line).toEqual({
        status: "FAIL",
        check: QUEUE_CHECK,
        detail:
          "ami-bot's AWS identity may not use the events queue (AccessDenied): it needs sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes on the queue: attach deploy/events.yaml's managed policy (its BotPolicyArn output, or deploy the stack with BotRoleName) to the identity in the \"AWS identity of the bot\" line",
      });
    });

    it("fails with network advice naming the queue's host when nothing listens there", async () => {
      const port = await closedPort();
      const { line } = await doctorOn(`http://127.0.0.1:${port}/123456789012/ami-events`);
      expect(line).toEqual({
        status: "FAIL",
        check: QUEUE_CHECK,
        detail: `could not reach AWS (ECONNREFUSED) — check network access from this host to 127.0.0.1:${port} (or AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL when set), including any proxy or firewall on the way`,
      });
    });

    it("gives up in time when the queue does not answer", async () => {
      fake.hang("GetQueueAttributes");
      const { line } = await doctorOn(fake.queueUrl(), { checkTimeoutMs: 300 });
      expect(line?.status).toBe("FAIL");
      expect(line?.detail).toBe(
        `no answer from AWS SQS within 0.3 s — check network access from this host to ${new URL(fake.url).host} (or AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL when set), including any proxy or firewall on the way`,
      );
    });

    it("fails with what to set when there is no region to sign for", async () => {
      vi.stubEnv("AWS_REGION", "");
      vi.stubEnv("AWS_CONFIG_FILE", "/nonexistent/aws-config");
      const { line } = await doctorOn(fake.queueUrl());
      expect(line).toEqual({
        status: "FAIL",
        check: QUEUE_CHECK,
        detail:
          "AMI_EVENTS_QUEUE_URL names no AWS region (it is not an sqs.<region>.amazonaws.com URL) and AWS_REGION is not set: set AWS_REGION to the queue's region",
      });
      expect(fake.calls).toEqual([]);
    });
  });
});
