// npm run test:real: the real tier. Real Kubernetes binaries, etcd 3.6 and kwok from `npm run tools`; its own glob so
// that npm test stays fast. Serial where tests share one real control plane (each file starts its own).
export default {
  files: ["test/real/**/*.test.ts"],
  extensions: { ts: "module" },
  nodeArguments: ["--import=tsx"],
  workerThreads: false,
  concurrency: 2,
  timeout: "300s",
};
