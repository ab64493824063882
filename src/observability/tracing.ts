import { context, INVALID_SPAN_CONTEXT, propagation, trace, SpanKind, SpanStatusCode, type Attributes, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace';

/**
 * The gateway's spans go through the OpenTelemetry API: with no SDK started they cost next to
 * nothing. The SDK starts when the standard variables ask for it (OTEL_TRACES_EXPORTER=otlp, or an
 * OTLP endpoint), unless OTEL_SDK_DISABLED=true; the exporter reads the rest of OTEL_EXPORTER_OTLP_*.
 */
export const tracer = trace.getTracer('lorauter-gateway');

export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((name) => name.trim());
  if (exporters.includes('none')) return false;
  return exporters.includes('otlp') || Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

let started = false;

/** Whether the SDK runs in this process (the HTTP hooks are installed only then). */
export const tracingStarted = () => started;

export interface Tracing {
  shutdown(): Promise<void>;
}

/** Registers the SDK globally: W3C trace context in and out, spans exported by `processor` (OTLP over HTTP by default). */
export function startTracing(processor?: SpanProcessor): Tracing {
  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': 'lorauter-gateway' }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new TracerProvider({ resource, spanProcessors: [processor ?? new BatchSpanProcessor({ exporter: new OTLPTraceExporter() })] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  trace.setGlobalTracerProvider(provider);
  started = true;
  return {
    async shutdown() {
      started = false;
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}

const NOT_RECORDING = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Runs `work` in a child span of the active one; the span ends when the work does, with an error status when it throws. */
export async function inSpan<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>, kind = SpanKind.INTERNAL): Promise<T> {
  // Without the SDK, not even a no-op span and context switch on the hot path.
  if (!started) return work(NOT_RECORDING);
  return tracer.startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      span.end();
    }
  });
}
