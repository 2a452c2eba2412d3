// Transport (hosts layer): run a shell command on a host, over SSH (one pooled connection per host) or locally.
//
// Everything here must keep working after Pulumi serializes a dynamic provider's functions:
// node modules are required inside the functions, and the connection pool lives on globalThis
// (looked up at call time) instead of in a module-level variable that would be captured by value.

/* eslint-disable @typescript-eslint/no-require-imports */
import type { Client, ClientChannel, ConnectConfig } from "ssh2";

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

export interface Transport {
  /** Name used in errors, e.g. the node name or address. */
  readonly host: string;
  exec(command: string, stdin?: string): Promise<ExecResult>;
  close(): Promise<void>;
}

/** An Engine API answer: the HTTP status and the body, parsed when it is JSON. */
export interface EngineResponse {
  readonly status: number;
  readonly body: unknown;
}

/** A Transport that also carries Docker Engine API requests to the host's own dockerd. */
export interface EngineTransport extends Transport {
  /**
   * One Engine API request (e.g. `GET /info`), sent through `docker system dial-stdio` on the host: what
   * `docker -H ssh://host` runs there, so it reaches the daemon the host's docker CLI would (DOCKER_HOST, context).
   * That process is kept open between requests, one per host, and carries them one after the other. Resolves with
   * any status; rejects only when the request could not be made (SSH, no docker on the host) or got no answer in
   * SshTarget.requestTimeoutMs (then that channel is closed), naming the host.
   */
  request(method: string, path: string, body?: unknown): Promise<EngineResponse>;
}

export interface SshTarget {
  /** Name for messages. */
  readonly host: string;
  readonly address: string;
  /** Default 22. */
  readonly port?: number;
  /** Default root. */
  readonly user?: string;
  /** Secret: never logged, never in an error message. */
  readonly privateKey: string;
  /** "SHA256:<base64>" as ssh-keygen -lf prints; if set, a mismatch refuses the connection. */
  readonly hostKeyFingerprint?: string;
  /** Alternatively, known_hosts text; if set, the host must be listed with a matching key. */
  readonly knownHosts?: string;
  /** Per attempt. Default 10000. */
  readonly connectTimeoutMs?: number;
  /** Number of connection attempts, with bounded backoff (250 ms doubling, at most 2 s). Default 3. */
  readonly retries?: number;
  /**
   * How long an Engine API request may wait for its answer before it fails (a hung daemon). Default 300000: far
   * above what a swarm request takes (a join answers in seconds; the daemon gives up on one after 20 s).
   */
  readonly requestTimeoutMs?: number;
}

/** Most sessions one connection runs at once (OpenSSH's MaxSessions defaults to 10). */
const MAX_SESSIONS = 8;

interface PooledConnection {
  client?: Client;
  connecting?: Promise<Client>;
  /** Keeps the host's `docker system dial-stdio` channel open between Engine API requests (see engineRequest). */
  engine?: import("http").Agent;
  /** What the open dial-stdio channel printed on stderr (why it closed, when it did). */
  engineStderr?: string[];
  /** The last Engine API request queued for this host: the next one starts when it is done. */
  engineQueue?: Promise<void>;
  active: number;
  waiting: (() => void)[];
  /** Number of TCP+SSH connections made so far for this key (for tests and diagnostics). */
  connects: number;
}

interface Pool {
  connections: Map<string, PooledConnection>;
}

function pool(): Pool {
  const slot = Symbol.for("swarmform.transport.pool");
  const g = globalThis as unknown as Record<symbol, Pool | undefined>;
  if (!g[slot]) g[slot] = { connections: new Map() };
  return g[slot]!;
}

function poolKey(target: SshTarget): string {
  return `${target.user ?? "root"}@${target.address}:${target.port ?? 22}`;
}

/** `ssh root@10.0.0.3:22 (h3)`: the prefix of every error about this target. */
export function describeTarget(target: Pick<SshTarget, "host" | "address" | "port" | "user">): string {
  return `ssh ${target.user ?? "root"}@${target.address}:${target.port ?? 22} (${target.host})`;
}

/** Removes every line of the private key (and the whole key) from a message. */
export function redact(message: string, secret: string): string {
  let out = message;
  const pieces = [secret.trim(), ...secret.split(/\r?\n/).map((l) => l.trim())].filter((p) => p.length >= 8);
  for (const p of pieces) out = out.split(p).join("[redacted]");
  return out;
}

/** SHA256 fingerprint of an SSH public key blob, formatted as `ssh-keygen -lf` prints it. */
export function fingerprintOf(keyBlob: Buffer): string {
  const crypto = require("crypto") as typeof import("crypto");
  return "SHA256:" + crypto.createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "");
}

/**
 * A new SSH key pair in OpenSSH format (ECDSA P-256), for keys that are made rather than given: describe's
 * stand-in `sshPrivateKey`, and the tests'. Not ed25519: ssh2 1.17 writes a malformed OpenSSH ed25519 key when
 * the public key starts with a zero byte (about 1 key in 256), and then cannot parse it back.
 */
export function generateSshKeyPair(): { private: string; public: string } {
  const { utils } = require("ssh2") as typeof import("ssh2");
  return utils.generateKeyPairSync("ecdsa", { bits: 256 });
}

/** Whether a known_hosts text lists `address` (port 22) or `[address]:port` with exactly this key blob. */
export function knownHostsAccepts(
  knownHosts: string,
  address: string,
  port: number,
  keyBlob: Buffer,
): boolean {
  const crypto = require("crypto") as typeof import("crypto");
  const names = port === 22 ? [address, `[${address}]:22`] : [`[${address}]:${port}`];
  const blob = keyBlob.toString("base64");
  for (const raw of knownHosts.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    if (fields[0].startsWith("@")) {
      if (fields[0] === "@revoked" && fields[3] === blob) return false;
      continue; // @cert-authority is not supported
    }
    const [hostField, , keyField] = fields;
    if (keyField !== blob) continue;
    const matches = hostField.split(",").some((pattern) => {
      if (pattern.startsWith("|1|")) {
        const [, , salt, hash] = pattern.split("|");
        return names.some(
          (n) => crypto.createHmac("sha1", Buffer.from(salt, "base64")).update(n).digest("base64") === hash,
        );
      }
      return names.includes(pattern);
    });
    if (matches) return true;
  }
  return false;
}

/** Opens one SSH connection, retrying with bounded backoff; errors name the host and never carry the key. */
function connect(target: SshTarget): Promise<Client> {
  const { Client: SshClient } = require("ssh2") as typeof import("ssh2");
  const attempts = Math.max(1, target.retries ?? 3);
  const timeout = target.connectTimeoutMs ?? 10000;
  const port = target.port ?? 22;
  const what = describeTarget(target);

  const once = (): Promise<Client> =>
    new Promise((resolve, reject) => {
      const client = new SshClient();
      let hostKeyProblem: string | undefined;
      let settled = false;
      let timer: ReturnType<typeof setTimeout> | undefined = undefined;
      const fail = (err: Error & { level?: string }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.end();
        const reason = hostKeyProblem ?? err.message;
        const e = new Error(reason) as Error & { permanent?: boolean; timedOut?: boolean };
        e.permanent = hostKeyProblem !== undefined || err.level === "client-authentication";
        e.timedOut = /timed out/i.test(reason);
        reject(e);
      };
      timer = setTimeout(() => fail(new Error(`connection timed out after ${timeout} ms`)), timeout + 1000);
      client.once("ready", () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(client);
      });
      client.on("error", fail);
      const config: ConnectConfig = {
        host: target.address,
        port,
        username: target.user ?? "root",
        privateKey: target.privateKey,
        readyTimeout: timeout,
        keepaliveInterval: 15000,
        keepaliveCountMax: 4,
        hostVerifier: (key: Buffer) => {
          if (target.hostKeyFingerprint !== undefined) {
            const actual = fingerprintOf(key);
            if (actual !== target.hostKeyFingerprint) {
              hostKeyProblem = `host key mismatch: expected ${target.hostKeyFingerprint}, got ${actual}`;
              return false;
            }
          }
          if (
            target.knownHosts !== undefined &&
            !knownHostsAccepts(target.knownHosts, target.address, port, key)
          ) {
            hostKeyProblem = `host key ${fingerprintOf(key)} is not in the given known_hosts`;
            return false;
          }
          return true;
        },
      };
      try {
        client.connect(config);
      } catch (err) {
        fail(err as Error);
      }
    });

  return (async () => {
    let last: (Error & { permanent?: boolean; timedOut?: boolean }) | undefined;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, Math.min(2000, 250 * 2 ** (i - 1))));
      try {
        return await once();
      } catch (err) {
        last = err as Error & { permanent?: boolean; timedOut?: boolean };
        if (last.permanent) break;
      }
    }
    const reason = last?.timedOut
      ? "connection timed out"
      : redact(last?.message ?? "unknown error", target.privateKey);
    const tries = last?.permanent ? "" : ` after ${attempts} attempt${attempts === 1 ? "" : "s"}`;
    throw new Error(`${what}: ${reason}${tries}`);
  })();
}

/** Returns the pooled connection for this target, connecting (or reconnecting after a drop) if needed. */
function getClient(target: SshTarget): Promise<Client> {
  const p = pool();
  const key = poolKey(target);
  let entry = p.connections.get(key);
  if (!entry) {
    entry = { active: 0, waiting: [], connects: 0 };
    p.connections.set(key, entry);
  }
  const e = entry;
  if (e.client) return Promise.resolve(e.client);
  if (!e.connecting) {
    e.connects++;
    stats().connects++;
    e.connecting = connect(target).then(
      (client) => {
        e.client = client;
        e.connecting = undefined;
        const forget = () => {
          if (e.client === client) e.client = undefined;
        };
        client.on("close", forget);
        client.on("end", forget);
        client.on("error", forget);
        return client;
      },
      (err) => {
        e.connecting = undefined;
        throw err;
      },
    );
  }
  return e.connecting;
}

async function withSession<T>(target: SshTarget, fn: () => Promise<T>): Promise<T> {
  await getClient(target); // creates the pool entry
  const e = pool().connections.get(poolKey(target));
  if (!e) return fn(); // closed meanwhile: fn reconnects
  while (e.active >= MAX_SESSIONS) await new Promise<void>((r) => e.waiting.push(r));
  e.active++;
  try {
    return await fn();
  } finally {
    e.active--;
    e.waiting.shift()?.();
  }
}

/** Exit code of a command killed by a signal, as a shell reports it (128 + signal number). */
function signalCode(signal: string | undefined): number {
  const os = require("os") as typeof import("os");
  const name = signal?.startsWith("SIG") ? signal : `SIG${signal}`; // ssh2 may or may not prefix SIG
  const n = (os.constants.signals as Record<string, number>)[name];
  return 128 + (n ?? 0);
}

/** Runs one exec channel to its end. Rejects (marked `lost`) when the connection closes before the exit status. */
function runOnChannel(stream: ClientChannel, stdin: string | undefined): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let code: number | undefined;
    let signal: string | undefined;
    stream.on("data", (d: Buffer) => out.push(d));
    stream.stderr.on("data", (d: Buffer) => err.push(d));
    stream.on("exit", (c: number | null, s?: string) => {
      if (c !== null && c !== undefined) code = c;
      else signal = s ?? "UNKNOWN";
    });
    stream.on("error", (e: Error) => reject(Object.assign(e, { lost: true })));
    stream.on("close", () => {
      if (code === undefined && signal === undefined) {
        reject(Object.assign(new Error("connection lost before the command's exit status"), { lost: true }));
        return;
      }
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      resolve({ stdout, stderr, code: code ?? signalCode(signal) });
    });
    stream.end(stdin ?? "");
  });
}

/** Whether a command only reads (`read`) or may change something on the host (`mutating`). */
export type CommandKind = "read" | "mutating";

/**
 * Classifies a shell command, conservatively: `read` only when every docker invocation in it is one that
 * only reads (info, version, node inspect/ls/ps, service ls/ps/inspect, swarm join-token without --rotate)
 * and nothing else in it writes (no redirection to a file, no mkdir/rm/mv/cp/touch/tee/kill/systemctl).
 * Anything else, including an unknown command, counts as `mutating`.
 */
export function commandKind(command: string): CommandKind {
  const readDocker = /^(info|version|node (inspect|ls|ps)|service (ls|ps|inspect)|swarm join-token)$/;
  for (const m of command.matchAll(/\bdocker\s+([a-z-]+)(?:\s+([a-z-]+))?/g)) {
    const sub = m[1] === "node" || m[1] === "service" || m[1] === "swarm" ? `${m[1]} ${m[2] ?? ""}` : m[1];
    if (!readDocker.test(sub)) return "mutating";
  }
  if (/--rotate\b/.test(command)) return "mutating";
  const unquoted = command.replace(/'[^']*'/g, "''").replace(/"[^"]*"/g, '""');
  if (/>\s*(?!\/dev\/null|&)/.test(unquoted)) return "mutating";
  // Every simple command must start with a program known to only read (shell keywords, assignments and case
  // patterns aside).
  const readPrograms = new Set([
    "docker",
    "true",
    "false",
    "echo",
    "printf",
    "cat",
    "test",
    "[",
    "exit",
    "wait",
    ":",
  ]);
  const keywords = new Set(["if", "then", "else", "elif", "fi", "esac", "in", "!", "do", "done"]);
  // A lone `&` (a command sent to the background) separates commands too; `2>&1` and `&>` do not.
  for (const segment of unquoted.split(/&&|\|\||;;|[;|\n(){}`]|\$\(|(?<![>&])&(?![&>\d])/)) {
    const words = segment
      .trim()
      .split(/\s+/)
      .filter((w) => w !== "");
    const skip = (w: string) =>
      keywords.has(w) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(w) || /^\d*>(\/dev\/null|&\d)$/.test(w);
    while (words.length > 0 && skip(words[0])) words.shift();
    if (words.length === 0 || words[0] === "case" || words[0].includes("*")) continue;
    if (words[0].startsWith("$") && words.length === 1) continue; // `$?` as an argument of exit
    if (!readPrograms.has(words[0])) return "mutating";
  }
  return "read";
}

/** Commands sent and SSH connections opened by this process's SSH transports (for benchmarks and tests). */
export interface TransportStats {
  read: number;
  mutating: number;
  connects: number;
  /** Per host name (SshTarget.host): commands of each kind. */
  byHost: Record<string, { read: number; mutating: number }>;
}

function stats(): TransportStats {
  const slot = Symbol.for("swarmform.transport.stats");
  const g = globalThis as unknown as Record<symbol, TransportStats | undefined>;
  if (!g[slot]) g[slot] = { read: 0, mutating: 0, connects: 0, byHost: {} };
  return g[slot]!;
}

/** A copy of the counters since the last reset. */
export function transportStats(): TransportStats {
  const s = stats();
  return {
    read: s.read,
    mutating: s.mutating,
    connects: s.connects,
    byHost: Object.fromEntries(Object.entries(s.byHost).map(([h, c]) => [h, { ...c }])),
  };
}

export function resetTransportStats(): void {
  const s = stats();
  s.read = 0;
  s.mutating = 0;
  s.connects = 0;
  s.byHost = {};
}

/** One command as the command log records it (the command text is cut; secrets never are in it: stdin carries them). */
export interface CommandRecord {
  host: string;
  kind: CommandKind;
  command: string;
  start: number;
  end?: number;
}

/**
 * Counts a command; when `globalThis[Symbol.for("swarmform.transport.log")]` is an array (a benchmark sets
 * it), also records it there, to be completed with its end time.
 */
function countCommand(
  host: string,
  command: string,
  kind: CommandKind = commandKind(command),
): CommandRecord | undefined {
  const s = stats();
  s[kind]++;
  (s.byHost[host] ??= { read: 0, mutating: 0 })[kind]++;
  const log = (globalThis as unknown as Record<symbol, unknown>)[Symbol.for("swarmform.transport.log")];
  if (!Array.isArray(log)) return undefined;
  const rec: CommandRecord = { host, kind, command: command.slice(0, 80), start: Date.now() };
  log.push(rec);
  return rec;
}

/** Number of SSH connections opened so far for `user@address:port` (for tests: proves reuse). */
export function sshConnectionCount(target: Pick<SshTarget, "address" | "port" | "user">): number {
  return pool().connections.get(poolKey(target as SshTarget))?.connects ?? 0;
}

/**
 * A Transport over SSH. One connection per user@address:port is shared by all transports and reused;
 * `close()` closes that shared connection (the next exec reconnects).
 *
 * A command is sent at most once: when the connection fails before the command starts, exec reconnects
 * and tries once more; when it is lost while the command runs, exec fails (the command may have run).
 */
export function sshTransport(target: SshTarget): EngineTransport {
  const real = pooledSshTransport(target);
  // Bench hook (tests/bench/scale.ts): when `globalThis[Symbol.for("swarmform.transport.wrap")]` is a
  // function, it is given each SSH transport and its result is used instead (to time or replay commands).
  const wrap = (globalThis as unknown as Record<symbol, unknown>)[Symbol.for("swarmform.transport.wrap")];
  return typeof wrap === "function"
    ? (wrap as (t: SshTarget, real: EngineTransport) => EngineTransport)(target, real)
    : real;
}

function pooledSshTransport(target: SshTarget): EngineTransport {
  const what = describeTarget(target);
  return {
    host: target.host,
    async request(method: string, path: string, body?: unknown): Promise<EngineResponse> {
      const rec = countCommand(target.host, `${method} ${path}`, method === "GET" ? "read" : "mutating");
      try {
        return await engineRequest(target, method, path, body);
      } finally {
        if (rec) rec.end = Date.now();
      }
    },
    async exec(command: string, stdin?: string): Promise<ExecResult> {
      const rec = countCommand(target.host, command);
      try {
        return await execOnce(command, stdin);
      } finally {
        if (rec) rec.end = Date.now();
      }
    },
    async close(): Promise<void> {
      const p = pool();
      const key = poolKey(target);
      const entry = p.connections.get(key);
      p.connections.delete(key);
      entry?.engine?.destroy();
      endClient(entry?.client ?? (await entry?.connecting?.catch(() => undefined)));
    },
  };

  async function execOnce(command: string, stdin?: string): Promise<ExecResult> {
    for (let attempt = 0; ; attempt++) {
      let client: Client | undefined;
      let started = false;
      try {
        return await withSession(target, async () => {
          client = await getClient(target);
          // The channel's listeners go on inside the callback, not after an await: for a fast command ssh2
          // handles the exec reply, the output, the exit status and the close from one read, in one go, and
          // an `exit` event emitted before anyone listens is lost (seen as "connection lost" 1 in 5 times).
          return await new Promise<ExecResult>((resolve, reject) =>
            client!.exec(command, (err, stream) => {
              if (err) return reject(err);
              started = true;
              runOnChannel(stream, stdin).then(resolve, reject);
            }),
          );
        });
      } catch (err) {
        const message = (err as Error).message;
        if (message.startsWith(what)) throw err; // the connection could not be made, already described
        const reason = redact(message, target.privateKey);
        if (started) throw new Error(`${what}: ${reason} (the command may have run)`);
        if (attempt >= 1) throw new Error(`${what}: cannot start a command: ${reason}`);
        // A dead connection is forgotten so that the next attempt reconnects; a live one (e.g. a refused
        // channel) is kept for the other sessions on it.
        if (/not connected|no response|ECONNRESET|EPIPE|closed|ended/i.test(message)) {
          const entry = pool().connections.get(poolKey(target));
          if (entry && entry.client === client) entry.client = undefined;
          endClient(client);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}

/**
 * An SSH channel given to an http.Agent as its socket: keep-alive calls these socket methods, which a channel does
 * not have (they do nothing on it).
 */
export function channelAsSocket<C extends object>(channel: C): C {
  const socket = channel as unknown as Record<string, unknown>;
  for (const m of ["setKeepAlive", "setNoDelay", "setTimeout", "ref", "unref"]) socket[m] ??= () => socket;
  return channel;
}

/**
 * Sends one Engine API request over the pooled connection to `target`. The requests to one host go one after the
 * other through a single `docker system dial-stdio` channel (an HTTP keep-alive agent with one socket), opened on
 * first use and again after it closed (connection lost, daemon restarted). While open it holds one of the
 * connection's MAX_SESSIONS. When it closes before an answer, the error carries what the remote docker printed
 * (e.g. "Cannot connect to the Docker daemon").
 */
async function engineRequest(
  target: SshTarget,
  method: string,
  path: string,
  body?: unknown,
): Promise<EngineResponse> {
  const http = require("http") as typeof import("http");
  await getClient(target); // creates the pool entry
  const entry = pool().connections.get(poolKey(target));
  if (!entry) throw new Error(`${describeTarget(target)}: connection closed`);
  if (!entry.engine) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 }); // and engineQueue: one request at a time
    const e = entry;
    // The agent's socket is the channel: keep-alive calls these socket methods, which a channel does not have.
    (agent as unknown as { createConnection: unknown }).createConnection = (
      _options: unknown,
      done: (err: Error | null, socket?: unknown) => void,
    ) => {
      getClient(target).then(
        (client) =>
          client.exec("docker system dial-stdio", (err, channel) => {
            if (err) return done(err);
            // One session more than MAX_SESSIONS may be open then; OpenSSH allows 10.
            e.active++;
            const stderr: string[] = (e.engineStderr = []);
            channel.stderr.on("data", (d: Buffer) => stderr.push(d.toString("utf8")));
            channel.on("close", () => {
              e.active--;
              e.waiting.shift()?.();
            });
            done(null, channelAsSocket(channel));
          }),
        (err: Error) => done(err),
      );
      return undefined;
    };
    entry.engine = agent;
  }
  const agent = entry.engine;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const timeoutMs = target.requestTimeoutMs ?? 300_000;
  const once = (): Promise<EngineResponse> =>
    new Promise<EngineResponse>((resolveAnswer, rejectAnswer) => {
      let timer: ReturnType<typeof setTimeout> | undefined = undefined;
      const resolve = (r: EngineResponse) => {
        clearTimeout(timer);
        resolveAnswer(r);
      };
      const reject = (err: Error) => {
        clearTimeout(timer);
        rejectAnswer(err);
      };
      const req = http.request(
        {
          method,
          path,
          agent,
          headers: {
            Host: "docker",
            ...(payload === undefined
              ? {}
              : { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (d: Buffer) => chunks.push(d));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown = text;
            if (/json/.test(String(res.headers["content-type"] ?? "")) && text.trim() !== "") {
              try {
                parsed = JSON.parse(text);
              } catch {
                parsed = text;
              }
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
          res.on("error", reject);
        },
      );
      req.on("error", (err: Error) => {
        const why = (entry.engineStderr ?? []).join("").trim().split("\n").slice(-2).join(" ");
        const reason = redact(`${err.message}${why ? `: ${why}` : ""}`, target.privateKey);
        reject(
          Object.assign(new Error(`${describeTarget(target)}: docker ${method} ${path}: ${reason}`), {
            reusedChannel: req.reusedSocket,
          }),
        );
      });
      // A daemon that does not answer (hung, or stopped): fail now, and drop the channel with its agent (its close
      // may never come while the daemon hangs), so that the next request opens a new one. The docker process on the
      // host is sent SIGKILL (OpenSSH 7.9+ delivers it), else it ends once the daemon answers.
      // (Set here, after `req`: Pulumi's closure serializer needs every name declared before the code using it.)
      timer = setTimeout(() => {
        const applied = method === "GET" ? "" : " (it may have been applied)";
        if (entry.engine === agent) entry.engine = undefined;
        (req.socket as unknown as { signal?(name: string): void } | null)?.signal?.("KILL");
        req.destroy();
        agent.destroy();
        reject(
          new Error(
            `${describeTarget(target)}: docker ${method} ${path}: no answer in ${timeoutMs / 1000} s${applied}`,
          ),
        );
      }, timeoutMs);
      req.end(payload);
    });
  const send = async (): Promise<EngineResponse> => {
    try {
      return await once();
    } catch (err) {
      // A kept channel that closed while idle fails the next request before it is sent: a read is sent again.
      if (method !== "GET" || !(err as { reusedChannel?: boolean }).reusedChannel) throw err;
      return once();
    }
  };
  // One request at a time per host, queued here: the agent's own limit does not hold while its first channel is
  // still opening (it would open one per request, and then close all but one).
  const answer = (entry.engineQueue ?? Promise.resolve()).then(send);
  entry.engineQueue = answer.then(
    () => undefined,
    () => undefined,
  );
  return answer;
}

/** A Transport that runs commands locally via `/bin/sh -c`, with `env` added to the environment. */
export function localTransport(env?: Record<string, string>): Transport {
  return {
    host: "local",
    exec(command: string, stdin?: string): Promise<ExecResult> {
      const { spawn } = require("child_process") as typeof import("child_process");
      return new Promise((resolve, reject) => {
        const child = spawn("/bin/sh", ["-c", command], {
          env: { ...process.env, ...(env ?? {}) },
          stdio: ["pipe", "pipe", "pipe"],
        });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on("data", (d: Buffer) => out.push(d));
        child.stderr.on("data", (d: Buffer) => err.push(d));
        child.stdin.on("error", () => undefined); // the command may exit without reading stdin
        child.on("error", reject);
        child.on("close", (code, signal) =>
          resolve({
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: Buffer.concat(err).toString("utf8"),
            code: code ?? (signal ? 128 : 255),
          }),
        );
        child.stdin.end(stdin ?? "");
      });
    },
    async close(): Promise<void> {},
  };
}

/** Closes every pooled SSH connection (call at the end of a program or test). */
export async function closeAllTransports(): Promise<void> {
  const p = pool();
  const entries = [...p.connections.values()];
  p.connections.clear();
  for (const e of entries) {
    e.engine?.destroy();
    endClient(e.client ?? (await e.connecting?.catch(() => undefined)));
  }
}

/**
 * Ends a connection politely, and destroys its socket if it is not closed 2 s later: a host that vanished
 * (a VM just destroyed) never answers the close, and its socket would keep the process alive for minutes.
 */
function endClient(client: Client | undefined): void {
  if (!client) return;
  // ssh2's destroy() does nothing once end() has run, so the socket it holds is destroyed directly.
  const sock = (client as unknown as { _sock?: { destroy(): void } })._sock;
  client.end();
  setTimeout(() => sock?.destroy(), 2_000).unref();
}
