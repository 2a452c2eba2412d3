// planUnderMocks fails, with the program's error, when the program fails while it runs: also where the Pulumi
// runtime leaves the error unhandled (an apply that throws). Before, the plan waited forever on what depended on
// the failed resource, and `swarmform describe` hung or died of the unhandled rejection.
import { spawnSync } from "child_process";
import * as path from "path";
import { generateSshKeyPair } from "../../components/hosts/transport";

const ROOT = path.resolve(__dirname, "../..");
jest.setTimeout(120_000);

/** tests/support/planDev.ts (describeStack of dev) in a node process of its own, with this sshPrivateKey. */
function planDev(key: string): { resources?: number; error?: string } {
  const r = spawnSync(
    process.execPath,
    ["-r", "ts-node/register/transpile-only", path.join(ROOT, "tests/support/planDev.ts")],
    { cwd: ROOT, env: { ...process.env, SWARMFORM_PLAN_KEY: key }, encoding: "utf8", timeout: 100_000 },
  );
  const last = r.stdout.trim().split("\n").pop() ?? "";
  if (!last.startsWith("{")) throw new Error(`planDev printed no result (status ${r.status}): ${r.stderr}`);
  return JSON.parse(last) as { resources?: number; error?: string };
}

test("dev with a key that parses: the plan resolves with its resources", () => {
  expect(planDev(generateSshKeyPair().private).resources).toBeGreaterThan(10);
});

test("dev with an sshPrivateKey that does not parse: the libvirt source's error, once, without the key", () => {
  const bad =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-key-material-0123456789\n-----END OPENSSH PRIVATE KEY-----\n";
  const { error } = planDev(bad);
  // The libvirt source derives, in an apply, the public key that cloud-init authorizes from the private key.
  expect(error).toMatch(
    /^the program failed under mocks: error serializing property "userData": sshPrivateKey: cannot be parsed \(/,
  );
  expect(error).not.toContain("not-key-material");
});
