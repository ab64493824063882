import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Gateway } from '../../gateway.js';
import { GatewayError, invalidRequest, unknownUrl } from '../../errors.js';
import { entityTag, RegistryChangeError, storedAdapter, storedTask, type RegistryChange } from '../../registry/changes.js';
import { AdapterFields, adapterFromDocument, adapterToDocument, TaskFields, taskFromDocument, taskToDocument } from '../../registry/document.js';
import { RegistryUnavailableError } from '../../registry/stores/store.js';
import { ErrorResponse } from '../schemas.js';

export type AdminServices = Pick<Gateway, 'liveRegistry' | 'liveRouter'>;

// Ids end up in Redis field names, file names (llama.cpp) and URLs: a conservative alphabet.
const SAFE_ID = '^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$';
const IdParams = Type.Object({ id: Type.String({ pattern: SAFE_ID }) });
const TaskBody = Type.Object(TaskFields, { additionalProperties: false });
const AdapterBody = Type.Object(AdapterFields, { additionalProperties: false });
const Written = Type.Object({ object: Type.String(), id: Type.String(), version: Type.Integer() }, { additionalProperties: true });
const Deleted = Type.Object({ object: Type.String(), id: Type.String(), deleted: Type.Literal(true), version: Type.Integer() });
const AdapterList = Type.Object({ object: Type.Literal('list'), version: Type.Integer(), data: Type.Array(Type.Object({ object: Type.String(), id: Type.String() }, { additionalProperties: true })) });
const errors = { '4xx': ErrorResponse, '5xx': ErrorResponse };
const tags = ['admin'];
const security = [{ adminKey: [] }];

/** The admin routes' methods, paths and schemas: documented the same whether the admin API is on or off. */
const ROUTES = {
  getTask: { method: 'GET', url: '/v1/tasks/:id', schema: { summary: 'A task of the registry, with its examples', tags, security, params: IdParams, response: { 200: Written, ...errors } } },
  putTask: { method: 'PUT', url: '/v1/tasks/:id', schema: { summary: 'Add or replace a task', tags, security, params: IdParams, body: TaskBody, response: { 200: Written, 201: Written, ...errors } } },
  deleteTask: { method: 'DELETE', url: '/v1/tasks/:id', schema: { summary: 'Delete a task', tags, security, params: IdParams, response: { 200: Deleted, ...errors } } },
  listAdapters: { method: 'GET', url: '/v1/adapters', schema: { summary: 'Adapters of the registry', tags, security, response: { 200: AdapterList, ...errors } } },
  getAdapter: { method: 'GET', url: '/v1/adapters/:id', schema: { summary: 'An adapter of the registry', tags, security, params: IdParams, response: { 200: Written, ...errors } } },
  putAdapter: { method: 'PUT', url: '/v1/adapters/:id', schema: { summary: 'Add or replace an adapter', tags, security, params: IdParams, body: AdapterBody, response: { 200: Written, 201: Written, ...errors } } },
  deleteAdapter: { method: 'DELETE', url: '/v1/adapters/:id', schema: { summary: 'Delete an adapter no task uses', tags, security, params: IdParams, response: { 200: Deleted, ...errors } } },
} as const;

const notFound = (kind: 'task' | 'adapter', id: string) => new GatewayError(404, `No ${kind} "${id}".`, 'not_found_error', 'id', `${kind}_not_found`);

/**
 * Changes the registry at run time (enabled by LORAUTER_ADMIN_API_KEY): every replica sharing the
 * Redis registry takes the change; routing keeps serving the previous index until the new one is built.
 */
export const adminPlugin: FastifyPluginAsync<{ gateway: AdminServices }> = async (base, { gateway }) => {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const config = { auth: 'admin' as const };
  const registry = () => gateway.liveRegistry.registry;

  // If-Match: "*", or the entity tag (quoted, possibly weak) the writer read.
  const ifMatch = (request: FastifyRequest): string | undefined => {
    const header = request.headers['if-match'];
    if (typeof header !== 'string') return undefined;
    const value = header.trim();
    return value === '*' ? '*' : value.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
  };
  const tagged = (reply: FastifyReply, stored: string) => reply.header('etag', `"${entityTag(stored)}"`);

  const change = async (request: RegistryChange) => {
    try {
      return await gateway.liveRegistry.apply(request);
    } catch (error) {
      if (error instanceof RegistryChangeError) {
        throw new GatewayError(error.status, error.message, error.status === 404 ? 'not_found_error' : 'invalid_request_error', error.status === 412 ? null : 'id', error.code);
      }
      if (error instanceof RegistryUnavailableError) throw new GatewayError(503, `${error.message}; try again.`, 'service_unavailable', null, 'registry_unavailable');
      throw error;
    }
  };

  app.get(ROUTES.getTask.url, { config, schema: ROUTES.getTask.schema }, async (request, reply) => {
    const task = registry().tasks.find((candidate) => candidate.id === request.params.id);
    if (!task) throw notFound('task', request.params.id);
    tagged(reply, storedTask(task));
    return { object: 'task', ...taskToDocument(task), version: gateway.liveRegistry.version };
  });

  app.put(
    ROUTES.putTask.url,
    { config, schema: ROUTES.putTask.schema },
    async (request, reply) => {
      const { id } = request.params;
      const body = request.body;
      if (body.targets && body.targets.length !== body.examples.length) {
        throw invalidRequest(`'targets' has ${body.targets.length} entries; it needs one per example (${body.examples.length}), null where unknown.`, 'targets');
      }
      for (const [adapter, score] of Object.entries(body.adapters ?? {})) {
        if (!Number.isFinite(score)) throw invalidRequest(`The score of adapter '${adapter}' must be a finite number.`, `adapters.${adapter}`);
        if (!new RegExp(SAFE_ID).test(adapter)) throw invalidRequest(`'${adapter}' is not a valid adapter id (letters, digits and _.:@+- only).`, `adapters.${adapter}`);
      }
      const existed = registry().tasks.some((task) => task.id === id);
      const task = taskFromDocument(id, body);
      const snapshot = await change({ op: 'put_task', task, ifMatch: ifMatch(request) });
      tagged(reply, storedTask(task));
      return reply.code(existed ? 200 : 201).send({ object: 'task', ...taskToDocument(task), version: snapshot.version });
    },
  );

  app.delete(ROUTES.deleteTask.url, { config, schema: ROUTES.deleteTask.schema }, async (request) => {
    const snapshot = await change({ op: 'delete_task', id: request.params.id, ifMatch: ifMatch(request) });
    return { object: 'task', id: request.params.id, deleted: true as const, version: snapshot.version };
  });

  app.get(ROUTES.listAdapters.url, { config, schema: ROUTES.listAdapters.schema }, async () => ({
    object: 'list' as const,
    version: gateway.liveRegistry.version,
    data: [...registry().adapters.values()].map((adapter) => ({ object: 'adapter', ...adapterToDocument(adapter) })),
  }));

  app.get(ROUTES.getAdapter.url, { config, schema: ROUTES.getAdapter.schema }, async (request, reply) => {
    const adapter = registry().adapters.get(request.params.id);
    if (!adapter) throw notFound('adapter', request.params.id);
    tagged(reply, storedAdapter(adapter));
    return { object: 'adapter', ...adapterToDocument(adapter), version: gateway.liveRegistry.version };
  });

  app.put(
    ROUTES.putAdapter.url,
    { config, schema: ROUTES.putAdapter.schema },
    async (request, reply) => {
      const existed = registry().adapters.has(request.params.id);
      const adapter = adapterFromDocument(request.params.id, request.body);
      const snapshot = await change({ op: 'put_adapter', adapter, ifMatch: ifMatch(request) });
      tagged(reply, storedAdapter(adapter));
      return reply.code(existed ? 200 : 201).send({ object: 'adapter', ...adapterToDocument(adapter), version: snapshot.version });
    },
  );

  app.delete(ROUTES.deleteAdapter.url, { config, schema: ROUTES.deleteAdapter.schema }, async (request) => {
    const snapshot = await change({ op: 'delete_adapter', id: request.params.id, ifMatch: ifMatch(request) });
    return { object: 'adapter', id: request.params.id, deleted: true as const, version: snapshot.version };
  });
};

/**
 * Without an admin key the admin paths answer 404, as if they did not exist, rather than reaching the upstream;
 * they stay in the OpenAPI document (it does not depend on the configuration), and their input is not checked.
 */
export const adminDisabledPlugin: FastifyPluginAsync = async (app) => {
  const refuse = async (request: FastifyRequest) => {
    throw unknownUrl(request.method, request.url);
  };
  for (const route of Object.values(ROUTES)) app.route({ ...route, attachValidation: true, handler: refuse });
  for (const url of new Set(Object.values(ROUTES).map((route) => route.url))) {
    const taken = Object.values(ROUTES).filter((route) => route.url === url).map((route) => route.method as string);
    const others = ['GET', 'PUT', 'DELETE', 'POST', 'PATCH'].filter((method) => !taken.includes(method)) as ('GET' | 'PUT' | 'DELETE' | 'POST' | 'PATCH')[];
    app.route({ method: others, url, schema: { hide: true }, handler: refuse });
  }
};
