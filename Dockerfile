# flueag-idp: runtime image. Production needs MONGODB_URI (MongoDB 6+ replica set); the
# embedded FerretDB of development is not part of the image.

FROM node:24-bookworm-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; argon2 ships prebuilt binaries for linux/amd64 and arm64.
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts=false \
 && npm cache clean --force

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    PORT=3000 \
    DATA_DIR=/var/lib/flueag-idp
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY config ./config
COPY interactions ./interactions
COPY src ./src
RUN mkdir -p /var/lib/flueag-idp && chown node:node /var/lib/flueag-idp
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "src/main.ts"]
