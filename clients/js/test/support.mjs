// Test support: a real bridge (`python -m bridge.cli.main serve`) on a free port with its own
// topology prefix, and a producer that publishes with amqplib exactly as a non-Python producer
// would (topic exchange <prefix>.events, routing key project.<id>.<type> or global.<type>,
// persistent JSON envelopes, publisher confirms).
//
// Environment: EVENTBRIDGE_PYTHON (the Python with eventbridge installed; default: the
// repository's .venv), EVENTBRIDGE_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/).

import { spawn, execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import amqp from "amqplib";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = join(here, "..", "..", "..");
export const PYTHON = process.env.EVENTBRIDGE_PYTHON || join(REPO, ".venv", "bin", "python");
export const AMQP_URL = process.env.EVENTBRIDGE_AMQP_URL || "amqp://guest:guest@127.0.0.1:5672/";
export const SECRET = "js-library-tests-secret-" + "x".repeat(40);
export const ISSUER = "https://auth.eventbridge.test";
export const TRANSPORTS = ["websocket", "socketio"];

if (!existsSync(PYTHON)) {
  throw new Error(`no Python at ${PYTHON}: run scripts/dev.sh setup, or set EVENTBRIDGE_PYTHON`);
}

const run = promisify(execFile);

export function uniquePrefix() {
  return `jstest-${randomUUID().slice(0, 12)}`;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait until `check()` is truthy; fail saying `what` (and `describe()`) after `timeoutMs`. */
export async function waitFor(check, what, { timeoutMs = 20_000, describe = () => "" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}. ${describe()}`);
    await sleep(25);
  }
}

function authEnv(auth) {
  if (auth === "jwt") {
    return {
      EVENTBRIDGE_AUTH: "jwt",
      EVENTBRIDGE_JWT_SECRET: SECRET,
      EVENTBRIDGE_JWT_ISSUER: ISSUER,
      EVENTBRIDGE_JWT_LEEWAY: "0",
    };
  }
  return { EVENTBRIDGE_AUTH: "anonymous" };
}

/** A bridge process of the test's own; `restart()` starts it again on the same port. */
export class Bridge {
  constructor({ prefix, port, auth = "anonymous", env = {} }) {
    Object.assign(this, { prefix, port, auth, env });
    this.url = `http://127.0.0.1:${port}`;
    this.process = null;
    this.output = "";
  }

  static async start(options) {
    const bridge = new Bridge({ port: await freePort(), ...options });
    await bridge.restart();
    return bridge;
  }

  async restart() {
    const env = {
      ...process.env,
      EVENTBRIDGE_AMQP_URL: AMQP_URL,
      EVENTBRIDGE_PREFIX: this.prefix,
      EVENTBRIDGE_HOST: "127.0.0.1",
      EVENTBRIDGE_PORT: String(this.port),
      EVENTBRIDGE_SHUTDOWN_TIMEOUT: "3",
      ...authEnv(this.auth),
      ...this.env,
    };
    const child = spawn(PYTHON, ["-m", "bridge.cli.main", "serve", "--log-level", "warning"], {
      cwd: REPO,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.process = child;
    const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    child.exited = exited;
    const keep = (chunk) => {
      this.output = (this.output + chunk.toString()).slice(-20_000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`the bridge exited at start-up: ${this.output}`);
        try {
          return (await fetch(`${this.url}/ready`)).status === 200;
        } catch {
          return false;
        }
      },
      "the bridge to be ready",
      { timeoutMs: 60_000, describe: () => this.output },
    );
  }

  /** The offset of the newest event of `project` this (anonymous) bridge holds, or -1. */
  async lastOffset(project) {
    const response = await fetch(`${this.url}/api/projects?limit=1000`);
    const { projects } = await response.json();
    return projects.find((item) => item.project_id === project)?.last_offset ?? -1;
  }

  /** Wait until this bridge has read from its log an event of `project` newer than `after`:
   * a join before that would get the event live rather than in its snapshot or catch-up. */
  async waitHandled(project, after = -1) {
    await waitFor(async () => (await this.lastOffset(project)) > after, `the bridge to read ${project}'s events`);
  }

  /** Crash it (SIGKILL: no goodbye to the clients) or stop it gracefully (SIGTERM). */
  async stop(signal = "SIGTERM") {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await child.exited;
    clearTimeout(timer);
  }

  /** Stop the process and delete the test's broker objects. */
  async close() {
    await this.stop("SIGTERM");
    await deleteTopology(this.prefix);
  }

  /** A token this bridge accepts, from `eventbridge token`. */
  async token({ projects = [], activityFeed = false, ttl = 3600 } = {}) {
    const args = ["-m", "bridge.cli.main", "token", "--ttl", String(ttl)];
    for (const project of projects) args.push("--project", project);
    if (activityFeed) args.push("--activity-feed");
    const { stdout } = await run(PYTHON, args, { cwd: REPO, env: { ...process.env, ...authEnv("jwt") } });
    return stdout.trim();
  }
}

export async function deleteTopology(prefix) {
  const connection = await amqp.connect(AMQP_URL, { clientProperties: { connection_name: "eventbridge-js-tests-cleanup" } });
  try {
    for (const queue of ["log", "snapshots", "dead-letters", "epoch", "checkpoint"]) {
      const channel = await connection.createChannel();
      channel.on("error", () => undefined);
      await channel.deleteQueue(`${prefix}.${queue}`).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
    const channel = await connection.createChannel();
    channel.on("error", () => undefined);
    await channel.deleteExchange(`${prefix}.events`).catch(() => undefined);
    await channel.close().catch(() => undefined);
  } finally {
    await connection.close();
  }
}

/** Publishes events as any AMQP 0.9.1 producer would: persistent JSON, confirmed by the broker. */
export class Publisher {
  static async open(prefix) {
    const publisher = new Publisher();
    publisher.exchange = `${prefix}.events`;
    publisher.connection = await amqp.connect(AMQP_URL, {
      clientProperties: { connection_name: "eventbridge-js-tests-producer" },
    });
    publisher.channel = await publisher.connection.createConfirmChannel();
    return publisher;
  }

  /** Publish one event; resolves with its envelope once the broker confirmed it. */
  async publish(type, projectId, data) {
    const envelope = {
      id: randomUUID(),
      type,
      schema_version: 1,
      project_id: projectId,
      source: "js-tests",
      occurred_at: new Date().toISOString(),
      data,
    };
    const key = projectId === null ? `global.${type}` : `project.${projectId}.${type}`;
    await new Promise((resolve, reject) => {
      this.channel.publish(this.exchange, key, Buffer.from(JSON.stringify(envelope)), {
        persistent: true,
        contentType: "application/json",
        messageId: envelope.id,
      }, (error) => (error ? reject(error) : resolve()));
    });
    return envelope;
  }

  async close() {
    await this.channel.close().catch(() => undefined);
    await this.connection.close().catch(() => undefined);
  }
}

/** One valid event of each type for `project` (and a global activity), as [type, project, data]. */
export function everyType(project) {
  return [
    ["agent_status", project, { agent_id: "a1", status: "running", message: "started" }],
    ["progress_update", project, { agent_id: "a1", progress: 0.5, stage: "plan" }],
    ["generation_complete", project, { agent_id: "a1", artifacts: [{ name: "main.tf", kind: "terraform" }] }],
    ["error", project, { agent_id: "a1", code: "E_QUOTA", message: "quota", retryable: true }],
    ["activity_created", project, { actor: "alice", action: "approved", priority: "high" }],
    ["activity_created", null, { actor: "ops", action: "paged" }],
    ["step_updated", project, { workflow_id: "w", step_id: "s", status: "in_review", changes: { a: 1 } }],
    ["step_completed", project, { workflow_id: "w", step_id: "s", result: { ok: true } }],
    ["deployment_status", project, { deployment_id: "d1", status: "running", progress: 0.25 }],
    ["deployment_log", project, { deployment_id: "d1", stream: "stderr", line: "warning: x" }],
  ];
}

/** Collects what a client delivers: every event with its meta, in order. */
export function record(client) {
  const seen = [];
  client.onEvent((event, meta) => seen.push({ event, meta }));
  return {
    seen,
    ids: () => seen.filter((item) => !item.meta.snapshot).map((item) => item.event.id),
    has: (ids) => ids.every((id) => seen.some((item) => item.event.id === id)),
  };
}

/** Ids delivered more than once. */
export function duplicates(ids) {
  const counts = new Map();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return [...counts].filter(([, n]) => n > 1).map(([id]) => id);
}
