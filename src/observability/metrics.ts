import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** All gateway metrics, in a registry of their own so that several apps can live in one process (tests). */
export class GatewayMetrics {
  readonly registry = new Registry();

  readonly routeDecisions = new Counter({
    name: 'lorauter_route_decisions_total',
    help: 'Routing decisions made, by endpoint',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });
  readonly routeConfidence = new Histogram({
    name: 'lorauter_route_confidence',
    help: 'Calibrated confidence of routing decisions (below LORAUTER_MIN_CONFIDENCE they go to the base model)',
    buckets: [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1],
    registers: [this.registry],
  });
  readonly adapterDecisions = new Counter({
    name: 'lorauter_adapter_decisions_total',
    help: 'Routing decisions by the heaviest adapter chosen ("base" when the decision abstained)',
    labelNames: ['adapter'] as const,
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: 'lorauter_http_requests_total',
    help: 'HTTP requests answered, by route pattern, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'lorauter_http_request_duration_seconds',
    help: 'Time from request to the end of the answer (streams included), by route pattern',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly routeEmbedDuration = new Histogram({
    name: 'lorauter_route_embed_seconds',
    help: "Time to get a prompt's embedding, by where it came from (memory, redis, encoder)",
    labelNames: ['source'] as const,
    buckets: [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25],
    registers: [this.registry],
  });
  readonly routeSearchDuration = new Histogram({
    name: 'lorauter_route_search_seconds',
    help: 'Time to find and weigh the top-K tasks for an embedding',
    buckets: [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01],
    registers: [this.registry],
  });
  readonly routeDuration = new Histogram({
    name: 'lorauter_route_duration_seconds',
    help: 'Time to route one prompt (embed + search + compose)',
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly embeddingLookups = new Counter({
    name: 'lorauter_embedding_lookups_total',
    help: 'Embedding lookups by where the vector came from (memory, redis, encoder)',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  readonly encodedPrompts = new Counter({
    name: 'lorauter_encoder_prompts_total',
    help: 'Prompts the built-in encoder encoded, by thread: an encoder worker thread or the event loop',
    labelNames: ['thread'] as const,
    registers: [this.registry],
  });
  readonly encoderThreadFailures = new Counter({
    name: 'lorauter_encoder_thread_failures_total',
    help: 'Encoder worker threads that exited, failed, did not answer in time or fitted another encoder (the encoder went on without them)',
    registers: [this.registry],
  });
  readonly cacheErrors = new Counter({
    name: 'lorauter_cache_errors_total',
    help: 'Failed or timed-out Redis cache operations (routing went on without them)',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });
  // Registered by the upstream health check when there is an upstream.
  readonly upstreamUp = new Gauge({
    name: 'lorauter_upstream_up',
    help: "1 while the upstream's health endpoint answers 2xx, 0 while not; absent without an upstream",
    registers: [],
  });
  // Registered by the Redis store when there is one, so that a gateway without Redis exports no false 0.
  readonly redisUp = new Gauge({
    name: 'lorauter_redis_up',
    help: '1 while the Redis embedding cache is reachable, 0 while not; absent without Redis',
    registers: [],
  });
  // Set by the health routes' readiness check when /metrics is scraped.
  readonly ready = new Gauge({ name: 'lorauter_ready', help: '1 while /readyz answers 200 (index built, not shutting down, upstream up where required), else 0', registers: [this.registry] });
  readonly tasks = new Gauge({ name: 'lorauter_tasks', help: 'Tasks in the routing index', registers: [this.registry] });
  readonly registryVersion = new Gauge({ name: 'lorauter_registry_version', help: 'Registry version the routing index in service was built from', registers: [this.registry] });
  readonly registryRebuild = new Histogram({
    name: 'lorauter_registry_rebuild_seconds',
    help: 'Time to rebuild the routing index after a registry change',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly registryReloads = new Counter({
    name: 'lorauter_registry_reloads_total',
    help: 'Task file reloads by result (applied, unchanged, rejected)',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly upstreamRequests = new Counter({
    name: 'lorauter_upstream_requests_total',
    help: 'Requests proxied upstream, by upstream kind, endpoint and outcome (the status, unreachable, or busy: refused by the gateway\'s upstream queue)',
    labelNames: ['upstream', 'endpoint', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly upstreamDuration = new Histogram({
    name: 'lorauter_upstream_duration_seconds',
    help: 'Time until the upstream answered with headers',
    labelNames: ['upstream'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly upstreamAdded = new Histogram({
    name: 'lorauter_upstream_added_seconds',
    help: 'Time a proxied chat or completion spent in the gateway before it asked for an upstream slot (parsing, routing, composition with its own upstream lookups; not the queue for a slot)',
    labelNames: ['upstream'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly compositionFallbacks = new Counter({
    name: 'lorauter_composition_fallbacks_total',
    help: 'Mixtures that could not be composed exactly and fell back to the top adapter, by reason',
    labelNames: ['upstream', 'reason'] as const,
    registers: [this.registry],
  });
  readonly mergedAdapters = new Counter({
    name: 'lorauter_merged_adapters_total',
    help: 'Merged LoRA adapters loaded into and unloaded from the upstream (vLLM, SGLang merge mode), by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly compositionFidelity = new Histogram({
    name: 'lorauter_composition_fidelity',
    help: 'Share of the requested mixture served (Σ min(requested, served)), per upstream kind',
    labelNames: ['upstream'] as const,
    buckets: [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 1],
    registers: [this.registry],
  });
  readonly mergeBuilds = new Counter({
    name: 'lorauter_merge_builds_total',
    help: 'Merged-adapter builds, by outcome: queued, done, failed, skipped_budget',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly mergeBuildDuration = new Histogram({
    name: 'lorauter_merge_build_seconds',
    help: 'Time to build a merged adapter and load it into the upstream',
    buckets: [0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64],
    registers: [this.registry],
  });
  readonly liveMerges = new Gauge({ name: 'lorauter_live_merges', help: 'Merged adapters the upstream holds for the gateway', registers: [this.registry] });
  readonly mergeDirBytes = new Gauge({ name: 'lorauter_merge_dir_bytes', help: 'Bytes of merged adapters in the merge folder (live and building)', registers: [this.registry] });

  /** Where the dropped log lines are counted (the log output is made before the metrics). */
  private logOutput?: { droppedLines: number };
  readonly logLinesDropped = new Counter({
    name: 'lorauter_log_lines_dropped_total',
    help: 'Log lines dropped because stdout was not read (LORAUTER_LOG_BUFFER_BYTES full) or could not be written',
    registers: [this.registry],
    collect: () => {
      this.logLinesDropped.reset();
      this.logLinesDropped.inc(this.logOutput?.droppedLines ?? 0);
    },
  });

  countDroppedLogLines(output: { droppedLines: number }): void {
    this.logOutput = output;
  }

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }
}
