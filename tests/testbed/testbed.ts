// A multi-host testbed on one machine: every host is a network namespace (veth onto one bridge) with its own
// UTS namespace (hostname hN), its own dockerd and its own sshd. See DESIGN.md "Facts about this environment".
//
// Addresses: all testbeds share the bridge `sftb0` (10.213.47.1/24). A testbed takes a slot k (1..15) and
// its hosts get 10.213.47.(16k + i), i = 1..14. Nothing outside 10.213.47.0/24 is ever contacted: traffic
// from the bridge to any other interface is rejected.
//
// State lives in /run/swarmform-testbed/<name> (keys, known_hosts, pids, state.json), docker data in
// /var/lib/swarmform-testbed/<name>, so `stopTestbed(name)` works from another process.

import { spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { EngineTransport, ExecResult, SshTarget, sshTransport } from "../../components/hosts/transport";

export const BRIDGE = "sftb0";
export const SUBNET_PREFIX = "10.213.47";
export const BRIDGE_ADDRESS = `${SUBNET_PREFIX}.1`;
export const STATE_ROOT = "/run/swarmform-testbed";
export const DATA_ROOT = "/var/lib/swarmform-testbed";
const MAX_HOSTS = 14;
const MAX_SLOT = 15;

export interface TestbedHost {
  readonly name: string;
  readonly address: string;
  readonly sshPort: number;
  /** Absolute path of this host's dockerd socket (use as `unix://<path>`). */
  readonly dockerSocket: string;
  /** Network namespace name (`ip netns exec`, or nsenter --net=/run/netns/<netns>). */
  readonly netns: string;
}

export interface TestbedState {
  readonly name: string;
  readonly slot: number;
  readonly hosts: readonly TestbedHost[];
  readonly privateKeyPath: string;
  readonly knownHostsPath: string;
  /** Host name -> `SHA256:<base64>` of its ed25519 host key. */
  readonly hostKeyFingerprints: Readonly<Record<string, string>>;
  /** Whether the dockerds run service tasks from local images without trying a pull first (see TestbedOptions). */
  readonly preferLocalImages?: boolean;
}

export interface Testbed extends TestbedState {
  readonly privateKey: string;
  readonly publicKey: string;
  /** known_hosts text for every host. */
  readonly knownHosts: string;
  /** SSH target (pinned host key) for one host. */
  sshTarget(hostName: string): SshTarget;
  /** Pooled SSH transport to one host. */
  transport(hostName: string): EngineTransport;
  /** Runs a shell command as root on one host over SSH (DOCKER_HOST points at that host's dockerd). */
  exec(hostName: string, command: string, stdin?: string): Promise<ExecResult>;
  /** Copies an image into every host: a tar file path, or an image name on the engine at `sourceDockerHost`. */
  loadImage(image: string, sourceDockerHost?: string): Promise<void>;
  /** Builds a busybox-static image (`docker import`) directly into every host; returns its tag. */
  importBusybox(tag?: string): Promise<string>;
  /**
   * Every host leaves whatever swarm it is in (`docker swarm leave --force`, through its socket, not SSH); throws
   * unless every host ends inactive.
   */
  leaveSwarm(): Promise<void>;
  /** Stops one host's dockerd (SIGTERM, then SIGKILL after 30 s) and waits until it is gone; sshd stays up. */
  stopDocker(hostName: string): Promise<void>;
  /** Starts one host's dockerd again (after stopDocker) and waits until it answers. */
  startDocker(hostName: string): Promise<void>;
  down(): Promise<void>;
}

export interface TestbedOptions {
  readonly hosts: number;
  /** Testbed name, [a-z0-9-]{1,20} with SWARMFORM_TESTBED_PREFIX (if set) in front. Default `swarmform`. */
  readonly name?: string;
  /** Bounded wait for every dockerd and sshd. Default 90000 ms. */
  readonly readyTimeoutMs?: number;
  /**
   * Start each dockerd with DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1: a swarm task whose image is already on its host
   * starts without a pull first. The hosts are offline, so a pull of a registry name (e.g. `swarmform.local/...`)
   * waits about 17 s for DNS before it falls back to the local image. For benchmarks that time swarm itself;
   * tests of real pulls (a registry on the testbed) must leave it off. Default false.
   */
  readonly preferLocalImages?: boolean;
}

type RunResult = ExecResult;

/** Runs a program (no shell); never throws on a non-zero exit. */
function run(file: string, args: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.stdin.on("error", () => undefined);
    child.on("error", (e) => resolve({ stdout: "", stderr: String(e), code: 127 }));
    child.on("close", (code) =>
      resolve({
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        code: code ?? 128,
      }),
    );
    child.stdin.end(input ?? "");
  });
}

/** Runs a program and throws (with its stderr) when it fails. */
async function must(file: string, args: readonly string[], input?: string): Promise<string> {
  const r = await run(file, args, input);
  if (r.code !== 0) throw new Error(`${file} ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

const sh = (script: string) => run("/bin/sh", ["-c", script]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function checkName(name: string): void {
  if (!/^[a-z0-9-]{1,20}$/.test(name))
    throw new Error(`testbed name must match [a-z0-9-]{1,20}, got "${name}"`);
}

/**
 * The testbed's full name: SWARMFORM_TESTBED_PREFIX (if set) then `name`, so two checkouts can run the same
 * suites at once on one machine without taking each other's testbeds.
 */
function qualifiedName(name: string): string {
  const full = (process.env.SWARMFORM_TESTBED_PREFIX ?? "") + name;
  checkName(full);
  return full;
}

/** The programs the testbed runs, and the Debian package of each. */
export const TESTBED_PREREQUISITES: readonly (readonly [bin: string, pkg: string])[] = [
  ["ip", "iproute2"],
  ["iptables", "iptables"],
  ["nsenter", "util-linux"],
  ["unshare", "util-linux"],
  ["dockerd", "docker.io"],
  ["docker", "docker.io"],
  ["sshd", "openssh-server"],
  ["ssh-keygen", "openssh-client"],
  ["busybox", "busybox-static"],
];

/** Fails with a clear message unless running as root with the needed programs installed. */
export async function checkPrerequisites(): Promise<void> {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new Error("the testbed needs root (network namespaces, dockerd, sshd): run as root, e.g. in CI");
  }
  const missing: string[] = [];
  for (const [bin, pkg] of TESTBED_PREREQUISITES) {
    const r = await sh(`command -v ${bin} || test -x /usr/sbin/${bin}`);
    if (r.code !== 0) missing.push(`${bin} (Debian package ${pkg})`);
  }
  if (missing.length > 0) throw new Error(`the testbed needs: ${missing.join(", ")}; install with apt-get`);
}

function stateDir(name: string): string {
  return path.join(STATE_ROOT, name);
}

function hostPaths(name: string, host: string) {
  const dir = path.join(stateDir(name), host);
  return {
    dir,
    uts: path.join(dir, "uts"),
    socket: path.join(dir, "docker.sock"),
    pidfile: path.join(dir, "docker.pid"),
    execRoot: path.join(dir, "exec"),
    dataRoot: path.join(DATA_ROOT, name, host),
    dockerLog: path.join(dir, "dockerd.log"),
    dockerConfig: path.join(dir, "docker-config"),
    sshdConfig: path.join(dir, "sshd_config"),
    sshdPid: path.join(dir, "sshd.pid"),
    hostKey: path.join(dir, "ssh_host_ed25519_key"),
  };
}

/**
 * Pids of processes in the network namespace at `netnsPath`, whose command line mentions one of `needles`, or
 * whose cgroup mentions one of `cgroupNeedles` (container ids).
 */
function pidsOf(
  netnsPath: string | undefined,
  needles: readonly string[],
  cgroupNeedles: readonly string[] = [],
): number[] {
  let nsIno: string | undefined;
  try {
    if (netnsPath) nsIno = `net:[${fs.statSync(netnsPath).ino}]`;
  } catch {
    nsIno = undefined;
  }
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (nsIno && fs.readlinkSync(`/proc/${entry}/ns/net`) === nsIno) {
        pids.push(Number(entry));
        continue;
      }
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (needles.some((n) => cmd.includes(n))) {
        pids.push(Number(entry));
        continue;
      }
      if (cgroupNeedles.length > 0) {
        const cgroup = fs.readFileSync(`/proc/${entry}/cgroup`, "utf8");
        if (cgroupNeedles.some((n) => cgroup.includes(n))) pids.push(Number(entry));
      }
    } catch {
      // the process went away
    }
  }
  return pids;
}

function readPid(file: string): number[] {
  try {
    const pid = Number(fs.readFileSync(file, "utf8").trim());
    // Only a process started for this state dir (a stale pid file may name an unrelated process).
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return Number.isInteger(pid) && pid > 1 && cmd.includes(path.dirname(file) + "/") ? [pid] : [];
  } catch {
    return [];
  }
}

/** Container ids known to the testbed's daemons (to find container processes whose shim died). */
function containerIds(dataDir: string): string[] {
  const ids: string[] = [];
  if (!fs.existsSync(dataDir)) return ids;
  for (const host of fs.readdirSync(dataDir)) {
    const dir = path.join(dataDir, host, "containers");
    if (fs.existsSync(dir)) ids.push(...fs.readdirSync(dir).filter((d) => /^[0-9a-f]{64}$/.test(d)));
  }
  return ids;
}

/** True while a process with this pid exists (signal 0 probes without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function killAndWait(pids: number[], timeoutMs: number): Promise<void> {
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGTERM");
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(100);
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
  while (pids.some(isAlive) && Date.now() < deadline + 5000) await sleep(100);
}

/** Unmounts everything mounted at or below one of `roots`, deepest first (lazily). */
async function unmountUnder(roots: readonly string[]): Promise<void> {
  const mounts = fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((m): m is string => !!m && roots.some((r) => m === r || m.startsWith(r + "/")))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run("umount", ["-l", m.replace(/\\040/g, " ")]);
}

function netnsName(name: string, i: number): string {
  return `sftb-${name}-h${i}`;
}

/** Removes everything a testbed called `name` may have left: daemons, mounts, namespaces, state. */
export async function stopTestbed(shortName = "swarmform"): Promise<void> {
  return stopQualified(qualifiedName(shortName));
}

async function stopQualified(name: string): Promise<void> {
  const dir = stateDir(name);
  const dataDir = path.join(DATA_ROOT, name);
  const namespaces = (await run("ip", ["netns", "list"])).stdout
    .split("\n")
    .map((l) => l.split(" ")[0])
    .filter((n) => new RegExp(`^sftb-${name}-h\\d+$`).test(n));
  // Stop each dockerd (it stops its containers and containerd) and sshd first, then anything left.
  const hostDirs = fs.existsSync(dir) ? fs.readdirSync(dir).map((h) => path.join(dir, h)) : [];
  const daemons = hostDirs.flatMap((h) => [
    ...readPid(path.join(h, "docker.pid")),
    ...readPid(path.join(h, "sshd.pid")),
  ]);
  await killAndWait(daemons, 20000);
  const rest = [
    ...pidsOf(undefined, [dir + "/", dataDir + "/"], containerIds(dataDir)),
    ...namespaces.flatMap((ns) => pidsOf(`/run/netns/${ns}`, [])),
  ];
  await killAndWait([...new Set(rest)], 10000);
  await unmountUnder([dir, dataDir]);
  for (const ns of namespaces) await run("ip", ["netns", "delete", ns]);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(dataDir, { recursive: true, force: true });
  releaseSlots(name);
  // The bridge is shared by all testbeds: remove it (and its firewall rules) with the last one.
  const others = fs.existsSync(slotsDir()) ? fs.readdirSync(slotsDir()) : [];
  if (others.length === 0) {
    await run("ip", ["link", "delete", BRIDGE]);
    for (const rule of bridgeRules()) while ((await run("iptables", ["-D", ...rule])).code === 0);
  }
}

function bridgeRules(): string[][] {
  return [
    ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"],
    // REJECT, not DROP: a lookup of an outside registry or resolver fails at once instead of timing out.
    ["FORWARD", "-i", BRIDGE, "!", "-o", BRIDGE, "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"],
    ["FORWARD", "-o", BRIDGE, "!", "-i", BRIDGE, "-j", "DROP"],
  ];
}

function slotsDir(): string {
  return path.join(STATE_ROOT, "slots");
}

function releaseSlots(name: string): void {
  if (!fs.existsSync(slotsDir())) return;
  for (const s of fs.readdirSync(slotsDir())) {
    const owner = path.join(slotsDir(), s, "owner");
    if (fs.existsSync(owner) && fs.readFileSync(owner, "utf8") === name) {
      fs.rmSync(path.join(slotsDir(), s), { recursive: true, force: true });
    }
  }
}

/** Takes the lowest free address slot; mkdir makes concurrent starts safe. */
function takeSlot(name: string): number {
  fs.mkdirSync(slotsDir(), { recursive: true });
  for (let k = 1; k <= MAX_SLOT; k++) {
    try {
      fs.mkdirSync(path.join(slotsDir(), String(k)));
    } catch {
      continue;
    }
    fs.writeFileSync(path.join(slotsDir(), String(k), "owner"), name);
    return k;
  }
  throw new Error(`all ${MAX_SLOT} testbed slots are taken; stop a testbed first (${slotsDir()})`);
}

async function ensureBridge(): Promise<void> {
  if ((await run("ip", ["link", "show", BRIDGE])).code !== 0) {
    await run("ip", ["link", "add", BRIDGE, "type", "bridge"]);
  }
  await run("ip", ["addr", "replace", `${BRIDGE_ADDRESS}/24`, "dev", BRIDGE]);
  await must("ip", ["link", "set", BRIDGE, "up"]);
  // Hosts talk to each other across the bridge (FORWARD may be DROP when br_netfilter is loaded), and
  // nothing from the bridge is forwarded anywhere else.
  for (const rule of bridgeRules().reverse()) {
    if ((await run("iptables", ["-C", ...rule])).code !== 0) await must("iptables", ["-I", ...rule]);
  }
}

async function fingerprint(pubKeyPath: string): Promise<string> {
  return (await must("ssh-keygen", ["-lf", pubKeyPath])).split(" ")[1];
}

function sshdConfig(p: ReturnType<typeof hostPaths>, address: string, authorizedKeys: string): string {
  return [
    `ListenAddress ${address}:22`,
    `HostKey ${p.hostKey}`,
    `PidFile ${p.sshdPid}`,
    "PermitRootLogin prohibit-password",
    `AuthorizedKeysFile ${authorizedKeys}`,
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    "StrictModes no",
    "MaxSessions 32",
    "MaxStartups 64",
    "UseDNS no",
    // Every host's docker CLI talks to its own daemon and keeps its own logins (not root's ~/.docker).
    // SHLVL=1: bash run by sshd sources ~/.bashrc only as a top-level shell (bash's shell.c, SSH_SOURCE_BASHRC),
    // so the hosts do not run this machine's root dotfiles (a `pyenv init` there cost 0.75 s per command), as
    // a server with a default shell setup does not. Nothing is hidden or mounted: bash just skips the file.
    `SetEnv DOCKER_HOST=unix://${p.socket} DOCKER_CONFIG=${p.dockerConfig} SHLVL=1`,
    "",
  ].join("\n");
}

async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean>, log?: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(200);
  }
  const tail =
    log && fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").slice(-15).join("\n") : "";
  throw new Error(`${what} not ready after ${timeoutMs} ms${tail ? `; last log lines:\n${tail}` : ""}`);
}

function tcpOpen(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port, timeout: 1000 });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
    s.once("timeout", () => done(false));
  });
}

/** Starts a host's dockerd in its namespaces, detached so that it outlives this process. */
function spawnDockerd(p: ReturnType<typeof hostPaths>, ns: string, preferLocalImages: boolean): void {
  const log = fs.openSync(p.dockerLog, "a");
  const dockerd = spawn(
    "nsenter",
    [
      `--net=/run/netns/${ns}`,
      `--uts=${p.uts}`,
      "dockerd",
      `--data-root=${p.dataRoot}`,
      `--exec-root=${p.execRoot}`,
      `--pidfile=${p.pidfile}`,
      `--host=unix://${p.socket}`,
      "--storage-driver=overlay2",
      "--iptables=true",
      // A registry run on a testbed host is plain HTTP.
      `--insecure-registry=${SUBNET_PREFIX}.0/24`,
    ],
    {
      detached: true,
      stdio: ["ignore", log, log],
      env: preferLocalImages ? { ...process.env, DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: "1" } : process.env,
    },
  );
  dockerd.unref();
  fs.closeSync(log);
}

function waitForDockerd(host: string, p: ReturnType<typeof hostPaths>, timeoutMs: number): Promise<void> {
  const info = async () => (await run("docker", ["-H", `unix://${p.socket}`, "info"])).code === 0;
  return waitFor(`dockerd of ${host} (${p.socket})`, timeoutMs, info, p.dockerLog);
}

async function startHost(
  name: string,
  slot: number,
  i: number,
  authorizedKeys: string,
  timeoutMs: number,
  preferLocalImages: boolean,
) {
  const host = `h${i}`;
  const ns = netnsName(name, i);
  const address = `${SUBNET_PREFIX}.${16 * slot + i}`;
  const p = hostPaths(name, host);
  fs.mkdirSync(p.dir, { recursive: true });
  fs.mkdirSync(p.dataRoot, { recursive: true });
  fs.mkdirSync(p.dockerConfig, { recursive: true });

  // Network: veth from the bridge into the namespace, renamed eth0.
  const veth = `sf${slot}h${i}`;
  await must("ip", ["netns", "add", ns]);
  await run("ip", ["link", "delete", veth]);
  await must("ip", ["link", "add", veth, "type", "veth", "peer", "name", `${veth}p`]);
  await must("ip", ["link", "set", `${veth}p`, "netns", ns]);
  await must("ip", ["link", "set", veth, "master", BRIDGE, "up"]);
  const inNs = (...args: string[]) => must("ip", ["-n", ns, ...args]);
  await inNs("link", "set", `${veth}p`, "name", "eth0");
  await inNs("addr", "add", `${address}/24`, "dev", "eth0");
  await inNs("link", "set", "eth0", "up");
  await inNs("link", "set", "lo", "up");
  await inNs("route", "add", "default", "via", BRIDGE_ADDRESS);

  // Own UTS namespace, kept alive by a bind mount, with hostname hN.
  fs.writeFileSync(p.uts, "");
  await must("unshare", [`--uts=${p.uts}`, "hostname", host]);
  const enter = ["nsenter", `--net=/run/netns/${ns}`, `--uts=${p.uts}`];

  spawnDockerd(p, ns, preferLocalImages);

  // sshd with its own host key.
  await must("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${host}.${name}`, "-f", p.hostKey]);
  fs.writeFileSync(p.sshdConfig, sshdConfig(p, address, authorizedKeys));
  fs.mkdirSync("/run/sshd", { recursive: true });
  await must(enter[0], [...enter.slice(1), "/usr/sbin/sshd", "-f", p.sshdConfig]);

  await waitForDockerd(host, p, timeoutMs);
  await waitFor(`sshd of ${host} (${address}:22)`, timeoutMs, () => tcpOpen(address, 22));

  const hostKeyLine = fs
    .readFileSync(p.hostKey + ".pub", "utf8")
    .trim()
    .split(" ")
    .slice(0, 2)
    .join(" ");
  const th: TestbedHost = { name: host, address, sshPort: 22, dockerSocket: p.socket, netns: ns };
  return {
    host: th,
    fingerprint: await fingerprint(p.hostKey + ".pub"),
    knownHostsLine: `${address} ${hostKeyLine}`,
  };
}

function statePath(name: string): string {
  return path.join(stateDir(name), "state.json");
}

/** Starts N hosts (stopping whatever an earlier testbed of the same name left behind first). */
export async function startTestbed(options: TestbedOptions): Promise<Testbed> {
  const name = qualifiedName(options.name ?? "swarmform");
  if (!Number.isInteger(options.hosts) || options.hosts < 1 || options.hosts > MAX_HOSTS) {
    throw new Error(`hosts must be an integer from 1 to ${MAX_HOSTS}, got ${options.hosts}`);
  }
  await checkPrerequisites();
  await stopQualified(name);
  const slot = takeSlot(name);
  const dir = stateDir(name);
  fs.mkdirSync(dir, { recursive: true });
  try {
    await ensureBridge();
    const privateKeyPath = path.join(dir, "id_ed25519");
    await must("ssh-keygen", [
      "-q",
      "-t",
      "ed25519",
      "-N",
      "",
      "-C",
      `swarmform-testbed-${name}`,
      "-f",
      privateKeyPath,
    ]);
    const authorizedKeys = path.join(dir, "authorized_keys");
    fs.copyFileSync(privateKeyPath + ".pub", authorizedKeys);

    const timeout = options.readyTimeoutMs ?? 90000;
    const preferLocalImages = options.preferLocalImages === true;
    const started = await Promise.all(
      Array.from({ length: options.hosts }, (_, k) =>
        startHost(name, slot, k + 1, authorizedKeys, timeout, preferLocalImages),
      ),
    );
    const knownHostsPath = path.join(dir, "known_hosts");
    fs.writeFileSync(knownHostsPath, started.map((s) => s.knownHostsLine).join("\n") + "\n");
    const state: TestbedState = {
      name,
      slot,
      hosts: started.map((s) => s.host),
      privateKeyPath,
      knownHostsPath,
      hostKeyFingerprints: Object.fromEntries(started.map((s) => [s.host.name, s.fingerprint])),
      preferLocalImages,
    };
    fs.writeFileSync(statePath(name), JSON.stringify(state, null, 2));
    return attach(state);
  } catch (err) {
    await stopQualified(name).catch(() => undefined);
    throw err;
  }
}

/** Reads the state of a running testbed (started by this or another process). */
export function loadTestbed(shortName = "swarmform"): Testbed {
  const name = qualifiedName(shortName);
  if (!fs.existsSync(statePath(name)))
    throw new Error(`no testbed "${name}" is running (${statePath(name)} missing)`);
  return attach(JSON.parse(fs.readFileSync(statePath(name), "utf8")) as TestbedState);
}

function attach(state: TestbedState): Testbed {
  const privateKey = fs.readFileSync(state.privateKeyPath, "utf8");
  const publicKey = fs.readFileSync(state.privateKeyPath + ".pub", "utf8").trim();
  const knownHosts = fs.readFileSync(state.knownHostsPath, "utf8");
  const find = (hostName: string): TestbedHost => {
    const h = state.hosts.find((x) => x.name === hostName);
    if (!h)
      throw new Error(
        `testbed "${state.name}" has no host "${hostName}" (${state.hosts.map((x) => x.name)})`,
      );
    return h;
  };
  const sshTarget = (hostName: string): SshTarget => {
    const h = find(hostName);
    return {
      host: h.name,
      address: h.address,
      port: h.sshPort,
      user: "root",
      privateKey,
      hostKeyFingerprint: state.hostKeyFingerprints[h.name],
    };
  };
  const transport = (hostName: string) => sshTransport(sshTarget(hostName));
  const eachHost = (fn: (h: TestbedHost) => Promise<void>) =>
    Promise.all(state.hosts.map(fn)).then(() => undefined);

  return {
    ...state,
    privateKey,
    publicKey,
    knownHosts,
    sshTarget,
    transport,
    exec: (hostName, command, stdin) => transport(hostName).exec(command, stdin),
    async loadImage(image: string, sourceDockerHost?: string): Promise<void> {
      let tar = image;
      let tmp: string | undefined;
      if (!fs.existsSync(image)) {
        tmp = path.join(stateDir(state.name), `image-${Date.now()}.tar`);
        const src = sourceDockerHost ? ["-H", sourceDockerHost] : [];
        await must("docker", [...src, "save", "-o", tmp, image]);
        tar = tmp;
      }
      try {
        await eachHost(async (h) => {
          await must("docker", ["-H", `unix://${h.dockerSocket}`, "load", "-i", tar]);
        });
      } finally {
        if (tmp) fs.rmSync(tmp, { force: true });
      }
    },
    async importBusybox(tag = "busybox:testbed"): Promise<string> {
      const tar = path.join(stateDir(state.name), "busybox-rootfs.tar");
      if (!fs.existsSync(tar)) await buildBusyboxRootfs(tar);
      await eachHost(async (h) => {
        await must("docker", [
          "-H",
          `unix://${h.dockerSocket}`,
          "import",
          "--change",
          'CMD ["/bin/sh"]',
          "--change",
          "ENV PATH=/bin",
          tar,
          tag,
        ]);
      });
      return tag;
    },
    async leaveSwarm(): Promise<void> {
      await eachHost(async (h) => {
        const docker = (...args: string[]) => run("docker", ["-H", `unix://${h.dockerSocket}`, ...args]);
        await docker("swarm", "leave", "--force"); // fails when not in a swarm: the state below is what counts
        const st = await docker("info", "--format", "{{.Swarm.LocalNodeState}}");
        if (st.stdout.trim() !== "inactive")
          throw new Error(
            `${h.name} is still "${st.stdout.trim()}" after swarm leave --force: ${st.stderr.trim()}`,
          );
      });
    },
    async stopDocker(hostName: string): Promise<void> {
      await killAndWait(readPid(hostPaths(state.name, find(hostName).name).pidfile), 30000);
    },
    async startDocker(hostName: string): Promise<void> {
      const h = find(hostName);
      const p = hostPaths(state.name, h.name);
      if (readPid(p.pidfile).length > 0) throw new Error(`dockerd of ${h.name} is already running`);
      spawnDockerd(p, h.netns, state.preferLocalImages === true);
      await waitForDockerd(h.name, p, 90000);
    },
    down: () => stopQualified(state.name),
  };
}

/** A root filesystem tar with busybox-static and a symlink per applet under /bin. */
export async function buildBusyboxRootfs(tarPath: string): Promise<void> {
  const root = `${tarPath}.d`;
  fs.rmSync(root, { recursive: true, force: true });
  for (const d of ["bin", "etc", "tmp", "proc", "sys", "dev", "var/www"])
    fs.mkdirSync(path.join(root, d), { recursive: true });
  const busybox = (await must("/bin/sh", ["-c", "command -v busybox"])).trim();
  fs.copyFileSync(busybox, path.join(root, "bin/busybox"));
  fs.chmodSync(path.join(root, "bin/busybox"), 0o755);
  for (const applet of (await must(busybox, ["--list"])).split("\n").filter((a) => a && a !== "busybox")) {
    fs.symlinkSync("busybox", path.join(root, "bin", applet));
  }
  fs.writeFileSync(
    path.join(root, "etc/passwd"),
    "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
  );
  fs.writeFileSync(path.join(root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
  await must("tar", ["-C", root, "-cf", tarPath, "."]);
  fs.rmSync(root, { recursive: true, force: true });
}
