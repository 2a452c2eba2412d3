// Swarm membership: public API of the swarm layer.
export { SwarmMembership, SwarmMembershipArgs, MembershipNode, endpointOf } from "./SwarmMembership";
export { SwarmNode, SwarmNodeArgs, swarmNodeProviderText } from "./SwarmNode";
export { SwarmNodeInputs, SwarmNodeOutputs, swarmNodeProvider } from "./provider";
export { membershipPlan, MembershipPlan, JoinStep } from "./membershipPlan";
export type { NodeSsh, NodeTimeouts } from "./nodeOps";
export {
  LocalSwarm,
  LocalSwarmArgs,
  NodeLabels,
  NodeLabelsArgs,
  localSwarmProvider,
  nodeLabelsProvider,
} from "./nodeLabels";
export { missingPlacements, ownedLabelChanges, PlacementRequirement } from "./labelPlan";
