// components/hosts/bundledProvider.ts: a dynamic resource's provider as one bundled module. What the bundle does
// is tested through SwarmNode (tests/unit/swarmMembership.test.ts, and tests/e2e/membership.test.ts against
// real dockerds); here, what a mistake in it says.
import * as path from "path";
import { bundleModule, providerModuleText } from "../../components/hosts/bundledProvider";

const PROVIDER = path.resolve(__dirname, "../../components/swarm/provider.ts");

test("a module without the named export is refused, naming both", () => {
  expect(() => providerModuleText(PROVIDER, "noSuchProvider")).toThrow(
    `${PROVIDER} exports no provider noSuchProvider`,
  );
});

test("a module that does not bundle is refused, naming it and esbuild's reason", () => {
  const missing = path.join(__dirname, "no-such-provider.ts");
  expect(() => bundleModule(missing)).toThrow(
    new RegExp(`^bundling the dynamic provider ${missing} failed: .*Could not resolve`, "s"),
  );
});

test("the handler returns the named export of the bundle", () => {
  const text = providerModuleText(PROVIDER, "swarmNodeProvider");
  expect(text.endsWith('module.exports.handler = () => module.exports["swarmNodeProvider"];\n')).toBe(true);
});
