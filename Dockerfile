# syntax=docker/dockerfile:1
#
# Trousseau, the Kubernetes KMS plugin, as a container image.
#
#   docker build -t trousseau:dev .
#   docker run --rm trousseau:dev version
#
# Stage "build" installs the whole workspace from the lockfile, compiles it with `tsc -b`, bundles the
# command with esbuild (scripts/bundle-server.mjs: dist/bundle, which the ENTRYPOINT runs, with the V8
# code cache it writes by starting the server once; V8 uses that cache only under the Node that wrote it,
# which is why both stages are the same NODE_IMAGE), and uses
# `pnpm deploy --prod` to lay out @trousseau/server with its production dependencies only (the workspace
# packages it depends on are copied in with the files their package.json "files" lists). Stage "runtime"
# copies that one directory onto a fresh base: no compiler, no dev dependencies, no sources, no pnpm store.
#
# The base image is pinned by version tag and digest (the multi-arch index of node:20.19.5-bookworm-slim).
# Bump both together, deliberately.

ARG NODE_IMAGE=node:20.19.5-bookworm-slim@sha256:9e70124bd00f47dd023e349cd587132ae61892acc0e47ed641416c3e18f401c3

FROM ${NODE_IMAGE} AS build
ENV PNPM_HOME=/pnpm \
    COREPACK_ENABLE_DOWNLOAD_PROMPT=0 \
    CI=true
WORKDIR /src
# pnpm exactly as package.json "packageManager" says.
RUN corepack enable && corepack prepare pnpm@9.15.9 --activate
# Manifests first, so the dependency layer is cached until the lockfile or a package.json changes.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml tsconfig.base.json tsconfig.json ./
COPY packages/core/package.json packages/core/
COPY packages/provider-local/package.json packages/provider-local/
COPY packages/provider-vault/package.json packages/provider-vault/
COPY packages/provider-awskms/package.json packages/provider-awskms/
COPY packages/provider-azure/package.json packages/provider-azure/
COPY packages/server/package.json packages/server/
COPY packages/testing/package.json packages/testing/
COPY examples/provider-example/package.json examples/provider-example/
COPY deploy/package.json deploy/
RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store \
    pnpm install --frozen-lockfile --store-dir /pnpm/store
# The server's project references reach every package and the example provider (its tests use them).
COPY packages ./packages
COPY examples ./examples
COPY scripts/bundle-server.mjs ./scripts/
RUN pnpm exec tsc -b packages/server && node scripts/bundle-server.mjs
# Production dependencies only: devDependencies (testing, emulators, typescript, eslint) stay behind.
RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store \
    pnpm --filter @trousseau/server deploy --prod --store-dir /pnpm/store /out \
 && test -f /out/dist/bundle/trousseau.cjs \
 && test -f /out/dist/bundle/cli.cjs.v8cache \
 && test ! -e /out/node_modules/typescript \
 && test ! -e /out/node_modules/@trousseau/testing

FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="trousseau" \
      org.opencontainers.image.description="Kubernetes KMS plugin (KMS v2 and v1beta1) brokering Vault, AWS KMS, Azure Key Vault and a local key file" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
# npm, npx, yarn and corepack are not needed at run time; drop them from the attack surface.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-* \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/yarn /usr/local/bin/yarnpkg /usr/local/bin/corepack \
 && groupadd --system --gid 65532 trousseau \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin trousseau
WORKDIR /app
# Owned by root and read-only to the process: the image's files are never written at run time.
COPY --from=build --chown=0:0 /out /app
# Non-root by default. The Kubernetes manifests in deploy/ override this where the socket needs it
# (see docs/operations.md, "Who may open the socket").
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/bundle/trousseau.cjs"]
CMD ["serve", "--config", "/etc/trousseau/config.yaml"]
