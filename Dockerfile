# hostmesh router image. Build: docker build -t ghcr.io/hostmesh/hostmesh:0.1.0 .
# Stage 1 compiles the TypeScript; stage 2 is the runtime: production dependencies and dist/
# only, as the unprivileged `node` user (uid 1000), nothing written outside /tmp, so it runs
# with a read-only root filesystem. No HEALTHCHECK: Kubernetes probes /ready and /admin/ping.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
# One glibc malloc arena (as k8s/base/daemonset.yaml sets it): 1.5-2.3 MB less idle RSS, no
# measurable CPU cost (docs/memory.md, session 7).
ENV MALLOC_ARENA_MAX=1
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Numeric, so runAsNonRoot can verify it without resolving a name (uid 1000 is `node`).
USER 1000:1000
EXPOSE 4140 4141 9990
# V8's heap for a per-node proxy (docs/memory.md, session 9): semi-spaces of at most 8 MB instead of
# 16, and an old generation collected once it has grown 25 % over what the last full collection
# kept, instead of V8's 1.1-4x. Under 256 connections ~15-20 MB less RSS. The DaemonSet sets only
# args, so it runs this entry point; `npm run bench` starts its routers with these flags too.
ENTRYPOINT ["node", "--max-semi-space-size=8", "--heap-growing-percent=25", "/app/dist/src/cli/main.js"]
CMD ["run", "-c", "/etc/hostmesh/config.yaml"]
