/**
 * The Node.js flags the node runs with, in the image (Dockerfile ENTRYPOINT) and in the local ClusterSet: a young
 * generation of 2 MB semi-spaces (the default grows to 16+ MB while @kubernetes/client-node's ~1,000 generated models
 * load, and keeps the memory) and `--optimize-for-size`. Together they take an idle node from ~170 MB RSS to ~120 MB;
 * the benchmark (`npm run bench -- size`) saw no cost in CPU per change. `--optimize-for-size` is not allowed in
 * NODE_OPTIONS, so they are on the command line (docs/operations.md).
 */
export const RUNTIME_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--optimize-for-size'];
