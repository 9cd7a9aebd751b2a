# meshid's image for people who build with Docker or Buildah:
#   docker build -t meshid:$(node -p 'require("./package.json").version') .
# It holds what `npm run image` puts in its archive (README, "Container image"): node 24, the
# production dependencies, meshid's build, uid 65532, the same entrypoint, Env and ports. The
# difference is the base: distroless `cc` (glibc, libstdc++, CA certificates, tzdata, user
# `nonroot`) where `npm run image` copies only the libraries node links against from the
# build machine and names the user `meshid`.
ARG NODE_VERSION=24.22.3

# The production dependencies alone, as `npm run image` takes them from package-lock.json.
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# The build needs the dev dependencies (tsc, vite, esbuild); none of them reach the image.
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# Source maps point at src/, which the image does not hold.
RUN npm run build && find dist -name '*.map' -delete

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.0.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title=meshid \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.revision=${REVISION}
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/package.json ./
COPY --from=build /src/bin ./bin
COPY --from=build /src/proto ./proto
COPY --from=build /src/dist ./dist
ENV NODE_ENV=production
USER 65532:65532
EXPOSE 5681 5682 15012
ENTRYPOINT ["/usr/local/bin/node", "/app/bin/meshid"]
