// `npm run images:local [-- --stack local]`: builds, in the engine at the stack's docker.host, the app images
// that a local stack names under `swarmform.local/` (Pulumi.local.yaml points popcube's REGISTRY there), so
// the local stack converges without a private registry. Each is a stand-in (scripts/standin-image.ts): it stays
// up, serves HTTP on the ports its healthcheck and Traefik route use, and answers its healthcheck commands.
// It proves scheduling, routing and health wiring, not the application. Images that exist are rebuilt only
// when their recipe changed.
//
// How: with Debian's busybox-static (/usr/bin/busybox), `docker import` of a root filesystem (nothing is
// pulled). Without it, `docker build` FROM busybox (pulled from Docker Hub).
import { execFileSync } from "child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import * as path from "path";
import { loadClusterSpec, readPulumiStackFile } from "../components/config/load";
import type { ClusterSpec, ServiceSpec } from "../components/config/types";
import {
  BUSYBOX,
  buildStandin,
  fillStandin,
  STANDIN_CHANGES,
  StandinOptions,
  standinNeeds,
} from "./standin-image";

/** Image prefix that means "built on this machine by images:local". */
export const LOCAL_PREFIX = "swarmform.local/";

/** What a stand-in must do for these services: commands their healthchecks run, HTTP ports and paths. */
export function standinOptionsOf(services: readonly ServiceSpec[]): ReturnType<typeof standinNeeds> {
  return standinNeeds(
    services.map((s) => ({
      ...(s.entrypoint ? { entrypoint: s.entrypoint } : {}),
      ...(s.healthcheck?.test ? { healthcheck: s.healthcheck.test } : {}),
      ports: [...(s.traefik ? [s.traefik.port] : []), ...s.ports.map((p) => p.target)],
    })),
  );
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

/** `docker build` FROM busybox, the stand-in laid over it: for machines without busybox-static (needs Docker Hub). */
function buildWithDockerfile(ref: string, opts: StandinOptions): void {
  const dir = mkdtempSync(path.join(tmpdir(), "swarmform-standin-"));
  try {
    mkdirSync(path.join(dir, "rootfs"));
    fillStandin(path.join(dir, "rootfs"), opts);
    const changes = STANDIN_CHANGES.join("\n");
    writeFileSync(path.join(dir, "Dockerfile"), `FROM busybox:1.36\nCOPY rootfs/ /\n${changes}\n`);
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
    if (existsSync(BUSYBOX)) buildStandin([ref], opts);
    else buildWithDockerfile(ref, opts);
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
