# The mcs-gossip node image, on Node.js 24 LTS (libp2p 3 and @kubernetes/client-node 2 need Node >= 22).
#   docker build -t REGISTRY/mcs-gossip:VERSION .
# BASE is any image with node 24 and npm in PATH and a Debian userland: by default the official Node.js image;
# e2e/tools/image-base.sh builds an equivalent from Debian packages and the npm registry (docs/image.md).
# VERSION (optional) stamps the version `mcs-gossip version` prints; empty: package.json's.
ARG BASE=node:24-bookworm-slim

FROM ${BASE} AS build
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false NPM_CONFIG_LOGLEVEL=error
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the `node` devDependency would download a second Node (the base has Node 24); no production
# dependency has an install script. --omit=optional skips platform binaries (esbuild, rollup) only tests use.
# Behind a TLS-intercepting proxy, give npm the proxy's CA bundle as a build secret (not kept in any layer):
#   docker build --secret id=npm-ca,src=/etc/ssl/certs/ca-certificates.crt ...
RUN --mount=type=secret,id=npm-ca \
    if [ -f /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi; \
    npm ci --omit=optional --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts
ARG VERSION=
RUN if [ -n "$VERSION" ]; then npm pkg set version="$VERSION"; fi

FROM ${BASE}
# tini as PID 1 forwards SIGTERM to node and reaps children. The official image lacks it: install it from Debian
# (the test base already has it, so this needs no network there).
RUN if [ ! -x /usr/bin/tini ]; then \
      apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*; \
    fi
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/package.json ./
# Non-root, and nothing is written at run time: the image works with a read-only root filesystem (not even /tmp is
# written). The program is node itself, never npm (npm writes a cache and logs under $HOME), with the flags of
# src/node/runtime-flags.ts (a unit test keeps them equal).
USER 65532:65532
EXPOSE 7946 9464
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--max-semi-space-size=2", "--optimize-for-size", "/app/dist/cli/main.js"]
CMD ["run"]
