// Plans Pulumi.dev.yaml with planUnderMocks in a process of its own, with the sshPrivateKey given in
// SWARMFORM_PLAN_KEY, and prints one JSON line: { resources } or { error }. tests/unit/planUnderMocks.test.ts
// runs it: under jest, an unhandled rejection goes to jest, not to the process listener that planUnderMocks sets.
import * as path from "path";
import { planUnderMocks } from "../../components/cluster/planUnderMocks";
import { loadClusterSpec, readPulumiStackFile } from "../../components/config/load";

const ROOT = path.resolve(__dirname, "../..");
const read = readPulumiStackFile(path.join(ROOT, "Pulumi.dev.yaml"));
const secrets: Record<string, string> = Object.fromEntries(read.secretKeys.map((k) => [k, "stand-in"]));
secrets.sshPrivateKey = process.env.SWARMFORM_PLAN_KEY ?? "";
const config = Object.fromEntries(Object.entries(read.config).filter(([k]) => !(k in secrets)));
const spec = loadClusterSpec({
  project: read.project ?? "swarmform",
  stack: "dev",
  config: { ...config, ...Object.fromEntries(Object.keys(secrets).map((k) => [k, { secure: "stand-in" }])) },
  secretKeys: Object.keys(secrets),
  rootDir: ROOT,
  env: {},
});
planUnderMocks(spec, config, secrets).then(
  (resources) => console.log(JSON.stringify({ resources: resources.length })),
  (e: Error) => console.log(JSON.stringify({ error: e.message })),
);
