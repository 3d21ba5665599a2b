export default {
  files: ["test/**/*.test.ts", "!test/real/**"],
  extensions: { ts: "module" },
  nodeArguments: ["--import=tsx"],
  workerThreads: false,
  timeout: "120s",
};
