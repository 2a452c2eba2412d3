/** Jest projects: `unit` is pure and fast; `engine` and `e2e` need root, dockerd and sshd; `libvirt` needs libvirtd (see .ci/run). */
const common = { preset: "ts-jest", testEnvironment: "node" };
module.exports = {
  projects: [
    { ...common, displayName: "unit", testMatch: ["<rootDir>/tests/unit/**/*.test.ts"] },
    { ...common, displayName: "engine", testMatch: ["<rootDir>/tests/engine/**/*.test.ts"] },
    { ...common, displayName: "e2e", testMatch: ["<rootDir>/tests/e2e/**/*.test.ts"] },
    // Needs root and a libvirtd answering on qemu:///system (.ci/run starts one).
    { ...common, displayName: "libvirt", testMatch: ["<rootDir>/tests/libvirt/**/*.test.ts"] },
  ],
};
