# flueag-idp: the runtime image.
#
# The image runs the provider and nothing else. It needs MONGODB_URI (a MongoDB 6+ replica
# set); the embedded FerretDB of `npm start` is a development convenience and is not part of
# the image (no Go, no FerretDB binary). Configuration comes from environment variables
# (README, "Configuration"); credentials may come from files (MONGODB_URI_FILE,
# METRICS_TOKEN_FILE). The key file is DATA_DIR/keys.json unless KEYS_FILE names another:
# give every instance of one installation the same file (a shared volume or a secret).
#
#   docker build -t flueag-idp .
#   docker run -e MONGODB_URI=mongodb://… -e ISSUER=https://idp.example -e TRUST_PROXY=1 \
#     -v flueag-keys:/var/lib/flueag-idp -p 3000:3000 flueag-idp
#   docker run --rm -e MONGODB_URI=… -v flueag-keys:/var/lib/flueag-idp flueag-idp \
#     flueag-idp tenant add 05111000 --name Düsseldorf --kind gemeinde

# The Node version of the project (package.json, devDependency `node`).
ARG NODE_VERSION=24.21.0

# Stage 1: production dependencies. argon2 installs its prebuilt binary for linux/amd64
# and linux/arm64 (glibc), so no compiler is needed here either.
FROM node:${NODE_VERSION}-bookworm-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# Stage 2: the runtime. Node runs the TypeScript sources directly (type stripping), so there
# is no build output; npm and npx are removed, as nothing at run time installs packages.
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    DATA_DIR=/var/lib/flueag-idp
WORKDIR /app
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
 && mkdir -p /var/lib/flueag-idp \
 && chown node:node /var/lib/flueag-idp
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY config ./config
COPY interactions ./interactions
COPY src ./src
RUN ln -s /app/bin/flueag-idp.js /usr/local/bin/flueag-idp
USER node
VOLUME ["/var/lib/flueag-idp"]
EXPOSE 3000
# /healthz answers under any Host header, so the check needs no ISSUER.
# During the start period it is asked every 2 s (Docker 25+), so that compose starts the
# proxy as soon as the instance answers rather than after the first 30 s interval.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --start-interval=2s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "src/main.ts"]
