// The `swarmform` command, run as users run it: bin/swarmform (the compiled dist/cli/main.js) in a child
// process. The build runs first (tsc, incremental), so the test runs the code of this checkout.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import YAML from "yaml";
import { loadTestbed } from "../../cli/main";
import { COMMAND_USAGE } from "../../cli/usage";
import { MASKED } from "../../cli/render";
import { TESTBED_PREREQUISITES } from "../testbed/testbed";

const ROOT = path.resolve(__dirname, "..", "..");
const BIN = path.join(ROOT, "bin", "swarmform");
const FIXTURES = path.join(ROOT, "tests", "fixtures", "config");
const RENDER = "tests/fixtures/config/render";

jest.setTimeout(120_000);

beforeAll(() => {
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.build.json"], {
    cwd: ROOT,
    stdio: "inherit",
  });
}, 300_000);

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
/** validate's OK/FAIL lines, without the indented lines that list each stack's variables under an OK. */
const verdictLines = (text: string) => nonEmptyLines(text).filter((l) => !l.startsWith("  "));

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
      "Usage: swarmform render FILE... [--stack NAME] [--name STACK] [--strict] [--no-platform] [--full]",
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
  it("validates every shipped stack config of the project it runs in, from a directory below; dev waits for its SSH key", () => {
    const r = swarmform(["validate"], path.join(ROOT, "stacks"));
    // Dev creates VMs and forms its swarm over SSH: the key is a per-user secret that no shipped file can hold.
    expect(nonEmptyLines(r.stderr)).toEqual([
      "swarmform:sshPrivateKey: is required when nodes.source is libvirt; set it with: pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519",
    ]);
    expect(r.code).toBe(1);
    expect(verdictLines(r.stdout).map((l) => l.split(":")[0])).toEqual([
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
    const missing = swarmform(["validate", "--stack", "nope"], ROOT);
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
    const r = swarmform(["render", path.join(ROOT, "stacks", "popcube.yaml"), "--stack", "prod"], ROOT);
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
          /collide-b\.yaml:4 \(services\.shop\.ports\): port 8080\/tcp is published by both service collide-a_shop .* and service collide-b_shop/,
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

describe("help is the same for every command, however it is asked for", () => {
  it.each(Object.keys(COMMAND_USAGE))(
    "%s: help CMD, CMD --help and CMD -h print its usage, exit 0",
    (cmd) => {
      const asked = [
        ["help", cmd],
        [cmd, "--help"],
        [cmd, "-h"],
        [cmd, "up", "-h"],
      ].map((a) => swarmform(a, ROOT));
      for (const r of asked) {
        expect([r.code, r.stderr]).toEqual([0, ""]);
        expect(r.stdout).toBe(COMMAND_USAGE[cmd] + "\n");
      }
      expect(asked[0].stdout).toMatch(new RegExp(`^Usage: swarmform ${cmd} `));
    },
  );

  it("the testbed's usage says it needs root and names every Debian package it checks for", () => {
    const usage = swarmform(["help", "testbed"]).stdout;
    expect(usage).toMatch(/needs root/i);
    for (const [, pkg] of TESTBED_PREREQUISITES) expect(usage).toContain(pkg);
  });

  it("--help loads no command module (no zod, no yaml, no config layer); validate loads no Pulumi SDK", () => {
    const loaded = (args: string[]) => {
      const script = `require(${JSON.stringify(path.join(ROOT, "dist/cli/main.js"))})
        .run(${JSON.stringify(args)}, { io: { out() {}, err() {} } })
        .then((code) => console.log(JSON.stringify({ code, modules: Object.keys(require.cache) })));`;
      const out = execFileSync(process.execPath, ["-e", script], { cwd: ROOT, encoding: "utf8" });
      return JSON.parse(out) as { code: number; modules: string[] };
    };
    const help = loaded(["--help"]);
    expect(help.code).toBe(0);
    expect(help.modules.map((m) => path.relative(ROOT, m)).sort()).toEqual([
      "dist/cli/common.js",
      "dist/cli/main.js",
      "dist/cli/usage.js",
      "dist/components/config/errors.js",
    ]);
    const validate = loaded(["validate", "--stack", "staging"]);
    expect(validate.code).toBe(0);
    expect(validate.modules.some((m) => m.includes(`${path.sep}zod${path.sep}`))).toBe(true);
    expect(validate.modules.filter((m) => m.includes("@pulumi"))).toEqual([]);
  });
});

describe("the same rules for validate and render", () => {
  it("render --stack nope prints the same message as validate --stack nope, exit 1", () => {
    const v = swarmform(["validate", "--stack", "nope"], ROOT);
    const r = swarmform(["render", "stacks/popcube.yaml", "--stack", "nope"], ROOT);
    expect([v.code, r.code, r.stdout]).toEqual([1, 1, ""]);
    expect(r.stderr).toBe(v.stderr);
    expect(nonEmptyLines(r.stderr)).toEqual([
      expect.stringMatching(/^Pulumi\.nope\.yaml: no such file; stacks in .*: dev, local, prod, staging$/),
    ]);
  });

  it("validate checks each repeated --stack; render takes one --stack and refuses two", () => {
    const v = swarmform(["validate", "--stack", "prod", "--stack", "staging"], ROOT);
    expect([v.code, v.stderr]).toEqual([0, ""]);
    expect(verdictLines(v.stdout).map((l) => l.split(":")[0])).toEqual(["OK prod", "OK staging"]);
    const bad = swarmform(["validate", "--stack", "staging", "--stack", "nope"], ROOT);
    expect(bad.code).toBe(1);
    expect(verdictLines(bad.stdout).map((l) => l.split(":")[0])).toEqual(["OK staging", "FAIL nope"]);
    const r = swarmform(["render", "stacks/popcube.yaml", "--stack", "dev", "--stack", "prod"], ROOT);
    expect([r.code, r.stdout]).toEqual([2, ""]);
    expect(r.stderr).toMatch(/^swarmform: render: --stack is given more than once/);
  });

  it("a file or stack given twice is a usage error, in render and in validate", () => {
    const r = swarmform(["render", "stacks/popcube.yaml", path.join(ROOT, "stacks/popcube.yaml")], ROOT);
    expect([r.code, r.stdout]).toEqual([2, ""]);
    expect(r.stderr).toMatch(/^swarmform: render: .*popcube\.yaml is given twice\n/);
    const v = swarmform(["validate", "Pulumi.dev.yaml", "./Pulumi.dev.yaml"], ROOT);
    expect([v.code, v.stdout]).toEqual([2, ""]);
    expect(v.stderr).toMatch(/^swarmform: validate: \.\/Pulumi\.dev\.yaml is given twice\n/);
    expect(swarmform(["validate", "--stack", "dev", "--stack", "dev"], ROOT).code).toBe(2);
  });
});

describe("the project is the one the command runs in", () => {
  it("works on the project of the current directory, not on the copy it was installed from", () => {
    const project = fs.mkdtempSync(path.join(os.tmpdir(), "swarmform-cli-"));
    try {
      fs.cpSync(path.join(FIXTURES, "good"), project, { recursive: true });
      fs.mkdirSync(path.join(project, "deep", "er"), { recursive: true });
      const r = swarmform(["validate"], path.join(project, "deep", "er"));
      expect([r.code, r.stderr]).toEqual([0, ""]);
      expect(verdictLines(r.stdout)).toEqual([
        expect.stringMatching(/^OK ssh: \.\.\/\.\.\/Pulumi\.ssh\.yaml: staging/),
      ]);
      const missing = swarmform(["render", "stacks/web.yaml", "--stack", "dev"], project);
      expect(missing.stderr).toBe(`Pulumi.dev.yaml: no such file; stacks in ${project}: ssh\n`);
    } finally {
      fs.rmSync(project, { recursive: true, force: true });
    }
  });

  it("outside any project: a clear error for what needs one, exit 2; FILE arguments need none", () => {
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), "swarmform-none-"));
    try {
      for (const args of [
        ["validate"],
        ["validate", "--stack", "dev"],
        ["render", path.join(ROOT, "stacks/popcube.yaml"), "--stack", "dev"],
      ]) {
        const r = swarmform(args, outside);
        expect([r.code, r.stdout]).toEqual([2, ""]);
        expect(r.stderr).toBe(
          `swarmform: no Pulumi.yaml in ${outside} or any directory above it: run swarmform inside a Swarmform project\n`,
        );
      }
      expect(swarmform(["render", path.join(ROOT, "stacks/popcube.yaml")], outside).code).toBe(0);
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe("render --no-platform", () => {
  it("a stack with its own Traefik collides with the platform, and renders alone with --no-platform", () => {
    const file = `${RENDER}/own-traefik.yaml`;
    const withPlatform = swarmform(["render", file], ROOT);
    expect([withPlatform.code, withPlatform.stdout]).toEqual([1, ""]);
    expect(nonEmptyLines(withPlatform.stderr)).toEqual([
      expect.stringMatching(
        /port 80\/tcp is published by both Traefik's web entrypoint .* and service own-traefik_proxy/,
      ),
      expect.stringMatching(/port 443\/tcp is published by both Traefik's websecure entrypoint/),
      expect.stringMatching(
        /route prometheus\.localhost\/ is routed by both Prometheus .* and service own-traefik_metrics/,
      ),
    ]);
    const alone = swarmform(["render", "--no-platform", file], ROOT);
    expect([alone.code, alone.stderr]).toEqual([0, ""]);
    const out = JSON.parse(alone.stdout) as { services: { name: string; ports: unknown[] }[] };
    expect(out.services.map((s) => s.name)).toEqual(["own-traefik_proxy", "own-traefik_metrics"]);
    expect(out.services[0].ports).toEqual([
      { target: 80, published: 80, protocol: "tcp", mode: "host" },
      { target: 443, published: 443, protocol: "tcp", mode: "host" },
    ]);
  });

  it("still reports the collisions between the given files", () => {
    const r = swarmform(
      ["render", "--no-platform", `${RENDER}/collide-a.yaml`, `${RENDER}/collide-b.yaml`],
      ROOT,
    );
    expect(r.code).toBe(1);
    expect(nonEmptyLines(r.stderr)).toEqual([
      expect.stringMatching(
        /port 8080\/tcp is published by both service collide-a_shop .* and service collide-b_shop/,
      ),
      expect.stringMatching(
        /route shop\.example\.com\/ is routed by both service collide-a_shop .* and service collide-b_shop/,
      ),
    ]);
  });
});

describe("render --full", () => {
  type Full = Record<string, unknown> & { name: string };
  const file = `${RENDER}/full-model.yaml`;

  it("--full prints the default fields unchanged, then the others", () => {
    const plain = JSON.parse(swarmform(["render", file], ROOT).stdout) as { services: Full[] };
    const full = JSON.parse(swarmform(["render", "--full", file], ROOT).stdout) as { services: Full[] };
    for (const [i, s] of plain.services.entries()) {
      const keys = Object.keys(s);
      expect(Object.keys(full.services[i]).slice(0, keys.length)).toEqual(keys);
      for (const k of keys) expect(full.services[i][k]).toEqual(s[k]);
    }
  });

  it("prints everything registered for a service, field by field as in the stack file, secrets masked", () => {
    const r = swarmform(["render", "--full", file], ROOT);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const [api, worker] = (JSON.parse(r.stdout) as { services: Full[] }).services;
    const doc = YAML.parse(fs.readFileSync(path.join(ROOT, file), "utf8"));
    const s = doc.services.api;
    const d = s.deploy;
    const env = s.environment as Record<string, string>;
    expect(api.environment).toEqual({
      LOG_LEVEL: env.LOG_LEVEL,
      DB_PASSWORD: MASKED,
      API_TOKEN: MASKED,
      PLAIN: env.PLAIN,
    });
    expect(r.stdout).not.toContain(env.DB_PASSWORD);
    expect(r.stdout).not.toContain(env.API_TOKEN);
    expect(api.command).toEqual(s.command);
    expect(api.entrypoint).toEqual(s.entrypoint);
    expect(api.user).toBe(s.user);
    expect(api.mounts).toEqual([
      { type: "volume", source: "model_data", target: "/var/lib/api", readOnly: false },
      { type: "bind", source: s.volumes[1].source, target: s.volumes[1].target, readOnly: true },
      { type: "tmpfs", target: s.volumes[2].target, readOnly: false },
    ]);
    expect(api.secrets).toEqual([
      { source: "model_db_password", key: "db_password", target: "db_password", mode: 0o400 },
      { source: doc.secrets.external_token.name, key: "external_token", target: "external_token" },
    ]);
    expect(api.configs).toEqual([{ source: "model_api_conf", key: "api_conf", target: s.configs[0].target }]);
    expect(api.healthcheck).toEqual({
      test: s.healthcheck.test,
      interval: s.healthcheck.interval,
      timeout: s.healthcheck.timeout,
      retries: s.healthcheck.retries,
      startPeriod: s.healthcheck.start_period,
    });
    expect(api.replicas).toBe(d.replicas);
    expect(api.endpointMode).toBe(d.endpoint_mode);
    expect(api.constraints).toEqual(d.placement.constraints);
    expect(api.preferences).toEqual(d.placement.preferences.map((p: { spread: string }) => p.spread));
    const policy = (p: Record<string, unknown>) => ({
      parallelism: p.parallelism,
      ...(p.delay !== undefined ? { delay: p.delay } : {}),
      failureAction: p.failure_action,
      order: p.order,
    });
    expect(api.updateConfig).toEqual(policy(d.update_config));
    expect(api.rollbackConfig).toEqual(policy(d.rollback_config));
    expect(api.restartPolicy).toEqual({
      condition: d.restart_policy.condition,
      delay: d.restart_policy.delay,
      maxAttempts: d.restart_policy.max_attempts,
      window: d.restart_policy.window,
    });
    expect(api.resources).toEqual({
      limits: { cpus: Number(d.resources.limits.cpus), memoryBytes: 512 * 1024 * 1024 },
      reservations: { cpus: Number(d.resources.reservations.cpus), memoryBytes: 64 * 1024 * 1024 },
    });
    // Unset policies are printed as null, not left out: the output says they are not set.
    expect(worker).toEqual(
      expect.objectContaining({
        mode: "global",
        replicas: null,
        healthcheck: null,
        restartPolicy: null,
        rollbackConfig: null,
        resources: null,
        command: null,
        mounts: [],
        secrets: [],
        configs: [],
        preferences: [],
      }),
    );
  });

  it("names the registry credentials (password masked) of images on the platform registry, not of others", () => {
    type Auth = { registryAuth: unknown; name: string };
    const dev = swarmform(["render", "--full", "--stack", "dev", "stacks/popcube.yaml"], ROOT);
    expect([dev.code, dev.stderr]).toEqual([0, ""]);
    const devConfig = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config;
    const registryHost = devConfig["swarmform:stackVariables"].REGISTRY as string;
    for (const s of (JSON.parse(dev.stdout) as { services: Auth[] }).services) {
      expect([s.name, s.registryAuth]).toEqual([
        s.name,
        { serverAddress: registryHost, username: expect.any(String), password: MASKED },
      ]);
    }
    const alone = swarmform(
      ["render", "--full", "--no-platform", "--stack", "dev", "stacks/popcube.yaml"],
      ROOT,
    );
    for (const s of (JSON.parse(alone.stdout) as { services: Auth[] }).services)
      expect(s.registryAuth).toBeNull();
    const other = swarmform(["render", "--full", file], ROOT);
    for (const s of (JSON.parse(other.stdout) as { services: Auth[] }).services)
      expect(s.registryAuth).toBeNull();
  });
});
