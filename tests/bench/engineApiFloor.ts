// The Engine API floor of bench:membership: the converge and the no-op read that Swarmform does, step for step and
// labels included, sent as Docker Engine API requests over SSH, with nothing else around them (no Pulumi provider,
// no waits or checks). By default each request goes on a channel forwarded to the host's docker.sock (OpenSSH
// stream-local forwarding): no docker process runs on the hosts at all, a bound for the provider. With the route
// `dial-stdio` they go through the provider's own transport (components/hosts/transport.ts: one `docker system
// dial-stdio` per host, requests queued one after the other). Testbed only: this machine's key, the testbed's host
// keys, root on every host.

import * as http from "http";
import { Client } from "ssh2";
import type { Duplex } from "stream";
import { channelAsSocket, EngineResponse, fingerprintOf } from "../../components/hosts/transport";
import type { InitOptions } from "../../components/swarm/plan";
import { durationNs } from "../support/applier";
import type { Testbed } from "../testbed/testbed";

/**
 * How a request reaches the host's dockerd over the SSH connection:
 *  - "forward": a channel forwarded to the host's docker.sock (OpenSSH stream-local forwarding), one per request;
 *  - "dial-stdio": `docker system dial-stdio` run on the host (what `docker -H ssh://...` runs there), its stdin
 *    and stdout carrying HTTP; kept open between requests (keep-alive), so one docker process serves many.
 */
export type EngineRoute = "forward" | "dial-stdio";

/** Engine API requests to one testbed host's dockerd. */
interface HostEngine {
  readonly host: string;
  /** One request; resolves with the parsed JSON body (undefined when empty), rejects on a status >= 300. */
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  close(): Promise<void>;
}

/** What a request resolves with: the body of a success, else an error naming the host, request and status. */
function bodyOf<T>(host: string, method: string, path: string, r: EngineResponse): T {
  if (r.status < 200 || r.status >= 300) {
    const text = typeof r.body === "string" ? r.body : JSON.stringify(r.body);
    throw new Error(`${host}: ${method} ${path}: ${r.status} ${text.trim()}`);
  }
  return (r.body === "" ? undefined : r.body) as T;
}

/** `dial-stdio`: the provider's own transport (components/hosts/transport.ts), one docker process per host. */
function viaDialStdio(tb: Testbed, host: string): HostEngine {
  const t = tb.transport(host);
  return {
    host,
    request: async <T>(method: string, path: string, body?: unknown) =>
      bodyOf<T>(host, method, path, await t.request(method, path, body)),
    close: () => t.close(),
  };
}

/** `forward`: a new SSH connection, and a channel forwarded to the host's docker.sock for every request. */
function viaForward(tb: Testbed, host: string): Promise<HostEngine> {
  const socket = tb.hosts.find((x) => x.name === host)!.dockerSocket;
  const target = tb.sshTarget(host);
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.on("error", reject).on("ready", () => {
      const agent = new http.Agent({ keepAlive: false, maxSockets: 8 });
      // The agent takes an SSH channel for a socket.
      (agent as unknown as { createConnection: unknown }).createConnection = (
        _opts: unknown,
        cb: (err: Error | null, s?: Duplex) => void,
      ) => {
        client.openssh_forwardOutStreamLocal(socket, (err, ch) => {
          if (err) return cb(new Error(`${host}: forward to the docker daemon: ${err.message}`));
          cb(null, channelAsSocket(ch));
        });
        return undefined;
      };
      const request = <T>(method: string, path: string, body?: unknown) =>
        new Promise<T>((done, fail) => {
          const req = http.request(
            { method, path, agent, headers: { Host: "docker", "Content-Type": "application/json" } },
            (res) => {
              const chunks: Buffer[] = [];
              res.on("data", (d: Buffer) => chunks.push(d));
              res.on("end", () => {
                const text = Buffer.concat(chunks).toString();
                const parsed: unknown = text ? JSON.parse(text) : "";
                try {
                  done(bodyOf<T>(host, method, path, { status: res.statusCode ?? 0, body: parsed }));
                } catch (e) {
                  fail(e);
                }
              });
            },
          );
          req.on("error", fail);
          req.end(body === undefined ? undefined : JSON.stringify(body));
        });
      resolve({
        host,
        request,
        close: async () => {
          agent.destroy();
          client.end();
        },
      });
    });
    client.connect({
      host: target.address,
      port: target.port,
      username: "root",
      privateKey: target.privateKey,
      hostVerifier: (key: Buffer) => fingerprintOf(key) === target.hostKeyFingerprint,
    });
  });
}

const connect = (tb: Testbed, host: string, route: EngineRoute): Promise<HostEngine> =>
  route === "forward" ? viaForward(tb, host) : Promise.resolve(viaDialStdio(tb, host));

interface Info {
  Swarm: { LocalNodeState: string; NodeID: string };
}
interface NodeObject {
  ID: string;
  Version: { Index: number };
  Spec: { Labels?: Record<string, string> };
}

/**
 * Adds labels to a node through a manager: inspect, update at that version, inspect again (as the provider reports).
 * A node that just joined still changes (its status, its certificate), so an update can meet a newer version than
 * the inspect saw ("update out of sequence"): then it inspects and updates again, as the provider's retry does.
 */
async function addLabels(via: HostEngine, id: string, labels: Record<string, string>): Promise<NodeObject> {
  for (let attempt = 1; ; attempt++) {
    const node = await via.request<NodeObject>("GET", `/nodes/${id}`);
    try {
      await via.request("POST", `/nodes/${id}/update?version=${node.Version.Index}`, {
        ...node.Spec,
        Labels: { ...(node.Spec.Labels ?? {}), ...labels },
      });
      return await via.request<NodeObject>("GET", `/nodes/${id}`);
    } catch (err) {
      if (attempt >= 5 || !/out of sequence/.test((err as Error).message)) throw err;
    }
  }
}

/** What the floor needs of the testbed's cluster. */
export interface FloorCluster {
  readonly tb: Testbed;
  readonly managers: readonly string[];
  readonly workers: readonly string[];
  readonly init: InitOptions;
  address(host: string): string;
  labels(host: string): Record<string, string>;
}

/**
 * Converge from nothing, as Swarmform orders it: probe every host (new connection, GET /info), init the first
 * manager and set its labels beside reading the join tokens, then every other host joins at once; a manager then
 * labels itself, a worker is labelled through the first manager.
 */
export async function convergeOverApi(c: FloorCluster, route: EngineRoute = "forward"): Promise<void> {
  const hosts = [...c.managers, ...c.workers];
  const engines = await Promise.all(hosts.map((h) => connect(c.tb, h, route)));
  const on = (h: string) => engines[hosts.indexOf(h)];
  try {
    const probes = await Promise.all(engines.map((e) => e.request<Info>("GET", "/info")));
    const busy = hosts.filter((_, i) => probes[i].Swarm.LocalNodeState !== "inactive");
    if (busy.length > 0) throw new Error(`engine API floor: ${busy.join(", ")} already in a swarm`);
    const boot = on(c.managers[0]);
    const bootId = await boot.request<string>("POST", "/swarm/init", {
      ListenAddr: "0.0.0.0:2377",
      AdvertiseAddr: c.address(boot.host),
      DefaultAddrPool: c.init.defaultAddrPool,
      DataPathPort: c.init.dataPathPort,
      Spec: { CAConfig: { NodeCertExpiry: durationNs(c.init.certExpiry, "init.certExpiry") } },
    });
    const [swarm] = await Promise.all([
      boot.request<{ JoinTokens: { Manager: string; Worker: string } }>("GET", "/swarm"),
      addLabels(boot, bootId, c.labels(boot.host)),
    ]);
    await Promise.all(
      hosts.slice(1).map(async (h) => {
        const manager = c.managers.includes(h);
        await on(h).request("POST", "/swarm/join", {
          ListenAddr: "0.0.0.0:2377",
          AdvertiseAddr: c.address(h),
          RemoteAddrs: [`${c.address(boot.host)}:2377`],
          JoinToken: manager ? swarm.JoinTokens.Manager : swarm.JoinTokens.Worker,
        });
        const info = await on(h).request<Info>("GET", "/info");
        await addLabels(manager ? on(h) : boot, info.Swarm.NodeID, c.labels(h));
      }),
    );
  } finally {
    await Promise.all(engines.map((e) => e.close()));
  }
}

/**
 * The no-op read of a formed swarm: a new connection to every host and its GET /info; the first manager also lists
 * every node and reads the swarm (its join tokens), beside its info.
 */
export async function noopReadOverApi(c: FloorCluster, route: EngineRoute = "forward"): Promise<void> {
  const hosts = [...c.managers, ...c.workers];
  await Promise.all(
    hosts.map(async (h) => {
      const e = await connect(c.tb, h, route);
      try {
        const lister = h === c.managers[0];
        const [info, nodes] = await Promise.all([
          e.request<Info>("GET", "/info"),
          lister ? e.request<NodeObject[]>("GET", "/nodes") : undefined,
          lister ? e.request("GET", "/swarm") : undefined,
        ]);
        if (info.Swarm.LocalNodeState !== "active")
          throw new Error(`engine API floor: ${h} is not in the swarm`);
        if (nodes && nodes.length !== hosts.length)
          throw new Error(`engine API floor: ${h} lists ${nodes.length} nodes, not ${hosts.length}`);
      } finally {
        await e.close();
      }
    }),
  );
}
