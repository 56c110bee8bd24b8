import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { buildRunnables } from './process.ts';
import { amqpReachable, createTestVhost, postgresReachable, servicesRequired, testServers } from './services.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Why service tests cannot run here; undefined when PostgreSQL and RabbitMQ are both up. */
    servicesUnavailable: string | undefined;
    /** The AMQP URL of this run's own virtual host. */
    amqpUrl: string;
  }
}

/** Once per test run: checks the real services and gives the run a RabbitMQ vhost of its own. */
export default async function setup(project: TestProject) {
  // Service processes run the built bundles, as their containers do.
  buildRunnables();
  const problems = [await postgresReachable(), await amqpReachable(testServers.amqpBaseUrl)].filter(Boolean);
  let vhost: Awaited<ReturnType<typeof createTestVhost>> | undefined;
  if (problems.length === 0) {
    try {
      vhost = await createTestVhost();
    } catch (error) {
      problems.push(`could not create a RabbitMQ vhost with rabbitmqctl: ${(error as Error).message}`);
    }
  }
  const reason = problems.length > 0 ? problems.join('; ') : undefined;
  if (reason && servicesRequired()) throw new Error(`Real services are required for this run: ${reason}`);
  if (reason) console.warn(`\n[stockflow] service tests will be SKIPPED: ${reason}\n`);
  project.provide('servicesUnavailable', reason);
  project.provide('amqpUrl', vhost?.url ?? '');
  return async () => {
    await vhost?.remove();
  };
}
