# The mcs-gossip node image, on Node.js 24 LTS (libp2p 3 and @kubernetes/client-node 2 need Node >= 22).
# Build: docker build -t ghcr.io/mcs-gossip/mcs-gossip:0.1.0 .
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# The `node` devDependency would download a second Node; the image already has Node 24.
RUN npm ci --no-audit --no-fund --omit=optional --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --ignore-scripts

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
USER 65532:65532
EXPOSE 7946 9464
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["run"]
