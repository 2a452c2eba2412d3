// The stand-in image: busybox plus scripts/standin/standin, which stays up whatever it is asked to run, serves
// HTTP on the ports its services' healthchecks and routes use, and answers their healthcheck commands. Used by
// `npm run images:local` for the local stack's app images, and by the engine tests for images that cannot be
// pulled (tests/support/images.ts). Built with `docker import` of a root filesystem (nothing is pulled).
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "fs";
import { tmpdir } from "os";
import { dirname, join } from "path";

/** Debian's busybox-static: the shell and tools of every image built here. */
export const BUSYBOX = "/usr/bin/busybox";
/** The stand-in program. */
export const STANDIN_PROGRAM = join(__dirname, "standin", "standin");
/** The busybox applets linked into /bin of every image built here. */
export const APPLETS = [
  "sh",
  "sleep",
  "cat",
  "ls",
  "echo",
  "wget",
  "kill",
  "mkdir",
  "rm",
  "env",
  "true",
  "nc",
  "httpd",
  "nslookup",
  "ps",
  "stat",
];

/** What the stand-in must do for the services that run it. */
export interface StandinOptions {
  /** Commands the services run (entrypoint overrides, healthcheck commands): linked to the stand-in. */
  readonly commands?: readonly string[];
  /** Ports on which the stand-in serves HTTP (busybox httpd), e.g. the ports its healthchecks query. */
  readonly httpPorts?: readonly number[];
  /** URL paths the stand-in answers with 200 (besides `/`), e.g. `/heartbeat`. */
  readonly httpPaths?: readonly string[];
}

/** What of a service the stand-in must serve: its entrypoint, healthcheck test, and the ports it is reached on. */
export interface StandinService {
  readonly entrypoint?: readonly string[];
  /** As in Compose and the engine: `["CMD", ...]` or `["CMD-SHELL", "..."]`. */
  readonly healthcheck?: readonly string[];
  /** Target ports (published ports, the Traefik loadbalancer port). */
  readonly ports: readonly number[];
}

/**
 * What the stand-in must do for these services: the commands their entrypoint and healthchecks name, and the
 * HTTP ports and paths their healthchecks (`http://localhost[:PORT]/PATH`) and ports use.
 */
export function standinNeeds(services: readonly StandinService[]): {
  commands: string[];
  httpPorts: number[];
  httpPaths: string[];
} {
  const commands = new Set<string>();
  const ports = new Set<number>();
  const paths = new Set<string>();
  for (const s of services) {
    if (s.entrypoint?.length) commands.add(s.entrypoint[0]);
    const test = s.healthcheck ?? [];
    if (test[0] === "CMD" && test[1]) commands.add(test[1]);
    if (test[0] === "CMD-SHELL" && test[1]) commands.add(test[1].trim().split(/\s+/)[0]);
    for (const m of test
      .join(" ")
      .matchAll(/https?:\/\/(?:localhost|127\.0\.0\.1)(?::(\d+))?(\/[^\s"']*)?/g)) {
      ports.add(Number(m[1] ?? 80));
      if (m[2]) paths.add(m[2]);
    }
    for (const p of s.ports) ports.add(p);
  }
  return { commands: [...commands], httpPorts: [...ports].sort((a, b) => a - b), httpPaths: [...paths] };
}

/** Fills `root` with what every image built here has: directories, /etc/passwd and group, busybox and its applets. */
export function baseRootfs(root: string): void {
  for (const d of ["bin", "etc", "tmp", "var/run", "proc", "sys", "dev"])
    mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, "tmp"), 0o1777);
  copyFileSync(BUSYBOX, join(root, "bin/busybox"));
  chmodSync(join(root, "bin/busybox"), 0o755);
  for (const a of APPLETS) symlinkSync("busybox", join(root, "bin", a));
  writeFileSync(
    join(root, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
  );
  writeFileSync(join(root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
}

/** Adds the stand-in to a root filesystem (made by baseRootfs, or laid over an image with busybox). */
export function fillStandin(root: string, standin: StandinOptions): void {
  copyFileSync(STANDIN_PROGRAM, join(root, "standin"));
  chmodSync(join(root, "standin"), 0o755);
  // Commands the program names (e.g. `traefik`, `mysqladmin`) resolve to the stand-in too, unless busybox has
  // them (`wget`).
  for (const p of standin.commands ?? []) {
    const dest = p.startsWith("/") ? p : `/usr/local/bin/${p}`;
    if (existsSync(join(root, dest)) || APPLETS.includes(p)) continue;
    mkdirSync(join(root, dirname(dest)), { recursive: true });
    symlinkSync("/standin", join(root, dest));
  }
  mkdirSync(join(root, "etc/standin"), { recursive: true });
  writeFileSync(
    join(root, "etc/standin/http-ports"),
    (standin.httpPorts ?? []).map((p) => `${p}\n`).join(""),
  );
  mkdirSync(join(root, "www"), { recursive: true });
  writeFileSync(join(root, "www/index.html"), "stand-in\n");
  for (const p of standin.httpPaths ?? []) {
    const file = join(root, "www", p.replace(/^\/+/, ""));
    if (file === join(root, "www") || p.endsWith("/")) continue;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, "ok\n");
  }
}

/** `docker import --change` lines of the stand-in. */
export const STANDIN_CHANGES = ['ENTRYPOINT ["/standin"]', "ENV PATH=/usr/local/bin:/usr/bin:/bin"];

/** Hash of what goes into a stand-in: its options, the stand-in program, and busybox. */
export function standinHash(standin: StandinOptions): string {
  const st = statSync(BUSYBOX);
  return createHash("sha256")
    .update(JSON.stringify({ kind: "standin", standin }))
    .update(readFileSync(STANDIN_PROGRAM))
    .update(`${BUSYBOX}:${st.size}:${st.mtimeMs}`)
    .digest("hex")
    .slice(0, 16);
}

/** Runs the docker CLI and returns its stdout. */
export type DockerCli = (args: string[]) => string;
const docker: DockerCli = (args) =>
  execFileSync("docker", args, { stdio: ["ignore", "pipe", "pipe"] }).toString();

/** The label that holds the hash of an image's recipe, so that an unchanged recipe is not imported again. */
export const RECIPE_LABEL = "swarmform.test.recipe";

/** A label of a local image, or undefined if there is no such image. */
function imageLabel(cli: DockerCli, ref: string, label: string): string | undefined {
  try {
    const out = cli(["image", "inspect", "--format", `{{index .Config.Labels "${label}"}}`, ref]).trim();
    return out && out !== "<no value>" ? out : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Imports an image from a root filesystem (baseRootfs, then `fill`) with `docker import`, tags it with every
 * reference in `refs`, and returns its id. An image of `refs[0]` built from the same `hash` is reused.
 */
export function importImage(
  refs: readonly string[],
  hash: string,
  fill: (root: string) => void,
  changes: readonly string[],
  cli: DockerCli = docker,
): string {
  if (refs.length === 0) throw new Error("importImage: no reference to tag");
  const pinned = refs.filter((r) => r.includes("@"));
  if (pinned.length) throw new Error(`cannot build an image for a digest reference: ${pinned.join(", ")}`);
  if (imageLabel(cli, refs[0], RECIPE_LABEL) === hash) {
    for (const ref of refs.slice(1)) cli(["tag", refs[0], ref]);
    return cli(["image", "inspect", "--format", "{{.Id}}", refs[0]]).trim();
  }
  const root = mkdtempSync(join(tmpdir(), "swarmform-image-"));
  const tarFile = `${root}.tar`;
  try {
    baseRootfs(root);
    fill(root);
    execFileSync("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", root, "-cf", tarFile, "."]);
    const all = [...changes, `LABEL ${RECIPE_LABEL}=${hash}`].flatMap((c) => ["--change", c]);
    const id = cli(["import", ...all, tarFile, refs[0]]).trim();
    for (const ref of refs.slice(1)) cli(["tag", refs[0], ref]);
    return id;
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(tarFile, { force: true });
  }
}

/** Builds the stand-in for `standin` and tags it with `refs`; returns the image id. Needs busybox-static. */
export function buildStandin(
  refs: readonly string[],
  standin: StandinOptions,
  cli: DockerCli = docker,
): string {
  if (!existsSync(BUSYBOX))
    throw new Error(
      `${BUSYBOX} is missing: install the Debian package busybox-static (apt-get install busybox-static)`,
    );
  return importImage(refs, standinHash(standin), (root) => fillStandin(root, standin), STANDIN_CHANGES, cli);
}
