import { defineConfig } from 'vitest/config';

// Projects: `unit` is pure and fast (core, codecs, property tests); `integration` starts real control planes
// from the local ClusterSet harness (and real libp2p nodes on 127.0.0.1), so it runs its files one at a time;
// `conformance` holds the MCS conformance specs, run by `npm run conformance` against a ClusterSet with nodes.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'bench/**/*.test.ts', 'e2e/chaos/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['e2e/tests/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'conformance',
          include: ['e2e/conformance/**/*.conformance.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
