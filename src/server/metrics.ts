import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics for one server; a registry per instance keeps tests independent. */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new Histogram({
    name: 'meshid_http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly logins = new Counter({
    name: 'meshid_logins_total',
    help: 'Login attempts by credential type and result',
    labelNames: ['type', 'result'] as const,
    registers: [this.registry],
  });

  /** One per token a caller sent to login or the CA: reviewed by Kubernetes, or refused before (screened, refused moments ago, rate-limited). */
  readonly tokenReviews = new Counter({
    name: 'meshid_token_reviews_total',
    help: 'Tokens sent to login or the CA, by what the guard did with them',
    labelNames: ['source', 'outcome'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'meshid_' });
  }
}
