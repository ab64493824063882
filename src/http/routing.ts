import { invalidRequest } from '../errors.js';
import { UnknownTaskError, type RouteDecision, type RouteOptions, type Router } from '../router/router.js';

/** Routes for an HTTP request: an unknown task in the exclusions is the client's mistake, a 400 naming `excludeParam`. */
export async function routeRequestTexts(router: Router, texts: readonly string[], options: RouteOptions, excludeParam: string): Promise<RouteDecision[]> {
  try {
    return await router.routeMany(texts, options);
  } catch (error) {
    if (error instanceof UnknownTaskError) throw invalidRequest(error.message, excludeParam, 'unknown_task');
    throw error;
  }
}
