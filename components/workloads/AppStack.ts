import * as fs from "fs";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { StackFileSpec, StackSpec } from "../config/types";
import { base64, hashedName } from "./content";
import { Networks } from "./Networks";
import { NAMESPACE_LABEL } from "./platform";
import { FileObject, labelList, RegistryAuth, serviceArgs } from "./serviceArgs";

export interface AppStackArgs {
  readonly stack: StackSpec;
  readonly provider: docker.Provider;
  /** Ids of the platform networks (by physical name) that services may join. */
  readonly platformNetworkIds: Readonly<Record<string, pulumi.Input<string>>>;
  /** Platform registry credentials for images from it. Default: none. */
  readonly registryAuth?: RegistryAuth;
}

/** The physical name of a stack-defined config/secret: `<stack>_<key>-<content hash>`. */
export function stackFileName(file: StackFileSpec, content: Buffer): string {
  return hashedName(file.name, content);
}

/**
 * One Compose-format stack: its networks, configs, secrets and services. Children `${name}-net`,
 * `${name}-config-<key>`, `${name}-secret-<key>`, `${name}-<service key>`.
 */
export class AppStack extends pulumi.ComponentResource {
  public readonly services: docker.Service[];
  public readonly serviceNames: pulumi.Output<string[]>;

  constructor(name: string, args: AppStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmform:workloads:AppStack", name, {}, opts);
    const { stack, provider } = args;
    const child = { parent: this, provider };
    const labels = labelList({ [NAMESPACE_LABEL]: stack.name });
    const networks = new Networks(
      `${name}-net`,
      { networks: stack.networks, namespace: stack.name, provider },
      { parent: this },
    );

    const configs: Record<string, FileObject> = {};
    for (const f of stack.configs.filter((c) => !c.external && c.file)) {
      const content = fs.readFileSync(f.file!);
      const c = new docker.ServiceConfig(
        `${name}-config-${f.key}`,
        { name: stackFileName(f, content), data: base64(content), labels },
        { ...child, deleteBeforeReplace: false },
      );
      configs[f.key] = { id: c.id, name: c.name };
    }
    const secrets: Record<string, FileObject> = {};
    for (const f of stack.secrets.filter((s) => !s.external && s.file)) {
      const content = fs.readFileSync(f.file!);
      const s = new docker.Secret(
        `${name}-secret-${f.key}`,
        { name: stackFileName(f, content), data: pulumi.secret(base64(content)), labels },
        { ...child, deleteBeforeReplace: false },
      );
      secrets[f.key] = { id: s.id, name: s.name };
    }

    const networkIds = { ...args.platformNetworkIds, ...networks.ids };
    this.services = stack.services.map(
      (svc) =>
        new docker.Service(
          `${name}-${svc.key}`,
          serviceArgs(svc, { networkIds, configs, secrets, registryAuth: args.registryAuth }),
          child,
        ),
    );
    this.serviceNames = pulumi.all(this.services.map((s) => s.name));
    this.registerOutputs({ serviceNames: this.serviceNames });
  }
}
