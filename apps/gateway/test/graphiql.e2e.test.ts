/**
 * GraphiQL with no internet, in a real headless Chromium: the page of a service (the Inventory
 * Service) and of the gateway, each run as its container runs it (the built bundle, a process of
 * its own), renders its editor and runs a query, with every request outside the machine refused
 * and every request it made sent to its own origin.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createTestDatabase,
  graphqlClient,
  serviceTestEnv,
  startServiceProcess,
  type ServiceProcess,
  type TestDatabase,
} from '@stockflow/testing';
import { chromiumMissing, launchChromium } from '@stockflow/testing/browser';

const servicesUnavailable = inject('servicesUnavailable');
const QUERY = '{ products(first: 5) { nodes { sku name } } }';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

describe.skipIf(servicesUnavailable || chromiumMissing)('GraphiQL offline: its page needs nothing from outside the machine', () => {
  let db: TestDatabase;
  let inventory: ServiceProcess;
  let gateway: ServiceProcess;
  let browser: Browser;

  beforeAll(async () => {
    db = await createTestDatabase('graphiql_inventory');
    inventory = await startServiceProcess('inventory', serviceTestEnv(db, inject('amqpUrl'), { AUTH_DISABLED: 'true' }));
    const inventoryUrl = `http://127.0.0.1:${inventory.port}/graphql`;
    await graphqlClient(inventoryUrl).data(
      'mutation { createProduct(input: {sku: "GQL-1", name: "Offline mug", initialStock: 3}) { id } }',
    );
    gateway = await startServiceProcess('gateway', {
      PORT: '0',
      HOST: '127.0.0.1',
      INVENTORY_URL: inventoryUrl,
      // The query asks the Inventory Service only.
      ORDERS_URL: 'http://127.0.0.1:9/graphql',
      AUTH_DISABLED: 'true',
    });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
    await inventory?.stop();
    await db?.drop();
  });

  it.each([
    ['the Inventory Service', () => inventory.port],
    ['the gateway', () => gateway.port],
  ])('at %s: renders the editor and runs a query, every request to its own origin', async (_name, port) => {
    const origin = `http://127.0.0.1:${port()}`;
    const context = await browser.newContext();
    const requested: string[] = [];
    const refused: string[] = [];
    context.on('request', (request) => requested.push(request.url()));
    // As a machine with no internet, or a proxy that lets nothing out, would have it.
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (LOOPBACK.has(url.hostname)) return route.continue();
      refused.push(url.href);
      return route.abort('blockedbyclient');
    });
    try {
      const page = await context.newPage();
      await page.goto(`${origin}/graphql?query=${encodeURIComponent(QUERY)}`);
      await page
        .locator('.graphiql-query-editor .monaco-editor')
        .waitFor({ timeout: 20_000 })
        .catch((error: unknown) => {
          throw new Error(`no editor on the page; requests refused: ${refused.join(', ') || 'none'}`, { cause: error });
        });
      await page.locator('.graphiql-execute-button').click();
      // The response editor (Monaco) lays its text out with no-break spaces.
      const response = async () => (await page.locator('.graphiql-response').textContent())?.replace(/\s+/g, ' ');
      await expect.poll(response, { timeout: 10_000 }).toContain('"name": "Offline mug"');

      expect(refused).toEqual([]);
      const pageRequests = requested.filter((url) => !url.startsWith('data:') && !url.startsWith('blob:'));
      expect(pageRequests.length).toBeGreaterThanOrEqual(2);
      expect(pageRequests.filter((url) => new URL(url).origin !== origin)).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
