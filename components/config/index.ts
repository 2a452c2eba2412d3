// The config layer: Pulumi config and Compose-format stack files turned into one validated ClusterSpec.
export * from "./types";
export * from "./errors";
export * from "./clusterConfig";
export * from "./rules";
export * from "./load";
export * from "./compose";
export * from "./routes";
export * from "./traefikLabels";
