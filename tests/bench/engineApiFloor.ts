// The Engine API floor of bench:membership: the converge and the no-op read that Swarmform does, step for step and
// labels included, sent as Docker Engine API requests over SSH (each request on a channel forwarded to the host's
// docker.sock, OpenSSH stream-local forwarding) instead of as docker CLI processes. A measured target for a
// provider that would speak the API; the provider does not do this (yet). Testbed only: this machine's key, the
// testbed's host keys, root on every host.

import * as http from "http";
import { Client } from "ssh2";
import { fingerprintOf } from "../../components/hosts/transport";
import type { InitOptions } from "../../components/swarm/plan";
import { durationNs } from "../support/applier";
import type { Testbed } from "../testbed/testbed";

/** One SSH connection to a testbed host, and Engine API requests to its dockerd over it. */
class EngineOverSsh {
  private constructor(
    private readonly client: Client,
    private readonly socket: string,
    readonly host: string,
  ) {}

  static connect(tb: Testbed, host: string): Promise<EngineOverSsh> {
    const h = tb.hosts.find((x) => x.name === host);
    if (!h) throw new Error(`testbed has no host ${host}`);
    return new Promise((resolve, reject) => {
      const client = new Client();
      client.on("ready", () => resolve(new EngineOverSsh(client, h.dockerSocket, host))).on("error", reject);
      client.connect({
        host: h.address,
        port: h.sshPort,
        username: "root",
        privateKey: tb.privateKey,
        hostVerifier: (key: Buffer) => fingerprintOf(key) === tb.hostKeyFingerprints[host],
      });
    });
  }

  /** One request; resolves with the parsed JSON body (undefined when empty), rejects on a status >= 300. */
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      this.client.openssh_forwardOutStreamLocal(this.socket, (err, channel) => {
        if (err) return reject(new Error(`${this.host}: forwarding to ${this.socket}: ${err.message}`));
        const req = http.request(
          {
            method,
            path,
            createConnection: () => channel as unknown as import("net").Socket,
            headers: { Host: "docker", "Content-Type": "application/json" },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (d: Buffer) => chunks.push(d));
            res.on("end", () => {
              channel.end();
              const text = Buffer.concat(chunks).toString();
              if ((res.statusCode ?? 500) >= 300)
                reject(new Error(`${this.host}: ${method} ${path}: ${res.statusCode} ${text.trim()}`));
              else resolve((text ? JSON.parse(text) : undefined) as T);
            });
          },
        );
        req.on("error", reject);
        req.end(body === undefined ? undefined : JSON.stringify(body));
      });
    });
  }

  close(): void {
    this.client.end();
  }
}

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
async function addLabels(
  via: EngineOverSsh,
  id: string,
  labels: Record<string, string>,
): Promise<NodeObject> {
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
export async function convergeOverApi(c: FloorCluster): Promise<void> {
  const hosts = [...c.managers, ...c.workers];
  const engines = await Promise.all(hosts.map((h) => EngineOverSsh.connect(c.tb, h)));
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
    for (const e of engines) e.close();
  }
}

/**
 * The no-op read of a formed swarm: a new connection to every host and its GET /info; the first manager also lists
 * every node and reads the swarm (its join tokens), beside its info.
 */
export async function noopReadOverApi(c: FloorCluster): Promise<void> {
  const hosts = [...c.managers, ...c.workers];
  await Promise.all(
    hosts.map(async (h) => {
      const e = await EngineOverSsh.connect(c.tb, h);
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
        e.close();
      }
    }),
  );
}
