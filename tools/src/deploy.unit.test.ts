/**
 * What can be checked of the deployment files without a Docker engine or a cluster: the
 * Dockerfile's targets run the commands the tests run, the compose file is complete, every
 * Kubernetes object validates against its schema, and dashboards and alerts use metrics the
 * services really serve.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { queues } from '@stockflow/contracts';
import { ConfigError, createAuthenticator, EXAMPLE_SECRETS } from '@stockflow/platform';
import { createMetrics } from '@stockflow/observability';
import { repoRoot, runnableCommand } from '@stockflow/testing';
import { createGatewayMetrics } from '@stockflow/gateway';
import { registerOrdersMetrics } from '@stockflow/orders';

const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');
const SERVICES = ['inventory', 'orders'] as const;

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const stages = Object.fromEntries(
    dockerfile
      .split(/^FROM /m)
      .slice(1)
      .map((stage) => [/ AS (\S+)/.exec(stage.split('\n')[0] ?? '')?.[1] ?? '', stage]),
  );

  it.each([...SERVICES, 'gateway'] as const)('has a %s target that runs the command the tests start the service with', (service) => {
    const stage = stages[service] ?? '';
    const cmd = JSON.parse(/^CMD (.*)$/m.exec(stage)?.[1] ?? '[]') as string[];
    const [, args] = runnableCommand(service);
    expect(cmd).toEqual(['node', ...args.map((a) => (path.isAbsolute(a) ? path.relative(repoRoot, a) : a))]);
    expect(stage).toContain(`COPY --from=build --chown=node:node /app/dist/${service} dist/${service}`);
  });

  it('has the gateway bundle the supergraph the build copies beside it', () => {
    expect(read('tools/src/build.ts')).toContain("'apps/gateway/supergraph.graphql'");
  });

  it('runs as a non-root user with a health check and only production dependencies', () => {
    const runtime = stages.runtime ?? '';
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^HEALTHCHECK /m);
    expect(runtime).toContain('npm ci --omit=dev');
  });

  it("copies every workspace's package.json before installing, in both stages", () => {
    const workspaces = (JSON.parse(read('package.json')) as { workspaces: string[] }).workspaces.flatMap((pattern) =>
      pattern.endsWith('/*')
        ? readdirSync(path.join(repoRoot, pattern.slice(0, -2))).map((d) => `${pattern.slice(0, -2)}/${d}`)
        : [pattern],
    );
    for (const ws of workspaces) {
      expect(stages.build).toContain(`COPY ${ws}/package.json ${ws}/`);
      expect(stages.runtime).toContain(`COPY --from=build /app/${ws}/package.json ${ws}/`);
    }
  });
});

describe('docker-compose.yml', () => {
  const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as {
    services: Record<
      string,
      {
        image?: string;
        build?: { target: string };
        environment?: Record<string, string>;
        healthcheck?: unknown;
        env_file?: string;
        depends_on?: Record<string, unknown>;
      }
    >;
    volumes: Record<string, unknown>;
  };

  it('brings up PostgreSQL 16, RabbitMQ 3 with the management UI, the Order Service and two inventory replicas', () => {
    expect(compose.services.postgres?.image).toBe('postgres:16');
    expect(compose.services.rabbitmq?.image).toBe('rabbitmq:3-management');
    const targets = Object.values(compose.services).map((s) => s.build?.target);
    expect(targets.filter((t) => t === 'orders')).toHaveLength(1);
    expect(targets.filter((t) => t === 'gateway')).toHaveLength(1);
    expect(targets.filter((t) => t === 'inventory')).toHaveLength(2);
    expect(Object.keys(compose.volumes)).toEqual(['postgres-data', 'rabbitmq-data']);
  });

  it('gives every service a health check, its configuration, and a database of its own', () => {
    const databases = new Set<string>();
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.healthcheck, name).toBeDefined();
      if (!service.build || service.build.target === 'gateway') continue;
      expect(service.env_file, name).toBe('.env');
      expect(Object.keys(service.depends_on ?? {}), name).toEqual(['postgres', 'rabbitmq']);
      expect(service.environment?.AMQP_URL, name).toMatch(/^amqp:\/\/.*@rabbitmq:5672$/);
      databases.add(/\/(\w+)$/.exec(service.environment?.DATABASE_URL ?? '')?.[1] ?? '');
    }
    expect([...databases].sort()).toEqual(['stockflow_inventory', 'stockflow_orders']);
    expect(read('deploy/compose/initdb/10-inventory-database.sql')).toContain('CREATE DATABASE stockflow_inventory');
  });

  it('does not come up from a copied .env.example: the secret and both passwords must be set, and reach the services', () => {
    const copied = parseEnv(read('.env.example'));
    const up = (env: Record<string, string | undefined>) =>
      interpolate(parseYaml(read('docker-compose.yml'), { merge: true }), env) as typeof compose;
    expect(() => up(copied)).toThrow(/required variable \w+ is missing a value: set \w+ in \.env/);
    const secrets = { AUTH_JWT_SECRET: 'k'.repeat(48), POSTGRES_PASSWORD: 'pg-password', RABBITMQ_PASSWORD: 'mq-password' };
    for (const variable of Object.keys(secrets)) {
      expect(() => up({ ...copied, ...secrets, [variable]: '' })).toThrow(`${variable} is missing a value`);
      expect(() => up({ ...secrets, [variable]: undefined })).toThrow(`${variable} is missing a value`);
    }
    const services = up({ ...copied, ...secrets }).services;
    expect(services.postgres?.environment?.POSTGRES_PASSWORD).toBe('pg-password');
    expect(services.rabbitmq?.environment?.RABBITMQ_DEFAULT_PASS).toBe('mq-password');
    expect(services.gateway?.environment?.AUTH_JWT_SECRET).toBe(secrets.AUTH_JWT_SECRET);
    for (const service of Object.values(services).filter((s) => s.build && s.build.target !== 'gateway')) {
      expect(service.environment?.AUTH_JWT_SECRET).toBe(secrets.AUTH_JWT_SECRET);
      expect(service.environment?.DATABASE_URL).toContain(':pg-password@postgres:5432/');
      expect(service.environment?.AMQP_URL).toContain(':mq-password@rabbitmq:5672');
    }
  });
});

/**
 * What `docker compose` does to every string of the file before using it: `$$` is a dollar sign,
 * `${X:-default}` / `${X-default}` a default when X is unset (or, with `:`, empty), `${X:?message}`
 * / `${X?message}` an error instead.
 */
function interpolate(value: unknown, env: Record<string, string | undefined>): unknown {
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  if (typeof value !== 'string') return value;
  return value.replace(
    /\$\$|\$\{(\w+)(?:(:?)([-?])([^}]*))?\}|\$(\w+)/g,
    (match, braced?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
      if (match === '$$') return '$';
      const name = (braced ?? bare) as string;
      const current = env[name];
      const missing = current === undefined || (colon === ':' && current === '');
      if (op === '-' && missing) return arg as string;
      if (op === '?' && missing) throw new Error(`required variable ${name} is missing a value: ${arg}`);
      return current ?? '';
    },
  );
}

describe('example secrets', () => {
  // Every AUTH_JWT_SECRET (or its Kubernetes key) the repository shows outside the tests.
  const files = ['README.md', '.env.example', 'docker-compose.yml', 'Dockerfile', ...listed('docs'), ...listed('deploy')];
  const shown = files.flatMap((file) =>
    [...read(file).matchAll(/(?:AUTH_JWT_SECRET|auth-jwt-secret)["']?[ \t]*[=:][ \t]*["']?([^\s"'`]+)/g)].map((m) => ({
      file,
      value: m[1] as string,
    })),
  );
  const k8sExample = (parseYaml(read('deploy/k8s/secret.example.yaml')) as { stringData: Record<string, string> }).stringData[
    'auth-jwt-secret'
  ];

  it('are each refused by the services, the exact values being listed', () => {
    expect(shown.map((s) => s.value)).toContain(k8sExample);
    for (const { file, value } of shown.filter((s) => !s.value.startsWith('$'))) {
      expect(() => createAuthenticator({ AUTH_JWT_SECRET: value, AUTH_DISABLED: 'false' }), `${file}: ${value}`).toThrow(ConfigError);
      // Long enough to pass the length check: refused for being an example, whatever its wording.
      if (value.length >= 32) expect(EXAMPLE_SECRETS, `${file}: ${value}`).toContain(value);
    }
  });

  it('are not shipped in .env.example, which is copied to .env as it is', () => {
    expect(parseEnv(read('.env.example')).AUTH_JWT_SECRET).toBe('');
  });
});

/** Every text file under a directory of the repository, as paths from its root. */
function listed(dir: string): string[] {
  return readdirSync(path.join(repoRoot, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(md|ya?ml|json|sql|conf|txt)$/.test(entry.name))
    .map((entry) => path.relative(repoRoot, path.join(entry.parentPath, entry.name)));
}

describe('Kubernetes manifests', async () => {
  const models = await import('kubernetes-models');
  const keda = await import('@kubernetes-models/keda/keda.sh/v1alpha1');
  // Each model's constructor takes its own object type; here they all receive parsed YAML.
  const kinds: Record<string, new (data: never) => { validate(): void }> = {
    'v1/Namespace': models.v1.Namespace,
    'v1/ConfigMap': models.v1.ConfigMap,
    'v1/Secret': models.v1.Secret,
    'v1/Service': models.v1.Service,
    'apps/v1/Deployment': models.apps.v1.Deployment,
    'policy/v1/PodDisruptionBudget': models.policy.v1.PodDisruptionBudget,
    'autoscaling/v2/HorizontalPodAutoscaler': models.autoscaling.v2.HorizontalPodAutoscaler,
    'keda.sh/v1alpha1/ScaledObject': keda.ScaledObject,
    'keda.sh/v1alpha1/TriggerAuthentication': keda.TriggerAuthentication,
  };
  const documents = readdirSync(path.join(repoRoot, 'deploy/k8s'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((file) =>
      parseAllDocuments(read(`deploy/k8s/${file}`)).map((d) => ({
        file,
        object: d.toJS() as { apiVersion: string; kind: string; metadata: { name: string }; spec?: Record<string, unknown> },
      })),
    );

  it('validates every object against its schema', () => {
    expect(documents.length).toBeGreaterThan(8);
    for (const { file, object } of documents) {
      const Model = kinds[`${object.apiVersion}/${object.kind}`];
      expect(Model, `${file}: ${object.apiVersion}/${object.kind} has no schema here`).toBeDefined();
      expect(
        () => new (Model as NonNullable<typeof Model>)(object as never).validate(),
        `${file}: ${object.kind} ${object.metadata.name}`,
      ).not.toThrow();
    }
  });

  it('probes /health and /ready with more than the default 1 s to answer, limits resources, and keeps a disruption budget for each service and the gateway', () => {
    for (const service of [...SERVICES, 'gateway']) {
      const deployment = documents.find((d) => d.object.kind === 'Deployment' && d.object.metadata.name === service)?.object as unknown as {
        spec: {
          template: {
            spec: {
              containers: {
                livenessProbe: { httpGet: { path: string }; timeoutSeconds?: number };
                readinessProbe: { httpGet: { path: string }; timeoutSeconds?: number };
                resources: { limits: Record<string, string> };
              }[];
            };
          };
        };
      };
      const [container] = deployment.spec.template.spec.containers;
      expect(container?.livenessProbe.httpGet.path).toBe('/health');
      expect(container?.readinessProbe.httpGet.path).toBe('/ready');
      // A new connection waits at an instance at full CPU: a busy one must not be taken for dead.
      expect(container?.livenessProbe.timeoutSeconds).toBeGreaterThanOrEqual(5);
      expect(container?.readinessProbe.timeoutSeconds).toBeGreaterThanOrEqual(5);
      expect(Object.keys(container?.resources.limits ?? {}).sort()).toEqual(['cpu', 'memory']);
      expect(documents.some((d) => d.object.kind === 'PodDisruptionBudget' && d.object.metadata.name === service)).toBe(true);
    }
  });

  it('has Prometheus scrape the /metrics of each service and of the gateway, on its container port', () => {
    for (const name of [...SERVICES, 'gateway']) {
      const deployment = documents.find((d) => d.object.kind === 'Deployment' && d.object.metadata.name === name)?.object as unknown as {
        spec: {
          template: { metadata: { annotations?: Record<string, string> }; spec: { containers: { ports: { containerPort: number }[] }[] } };
        };
      };
      const { metadata, spec } = deployment.spec.template;
      expect(metadata.annotations, name).toMatchObject({
        'prometheus.io/scrape': 'true',
        'prometheus.io/path': '/metrics',
        'prometheus.io/port': String(spec.containers[0]?.ports[0]?.containerPort),
      });
    }
  });

  it('scales the Order Service and the gateway on CPU, below their CPU request', () => {
    const scaled = documents
      .filter((d) => d.object.kind === 'HorizontalPodAutoscaler')
      .map(
        (d) =>
          d.object as unknown as {
            spec: {
              scaleTargetRef: { name: string };
              minReplicas: number;
              metrics: { resource: { name: string; target: { averageUtilization: number } } }[];
            };
          },
      );
    expect(scaled.map((h) => h.spec.scaleTargetRef.name).sort()).toEqual(['gateway', 'orders']);
    // The autoscalers own the replica counts (KEDA the inventory's): a Deployment that set one would have it put back by every apply.
    for (const name of ['gateway', 'orders', 'inventory']) {
      const deployment = documents.find((d) => d.object.kind === 'Deployment' && d.object.metadata.name === name)?.object as unknown as {
        spec: { replicas?: number };
      };
      expect(deployment.spec.replicas, name).toBeUndefined();
    }
    for (const hpa of scaled) {
      expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
      expect(hpa.spec.metrics[0]?.resource.name).toBe('cpu');
      expect(hpa.spec.metrics[0]?.resource.target.averageUtilization).toBeLessThan(100);
    }
  });

  it('scales the Inventory Service on the depth of the queue it consumes', () => {
    const scaled = documents.find((d) => d.object.kind === 'ScaledObject')?.object as unknown as {
      spec: { scaleTargetRef: { name: string }; triggers: { type: string; metadata: { queueName: string } }[] };
    };
    expect(scaled.spec.scaleTargetRef.name).toBe('inventory');
    expect(scaled.spec.triggers[0]?.type).toBe('rabbitmq');
    expect(scaled.spec.triggers[0]?.metadata.queueName).toBe(queues.orderCreatedInventory.queue);
    // KEDA reads one URL; the services' AMQP_URL may list every node of the cluster.
    const auth = documents.find((d) => d.object.kind === 'TriggerAuthentication')?.object as unknown as {
      spec: { secretTargetRef: { parameter: string; key: string }[] };
    };
    const secret = documents.find((d) => d.object.kind === 'Secret')?.object as unknown as { stringData: Record<string, string> };
    const hostKey = auth.spec.secretTargetRef.find((r) => r.parameter === 'host')?.key as string;
    expect(secret.stringData[hostKey]).toMatch(/^amqps?:\/\/[^,]+$/);
  });
});

describe('dashboards and alerts', () => {
  const metrics = createMetrics('check');
  registerOrdersMetrics(metrics, { oldestPendingAgeSeconds: () => Promise.resolve(0), overdueHoldSeconds: () => Promise.resolve(0) });
  const served = new Set(
    [...metrics.registry.getMetricsAsArray(), ...createGatewayMetrics().registry.getMetricsAsArray()].flatMap((m) => [
      m.name,
      `${m.name}_bucket`,
      `${m.name}_count`,
      `${m.name}_sum`,
    ]),
  );
  const used = (text: string) => [...new Set(text.match(/\b(stockflow_\w+|process_\w+)/g) ?? [])];

  it('alert on metrics the services serve, each with a severity and a summary', () => {
    const rules = (
      parseYaml(read('deploy/observability/alerts.yaml')) as {
        groups: { rules: { alert: string; expr: string; labels: { severity: string }; annotations: { summary: string } }[] }[];
      }
    ).groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'StockflowOutboxBacklogGrowing',
        'StockflowDeadLettersWaiting',
        'StockflowInventoryConsumerAbsent',
        'StockflowGraphqlLatencyHigh',
        'StockflowEventsUnroutable',
        'StockflowOrdersStuckPending',
        'StockflowPaymentsParked',
      ]),
    );
    for (const rule of rules) {
      expect(['warning', 'critical']).toContain(rule.labels.severity);
      expect(rule.annotations.summary).toBeTruthy();
      for (const metric of used(rule.expr)) expect(served.has(metric), `${rule.alert}: ${metric}`).toBe(true);
    }
  });

  it('chart metrics the services serve', () => {
    const dashboard = JSON.parse(read('deploy/observability/grafana-dashboard.json')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    expect(dashboard.panels.length).toBeGreaterThan(8);
    for (const panel of dashboard.panels) {
      for (const target of panel.targets)
        for (const metric of used(target.expr)) expect(served.has(metric), `${panel.title}: ${metric}`).toBe(true);
    }
  });
});
