/**
 * The operations dashboard in a real headless Chromium (Debian's chromium, driven by
 * playwright-core), against the platform in each mode, its GraphQL through the gateway: load the
 * page, place an order (its line named by the Inventory Service), see it
 * confirm and the stock move, cancel it, see the stock return; pay an order and fulfil it; and,
 * with a short payment hold, see an unpaid order expire. Screenshots (desktop and phone widths)
 * are written to test-results/.
 */
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { signToken } from '@stockflow/client';
import { createTestDatabase, graphqlClient, repoRoot, type TestDatabase } from '@stockflow/testing';
import { chromiumMissing, launchChromium } from '@stockflow/testing/browser';
import { startPlatform, type RunningPlatform } from '../src/platform.ts';
import { embeddedEnv, PLATFORM_TEST_ENV } from './embedded.ts';

const servicesUnavailable = inject('servicesUnavailable');
const SECRET = 'a-dashboard-test-secret-of-at-least-32-characters';
const artifacts = path.join(repoRoot, 'test-results');

/** A desktop-width page on the platform's dashboard. */
const openDashboard = async (browser: Browser, platform: RunningPlatform) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`http://127.0.0.1:${platform.dashboard.port}/`);
  return page;
};

const stockIn = async (page: Page, productId: string) => {
  const row = page.locator(`tr[data-product="${productId}"]`);
  return {
    available: Number(await row.locator('[data-field="available"]').textContent()),
    reserved: Number(await row.locator('[data-field="reserved"]').textContent()),
    sold: Number(await row.locator('[data-field="sold"]').textContent()),
  };
};

/** Places an order of `quantity` of the product named `name` from the page's form; returns the product's id. */
const placeFromPage = async (page: Page, customer: string, name: string, quantity: number) => {
  // The page's first request through the gateway also plans its query: slower than the ones after it.
  await expect.poll(() => page.locator('tr[data-product]').count(), { timeout: 10_000 }).toBeGreaterThan(0);
  const productId = (await page.getByLabel('Product').locator('option', { hasText: name }).getAttribute('value')) as string;
  const before = await stockIn(page, productId);
  await page.getByLabel('Customer').fill(customer);
  await page.getByLabel('Product').selectOption(productId);
  await page.getByLabel('Quantity').fill(String(quantity));
  await page.getByRole('button', { name: 'Place order' }).click();
  return { productId, before };
};

describe.skipIf(chromiumMissing).each(['embedded', 'distributed'] as const)('operations dashboard (%s)', (mode) => {
  let platform: RunningPlatform;
  let browser: Browser;
  let page: Page;
  const cleanup: (() => Promise<unknown>)[] = [];
  const skip = mode === 'distributed' && servicesUnavailable !== undefined;

  beforeAll(async () => {
    if (skip) return;
    await mkdir(artifacts, { recursive: true });
    // The page's form orders from the sample catalog.
    const env: Record<string, string> = { ...PLATFORM_TEST_ENV, SEED_SAMPLE_CATALOG: 'true' };
    if (mode === 'distributed') {
      const dbs: TestDatabase[] = [await createTestDatabase('dashboard_inventory'), await createTestDatabase('dashboard_orders')];
      cleanup.push(() => Promise.all(dbs.map((d) => d.drop())));
      Object.assign(env, {
        AMQP_URL: inject('amqpUrl'),
        INVENTORY_DATABASE_URL: dbs[0]?.url,
        ORDERS_DATABASE_URL: dbs[1]?.url,
        AUTH_JWT_SECRET: SECRET,
      });
    } else {
      const embedded = await embeddedEnv('dashboard');
      cleanup.push(embedded.remove);
      Object.assign(env, { DATA_DIR: embedded.env.DATA_DIR });
    }
    platform = await startPlatform(env);
    browser = await launchChromium();
    page = await openDashboard(browser, platform);
  });
  afterAll(async () => {
    await browser?.close();
    await platform?.close();
    for (const c of cleanup.reverse()) await c();
  });

  const stockOf = async (productId: string) => {
    const { available, reserved } = await stockIn(page, productId);
    return { available, reserved };
  };

  it.skipIf(skip)('shows the platform healthy, and asks for a token when authentication is on', async () => {
    // The page polls each part's /ready: the gateway, which asks both services, may be ready a poll later than the Order Service.
    for (const part of ['Order Service', 'Gateway'])
      await expect.poll(() => page.getByRole('list', { name: 'Health' }).textContent()).toContain(`${part}: ready`);
    const health = () => page.getByRole('list', { name: 'Health' }).textContent();
    if (mode === 'distributed') {
      await expect.poll(() => page.getByText('Sign in with a token').count()).toBe(1);
      // The broker, the outbox and the dead letters are an admin's to see.
      expect(await health()).not.toMatch(/Broker|Outbox|Dead letters/);
      await page.getByLabel('Bearer token').fill(await signToken(SECRET, { sub: 'ops', role: 'admin' }));
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => page.locator('.auth').textContent()).toContain('Signed in as ops (admin)');
      await expect.poll(health).toMatch(/Broker: connected.*Outbox backlog.*Dead letters/);
    } else {
      await expect.poll(health).toMatch(/Broker: connected.*Outbox backlog.*Dead letters/);
      await expect.poll(() => page.locator('.auth').textContent()).toContain('Authentication is off');
    }
  });

  it.skipIf(skip)('places an order, sees it confirm and the stock held, cancels it, sees the stock return', async () => {
    await expect.poll(() => page.locator('tr[data-product]').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    const option = page.getByLabel('Product').locator('option', { hasText: 'Noise-cancelling headphones' });
    const productId = (await option.getAttribute('value')) as string;
    const before = await stockOf(productId);

    await page.getByLabel('Customer').fill('dashboard-shopper');
    await page.getByLabel('Product').selectOption(productId);
    await page.getByLabel('Quantity').fill('2');
    await page.getByRole('button', { name: 'Place order' }).click();

    const placed = page.locator('ol.orders li.placed');
    await expect.poll(() => placed.locator('[data-field="status"]').textContent(), { timeout: 15_000 }).toBe('CONFIRMED');
    // The line's product is the Inventory Service's, joined to the Order Service's order by the gateway.
    expect(await placed.locator('[data-field="items"]').textContent()).toBe('2 × Noise-cancelling headphones');
    await expect
      .poll(() => stockOf(productId), { timeout: 10_000 })
      .toEqual({ available: before.available - 2, reserved: before.reserved + 2 });
    // The sample catalog is stocked at MAIN only.
    expect(await page.locator(`tr[data-product="${productId}"] [data-field="locations"]`).textContent()).toBe(
      `MAIN ${before.available - 2}`,
    );
    await page.screenshot({ path: path.join(artifacts, `dashboard-${mode}-confirmed.png`), fullPage: true });

    await placed.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => placed.locator('[data-field="status"]').textContent(), { timeout: 15_000 }).toBe('CANCELLED');
    await expect.poll(() => stockOf(productId), { timeout: 10_000 }).toEqual(before);

    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(artifacts, `dashboard-${mode}-phone.png`), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it.skipIf(skip)(
    'shows a confirmed order with its total and due time, pays it for its total, and only then offers to fulfil it',
    async () => {
      // Two burr grinders at 89.00 each.
      const { productId, before } = await placeFromPage(page, 'dashboard-payer', 'Burr coffee grinder', 2);
      const placed = page.locator('ol.orders li.placed');
      await expect.poll(() => placed.locator('[data-field="status"]').textContent(), { timeout: 15_000 }).toBe('CONFIRMED');
      const orderId = (await placed.getAttribute('data-order')) as string;
      expect(await placed.locator('[data-field="total"]').textContent()).toMatch(/178[.,]00/);
      expect(await placed.locator('[data-field="payment"]').textContent()).toMatch(/^awaiting payment until /);
      expect(await placed.getByRole('button', { name: 'Fulfil' }).count()).toBe(0);

      await placed.getByRole('button', { name: 'Pay' }).click();
      await expect.poll(() => placed.locator('[data-field="status"]').textContent(), { timeout: 15_000 }).toBe('PAID');
      await expect.poll(() => placed.locator('[data-field="payment"]').textContent()).toMatch(/^paid /);
      expect(await placed.getByRole('button', { name: 'Pay' }).count()).toBe(0);
      const payments = await platform.orders.db.query<{ amount_cents: number; currency: string; outcome: string }>(
        'SELECT amount_cents, currency, outcome FROM payments WHERE order_id = $1',
        [orderId],
      );
      expect(payments.rows).toEqual([{ amount_cents: 17_800, currency: 'EUR', outcome: 'PAID' }]);
      await expect.poll(() => page.locator('[data-count="PAID"]').textContent(), { timeout: 10_000 }).toBe('1');
      await page.screenshot({ path: path.join(artifacts, `dashboard-${mode}-paid.png`), fullPage: true });

      await placed.getByRole('button', { name: 'Fulfil' }).click();
      await expect.poll(() => placed.locator('[data-field="status"]').textContent(), { timeout: 15_000 }).toBe('FULFILLED');
      await expect
        .poll(() => stockIn(page, productId), { timeout: 10_000 })
        .toEqual({ available: before.available - 2, reserved: before.reserved, sold: before.sold + 2 });
    },
  );

  it.skipIf(skip)('marks an order awaiting backordered stock, offers to fulfil it only once the stock arrives', async () => {
    const inventory = graphqlClient(`http://127.0.0.1:${platform.inventory.port}/graphql`, {
      token: await signToken(SECRET, { sub: 'ops', role: 'admin' }),
    });
    const option = page.getByLabel('Product').locator('option', { hasText: 'Air fryer' });
    const productId = (await option.getAttribute('value')) as string;
    await inventory.data(`mutation { updateProduct(id: "${productId}", input: {backorderLimit: 5}) { id } }`);
    const { available } = await stockOf(productId);
    await placeFromPage(page, 'dashboard-backordered', 'Air fryer', available + 2);
    const placed = page.locator('ol.orders li.placed');
    await expect.poll(() => placed.locator('[data-field="status"]').textContent(), { timeout: 15_000 }).toBe('CONFIRMED');
    expect(await placed.locator('[data-field="awaiting-stock"]').count()).toBe(1);
    await expect
      .poll(() => page.locator(`tr[data-product="${productId}"] [data-field="backordered"]`).textContent(), { timeout: 10_000 })
      .toBe('2');
    await placed.getByRole('button', { name: 'Pay' }).click();
    await expect.poll(() => placed.locator('[data-field="status"]').textContent(), { timeout: 15_000 }).toBe('PAID');
    expect(await placed.getByRole('button', { name: 'Fulfil' }).count()).toBe(0);

    await inventory.data(`mutation { restock(productId: "${productId}", quantity: 2) { id } }`);
    await expect.poll(() => placed.locator('[data-field="awaiting-stock"]').count(), { timeout: 15_000 }).toBe(0);
    await placed.getByRole('button', { name: 'Fulfil' }).click();
    await expect.poll(() => placed.locator('[data-field="status"]').textContent(), { timeout: 15_000 }).toBe('FULFILLED');
  });

  it.skipIf(skip)('lists the refund of a paid order cancelled, and the refunds waiting for the payment service', async () => {
    await placeFromPage(page, 'dashboard-refunded', 'Burr coffee grinder', 1);
    const placed = page.locator('ol.orders li.placed');
    await expect.poll(() => placed.locator('[data-field="status"]').textContent(), { timeout: 15_000 }).toBe('CONFIRMED');
    const orderId = (await placed.getAttribute('data-order')) as string;
    await placed.getByRole('button', { name: 'Pay' }).click();
    await expect.poll(() => placed.locator('[data-field="status"]').textContent(), { timeout: 15_000 }).toBe('PAID');
    await placed.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => placed.locator('[data-field="payment"]').textContent(), { timeout: 15_000 }).toBe('refund requested');

    const refund = page.locator(`li[data-refund]:has(code[title="${orderId}"])`);
    await expect.poll(() => refund.count(), { timeout: 10_000 }).toBe(1);
    expect(await refund.textContent()).toMatch(/89[.,]00/);
    // Nothing takes them in the embedded mode; on RabbitMQ this run's vhost has no payment service either.
    const waiting =
      mode === 'embedded' ? /^1 waiting in order\.refund_requested\.payments/ : /^\d+ waiting in order\.refund_requested\.payments/;
    await expect.poll(() => page.locator('[data-field="refunds-waiting"]').textContent(), { timeout: 10_000 }).toMatch(waiting);
    expect(await page.locator('[data-field="queues"]').textContent()).toMatch(/\d+ in order\.refund_requested\.payments/);
    await page.screenshot({ path: path.join(artifacts, `dashboard-${mode}-refund.png`), fullPage: true });
  });

  it.skipIf(skip)('runs a short Black-Friday rehearsal from the page and shows its result', async () => {
    await page.getByLabel('Orders', { exact: true }).fill('60');
    await page.getByLabel('Per second', { exact: true }).fill('60');
    await page.getByRole('button', { name: 'Start rehearsal' }).click();
    await expect
      .poll(() => page.locator('section[aria-labelledby="rehearsal-title"]').textContent(), { timeout: 60_000, interval: 500 })
      .toMatch(/60 accepted .* audit passed/);
    await expect.poll(() => page.locator('[data-count="CONFIRMED"]').textContent()).not.toBe('0');
  });

  it.skipIf(skip)('lets a page of another site neither start a rehearsal nor change stock, by form or by script', async () => {
    const dashboard = `http://127.0.0.1:${platform.dashboard.port}`;
    // Another origin (another port) whose page posts a JSON-looking text/plain form, the classic
    // way round a JSON API, and a form-encoded GraphQL mutation.
    const forms = {
      rehearsal: `<form method="post" action="${dashboard}/api/rehearsal" enctype="text/plain"><input name='{"orders":1,"rate":1,"x":"' value='"}'></form>`,
      mutation: `<form method="post" action="${dashboard}/api/graphql"><input name="query" value='mutation { createProduct(input: { sku: "FORGED-1", name: "forged", initialStock: 5 }) { id } }'></form>`,
    };
    const attacker = createServer((req, res) => {
      const form = forms[(req.url ?? '').slice(1) as keyof typeof forms] ?? '';
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><body>${form}<script>document.forms[0]?.submit()</script></body>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => attacker.close(resolve)));
    const site = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
    const lastRehearsal = async () => ((await (await fetch(`${dashboard}/api/rehearsal`)).json()) as { startedAt?: string }).startedAt;
    const forged = async () =>
      (await platform.inventory.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM products WHERE sku = 'FORGED-1'`)).rows[0]?.n;
    const before = await lastRehearsal();

    const other = await browser.newPage();
    for (const name of ['rehearsal', 'mutation']) {
      await other.goto(`${site}/${name}`);
      await other.waitForURL((url) => url.origin === dashboard);
    }
    await other.goto(`${site}/`);
    const scripted = await other.evaluate(
      (url) =>
        fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"orders":1,"rate":1}' }).then(
          (r) => r.status,
          () => 'blocked by the browser',
        ),
      `${dashboard}/api/rehearsal`,
    );
    await other.close();

    expect(scripted).toBe('blocked by the browser');
    expect(await lastRehearsal()).toBe(before);
    expect(await forged()).toBe(0);
  });
});

describe.skipIf(chromiumMissing)('operations dashboard, payment holds that run out (embedded)', () => {
  let platform: RunningPlatform;
  let browser: Browser;
  let page: Page;
  let embedded: Awaited<ReturnType<typeof embeddedEnv>> | undefined;

  beforeAll(async () => {
    embedded = await embeddedEnv('dashboard-expiry');
    // The page's form orders from the sample catalog.
    platform = await startPlatform({ ...embedded.env, SEED_SAMPLE_CATALOG: 'true', PAYMENT_HOLD_SECONDS: '2' });
    browser = await launchChromium();
    page = await openDashboard(browser, platform);
  });
  afterAll(async () => {
    await browser?.close();
    await platform?.close();
    await embedded?.remove();
  });

  it('shows an order not paid in time as expired, counts it, offers no payment for it, and puts its units back on sale', async () => {
    const { productId, before } = await placeFromPage(page, 'dashboard-dawdler', 'Smart speaker', 3);
    const placed = page.locator('ol.orders li.placed');
    await expect.poll(() => placed.locator('[data-field="status"]').textContent(), { timeout: 20_000 }).toBe('CANCELLED');
    expect(await placed.locator('[data-field="payment"]').textContent()).toBe('expired');
    expect(await placed.textContent()).toContain('Payment not received by ');
    expect(await placed.getByRole('button').count()).toBe(0);
    await expect.poll(() => page.locator('[data-count="EXPIRED"]').textContent(), { timeout: 10_000 }).toBe('1');
    await expect.poll(() => page.locator('[data-count="CANCELLED"]').textContent(), { timeout: 10_000 }).toBe('1');
    await expect.poll(() => stockIn(page, productId), { timeout: 10_000 }).toEqual(before);
    await page.screenshot({ path: path.join(artifacts, 'dashboard-embedded-expired.png'), fullPage: true });
  });
});
