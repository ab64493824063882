# syntax=docker/dockerfile:1
# Build stage: full install (TypeScript, node-gyp for hnswlib-node), compile to dist/.
FROM node:22-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc tsconfig.json ./
COPY src ./src
COPY bin ./bin
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

# Runtime stage: compiled code, production dependencies (with the compiled hnswlib-node addon), no toolchain.
FROM node:22-bookworm-slim
ENV NODE_ENV=production PORT=8080 HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY openapi ./openapi
# Optional neural encoder baked in: a sentence-transformers ONNX export inside the build context,
# e.g. --build-arg ENCODER=onnx --build-arg ENCODER_MODEL=docker/models/all-MiniLM-L6-v2 (or ENCODER=hybrid).
# Without them the built-in encoder is used and the placeholder folder is copied.
ARG ENCODER=builtin
ARG ENCODER_MODEL=docker/models/none
COPY ${ENCODER_MODEL} /models/encoder
ENV LORAUTER_ENCODER=${ENCODER} LORAUTER_ENCODER_MODEL=/models/encoder
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# exec form: the gateway is PID 1's child-free process and receives SIGTERM for a graceful shutdown.
ENTRYPOINT ["node", "bin/lorauter.js"]
CMD ["serve"]
