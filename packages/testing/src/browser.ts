import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { servicesRequired } from './services.ts';

/** The browser tests' browser: Debian's Chromium, driven by playwright-core. */
export const CHROMIUM = '/usr/bin/chromium';
export const chromiumMissing = !existsSync(CHROMIUM);
if (chromiumMissing && servicesRequired()) throw new Error(`${CHROMIUM} is required for the browser tests (apt-get install chromium)`);

export const launchChromium = () =>
  chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
