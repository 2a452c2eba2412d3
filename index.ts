// Swarmform: one Pulumi stack per environment. Load the validated spec, build the cluster, export its outputs.
import { SwarmCluster } from "./components/cluster/SwarmCluster";
import { loadClusterSpecFromPulumi } from "./components/config/load";

const spec = loadClusterSpecFromPulumi();
const cluster = new SwarmCluster(`${spec.project}-${spec.stack}`, { spec });

export const traefikUrl = cluster.traefikUrl;
export const registryUrl = cluster.registryUrl;
export const dashboardUrl = cluster.dashboardUrl;
export const prometheusUrl = cluster.prometheusUrl;
export const services = cluster.services;
export const summary = cluster.summary;
export const registryPassword = cluster.registryPassword;
export const dashboardPassword = cluster.dashboardPassword;
