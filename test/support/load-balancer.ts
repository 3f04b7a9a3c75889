/**
 * A load balancer in front of several servers of one installation: it forwards each request
 * unchanged (the Host header too, so every server sees the issuer's host) to the server the
 * test has chosen, and remembers which one served what.
 */
import http from 'node:http';

import { freePort } from '../../src/db/ferretdb.ts';

export interface LoadBalancer {
  url: string;
  /** The base URL of the server that receives the next requests. */
  target: string;
  /** `METHOD path` of every forwarded request, per server base URL. */
  served: Map<string, string[]>;
  close(): Promise<void>;
}

export async function startLoadBalancer(): Promise<LoadBalancer> {
  const port = await freePort();
  const balancer: LoadBalancer = {
    url: `http://127.0.0.1:${port}`,
    target: '',
    served: new Map(),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
  const server = http.createServer((request, response) => {
    const target = new URL(balancer.target);
    const log = balancer.served.get(balancer.target) ?? [];
    log.push(`${request.method} ${request.url?.split('?')[0]}`);
    balancer.served.set(balancer.target, log);
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: request.method,
        path: request.url,
        headers: request.headers,
      },
      (answer) => {
        response.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => response.writeHead(502).end());
    request.pipe(upstream);
  });
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return balancer;
}
