import * as fs from "fs";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
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
  /** The secret config `stackSecrets` (values for secrets declared with `environment: NAME`). Default: none. */
  readonly stackSecrets?: pulumi.Output<Record<string, string>>;
  /** Names set in `stackSecrets`; a secret whose name is not among them gets a generated value. Default: none. */
  readonly stackSecretNames?: readonly string[];
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
    for (const f of stack.secrets.filter((s) => !s.external)) {
      // Base64 of the content: a file's bytes, or the value of `environment: NAME`.
      const data = pulumi.secret(
        f.file ? base64(fs.readFileSync(f.file)) : this.environmentSecret(name, f, args).apply(base64),
      );
      // The name carries a hash of the content, so it is derived from the secret and stays secret itself.
      const s = new docker.Secret(
        `${name}-secret-${f.key}`,
        { name: data.apply((d) => stackFileName(f, Buffer.from(d, "base64"))), data, labels },
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

  /** A secret declared with `environment: NAME`: `stackSecrets.NAME` when set, else a generated value. */
  private environmentSecret(name: string, f: StackFileSpec, args: AppStackArgs): pulumi.Output<string> {
    const key = f.environment!;
    if (args.stackSecrets && args.stackSecretNames?.includes(key)) {
      return pulumi.secret(args.stackSecrets.apply((all) => all[key]));
    }
    const generated = new random.RandomPassword(
      `${name}-secret-${f.key}-value`,
      { length: 32, special: false },
      { parent: this, additionalSecretOutputs: ["result"] },
    );
    return pulumi.secret(generated.result);
  }
}
