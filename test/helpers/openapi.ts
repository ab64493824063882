import { startGateway } from './gateway.js';

/** The OpenAPI document as the app generates it (demo registry; the document does not depend on tasks), admin API included. */
export async function openApiDocument(): Promise<unknown> {
  const { app, close } = await startGateway({ adminApiKey: 'document-the-admin-api' });
  const document = app.swagger();
  await close();
  return JSON.parse(JSON.stringify(document));
}
