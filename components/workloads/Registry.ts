import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { ClusterSpec } from "../config/types";
import { base64, hashedName, htpasswdLine } from "./content";
import { NAMESPACE_LABEL, platformNamespace, registryService } from "./platform";
import { labelList, serviceArgs } from "./serviceArgs";

export interface RegistryArgs {
  readonly spec: ClusterSpec;
  readonly provider: docker.Provider;
  readonly networkIds: Readonly<Record<string, pulumi.Input<string>>>;
  /** Registry password (secret). */
  readonly password: pulumi.Input<string>;
}

/** The private registry with htpasswd auth, routed by Traefik. Children `${name}-htpasswd`, `${name}-service`. */
export class Registry extends pulumi.ComponentResource {
  public readonly htpasswd: docker.Secret;
  public readonly service: docker.Service;
  public readonly serviceName: pulumi.Output<string>;

  constructor(name: string, args: RegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmform:workloads:Registry", name, {}, opts);
    const { spec } = args;
    const ns = platformNamespace(spec);
    const baseName = `${ns}_registry-htpasswd`;
    // Deterministic bcrypt (salt derived from the password): same password, same line, no diff on re-run.
    const line = pulumi.secret(args.password).apply((pw) => htpasswdLine(spec.registry.user, pw) + "\n");
    // The name carries a hash of the (already hashed) line, so a password change makes a new secret and
    // rolls the service; the name itself need not be secret.
    const secretName = pulumi.unsecret(line.apply((l) => hashedName(baseName, l)));
    this.htpasswd = new docker.Secret(
      `${name}-htpasswd`,
      { name: secretName, data: line.apply(base64), labels: labelList({ [NAMESPACE_LABEL]: ns }) },
      { parent: this, provider: args.provider, deleteBeforeReplace: false },
    );
    this.service = new docker.Service(
      `${name}-service`,
      serviceArgs(registryService(spec, baseName), {
        networkIds: args.networkIds,
        secrets: { htpasswd: { id: this.htpasswd.id, name: this.htpasswd.name } },
      }),
      { parent: this, provider: args.provider },
    );
    this.serviceName = this.service.name;
    this.registerOutputs({ serviceName: this.serviceName });
  }
}
