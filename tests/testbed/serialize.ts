// Loads a dynamic provider's stored code (pulumi.runtime.serializeFunction's text, or the bundle of
// components/hosts/bundledProvider.ts) the way Pulumi's dynamic-provider host does
// (@pulumi/pulumi/cmd/dynamic-provider: require-from-string with no file name, so `require` resolves
// node_modules from the working directory), in node's own module system rather than jest's.

import Module from "module";

interface InternalModule {
  paths: string[];
  exports: Record<string, unknown>;
  _compile(code: string, filename: string): void;
}

export function loadSerialized(code: string): Record<string, unknown> {
  const Ctor = Module as unknown as {
    new (id: string): InternalModule;
    _nodeModulePaths(dir: string): string[];
  };
  const m = new Ctor("");
  m.paths = Ctor._nodeModulePaths(process.cwd());
  m._compile(code, "");
  return m.exports;
}
