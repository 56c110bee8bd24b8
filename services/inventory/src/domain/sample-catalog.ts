import type { NewProduct } from './catalog.ts';

/** A small shop's catalog for demos and local runs, including a scarce "doorbuster". */
export const SAMPLE_CATALOG: NewProduct[] = [
  { sku: 'DOORBUSTER-TV-55', name: '55" 4K TV (doorbuster)', priceCents: 19_900, initialStock: 20 },
  { sku: 'HEADPHONES-NC', name: 'Noise-cancelling headphones', priceCents: 14_900, initialStock: 150 },
  { sku: 'COFFEE-GRINDER', name: 'Burr coffee grinder', priceCents: 8_900, initialStock: 80 },
  { sku: 'GAME-CONSOLE', name: 'Game console', priceCents: 39_900, initialStock: 40 },
  { sku: 'SMART-SPEAKER', name: 'Smart speaker', priceCents: 2_900, initialStock: 500 },
  { sku: 'ROBOT-VACUUM', name: 'Robot vacuum', priceCents: 17_900, initialStock: 60 },
  { sku: 'E-READER', name: 'E-reader', priceCents: 9_900, initialStock: 120 },
  { sku: 'AIR-FRYER', name: 'Air fryer', priceCents: 6_900, initialStock: 200 },
  { sku: 'USB-C-CABLE', name: 'USB-C cable, 2 m', priceCents: 900, initialStock: 2_000 },
  { sku: 'GIFT-CARD-50', name: 'Gift card, 50', priceCents: 5_000, initialStock: 10_000 },
];
