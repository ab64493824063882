import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { tracer, tracingStarted } from '../observability/tracing.js';
import { isOperational } from './routes/health.js';


/**
 * A server span per request, continuing the caller's W3C trace context; the route decision, merges
 * and upstream calls made for the request are its children. Probes and scrapes are not traced.
 */
export function installTracing(app: FastifyInstance): void {
  // Without the SDK the spans would be no-ops: skip the hooks and their cost on every request.
  if (!tracingStarted()) return;
  const spans = new WeakMap<FastifyRequest, { span: Span; context: ReturnType<typeof context.active> }>();
  app.addHook('onRequest', (request, _reply, done) => {
    if (isOperational(request.url)) return done();
    const parent = propagation.extract(ROOT_CONTEXT, request.headers);
    const route = request.routeOptions.url ?? 'unmatched';
    const span = tracer.startSpan(
      `${request.method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method, 'http.route': route, 'url.path': request.url.split('?')[0], 'lorauter.request_id': request.id } },
      parent,
    );
    spans.set(request, { span, context: trace.setSpan(parent, span) });
    done();
  });
  // The body is read from socket events, which do not carry the request's context: enter it once
  // the body is parsed, right before the handler runs.
  app.addHook('preHandler', (request, _reply, done) => {
    const traced = spans.get(request);
    if (!traced) return done();
    context.with(traced.context, done);
  });
  app.addHook('onResponse', (request, reply, done) => {
    const traced = spans.get(request);
    if (traced) {
      traced.span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) traced.span.setStatus({ code: SpanStatusCode.ERROR });
      traced.span.end();
    }
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    const traced = spans.get(request);
    if (traced) {
      traced.span.setStatus({ code: SpanStatusCode.ERROR, message: 'client went away' });
      traced.span.end();
    }
    done();
  });
}
