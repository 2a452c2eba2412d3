// Images for the engine tests, built with `docker import` from a root filesystem assembled in a temp dir:
// no image can be pulled on this machine. Recipes and config files live in tests/images/.
//  - stand-in: busybox-static plus scripts/standin/standin, which stays up whatever it is asked to run (the
//    recipe is scripts/standin-image.ts, shared with `npm run images:local`). Used for images that are neither
//    pullable nor packaged here (Traefik, cAdvisor, application images).
//  - registry: Debian's /usr/bin/docker-registry (the distribution registry 2.8), with the config of registry:2.
//  - prometheus / node-exporter: Debian's /usr/bin/prometheus and /usr/bin/prometheus-node-exporter (the
//    Prometheus web UI assets are left out: the HTTP API and /-/healthy work without them).
import { copyFileSync, existsSync, mkdirSync, chmodSync, readdirSync, readFileSync, statSync } from "fs";
import { createHash } from "crypto";
import { dirname, join } from "path";
import { execFileSync } from "child_process";
import { dockerCli } from "./dockerd";
import {
  BUSYBOX,
  buildStandin,
  fillStandin,
  importImage,
  STANDIN_CHANGES,
  StandinOptions,
} from "../../scripts/standin-image";

export type { StandinOptions } from "../../scripts/standin-image";
export type ImageKind = "standin" | "registry" | "prometheus" | "node-exporter";

const RECIPES = join(__dirname, "..", "images");
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

interface Recipe {
  /** Fills the root filesystem. */
  fill(root: string): void;
  /** `docker import --change` lines. */
  changes: readonly string[];
}

function recipe(kind: ImageKind, standin: StandinOptions): Recipe {
  switch (kind) {
    case "standin":
      return { fill: (root) => fillStandin(root, standin), changes: STANDIN_CHANGES };
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
  requireFiles(kind);
  const cli = (args: string[]) => dockerCli(args);
  if (kind === "standin") return buildStandin(refs, standin, cli);
  // An image built from the same recipe, inputs and binaries is reused (no new import, no dangling image).
  const r = recipe(kind, standin);
  return importImage(refs, recipeHash(kind, standin), (root) => r.fill(root), r.changes, cli);
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
