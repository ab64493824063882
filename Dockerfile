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
# Optional neural encoder baked in, ENCODER_MODEL either
# - a Hugging Face model id (ENCODER_MODEL=Xenova/all-MiniLM-L6-v2, or @<commit> to pin it): its ONNX export is
#   pulled now into the image's hub cache (/models/hf); a gated one needs the token as a build secret:
#   docker build --secret id=hf_token,env=HF_TOKEN --build-arg ENCODER=onnx --build-arg ENCODER_MODEL=owner/name .
# - or a folder in the build context (ENCODER_MODEL=docker/models/all-MiniLM-L6-v2), copied with docker/models.
# The image starts offline (HF_HUB_OFFLINE=1): set HF_HUB_OFFLINE=0 to let it fetch another model at start-up.
ARG ENCODER=builtin
ARG ENCODER_MODEL=
ARG ENCODER_QUANTIZED=off
ARG HF_ENDPOINT=https://huggingface.co
COPY docker/models ./docker/models
ENV HF_HOME=/models/hf LORAUTER_ENCODER=${ENCODER} LORAUTER_ENCODER_MODEL=${ENCODER_MODEL} LORAUTER_ENCODER_QUANTIZED=${ENCODER_QUANTIZED}
RUN --mount=type=secret,id=hf_token,env=HF_TOKEN \
    if [ -n "$ENCODER_MODEL" ] && [ ! -e "$ENCODER_MODEL" ]; then node bin/lorauter.js models pull "$ENCODER_MODEL"; fi \
    && mkdir -p /models/hf && chown -R node:node /models/hf
ENV HF_HUB_OFFLINE=1
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# exec form: the gateway is PID 1's child-free process and receives SIGTERM for a graceful shutdown.
ENTRYPOINT ["node", "bin/lorauter.js"]
CMD ["serve"]
