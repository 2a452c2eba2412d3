/**
 * Jest projects: `unit` is pure and fast; `engine` and `e2e` need root, dockerd and sshd (see .ci/run); `vm` needs
 * root and libvirt, builds the guest image once per machine and boots real VMs under emulation (tens of minutes).
 */
const common = { preset: "ts-jest", testEnvironment: "node" };
module.exports = {
  projects: [
    { ...common, displayName: "unit", testMatch: ["<rootDir>/tests/unit/**/*.test.ts"] },
    { ...common, displayName: "engine", testMatch: ["<rootDir>/tests/engine/**/*.test.ts"] },
    { ...common, displayName: "e2e", testMatch: ["<rootDir>/tests/e2e/**/*.test.ts"] },
    { ...common, displayName: "vm", testMatch: ["<rootDir>/tests/vm/**/*.test.ts"] },
  ],
};
