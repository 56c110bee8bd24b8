# syntax=docker/dockerfile:1
# One Dockerfile, one final stage per service (targets `inventory`, `orders` and `gateway`), so the build is
# written once:  docker build --target orders -t stockflow-orders .
# Each image runs its service's bundle (npm run build) with plain node, as a non-root user, with
# only the production dependencies installed. The CMD is the command the test suite starts the
# services with (packages/testing/src/process.ts); a test checks they agree.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/contracts/package.json packages/contracts/
COPY packages/client/package.json packages/client/
COPY packages/db/package.json packages/db/
COPY packages/graphql/package.json packages/graphql/
COPY packages/loadgen/package.json packages/loadgen/
COPY packages/messaging/package.json packages/messaging/
COPY packages/observability/package.json packages/observability/
COPY packages/platform/package.json packages/platform/
COPY packages/runtime/package.json packages/runtime/
COPY packages/supergraph/package.json packages/supergraph/
COPY packages/testing/package.json packages/testing/
COPY services/inventory/package.json services/inventory/
COPY services/orders/package.json services/orders/
COPY apps/stockflow/package.json apps/stockflow/
COPY apps/dashboard/package.json apps/dashboard/
COPY apps/gateway/package.json apps/gateway/
COPY tools/package.json tools/
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/packages/contracts/package.json packages/contracts/
COPY --from=build /app/packages/client/package.json packages/client/
COPY --from=build /app/packages/db/package.json packages/db/
COPY --from=build /app/packages/graphql/package.json packages/graphql/
COPY --from=build /app/packages/loadgen/package.json packages/loadgen/
COPY --from=build /app/packages/messaging/package.json packages/messaging/
COPY --from=build /app/packages/observability/package.json packages/observability/
COPY --from=build /app/packages/platform/package.json packages/platform/
COPY --from=build /app/packages/runtime/package.json packages/runtime/
COPY --from=build /app/packages/supergraph/package.json packages/supergraph/
COPY --from=build /app/packages/testing/package.json packages/testing/
COPY --from=build /app/services/inventory/package.json services/inventory/
COPY --from=build /app/services/orders/package.json services/orders/
COPY --from=build /app/apps/stockflow/package.json apps/stockflow/
COPY --from=build /app/apps/dashboard/package.json apps/dashboard/
COPY --from=build /app/apps/gateway/package.json apps/gateway/
COPY --from=build /app/tools/package.json tools/
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force
USER node
# /health answers while the process is alive (readiness, /ready, is for the orchestrator).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.PORT + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

FROM runtime AS inventory
COPY --from=build --chown=node:node /app/dist/inventory dist/inventory
ENV PORT=8000
EXPOSE 8000
CMD ["node", "--max-old-space-size=192", "--max-semi-space-size=32", "--enable-source-maps", "dist/inventory/main.mjs"]

FROM runtime AS orders
COPY --from=build --chown=node:node /app/dist/orders dist/orders
ENV PORT=8001
EXPOSE 8001
CMD ["node", "--max-old-space-size=192", "--max-semi-space-size=32", "--enable-source-maps", "dist/orders/main.mjs"]

FROM runtime AS gateway
COPY --from=build --chown=node:node /app/dist/gateway dist/gateway
ENV PORT=4000
EXPOSE 4000
CMD ["node", "--max-old-space-size=192", "--enable-source-maps", "dist/gateway/main.mjs"]
