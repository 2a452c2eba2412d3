// The workloads layer: docker provider, overlay networks, Traefik, registry, monitoring and app stacks.
export * from "./serviceArgs";
export * from "./content";
export * from "./platform";
export * from "./provider";
export { Networks, NetworksArgs } from "./Networks";
export { Traefik, TraefikArgs } from "./Traefik";
export { Registry, RegistryArgs } from "./Registry";
export { Monitoring, MonitoringArgs } from "./Monitoring";
export { AppStack, AppStackArgs, stackFileName } from "./AppStack";
