// `npm run images:local [-- --stack local]`: builds, in the engine at the stack's docker.host, the app images
// that a local stack names under `swarmform.local/` (Pulumi.local.yaml points popcube's REGISTRY there), so
// the local stack converges without a private registry. Each is a stand-in (tests/images/standin): it stays
// up, serves HTTP on the ports its healthcheck and Traefik route use, and answers its healthcheck commands.
// It proves scheduling, routing and health wiring, not the application. Images that exist are rebuilt only
// when their recipe changed.
//
// How: with Debian's busybox-static (/usr/bin/busybox), `docker import` of a root filesystem (nothing is
// pulled). Without it, `docker build` FROM busybox (pulled from Docker Hub).
import { execFileSync } from "child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import * as path from "path";
import { loadClusterSpec, readPulumiStackFile } from "../components/config/load";
import type { ClusterSpec, ServiceSpec } from "../components/config/types";

/** Image prefix that means "built on this machine by images:local". */
export const LOCAL_PREFIX = "swarmform.local/";

/** What a stand-in must do for these services: commands their healthchecks run, HTTP ports and paths. */
export function standinOptionsOf(services: readonly ServiceSpec[]): {
  commands: string[];
  httpPorts: number[];
  httpPaths: string[];
} {
  const commands = new Set<string>();
  const ports = new Set<number>();
  const paths = new Set<string>();
  for (const s of services) {
    if (s.entrypoint?.length) commands.add(s.entrypoint[0]);
    const test = s.healthcheck?.test ?? [];
    if (test[0] === "CMD" && test[1]) commands.add(test[1]);
    if (test[0] === "CMD-SHELL" && test[1]) commands.add(test[1].trim().split(/\s+/)[0]);
    for (const m of test
      .join(" ")
      .matchAll(/https?:\/\/(?:localhost|127\.0\.0\.1)(?::(\d+))?(\/[^\s"']*)?/g)) {
      ports.add(Number(m[1] ?? 80));
      if (m[2]) paths.add(m[2]);
    }
    if (s.traefik) ports.add(s.traefik.port);
    for (const p of s.ports) ports.add(p.target);
  }
  return { commands: [...commands], httpPorts: [...ports].sort((a, b) => a - b), httpPaths: [...paths] };
}

/** Services of the spec whose image is to be built locally, by image reference. */
export function localImages(spec: ClusterSpec): Map<string, ServiceSpec[]> {
  const out = new Map<string, ServiceSpec[]>();
  for (const s of spec.stacks.flatMap((st) => st.services)) {
    if (!s.image.startsWith(LOCAL_PREFIX)) continue;
    out.set(s.image, [...(out.get(s.image) ?? []), s]);
  }
  return out;
}

/** `docker build` FROM busybox, for machines without busybox-static (needs Docker Hub). */
function buildWithDockerfile(ref: string, opts: ReturnType<typeof standinOptionsOf>): void {
  const dir = mkdtempSync(path.join(tmpdir(), "swarmform-standin-"));
  try {
    const root = path.join(__dirname, "..", "tests", "images", "standin");
    writeFileSync(path.join(dir, "standin"), readFileSync(path.join(root, "standin")));
    writeFileSync(path.join(dir, "http-ports"), opts.httpPorts.map((p) => `${p}\n`).join(""));
    mkdirSync(path.join(dir, "www"));
    writeFileSync(path.join(dir, "www", "index.html"), "stand-in\n");
    for (const p of opts.httpPaths) {
      const f = path.join(dir, "www", p.replace(/^\/+/, ""));
      mkdirSync(path.dirname(f), { recursive: true });
      writeFileSync(f, "ok\n");
    }
    const links = opts.commands
      .filter((c) => !["wget", "sh"].includes(c))
      .map((c) => (c.startsWith("/") ? c : `/usr/local/bin/${c}`));
    writeFileSync(
      path.join(dir, "Dockerfile"),
      [
        "FROM busybox:1.36",
        "COPY standin /standin",
        "COPY http-ports /etc/standin/http-ports",
        "COPY www /www",
        `RUN chmod 755 /standin${links.map((l) => ` && mkdir -p ${path.dirname(l)} && ln -sf /standin ${l}`).join("")}`,
        'ENTRYPOINT ["/standin"]',
        "ENV PATH=/usr/local/bin:/usr/bin:/bin",
      ].join("\n") + "\n",
    );
    execFileSync("docker", ["build", "-q", "-t", ref, dir], { stdio: "inherit" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Builds every `swarmform.local/` image of the spec into the engine that DOCKER_HOST names. Returns the refs. */
export function buildLocalImages(spec: ClusterSpec): string[] {
  const wanted = localImages(spec);
  for (const [ref, services] of wanted) {
    const opts = standinOptionsOf(services);
    if (existsSync("/usr/bin/busybox")) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { buildImage } = require("../tests/support/images") as typeof import("../tests/support/images");
      buildImage("standin", [ref], opts);
    } else {
      buildWithDockerfile(ref, opts);
    }
  }
  return [...wanted.keys()];
}

function main(argv: string[]): number {
  const i = argv.indexOf("--stack");
  const stack = i >= 0 ? argv[i + 1] : "local";
  const root = path.join(__dirname, "..");
  const file = path.join(root, `Pulumi.${stack}.yaml`);
  const { config, secretKeys, project } = readPulumiStackFile(file);
  const spec = loadClusterSpec({ project: project ?? "swarmform", stack, config, secretKeys, rootDir: root });
  if (!process.env.DOCKER_HOST && spec.docker.host.startsWith("unix://"))
    process.env.DOCKER_HOST = spec.docker.host;
  const refs = buildLocalImages(spec);
  console.log(
    refs.length
      ? `built for stack ${stack} (engine ${process.env.DOCKER_HOST ?? "default"}): ${refs.join(", ")}`
      : `stack ${stack} names no ${LOCAL_PREFIX} image: nothing to build`,
  );
  return 0;
}

if (require.main === module) {
  try {
    process.exit(main(process.argv.slice(2)));
  } catch (e) {
    console.error((e as Error).message);
    process.exit(1);
  }
}
