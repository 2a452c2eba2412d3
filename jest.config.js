/**
 * Jest projects: `unit` is pure and fast; `engine` and `e2e` need root, dockerd and sshd (see .ci/run);
 * `engine-cli` runs the real Pulumi CLI (built by tools/pulumi/build.sh) on the multi-host testbed;
 * `libvirt` needs root and a libvirtd answering on qemu:///system (.ci/run starts one).
 * `vm` needs root and libvirt, builds the guest image once per machine and boots real VMs under emulation.
 */
const common = { preset: "ts-jest", testEnvironment: "node" };
module.exports = {
  projects: [
    { ...common, displayName: "unit", testMatch: ["<rootDir>/tests/unit/**/*.test.ts"] },
    { ...common, displayName: "engine", testMatch: ["<rootDir>/tests/engine/**/*.test.ts"] },
    { ...common, displayName: "e2e", testMatch: ["<rootDir>/tests/e2e/**/*.test.ts"] },
    { ...common, displayName: "engine-cli", testMatch: ["<rootDir>/tests/engine-cli/**/*.test.ts"] },
    // Needs root and a libvirtd answering on qemu:///system (.ci/run starts one).
    { ...common, displayName: "libvirt", testMatch: ["<rootDir>/tests/libvirt/**/*.test.ts"] },
    { ...common, displayName: "vm", testMatch: ["<rootDir>/tests/vm/**/*.test.ts"] },
  ],
};
