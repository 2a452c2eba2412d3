// Dynamic resources whose provider code goes into the state as one bundled module.
//
// pulumi.dynamic.Resource stores the code of its provider with each resource: when the first one registers, Pulumi's
// closure serializer walks the provider object and every function it captures, asks V8 for each function's scope
// and parses each one with TypeScript. For the SwarmNode provider (about 110 functions in five modules) that cost
// about 1 s of CPU in every program run, and loaded TypeScript into programs that had not (BENCHMARKS.md). Here
// esbuild bundles the provider's module from the program's own files (the sources under ts-node, dist/ when
// compiled) once per program, in tens of milliseconds, and that bundle is the `__provider` property. The protocol is
// the one pulumi.dynamic.Resource uses: the type `pulumi-nodejs:dynamic/<module>:<type>` sends the resource to
// Pulumi's dynamic-provider process, which loads `__provider` as a CommonJS module (require-from-string: packages
// resolve from its working directory, the project) and calls its `handler()` for the provider object. As with any
// dynamic provider, the state holds the code that created each resource.

import * as pulumi from "@pulumi/pulumi";

const PROVIDER_KEY = "__provider";

/**
 * Bundles the module at `modulePath` (absolute, e.g. `require.resolve("./provider")`) with esbuild into one CommonJS
 * module for node; npm packages and node built-ins stay `require` calls. Throws, naming the module, when it cannot.
 */
export function bundleModule(modulePath: string): string {
  // Required here: only a program that registers a bundled resource needs esbuild (it starts a process).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require("esbuild") as typeof import("esbuild");
  try {
    const out = esbuild.buildSync({
      entryPoints: [modulePath],
      bundle: true,
      platform: "node",
      format: "cjs",
      target: "node20",
      packages: "external",
      write: false,
      logLevel: "silent",
    });
    return out.outputFiles[0].text;
  } catch (err) {
    throw new Error(`bundling the dynamic provider ${modulePath} failed: ${(err as Error).message}`);
  }
}

/**
 * The `__provider` text for the provider `exportName` of the module at `modulePath`: the module's bundle, whose
 * `handler()` returns that export. Throws when the module has no such export.
 */
export function providerModuleText(modulePath: string, exportName: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const local = (require(modulePath) as Record<string, unknown>)[exportName];
  if (typeof local !== "object" || local === null)
    throw new Error(`${modulePath} exports no provider ${exportName}`);
  const name = JSON.stringify(exportName);
  return `${bundleModule(modulePath)}\nmodule.exports.handler = () => module.exports[${name}];\n`;
}

/**
 * A dynamic resource, as pulumi.dynamic.Resource makes it (type `pulumi-nodejs:dynamic/<module>:<type>`), whose
 * provider is `providerText` (from providerModuleText) instead of a provider object for Pulumi to serialize.
 */
export abstract class BundledDynamicResource extends pulumi.CustomResource {
  protected constructor(
    providerText: string,
    module: string,
    type: string,
    name: string,
    props: pulumi.Inputs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    if (PROVIDER_KEY in props) throw new Error(`A dynamic resource must not define the ${PROVIDER_KEY} key`);
    super(`pulumi-nodejs:dynamic/${module}:${type}`, name, { ...props, [PROVIDER_KEY]: providerText }, opts);
  }
}
