/**
 * A stand-in for the TLS-terminating reverse proxy in front of the servers: it forwards
 * every request to the server as the proxy of docs/operations.md does, with the client's
 * Host, `X-Forwarded-Proto: https` and `X-Forwarded-For`, replacing any such header the
 * client sent. It speaks plain HTTP itself; a test's browser fetches the issuer's https
 * URLs from it (`Browser` option `transport`).
 */
import http from 'node:http';

import { freePort } from '../../src/db/ferretdb.ts';

export interface TlsProxy {
  /** The issuer behind this proxy: `https://127.0.0.1:<port>`. */
  issuer: string;
  /** Where the proxy really listens: `http://127.0.0.1:<port>`. */
  url: string;
  /** The base URL of the server it forwards to. */
  target: string;
  /** Maps a URL of the issuer to the proxy's plain address. */
  transport: (url: string) => string;
  close(): Promise<void>;
}

export async function startTlsProxy(): Promise<TlsProxy> {
  const port = await freePort();
  const issuer = `https://127.0.0.1:${port}`;
  const url = `http://127.0.0.1:${port}`;
  const proxy: TlsProxy = {
    issuer,
    url,
    target: '',
    transport: (address) =>
      address.startsWith(issuer) ? url + address.slice(issuer.length) : address,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
  const server = http.createServer((request, response) => {
    const target = new URL(proxy.target);
    const headers = { ...request.headers };
    delete headers['x-forwarded-host'];
    headers['x-forwarded-proto'] = 'https';
    headers['x-forwarded-for'] = request.socket.remoteAddress ?? '127.0.0.1';
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: request.method,
        path: request.url,
        headers,
      },
      (answer) => {
        response.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => response.writeHead(502).end());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return proxy;
}
