// Images for the engine tests, built with `docker import` from a root filesystem assembled in a temp dir:
// no image can be pulled on this machine. Recipes and config files live in tests/images/.
//  - stand-in: busybox-static plus tests/images/standin/standin, which stays up whatever it is asked to run.
//    Used for images that are neither pullable nor packaged here (Traefik, cAdvisor, application images).
//  - registry: Debian's /usr/bin/docker-registry (the distribution registry 2.8), with the config of registry:2.
//  - prometheus / node-exporter: Debian's /usr/bin/prometheus and /usr/bin/prometheus-node-exporter (the
//    Prometheus web UI assets are left out: the HTTP API and /-/healthy work without them).
import { execFileSync } from "child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  chmodSync,
  writeFileSync,
  readdirSync,
  readFileSync,
  statSync,
} from "fs";
import { createHash } from "crypto";
import { tmpdir } from "os";
import { dirname, join } from "path";
import { dockerCli } from "./dockerd";

export type ImageKind = "standin" | "registry" | "prometheus" | "node-exporter";

const RECIPES = join(__dirname, "..", "images");
const BUSYBOX = "/usr/bin/busybox";
const APPLETS = [
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

/** Which Debian package provides what each kind needs; the error when it is missing names it. */
const NEEDS: Record<ImageKind, [string, string][]> = {
  standin: [[BUSYBOX, "busybox-static"]],
  registry: [
    ["/usr/bin/docker-registry", "docker-registry"],
    [BUSYBOX, "busybox-static"],
  ],
  prometheus: [
    ["/usr/bin/prometheus", "prometheus"],
    [BUSYBOX, "busybox-static"],
  ],
  "node-exporter": [
    ["/usr/bin/prometheus-node-exporter", "prometheus-node-exporter"],
    [BUSYBOX, "busybox-static"],
  ],
};

/**
 * What to build for an image reference, by the last path element of its repository:
 * `registry` -> the real registry, `prometheus` -> real Prometheus, `node-exporter` -> real node exporter,
 * anything else -> the stand-in.
 */
export function imageKind(ref: string): ImageKind {
  const noDigest = ref.split("@")[0];
  const lastSlash = noDigest.lastIndexOf("/");
  const colon = noDigest.indexOf(":", lastSlash + 1);
  const repo = colon >= 0 ? noDigest.slice(0, colon) : noDigest;
  const base = repo.slice(repo.lastIndexOf("/") + 1);
  if (base === "registry") return "registry";
  if (base === "prometheus") return "prometheus";
  if (base === "node-exporter") return "node-exporter";
  return "standin";
}

function requireFiles(kind: ImageKind): void {
  for (const [file, pkg] of NEEDS[kind]) {
    if (!existsSync(file)) {
      throw new Error(
        `${file} is missing: install the Debian package ${pkg} (apt-get install ${pkg}), or run .ci/run`,
      );
    }
  }
}

/** Copies a dynamic binary's shared libraries (per `ldd`) into the rootfs at the same paths. */
function copyLibs(binary: string, root: string): void {
  let out: string;
  try {
    out = execFileSync("ldd", [binary], { stdio: "pipe" }).toString();
  } catch {
    return; // "not a dynamic executable"
  }
  for (const line of out.split("\n")) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (!m) continue;
    const lib = m[1];
    mkdirSync(join(root, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(root, lib));
  }
}

function copyExecutable(src: string, root: string, dest: string): void {
  mkdirSync(join(root, dirname(dest)), { recursive: true });
  copyFileSync(src, join(root, dest));
  chmodSync(join(root, dest), 0o755);
  copyLibs(src, root);
}

function baseRootfs(root: string): void {
  for (const d of ["bin", "etc", "tmp", "var/run", "proc", "sys", "dev"])
    mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, "tmp"), 0o1777);
  copyFileSync(BUSYBOX, join(root, "bin/busybox"));
  chmodSync(join(root, "bin/busybox"), 0o755);
  for (const a of APPLETS) symlinkSync("busybox", join(root, "bin", a));
  execFileSync("sh", [
    "-c",
    `echo 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false' > ${root}/etc/passwd`,
  ]);
  execFileSync("sh", ["-c", `echo 'root:x:0:\nnogroup:x:65534:' > ${root}/etc/group`]);
}

const RECIPE_LABEL = "swarmform.test.recipe";

/** Hash of what goes into an image: kind, stand-in options, recipe files, and the binaries copied in. */
function recipeHash(kind: ImageKind, standin: StandinOptions): string {
  const h = createHash("sha256").update(JSON.stringify({ kind, standin }));
  for (const f of readdirSync(RECIPES, { recursive: true }).map(String).sort()) {
    const p = join(RECIPES, f);
    if (statSync(p).isFile()) h.update(f).update(readFileSync(p));
  }
  for (const [file] of NEEDS[kind]) {
    const st = statSync(file);
    h.update(`${file}:${st.size}:${st.mtimeMs}`);
  }
  return h.digest("hex").slice(0, 16);
}

/** A label of a local image, or undefined if there is no such image. */
function imageLabel(ref: string, label: string): string | undefined {
  try {
    const out = dockerCli([
      "image",
      "inspect",
      "--format",
      `{{index .Config.Labels "${label}"}}`,
      ref,
    ]).trim();
    return out && out !== "<no value>" ? out : undefined;
  } catch {
    return undefined;
  }
}

interface Recipe {
  /** Fills the root filesystem. */
  fill(root: string): void;
  /** `docker import --change` lines. */
  changes: string[];
}

function recipe(kind: ImageKind, standin: StandinOptions): Recipe {
  switch (kind) {
    case "standin":
      return {
        fill(root) {
          copyFileSync(join(RECIPES, "standin/standin"), join(root, "standin"));
          chmodSync(join(root, "standin"), 0o755);
          // Commands the program names (e.g. `traefik`, `mysqladmin`) resolve to the stand-in too, unless
          // busybox has them (`wget`).
          for (const p of standin.commands ?? []) {
            const dest = p.startsWith("/") ? p : `/usr/local/bin/${p}`;
            if (existsSync(join(root, dest)) || existsSync(join(root, "bin", p))) continue;
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
        },
        changes: ['ENTRYPOINT ["/standin"]', "ENV PATH=/usr/local/bin:/usr/bin:/bin"],
      };
    case "registry":
      return {
        fill(root) {
          copyExecutable("/usr/bin/docker-registry", root, "/bin/registry");
          mkdirSync(join(root, "etc/docker/registry"), { recursive: true });
          copyFileSync(join(RECIPES, "registry/config.yml"), join(root, "etc/docker/registry/config.yml"));
          mkdirSync(join(root, "var/lib/registry"), { recursive: true });
        },
        // As registry:2: ENTRYPOINT registry, CMD serve <config>.
        changes: [
          'ENTRYPOINT ["/bin/registry"]',
          'CMD ["serve", "/etc/docker/registry/config.yml"]',
          "EXPOSE 5000",
          "VOLUME /var/lib/registry",
        ],
      };
    case "prometheus":
      return {
        fill(root) {
          copyExecutable("/usr/bin/prometheus", root, "/bin/prometheus");
          mkdirSync(join(root, "etc/prometheus"), { recursive: true });
          copyFileSync(
            join(RECIPES, "prometheus/prometheus.yml"),
            join(root, "etc/prometheus/prometheus.yml"),
          );
          mkdirSync(join(root, "prometheus"), { recursive: true });
        },
        // As prom/prometheus.
        changes: [
          'ENTRYPOINT ["/bin/prometheus"]',
          'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]',
          "EXPOSE 9090",
          "WORKDIR /prometheus",
        ],
      };
    case "node-exporter":
      return {
        fill(root) {
          copyExecutable("/usr/bin/prometheus-node-exporter", root, "/bin/node_exporter");
        },
        // As prom/node-exporter.
        changes: ['ENTRYPOINT ["/bin/node_exporter"]', "EXPOSE 9100"],
      };
  }
}

/**
 * Builds one image of `kind` with `docker import` and tags it with every reference in `refs`.
 * `standin`: what the stand-in must do (only for kind `standin`). Returns the image id.
 */
export function buildImage(kind: ImageKind, refs: readonly string[], standin: StandinOptions = {}): string {
  if (refs.length === 0) throw new Error("buildImage: no reference to tag");
  const pinned = refs.filter((r) => r.includes("@"));
  if (pinned.length) throw new Error(`cannot build an image for a digest reference: ${pinned.join(", ")}`);
  requireFiles(kind);
  // An image built from the same recipe, inputs and binaries is reused (no new import, no dangling image).
  const hash = recipeHash(kind, standin);
  const existing = imageLabel(refs[0], RECIPE_LABEL);
  if (existing === hash) {
    for (const ref of refs.slice(1)) dockerCli(["tag", refs[0], ref]);
    return dockerCli(["image", "inspect", "--format", "{{.Id}}", refs[0]]).trim();
  }
  const root = mkdtempSync(join(tmpdir(), `swarmform-${kind}-`));
  const tarFile = `${root}.tar`;
  try {
    baseRootfs(root);
    const r = recipe(kind, standin);
    r.fill(root);
    execFileSync("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", root, "-cf", tarFile, "."]);
    const changes = [...r.changes, `LABEL ${RECIPE_LABEL}=${hash}`].flatMap((c) => ["--change", c]);
    const id = dockerCli(["import", ...changes, tarFile, refs[0]]).trim();
    for (const ref of refs.slice(1)) dockerCli(["tag", refs[0], ref]);
    return id;
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(tarFile, { force: true });
  }
}

/** Builds every image in `refs`, grouped by kind (one import per kind). Returns ref -> kind. */
export function buildImagesFor(
  refs: readonly string[],
  standin: StandinOptions = {},
): Map<string, ImageKind> {
  const byKind = new Map<ImageKind, string[]>();
  const kinds = new Map<string, ImageKind>();
  for (const ref of new Set(refs)) {
    const k = imageKind(ref);
    kinds.set(ref, k);
    byKind.set(k, [...(byKind.get(k) ?? []), ref]);
  }
  for (const [k, rs] of byKind) buildImage(k, rs, k === "standin" ? standin : {});
  return kinds;
}
