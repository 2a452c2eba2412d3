// The whole program (index.ts) under Pulumi mocks, once for each shipped Pulumi.<stack>.yaml.
import { createHash } from "crypto";
import * as pulumi from "@pulumi/pulumi";
import * as bcrypt from "bcryptjs";
import {
  byUrn,
  CapturedResource,
  decodeData,
  DOCKER_TYPES,
  getResource,
  ofType,
  ProgramRun,
  runProgram,
  RunProgramOptions,
  stackFiles,
  TEST_SSH_PRIVATE_KEY,
} from "../support/mocks";
import { traefikLabelKeys } from "../support/oracles";

const CLUSTER = "swarmform:index:SwarmCluster";
const NS_LABEL = "com.docker.stack.namespace";
const T = { ...DOCKER_TYPES, password: "random:index/randomPassword:RandomPassword" };
const STACK_FILES = stackFiles();

/**
 * Runs a shipped stack config, with the secret that its README step sets: dev creates VMs and forms its swarm over SSH, so
 * it needs `sshPrivateKey` (a throwaway key; under mocks no connection is made). Other secrets as given.
 */
const runShipped = (opts: RunProgramOptions) =>
  runProgram({ ...opts, secrets: { sshPrivateKey: TEST_SSH_PRIVATE_KEY, ...opts.secrets } });

/** Every label key Traefik v3 understands (its own generated references), user-chosen names as `<name>`. */
const TRAEFIK_KEYS = (() => {
  const generic = (key: string) =>
    key.replace(/^(traefik\.http\.(?:routers|services|middlewares))\.[^.]+\./, "$1.<name>.");
  return { known: new Set(traefikLabelKeys().map(generic)), generic };
})();

type Label = { label: string; value: string };
const labelsOf = (r: CapturedResource): Record<string, string> =>
  Object.fromEntries(((r.inputs.labels ?? []) as Label[]).map((l) => [l.label, l.value]));
const mountsOf = (svc: CapturedResource): { source?: string; target: string; readOnly?: boolean }[] =>
  svc.inputs.taskSpec.containerSpec.mounts ?? [];
const byPhysicalName = (run: ProgramRun, type: string, name: string) =>
  ofType(run, type).find((r) => r.inputs.name === name);

test("every environment ships a stack file", () => {
  expect(STACK_FILES).toEqual(expect.arrayContaining(["Pulumi.dev.yaml", "Pulumi.prod.yaml"]));
});

describe.each(STACK_FILES)("%s under mocks", (stackFile) => {
  let run: ProgramRun;
  let ns: string;
  beforeAll(async () => {
    run = await runShipped({ stackFile });
    ns = `${run.project}-${run.stack}`;
  }, 120_000);

  const services = () => ofType(run, T.service);
  const service = (physical: string) => {
    const s = byPhysicalName(run, T.service, physical);
    if (!s) throw new Error(`no service ${physical}: ${services().map((x) => x.inputs.name)}`);
    return s;
  };
  const publicNetwork = () => {
    const args = service(`${ns}_traefik`).inputs.taskSpec.containerSpec.args as string[];
    return args.find((a) => a.startsWith("--providers.swarm.network="))!.split("=")[1];
  };

  test("registers one cluster, one docker provider and the platform resources", () => {
    expect(ofType(run, CLUSTER)).toHaveLength(1);
    expect(ofType(run, T.provider)).toHaveLength(1);
    expect(ofType(run, T.network).length).toBeGreaterThan(0);
    const names = services().map((s) => s.inputs.name);
    expect(names).toContain(`${ns}_traefik`);
    expect(run.outputs.services).toEqual(expect.arrayContaining(names));
    expect((run.outputs.services as string[]).length).toBe(names.length);
    const registry = byPhysicalName(run, T.service, `${ns}_registry`);
    expect(registry === undefined).toBe(run.outputs.registryUrl === undefined);
    if (registry) expect(ofType(run, T.secret).some((s) => s.parent === registry.parent)).toBe(true);
    const prometheus = byPhysicalName(run, T.service, `${ns}_prometheus`);
    expect(prometheus === undefined).toBe(run.outputs.prometheusUrl === undefined);
    if (prometheus) expect(ofType(run, T.config).length).toBeGreaterThan(0);
  });

  test("every resource's parent chain reaches the SwarmCluster", () => {
    const cluster = ofType(run, CLUSTER)[0];
    expect(cluster.parent).toBeUndefined();
    for (const r of run.resources) {
      if (r === cluster) continue;
      let cur: CapturedResource = r;
      for (let hops = 0; cur.parent && hops < 10; hops++) cur = byUrn(run, cur.parent);
      expect([r.name, cur.urn]).toEqual([r.name, cluster.urn]);
    }
  });

  test("names carry project and stack", () => {
    for (const r of run.resources) expect(r.name.startsWith(`${ns}`)).toBe(true);
    // Physical names: platform objects carry `<project>-<stack>`; app objects their stack namespace.
    for (const r of run.resources.filter((x) => x.type.startsWith("docker:"))) {
      const namespace = labelsOf(r)[NS_LABEL];
      expect(namespace).toBeDefined();
      expect(String(r.inputs.name).startsWith(`${namespace}_`)).toBe(true);
      if (r.name.startsWith(`${ns}-stack-`)) continue;
      expect(namespace).toBe(ns);
    }
  });

  test("docker resources use the provider and depend on the networks, configs and secrets they use", () => {
    const provider = ofType(run, T.provider)[0];
    const ref = `${provider.urn}::${provider.id}`;
    const urnOfId = new Map(run.resources.filter((r) => r.id).map((r) => [r.id!, r.urn]));
    for (const r of run.resources.filter((x) => x.type.startsWith("docker:"))) expect(r.provider).toBe(ref);
    for (const svc of services()) {
      const used: string[] = [
        ...(svc.inputs.taskSpec.networksAdvanceds ?? []).map((n: { id?: string }) => n.id),
        ...(svc.inputs.taskSpec.containerSpec.configs ?? []).map((c: { configId: string }) => c.configId),
        ...(svc.inputs.taskSpec.containerSpec.secrets ?? []).map((s: { secretId: string }) => s.secretId),
      ];
      expect(used.length).toBeGreaterThan(0);
      for (const id of used) {
        expect(urnOfId.has(id)).toBe(true);
        expect(svc.dependencies).toContain(urnOfId.get(id));
      }
    }
  });

  test("stack namespace labels on services and containers; routed services are on the public network", () => {
    const publicId = byPhysicalName(run, T.network, publicNetwork())!.id;
    let routed = 0;
    for (const svc of services()) {
      const labels = labelsOf(svc);
      expect(labels[NS_LABEL]).toBeTruthy();
      const container = Object.fromEntries(
        (svc.inputs.taskSpec.containerSpec.labels as Label[]).map((l) => [l.label, l.value]),
      );
      expect(container[NS_LABEL]).toBe(labels[NS_LABEL]);
      if (Object.keys(labels).some((k) => /^traefik\.http\.routers\.[^.]+\.rule$/.test(k))) {
        routed++;
        expect(labels["traefik.enable"]).toBe("true");
        expect(labels["traefik.swarm.network"]).toBe(publicNetwork());
        const nets = (svc.inputs.taskSpec.networksAdvanceds as { id?: string }[]).map((n) => n.id);
        expect(nets).toContain(publicId);
      }
    }
    expect(routed).toBeGreaterThan(0);
  });

  test("every Traefik label key is one Traefik v3 knows", () => {
    const keys = services().flatMap((svc) =>
      Object.keys(labelsOf(svc)).filter((k) => k.startsWith("traefik.")),
    );
    expect(TRAEFIK_KEYS.known.size).toBeGreaterThan(100);
    expect(keys.length).toBeGreaterThan(5);
    for (const k of keys) expect([k, TRAEFIK_KEYS.known.has(TRAEFIK_KEYS.generic(k))]).toEqual([k, true]);
  });

  test("passwords and everything derived from them are secret", () => {
    expect(run.secretOutputs).toEqual(expect.arrayContaining(["registryPassword", "dashboardPassword"]));
    for (const svc of services().filter((s) => s.inputs.auth)) {
      expect(svc.secretInputs).toContain("auth");
      expect(svc.inputs.auth.password).toBe(run.outputs.registryPassword);
    }
    const traefik = service(`${ns}_traefik`);
    const auth = Object.entries(labelsOf(traefik)).filter(([k]) => k.endsWith(".basicauth.users"));
    if (auth.length > 0) expect(traefik.secretInputs).toContain("labels");
    for (const s of ofType(run, T.secret)) expect(s.secretInputs).toContain("data");
    // Nothing else carries a secret in clear.
    for (const r of run.resources) {
      for (const [k, v] of Object.entries(r.inputs)) {
        if (r.secretInputs.includes(k) || r.type === T.password) continue;
        expect(JSON.stringify(v)).not.toContain(String(run.outputs.registryPassword));
      }
    }
  });

  test("the docker socket is only ever mounted read-only", () => {
    for (const svc of services()) {
      for (const m of mountsOf(svc)) {
        if (m.source === "/var/run/docker.sock" || m.source === "/var/run")
          expect([svc.name, m.readOnly]).toEqual([svc.name, true]);
      }
    }
    expect(mountsOf(service(`${ns}_traefik`)).map((m) => m.source)).toContain("/var/run/docker.sock");
  });

  test("Traefik: pinned to a labelled manager, host-mode ports, dashboard only behind basic auth", () => {
    const traefik = service(`${ns}_traefik`);
    const constraints = traefik.inputs.taskSpec.placement.constraints as string[];
    expect(constraints).toContain("node.role==manager");
    expect(constraints.some((c) => c.startsWith("node.labels."))).toBe(true);
    for (const p of traefik.inputs.endpointSpec.ports) expect(p.publishMode).toBe("host");
    const labels = labelsOf(traefik);
    const args = traefik.inputs.taskSpec.containerSpec.args as string[];
    const dashboard = Object.keys(labels).find((k) => labels[k] === "api@internal");
    expect(dashboard !== undefined).toBe(run.outputs.dashboardUrl !== undefined);
    expect(args.includes("--api.dashboard=true")).toBe(run.outputs.dashboardUrl !== undefined);
    if (dashboard) {
      const router = dashboard.replace(/\.service$/, "");
      const middleware = labels[`${router}.middlewares`].replace(/@swarm$/, "");
      const users = labels[`traefik.http.middlewares.${middleware}.basicauth.users`];
      const [user, hash] = users.split(/:(.*)/s);
      expect(user).toBeTruthy();
      expect(bcrypt.compareSync(String(run.outputs.dashboardPassword), hash)).toBe(true);
    }
  });

  test("monitoring: exporters global, Prometheus config named by its content hash", () => {
    if (run.outputs.prometheusUrl === undefined) return;
    for (const key of ["node-exporter", "cadvisor"])
      expect(service(`${ns}_${key}`).inputs.mode).toEqual({ global: true });
    const prometheus = service(`${ns}_prometheus`);
    const ref = prometheus.inputs.taskSpec.containerSpec.configs[0];
    const config = ofType(run, T.config).find((c) => c.id === ref.configId)!;
    const content = decodeData(config);
    expect(content).toContain("dockerswarm_sd_configs");
    const hash = createHash("sha256").update(content).digest("hex").slice(0, 10);
    expect(config.inputs.name).toBe(`${ns}_prometheus-${hash}`);
    expect(ref.configName).toBe(config.inputs.name);
    expect(config.deleteBeforeReplace).toBe(false);
  });
});

describe("Pulumi.dev.yaml variations", () => {
  const registryHtpasswd = (run: ProgramRun) => {
    const secret = ofType(run, T.secret).find((s) => String(s.inputs.name).includes("registry-htpasswd"))!;
    return { name: String(secret.inputs.name), line: decodeData(secret).trim() };
  };

  test("set passwords come from secret config (no generated password); htpasswd is deterministic", async () => {
    const secrets = {
      registryPassword: "reg-pass-1",
      traefikDashboardPassword: "dash-pass-1",
      stackSecrets: JSON.stringify({ DB_PASSWORD: "db-pass-1" }),
    };
    const a = await runShipped({ stackFile: "Pulumi.dev.yaml", secrets });
    const b = await runShipped({ stackFile: "Pulumi.dev.yaml", secrets });
    const c = await runShipped({
      stackFile: "Pulumi.dev.yaml",
      secrets: { ...secrets, registryPassword: "reg-pass-2" },
    });
    expect(ofType(a, T.password)).toHaveLength(0);
    expect(a.outputs.registryPassword).toBe("reg-pass-1");
    expect(a.secretOutputs).toEqual(expect.arrayContaining(["registryPassword", "dashboardPassword"]));
    const [ha, hb, hc] = [a, b, c].map(registryHtpasswd);
    expect(ha).toEqual(hb);
    // Idempotence: a second run with the same config registers exactly the same inputs (no random salt,
    // no timestamp, no ordering noise), so a second `pulumi up` has nothing to change.
    const inputs = (run: ProgramRun) =>
      run.resources
        .map((r) => [`${r.type} ${r.name}`, r.inputs])
        .sort(([x], [y]) => String(x).localeCompare(String(y)));
    expect(inputs(b)).toEqual(inputs(a));
    const [user, hash] = ha.line.split(/:(.*)/s);
    expect(user).toBeTruthy();
    expect(bcrypt.compareSync("reg-pass-1", hash)).toBe(true);
    expect(bcrypt.compareSync("reg-pass-2", hash)).toBe(false);
    expect(hc.name).not.toBe(ha.name);
    expect(bcrypt.compareSync("reg-pass-2", hc.line.split(/:(.*)/s)[1])).toBe(true);
  }, 120_000);

  test("unset passwords are generated by RandomPassword children, and still secret", async () => {
    const run = await runShipped({ stackFile: "Pulumi.dev.yaml" });
    const generated = ofType(run, T.password);
    expect(generated.map((p) => p.name).sort()).toEqual([
      "swarmform-dev-dashboard-password",
      "swarmform-dev-registry-password",
      // popcube's db_password secret (`environment: DB_PASSWORD`), with no stackSecrets.DB_PASSWORD set.
      "swarmform-dev-stack-maxime-secret-db_password-value",
    ]);
    for (const p of generated) expect(p.additionalSecretOutputs).toContain("result");
    expect(run.secretOutputs).toEqual(expect.arrayContaining(["registryPassword", "dashboardPassword"]));
  }, 120_000);

  test("a change of the Prometheus configuration gives the config a new name", async () => {
    const config = (run: ProgramRun) =>
      ofType(run, T.config).find((c) => String(c.inputs.name).includes("prometheus"))!;
    const a = await runShipped({ stackFile: "Pulumi.dev.yaml" });
    const b = await runShipped({ stackFile: "Pulumi.dev.yaml", config: { publicNetwork: "frontdoor" } });
    expect(decodeData(config(a))).not.toBe(decodeData(config(b)));
    expect(config(a).inputs.name).not.toBe(config(b).inputs.name);
    const again = await runShipped({ stackFile: "Pulumi.dev.yaml" });
    expect(config(again).inputs.name).toBe(config(a).inputs.name);
  }, 120_000);

  test("an invalid config registers no resource at all", async () => {
    const run = await runShipped({
      stackFile: "Pulumi.dev.yaml",
      config: { environment: "nope", traefik: { acme: { email: "not-an-email" } } },
      allowError: true,
    });
    // A RunError (its name stays "Error"): the Node runtime prints its message alone, without a stack trace.
    expect(pulumi.RunError.isInstance(run.error)).toBe(true);
    expect(String((run.error as Error).message)).toMatch(/environment/);
    expect(run.resources).toHaveLength(0);
  }, 120_000);

  test("a preview (unknown ids and passwords) registers the same resources as an up: none is made inside apply", async () => {
    const key = (r: CapturedResource) => `${r.type} ${r.name} ${r.parent ?? ""}`;
    const up = await runShipped({ stackFile: "Pulumi.dev.yaml" });
    const preview = await runShipped({ stackFile: "Pulumi.dev.yaml", preview: true });
    expect(preview.resources.map(key).sort()).toEqual(up.resources.map(key).sort());
    expect(preview.resources.every((r) => r.id === undefined)).toBe(true);
  }, 120_000);

  test("the docker provider points at the configured host with safe ssh options", async () => {
    const run = await runShipped({ stackFile: "Pulumi.dev.yaml" });
    const provider = getResource(run, T.provider, "swarmform-dev-docker");
    expect(provider.inputs.host).toMatch(/^ssh:\/\//);
    expect(provider.inputs.sshOpts).toEqual(expect.arrayContaining(["BatchMode=yes", "ConnectTimeout=10"]));
    expect((provider.inputs.sshOpts as string[]).join(" ")).not.toMatch(/StrictHostKeyChecking=no/);
  }, 120_000);
});
