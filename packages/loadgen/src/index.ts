export { OPEN_CONNECTION, runLoad, type LoadOptions, type LoadReport, type PaymentsReport, type Progress } from './load.ts';
export { stockAt } from './catalog.ts';
export { auditPlatform, auditQueries, type AuditReport } from './audit.ts';
export { httpPipe } from './http-pipe.ts';
export { percentile, summarize, type Summary } from './stats.ts';
