import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { buildRunnables } from './process.ts';
import { brokerClusterReachable, ensureBrokerCluster } from './broker-cluster.ts';
import { amqpReachable, createTestVhost, postgresReachable, servicesRequired, testServers } from './services.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Why service tests cannot run here; undefined when PostgreSQL and RabbitMQ are both up. */
    servicesUnavailable: string | undefined;
    /** The AMQP URL of this run's own virtual host. */
    amqpUrl: string;
    /** Why the 3-node RabbitMQ cluster cannot be used here; undefined when it runs. */
    brokerClusterUnavailable: string | undefined;
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
  // The cluster scenarios need the 3-node cluster beside the default node; started here when it
  // is not running (about 20 s, or 40 s the first time), as .ci/run does.
  let clusterReason = reason;
  if (!reason) {
    clusterReason = await ensureBrokerCluster().then(
      () => brokerClusterReachable(),
      (error: unknown) => `could not start the RabbitMQ cluster with tools/rabbitmq-cluster.sh: ${(error as Error).message}`,
    );
    if (clusterReason && servicesRequired()) throw new Error(`The RabbitMQ cluster is required for this run: ${clusterReason}`);
    if (clusterReason) console.warn(`\n[stockflow] cluster tests will be SKIPPED: ${clusterReason}\n`);
  }
  project.provide('brokerClusterUnavailable', clusterReason);
  project.provide('amqpUrl', vhost?.url ?? '');
  return async () => {
    await vhost?.remove();
  };
}
