# syntax=docker/dockerfile:1
#
# ami-bot container image.
#
#   docker build -t ami-bot .
#   docker run --init -d --name ami-bot -v ami-bot-data:/data --env-file .env ami-bot
#
# Socket Mode needs no published port; in HTTP mode add `-p 3000:3000` and put TLS in front.
# --init gives the process a proper PID 1 (signal forwarding, zombie reaping).

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- deps: all dependencies, with the toolchain better-sqlite3 needs if no prebuilt binary fits ----
FROM ${NODE_IMAGE} AS deps
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
# The image ships npm 10; npm 11 honours package.json "allowScripts" (only better-sqlite3 and esbuild may
# run install scripts), matching how the lockfile is installed in development.
ARG NPM_VERSION=11.19.1
RUN npm install -g "npm@${NPM_VERSION}"
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci

# ---- build: TypeScript -> dist/ (entry dist/src/main.js) ----
FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- prod-deps: drop dev dependencies, keeping the already compiled better-sqlite3 binary ----
FROM deps AS prod-deps
RUN npm prune --omit=dev

# ---- runtime: no compiler, no dev dependencies, non-root ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production AMI_BOT_DB=/data/ami-bot.db PORT=3000
WORKDIR /app
# Create the volume directory before VOLUME so the node user owns it (changes after VOLUME are discarded).
RUN mkdir -p /data && chown node:node /data
# App files stay root-owned: the node user can read them but not modify them.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
VOLUME /data
EXPOSE 3000
# Slim images have no curl/wget; Node 20's global fetch does the job.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/main.js"]
