// The `swarmform` command, run as users run it: bin/swarmform in a child process.
import { spawnSync } from "child_process";
import * as os from "os";
import * as path from "path";
import { loadTestbed } from "../../cli/main";

const ROOT = path.resolve(__dirname, "..", "..");
const BIN = path.join(ROOT, "bin", "swarmform");
const FIXTURES = path.join(ROOT, "tests", "fixtures", "config");

jest.setTimeout(120_000);

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs bin/swarmform with `args` in `cwd` (default: a directory outside the project). */
function swarmform(args: string[], cwd = os.tmpdir()): Result {
  const env = { ...process.env };
  for (const k of ["DOMAIN", "REGISTRY", "ORG", "API_TAG", "WEB_TAG", "WEB_HOST"]) delete env[k];
  const r = spawnSync(BIN, args, { cwd, env, encoding: "utf8", timeout: 110_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const nonEmptyLines = (text: string) => text.split("\n").filter((l) => l !== "");

describe("usage", () => {
  it("prints help with exit 0, for the tool and for a command", () => {
    const top = swarmform(["--help"]);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/^Usage: swarmform <command>/);
    for (const cmd of ["validate", "render", "describe", "promote", "testbed"])
      expect(top.stdout).toContain(`  ${cmd} `);
    const render = swarmform(["render", "--help"]);
    expect([render.code, render.stdout.split("\n")[0]]).toEqual([
      0,
      "Usage: swarmform render FILE... [--stack NAME]",
    ]);
  });

  it("rejects an unknown command or flag with the usage on stderr and exit 2", () => {
    const cmd = swarmform(["deploy"]);
    expect([cmd.code, cmd.stdout]).toEqual([2, ""]);
    expect(nonEmptyLines(cmd.stderr).slice(0, 2)).toEqual([
      'swarmform: unknown command "deploy"',
      "Usage: swarmform <command> [options]",
    ]);
    const flag = swarmform(["validate", "--force"]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("Usage: swarmform validate");
    expect(swarmform(["render"]).code).toBe(2);
  });
});

describe("validate", () => {
  it("validates every shipped stack config, from any directory; dev waits for its SSH key", () => {
    const r = swarmform(["validate"]);
    // Dev forms its swarm over SSH: the key is a per-user secret that no shipped file can hold.
    expect(nonEmptyLines(r.stderr)).toEqual([
      "swarmform:sshPrivateKey: is required when nodes.source is ssh; set it with: pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519",
    ]);
    expect(r.code).toBe(1);
    expect(nonEmptyLines(r.stdout).map((l) => l.split(":")[0])).toEqual([
      "FAIL dev",
      "OK local",
      "OK prod",
      "OK staging",
    ]);
  });

  it("prints every problem of a broken config on stderr, one per line, and exits 1", () => {
    const r = swarmform(["validate", path.join(FIXTURES, "broken", "Pulumi.broken.yaml")]);
    expect(r.code).toBe(1);
    expect(nonEmptyLines(r.stdout)).toHaveLength(1);
    expect(r.stdout).toMatch(/^FAIL broken: /);
    const lines = nonEmptyLines(r.stderr);
    expect(lines).toHaveLength(15); // 3 of them: prod services not pinned by digest
    for (const line of lines)
      expect(line).toMatch(/^(swarmform:[\w.[\]]+|stacks\/\w+\.yaml:\d+ \([^)]+\)): \S/);
    expect(lines).toContain(
      "swarmform:nodes.managers.count: must be odd (1, 3, 5 or 7) so raft keeps a quorum; got 2",
    );
    expect(lines).toContain(
      "swarmform:registryPassword: must be a secret; set it with: pulumi config set --secret registryPassword <value>",
    );
  });

  it("accepts a valid config file given by path, and fails on an unknown stack", () => {
    const good = swarmform(["validate", "tests/fixtures/config/good/Pulumi.ssh.yaml"], ROOT);
    expect([good.code, good.stderr]).toEqual([0, ""]);
    expect(good.stdout).toMatch(
      /^OK ssh: tests\/fixtures\/config\/good\/Pulumi\.ssh\.yaml: staging, 3 managers, 1 worker/,
    );
    const missing = swarmform(["validate", "--stack", "nope"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /Pulumi\.nope\.yaml: no such file; stacks in .*: dev, local, prod, staging/,
    );
  });
});

describe("render", () => {
  type Rendered = { services: Record<string, unknown>[] };

  it("prints the service model as JSON, with x-traefik expanded for the default platform", () => {
    const r = swarmform(["render", "stacks/popcube.yaml"], ROOT);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const out = JSON.parse(r.stdout) as Rendered;
    expect(out.services.map((s) => s.name)).toEqual(["maxime_api", "maxime_database", "maxime_website"]);
    for (const s of out.services) {
      expect(Object.keys(s)).toEqual([
        "name",
        "image",
        "mode",
        "replicas",
        "labels",
        "containerLabels",
        "networks",
        "constraints",
        "ports",
        "updateConfig",
      ]);
      for (const v of Object.values(s.labels as object)) expect(typeof v).toBe("string");
    }
    const api = out.services[0] as { labels: Record<string, string>; networks: string[]; replicas: number };
    expect(api.labels["traefik.swarm.network"]).toBe("swarmform-local_public");
    expect(api.labels["traefik.http.routers.maxime-api.rule"]).toBe("Host(`api.dev.popcube.xyz`)");
    expect(api.networks).toContain("swarmform-local_public");
    expect(api.replicas).toBe(5);
  });

  it("takes the platform settings and stack variables of --stack", () => {
    const r = swarmform(["render", path.join(ROOT, "stacks", "popcube.yaml"), "--stack", "prod"]);
    expect(r.code).toBe(0);
    const api = (JSON.parse(r.stdout) as Rendered).services[0] as {
      labels: Record<string, string>;
      image: string;
    };
    expect(api.labels["traefik.swarm.network"]).toBe("swarmform-prod_public");
    expect(api.labels["traefik.http.routers.maxime-api.rule"]).toBe("Host(`api.popcube.xyz`)");
    expect(api.image).toMatch(/^registry\.popcube\.xyz:5000\/popcubeapi:/);
  });

  it("reports a broken stack file at file:line and exits 1", () => {
    const r = swarmform(["render", "tests/fixtures/config/render/bad.yaml"], ROOT);
    expect([r.code, r.stdout]).toEqual([1, ""]);
    const lines = nonEmptyLines(r.stderr);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines[0]).toMatch(/^tests\/fixtures\/config\/render\/bad\.yaml:3 \(services\.web\.image\): /);
    expect(lines).toContainEqual(expect.stringMatching(/^tests\/fixtures\/config\/render\/bad\.yaml:5 /));
  });
});

describe("render: what the program would reject across files", () => {
  it("a port published twice and a host+path routed twice, naming both services; Traefik owns 443", () => {
    const dir = "tests/fixtures/config/render";
    const r = swarmform(["render", `${dir}/collide-a.yaml`, `${dir}/collide-b.yaml`], ROOT);
    expect([r.code, r.stdout]).toEqual([1, ""]);
    const lines = nonEmptyLines(r.stderr);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /collide-b\.yaml:2 \(services\.shop\.ports\): port 8080\/tcp is published by both service collide-a_shop .* and service collide-b_shop/,
        ),
        expect.stringMatching(/port 443\/tcp is published by both .*traefik.* and service collide-b_shop/i),
        expect.stringMatching(
          /Traefik route shop\.example\.com\/ is routed by both service collide-a_shop .* and service collide-b_shop/,
        ),
      ]),
    );
    expect(lines).toHaveLength(3);
  });
});

describe("testbed dispatch", () => {
  it("finds the optional testbed module, and reports a missing one as absent", () => {
    expect(typeof loadTestbed()?.runTestbedCommand).toBe("function");
    expect(loadTestbed("./no-such-testbed")).toBeUndefined();
  });
});
