// Hosts: how Swarmform reaches a machine (SSH, or a local shell). Used by the swarm layer and the VM layer.
export * from "./transport";
