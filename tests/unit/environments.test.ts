// Image pins, the pin policy of each environment, promotion order, and network encryption, over the
// shipped stack configs.
import * as path from "path";
import {
  applyImagePins,
  imageWithPin,
  pinProblem,
  promotionProblem,
} from "../../components/config/environments";
import { formatIssue } from "../../components/config/errors";
import { issuesOf } from "../support/configIssues";
import { loadClusterSpec, readPulumiStackFile } from "../../components/config/load";
import { ClusterSpec } from "../../components/config/types";

const ROOT = path.resolve(__dirname, "../..");
/** The repositories of stacks/popcube.yaml, by service key. */
const REPOSITORIES = { api: "popcubeapi", database: "popcube_database", website: "popcube_website" };
const DIGEST = "sha256:" + "ab".repeat(32);

/** Loads a shipped stack config, with keys replaced by `over` (and sshPrivateKey set as a secret). */
function load(stack: string, over: Record<string, unknown> = {}): ClusterSpec {
  const read = readPulumiStackFile(path.join(ROOT, `Pulumi.${stack}.yaml`));
  return loadClusterSpec({
    project: "swarmform",
    stack,
    config: { ...read.config, sshPrivateKey: { secure: "v1:x" }, ...over },
    secretKeys: [...read.secretKeys, "sshPrivateKey"],
    rootDir: ROOT,
    env: {},
  });
}
describe("pin policy", () => {
  it.each([
    ["dev", "latest", undefined],
    ["staging", "alpha-1", undefined],
    ["staging", "latest", /staging does not accept latest/],
    ["prod", "alpha-1", /prod accepts only digests/],
    ["prod", `alpha-1@${DIGEST}`, undefined],
    ["dev", "alpha-1@sha256:abc", /TAG@sha256:<64 hex digits>/],
  ] as const)("%s %s", (env, pin, expected) => {
    const p = pinProblem(pin, env);
    if (expected) expect(p).toMatch(expected);
    else expect(p).toBeUndefined();
  });

  it("a pin replaces the tag and digest but keeps the registry and repository", () => {
    expect(imageWithPin("registry.x:5000/team/api:1.0", `2.0@${DIGEST}`)).toBe(
      `registry.x:5000/team/api:2.0@${DIGEST}`,
    );
    expect(imageWithPin("nginx@sha256:" + "cd".repeat(32), "1.27")).toBe("nginx:1.27");
  });
});

describe("pins in the program's spec", () => {
  it("every service of dev, staging and prod deploys its pin on the stack file's repository", () => {
    for (const stack of ["dev", "staging", "prod"]) {
      const read = readPulumiStackFile(path.join(ROOT, `Pulumi.${stack}.yaml`));
      const pins = read.config.images as Record<string, Record<string, string>>;
      const registry = (read.config.stackVariables as Record<string, string>).REGISTRY;
      const services = load(stack).stacks.flatMap((s) => s.services);
      expect(services.map((s) => [s.key, s.image])).toEqual(
        Object.entries(REPOSITORIES).map(([key, repo]) => [key, `${registry}/${repo}:${pins.maxime[key]}`]),
      );
    }
  });

  it("staging and prod refuse a service without a pin, naming its key", () => {
    const read = readPulumiStackFile(path.join(ROOT, "Pulumi.prod.yaml"));
    const images = structuredClone(read.config.images) as Record<string, Record<string, string>>;
    delete images.maxime.website;
    expect(issuesOf(() => load("prod", { images }))).toEqual([
      expect.stringMatching(
        /^swarmform:images\.maxime\.website: maxime_website runs \S+, unpinned: prod accepts only digests; pin it here/,
      ),
    ]);
  });

  it("prod refuses a tag without digest, staging refuses latest, each at its key", () => {
    const prod = issuesOf(() =>
      load("prod", {
        images: { maxime: { api: "alpha-1.1.11", database: `a@${DIGEST}`, website: `b@${DIGEST}` } },
      }),
    );
    expect(prod).toEqual([
      expect.stringMatching(/^swarmform:images\.maxime\.api: prod accepts only digests/),
    ]);
    const staging = issuesOf(() =>
      load("staging", { images: { maxime: { api: "latest", database: "a", website: "b" } } }),
    );
    expect(staging).toEqual([
      expect.stringMatching(/^swarmform:images\.maxime\.api: staging does not accept latest/),
    ]);
  });

  it("a pin for a stack or service that is not deployed is an error at its key", () => {
    const { issues } = applyImagePins(
      load("dev").stacks,
      { maxime: { nope: "1" }, other: { a: "1" } },
      "dev",
    );
    expect(issues.map(formatIssue)).toEqual([
      'swarmform:images.maxime.nope: stack "maxime" has no service "nope"; services: api, database, website',
      'swarmform:images.other.a: no stack "other" is deployed; stacks: maxime',
    ]);
  });
});

describe("network encryption", () => {
  const networksOf = (spec: ClusterSpec) => [
    ...spec.networks.map((n) => [n.physicalName, n.encrypted] as const),
    ...spec.stacks.flatMap((s) => s.networks.map((n) => [n.physicalName, n.encrypted] as const)),
  ];

  it("prod and staging encrypt every overlay network, the app stacks' own included; dev does not", () => {
    for (const stack of ["prod", "staging"]) {
      const nets = networksOf(load(stack));
      expect(nets.map((n) => n[0])).toEqual([`swarmform-${stack}_public`, "maxime_backend"]);
      expect(nets.every(([, enc]) => enc)).toBe(true);
    }
    expect(networksOf(load("dev")).some(([, enc]) => enc)).toBe(false);
  });

  it("plaintextNetworks leaves the named networks in clear text; an unknown name is an error", () => {
    const nets = networksOf(load("prod", { plaintextNetworks: ["maxime_backend"] }));
    expect(nets).toEqual([
      ["swarmform-prod_public", true],
      ["maxime_backend", false],
    ]);
    expect(issuesOf(() => load("prod", { plaintextNetworks: ["backend"] }))).toEqual([
      expect.stringMatching(
        /^swarmform:plaintextNetworks\[0\]: no network "backend"; networks: public, maxime_backend/,
      ),
    ]);
  });

  it("every network of a shipped config is used by a service", () => {
    for (const stack of ["dev", "staging", "prod"]) {
      const spec = load(stack);
      const used = new Set(spec.stacks.flatMap((s) => s.services.flatMap((svc) => svc.networks)));
      used.add(spec.networks.find((n) => n.name === spec.publicNetwork)!.physicalName); // Traefik's
      for (const [name] of networksOf(spec))
        expect([stack, name, used.has(name)]).toEqual([stack, name, true]);
    }
  });
});

describe("promotion order", () => {
  it.each([
    ["dev", "staging", false, undefined],
    ["staging", "prod", false, undefined],
    ["dev", "prod", false, /skips staging/],
    ["dev", "prod", true, undefined],
    ["prod", "staging", true, /backwards/],
    ["local", "dev", false, /not in the promotion order/],
  ] as const)("%s -> %s (force %s)", (from, to, force, expected) => {
    const p = promotionProblem(from, to, force);
    if (expected) expect(p).toMatch(expected);
    else expect(p).toBeUndefined();
  });
});
