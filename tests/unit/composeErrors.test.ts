// Issue 7: keys we refuse say why, keys swarm ignores are warnings (errors when strict), every problem is
// reported in one pass at the line of the offending key, and the CLI and the program show the same lines.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { runRender } from "../../cli/render";
import { runValidate } from "../../cli/validate";
import { parseStackText, StackImportOptions } from "../../components/config/compose";
import { formatIssue } from "../../components/config/errors";
import { issuesOf } from "../support/configIssues";
import { loadCluster, loadClusterSpecFromPulumi, readPulumiStackFile } from "../../components/config/load";

const imp = (text: string, extra: Partial<StackImportOptions> = {}) =>
  parseStackText(text, { file: "/srv/stacks/t.yaml", displayPath: "stacks/t.yaml", vars: {}, ...extra });
const lines = (text: string, extra: Partial<StackImportOptions> = {}) =>
  imp(text, extra).issues.map(formatIssue);

/** A project folder with a Pulumi.<stack>.yaml and stack files. */
/** A project in a temp dir: Pulumi.yaml (the CLI looks for it) and the given files. */
function project(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmform-i7-"));
  for (const [name, text] of Object.entries({
    "Pulumi.yaml": "name: swarmform\nruntime: nodejs\n",
    ...files,
  })) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}
const BASE = [
  "config:",
  "  swarmform:environment: dev",
  "  swarmform:domain: example.com",
  "  swarmform:docker:",
  "    host: unix:///var/run/docker.sock",
  "  swarmform:traefik:",
  "    acme:",
  "      email: ops@example.com",
].join("\n");

function cli(run: typeof runValidate, argv: string[], root: string, env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = run(argv, { io: { out: (l) => out.push(l), err: (l) => err.push(l) }, cwd: root, env });
  return { code, out, err };
}

describe("keys we cannot honour say why, at their line", () => {
  it("ulimits, tty and pids: the docker provider has no field; ipv4_address: swarm assigns addresses", () => {
    const text = [
      "services:",
      "  a:",
      "    image: nginx:1",
      "    tty: true",
      "    ulimits:",
      "      nofile: { soft: 1024, hard: 2048 }",
      "    networks:",
      "      back:",
      "        ipv4_address: 10.0.0.5",
      "    deploy:",
      "      resources:",
      "        limits:",
      "          pids: 100",
      "networks:",
      "  back:",
    ].join("\n");
    expect(lines(text)).toEqual([
      'stacks/t.yaml:4 (services.a.tty): "tty" is not supported: swarm honours it, but the docker provider (@pulumi/docker v5 Service) has no field for it, so Swarmform cannot set it',
      expect.stringMatching(
        /^stacks\/t\.yaml:5 \(services\.a\.ulimits\): "ulimits" is not supported: .*no field for it/,
      ),
      expect.stringMatching(
        /^stacks\/t\.yaml:9 \(services\.a\.networks\.back\.ipv4_address\): .*swarm assigns task addresses itself/,
      ),
      expect.stringMatching(
        /^stacks\/t\.yaml:13 \(services\.a\.deploy\.resources\.limits\.pids\): .*no field/,
      ),
    ]);
  });
  it("dns_search without dns; a bad stop signal, working_dir and extra host", () => {
    const text = [
      "services:",
      "  a:",
      "    image: nginx:1",
      "    dns_search: example.org",
      "    stop_signal: TERM",
      "    working_dir: app",
      "    extra_hosts: [nohost]",
    ].join("\n");
    expect(lines(text)).toEqual([
      expect.stringMatching(/^stacks\/t\.yaml:4 \(services\.a\.dns_search\): "dns_search" needs "dns" too/),
      expect.stringMatching(/^stacks\/t\.yaml:5 \(services\.a\.stop_signal\): "TERM" is not a signal/),
      expect.stringMatching(
        /^stacks\/t\.yaml:6 \(services\.a\.working_dir\): "app" must be an absolute path/,
      ),
      expect.stringMatching(/^stacks\/t\.yaml:7 \(services\.a\.extra_hosts\[0\]\): "nohost" is not HOST:IP/),
    ]);
  });
  it("logging without a driver: json-file, and a warning that says so", () => {
    const r = imp(
      "services:\n  a:\n    image: nginx:1\n    logging:\n      options:\n        max-size: 1m\n",
    );
    expect(r.stack!.services[0].logging).toEqual({ driver: "json-file", options: { "max-size": "1m" } });
    expect(r.warnings.map(formatIssue)).toEqual([
      expect.stringMatching(
        /^stacks\/t\.yaml:5 \(services\.a\.logging\): logging has no driver: .*json-file/,
      ),
    ]);
  });
  it("extra_hosts in map form", () => {
    const r = imp("services:\n  a:\n    image: nginx:1\n    extra_hosts:\n      db.internal: 10.1.2.3\n");
    expect(r.stack!.services[0].extraHosts).toEqual([{ host: "db.internal", ip: "10.1.2.3" }]);
  });
});

describe("all errors at once, sorted, at the offending key's line", () => {
  it("an invalid stack name does not hide the rest of the file", () => {
    const text = [
      "name: Not A Name",
      "services:",
      "  a:",
      "    image: Nginx:1",
      "    restart: always",
      "    ports: ['70000:80']",
    ].join("\n");
    expect(lines(text)).toEqual([
      expect.stringMatching(/^stacks\/t\.yaml:1 \(name\): stack name "Not A Name" must match/),
      expect.stringMatching(/^stacks\/t\.yaml:4 \(services\.a\.image\): invalid image reference "Nginx:1"/),
      expect.stringMatching(/^stacks\/t\.yaml:6 \(services\.a\.ports\[0\]\): .*70000 is outside/),
    ]);
  });
  it("configs and secrets whose file does not exist are errors at their file: line", () => {
    const dir = project({ "s.yaml": "", "here.txt": "x" });
    const text = [
      "services:",
      "  a:",
      "    image: nginx:1",
      "    configs: [c]",
      "    secrets: [s, t]",
      "configs:",
      "  c:",
      "    file: ./nope.conf",
      "secrets:",
      "  s:",
      "    file: ./here.txt",
      "  t:",
      "    file: gone/t.txt",
    ].join("\n");
    expect(lines(text, { file: path.join(dir, "s.yaml") })).toEqual([
      expect.stringMatching(/^stacks\/t\.yaml:8 \(configs\.c\.file\): file "\.\/nope\.conf" does not exist/),
      expect.stringMatching(/^stacks\/t\.yaml:13 \(secrets\.t\.file\): file "gone\/t\.txt" does not exist/),
    ]);
  });
  it("across files: config keys first, then files by name and line; a subnet at its line; a route at its label", () => {
    const dir = project({
      "Pulumi.x.yaml": [
        BASE,
        "  swarmform:networks:",
        "    - name: data",
        "      subnet: 10.30.0.0/16",
        "  swarmform:stacks:",
        "    - stacks/a.yaml",
        "    - { file: stacks/b.yaml, name: Bad_Name }",
      ].join("\n"),
      "stacks/a.yaml": [
        "services:",
        "  web:",
        "    image: nginx:1",
        "    x-traefik: { host: shop.example.com, port: 80 }",
        "networks:",
        "  back:",
        "    ipam:",
        "      config:",
        "        - subnet: 10.30.1.0/24",
      ].join("\n"),
      "stacks/b.yaml": [
        "services:",
        "  shop:",
        "    image: nginx:1",
        "    deploy:",
        "      labels:",
        "        traefik.enable: 'true'",
        "        traefik.http.routers.s.rule: Host(`shop.example.com`)",
        "    depends_on: [x]",
      ].join("\n"),
    });
    const read = () => ({
      project: "swarmform",
      stack: "x",
      ...readPulumiStackFile(path.join(dir, "Pulumi.x.yaml")),
      rootDir: dir,
      env: {},
    });
    const issues = issuesOf(() => loadCluster(read()));
    expect(issues).toEqual([
      expect.stringMatching(
        /^swarmform:stacks\[1\]\.name: stack name "Bad_Name" of stacks\/b\.yaml must be lower-case/,
      ),
      expect.stringMatching(
        /^stacks\/a\.yaml:9 \(networks\.back\.ipam\.config\[0\]\.subnet\): 10\.30\.1\.0\/24 overlaps 10\.30\.0\.0\/16/,
      ),
      expect.stringMatching(
        /^stacks\/b\.yaml:7 \(services\.shop\.deploy\.labels\): Traefik route shop\.example\.com\/ is routed by both service a_web \(stacks\/a\.yaml:4\)/,
      ),
    ]);
    // the ignored key of b.yaml is a warning; strict makes it an error too, by config or by flag
    const strictIssues = issuesOf(() => loadCluster({ ...read(), strict: true }));
    expect(strictIssues).toContainEqual(
      expect.stringMatching(/^stacks\/b\.yaml:8 \(services\.shop\.depends_on\): .*strict mode/),
    );
    expect(strictIssues).toHaveLength(4);
  });
});

describe("warnings and strictCompose through loadCluster, validate and render", () => {
  const dir = project({
    "Pulumi.w.yaml": [
      BASE,
      "  swarmform:stacks: [stacks/w.yaml]",
      "  swarmform:stackVariables: { TAG: '1.27' }",
    ].join("\n"),
    "Pulumi.s.yaml": [BASE, "  swarmform:stacks: [stacks/w.yaml]", "  swarmform:strictCompose: true"].join(
      "\n",
    ),
    "stacks/w.yaml": [
      "services:",
      "  web:",
      "    image: nginx:${TAG:-1.25}",
      "    container_name: web",
      "    environment: { ORG: '${ORG:-none}' }",
    ].join("\n"),
  });
  it("validate: OK, the warning on stderr, each variable and its source on stdout", () => {
    const r = cli(runValidate, ["--stack", "w"], dir, { ORG: "from-the-shell" });
    expect(r.code).toBe(0);
    expect(r.err).toEqual([
      expect.stringMatching(
        /^warning: stacks\/w\.yaml:4 \(services\.web\.container_name\): "container_name" is ignored/,
      ),
    ]);
    expect(r.out[1]).toBe(
      "  stack w variables: ORG (unset: the file's default, line 5), TAG (from stackVariables, line 3)",
    );
  });
  it("validate --strict and strictCompose: true make it an error", () => {
    expect(cli(runValidate, ["--stack", "w", "--strict"], dir).code).toBe(1);
    const s = cli(runValidate, ["--stack", "s"], dir);
    expect(s.code).toBe(1);
    expect(s.err).toEqual([
      expect.stringMatching(/^stacks\/w\.yaml:4 \(services\.web\.container_name\): .*strict mode/),
    ]);
  });
  it("render: the warning, or with --strict an error; --name takes exactly one file", () => {
    const file = path.join(dir, "stacks/w.yaml");
    const ok = cli(runRender, [file], dir);
    expect(ok.code).toBe(0);
    expect(ok.err).toEqual([expect.stringMatching(/^warning: .*container_name/)]);
    expect(cli(runRender, ["--strict", file], dir).code).toBe(1);
    expect(() => cli(runRender, ["--name", "x", file, path.join(dir, "stacks/other.yaml")], dir)).toThrow(
      /--name names the stack of one file/,
    );
    const named = cli(runRender, ["--name", "named", file], dir);
    expect(JSON.parse(named.out.join("\n")).services[0].name).toBe("named_web");
  });
  it("the program logs the warnings with pulumi.log.warn", async () => {
    await pulumi.runtime.setMocks(
      { newResource: () => ({ id: "i", state: {} }), call: () => ({}) },
      "swarmform",
      "w",
    );
    const cfg = readPulumiStackFile(path.join(dir, "Pulumi.w.yaml")).config;
    pulumi.runtime.setAllConfig(
      Object.fromEntries(
        Object.entries(cfg).map(([k, v]) => [
          `swarmform:${k}`,
          typeof v === "string" ? v : JSON.stringify(v),
        ]),
      ),
      [],
    );
    const warn = jest.spyOn(pulumi.log, "warn").mockImplementation(() => Promise.resolve());
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      loadClusterSpecFromPulumi();
    } finally {
      process.chdir(cwd);
    }
    expect(warn.mock.calls.map((c) => c[0])).toEqual([
      expect.stringMatching(
        /^stacks\/w\.yaml:4 \(services\.web\.container_name\): "container_name" is ignored/,
      ),
    ]);
    warn.mockRestore();
  });
});
