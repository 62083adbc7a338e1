# syntax=docker/dockerfile:1
#
# ami-bot container image.
#
#   docker build -t ami-bot .
#   docker run --init -d --name ami-bot -v ami-bot-data:/data --env-file .env \
#     -v "$PWD/targets.yml:/config/targets.yml:ro" -e AMI_BOT_CONFIG=/config/targets.yml ami-bot
#
# The image holds no targets file and no .env (.dockerignore keeps it out): settings come from --env-file
# and -e, the targets file from a read-only mount named by AMI_BOT_CONFIG (or use the AMI_TARGET_*
# variables and no mount). The database lives on the /data volume: the image sets AMI_BOT_DB, so leave
# AMI_BOT_DB and AMI_BOT_CONFIG out of the env file, as .env.example does (-e wins over --env-file anyway).
# Socket Mode needs no published port; in HTTP mode add `-p 3000:3000` and put TLS in front.
# --init gives the process a proper PID 1 (signal forwarding, zombie reaping).

# Node 24 is the current LTS (Node 20 reached end of life in April 2026); CI also runs the bot on it
# (scripts/node24-smoke.sh).
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- deps: all dependencies, with the toolchain better-sqlite3 needs if no prebuilt binary fits ----
FROM ${NODE_IMAGE} AS deps
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
# Node 24 images ship an npm 11; pin the release used in development so `npm ci` reads the lockfile the
# same way.
ARG NPM_VERSION=11.19.1
RUN npm install -g "npm@${NPM_VERSION}"
WORKDIR /app
COPY package.json package-lock.json ./
# Only the manifests are here, so this layer is reused until a dependency changes. --ignore-scripts: the
# package's `prepare` script compiles src/, which is not copied yet (the build stage compiles it). The one
# native dependency then gets its install script alone: a prebuilt binary when one fits, otherwise a
# compile against the headers the image ships in /usr/local/include/node (no header download).
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts \
  && npm_config_nodedir=/usr/local npm rebuild better-sqlite3 \
  && node -e "new (require('better-sqlite3'))(':memory:').close()"

# ---- build: TypeScript -> dist/ (entry dist/src/main.js) ----
# tsc itself rather than `npm run build`, whose skip-when-fresh check (scripts/) has nothing to save in a
# fresh stage; tsc's incremental state is of no use in the image either.
FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN node_modules/.bin/tsc -p tsconfig.build.json && rm -f dist/.tsbuildinfo

# ---- prod-deps: drop dev dependencies, keeping the already compiled better-sqlite3 binary ----
# prune removes packages and runs no lifecycle script (no `prepare`, no reinstall of better-sqlite3).
FROM deps AS prod-deps
RUN npm prune --omit=dev --ignore-scripts \
  && node -e "new (require('better-sqlite3'))(':memory:').close()"

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
# Slim images have no curl/wget; Node's global fetch does the job. /healthz answers 503 while Slack is not
# reachable or the token is not accepted, and any non-2xx answer (or none within 4 s) marks the container
# unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/main.js"]
