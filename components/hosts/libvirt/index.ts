// The libvirt node source: VMs on one or more hypervisors, driven through virsh over a Transport.
export * from "./LibvirtNodes";
export * from "./provider";
export * from "./render";
export * from "./virsh";
