/** The node's HTTP endpoint: `/metrics` (Prometheus), `/healthz` (liveness), `/readyz` (readiness with its reason), `/status` (JSON). */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NodeReadiness, NodeStatus } from './mcs-node.js';

export interface HealthServerInit {
  readonly host: string;
  readonly port: number;
  /** The Prometheus text exposition and its content type. */
  readonly metrics: () => Promise<{ contentType: string; text: string }>;
  readonly readiness: () => NodeReadiness;
  readonly status: () => NodeStatus;
}

export class HealthServer {
  readonly #init: HealthServerInit;
  #server: Server | undefined;

  constructor(init: HealthServerInit) {
    this.#init = init;
  }

  /** The bound address (after start). */
  address(): AddressInfo | undefined {
    const a = this.#server?.address();
    return a !== null && typeof a === 'object' ? a : undefined;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const reply = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
        res.writeHead(code, { 'content-type': type });
        res.end(body);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n');
      switch (path) {
        case '/healthz':
        case '/livez':
          return reply(200, 'ok\n');
        case '/readyz': {
          const r = this.#init.readiness();
          return reply(r.ready ? 200 : 503, `${r.ready ? 'ready' : 'not ready'}: ${r.reason}\n`);
        }
        case '/status':
          return reply(200, JSON.stringify(this.#init.status(), null, 2) + '\n', 'application/json');
        case '/metrics':
          this.#init.metrics().then(
            (m) => reply(200, m.text, m.contentType),
            (err: unknown) => reply(500, `${(err as Error).message}\n`),
          );
          return;
        default:
          return reply(404, 'not found\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#init.port, this.#init.host, () => resolve());
    });
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
