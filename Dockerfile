# One image for the server and the gateway (the command picks which).
FROM node:20-bookworm-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY protocol ./protocol
COPY server ./server
COPY gateway ./gateway
COPY firmware-sim ./firmware-sim
COPY start.ts tsconfig.json ./
ENV NODE_ENV=production DATA_DIR=/data
VOLUME /data
USER node
CMD ["npx", "tsx", "start.ts"]
