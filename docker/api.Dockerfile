# syntax=docker/dockerfile:1
# The detections API (REST + SSE). Build from the repository root:
#   docker build -f docker/api.Dockerfile -t intellisite/api .
# The same image runs the PostgreSQL migrations: `node dist/main.js migrate`.

# Node 24 is the current LTS line, the major of .node-version (what npm start and npm test run);
# the major tag keeps receiving security patches.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
# Must equal packageManager in package.json (test/deploy checks it).
ARG PNPM_VERSION=10.34.8
ENV CI=true
RUN npm install --global --no-audit --no-fund "pnpm@${PNPM_VERSION}"
WORKDIR /repo
# Dependencies first, from the lockfile alone, so this layer survives source edits.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
# kafkajs is patched (patches/); pnpm applies the patch when it installs.
COPY patches patches
RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store pnpm fetch --store-dir /pnpm/store
COPY package.json tsconfig.base.json ./
COPY packages/common packages/common
COPY packages/detections-store packages/detections-store
COPY packages/alert-rules packages/alert-rules
COPY packages/webhooks packages/webhooks
COPY packages/api packages/api
COPY packages/dashboard packages/dashboard
RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store \
    pnpm install --offline --frozen-lockfile --store-dir /pnpm/store \
      --filter "@intellisite/api..." --filter @intellisite/dashboard
# The workspace libraries (common, detections-store, alert-rules, webhooks) are consumed through their `default` export
# condition, i.e. their dist/: build them too. The dashboard is static files: built here, served by
# the API, no Node dependency at run time.
RUN pnpm --filter "@intellisite/api..." --filter @intellisite/dashboard build
# A self-contained copy of the service with production dependencies only (workspace packages are
# copied, not linked; --legacy because the workspace does not inject its packages).
RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store \
    pnpm --filter @intellisite/api deploy --legacy --prod --store-dir /pnpm/store /out
RUN cp -R packages/dashboard/dist /out/dashboard

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /out/package.json ./package.json
COPY --from=build /out/node_modules ./node_modules
COPY --from=build /out/dist ./dist
COPY --from=build /out/migrations ./migrations
COPY --from=build /out/dashboard ./dashboard
ENV DASHBOARD_DIR=/app/dashboard
# The image's unprivileged `node` user, by uid so runtimes can verify it is not root; the app
# writes nothing to disk.
USER 1000:1000
EXPOSE 3000
# Slim images have no curl: Node's own fetch probes liveness.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# kafkajs 2.2.4 sets timers with negative delays, and Node 24 prints a plain-text
# TimeoutNegativeWarning for each; only that warning type is disabled (npm start does the same).
CMD ["node", "--disable-warning=TimeoutNegativeWarning", "dist/main.js"]
