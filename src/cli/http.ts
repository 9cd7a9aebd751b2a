import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface HttpCall {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: unknown;
  /** TLS material (CA, client certificate) for https URLs. */
  tls?: Pick<RequestOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'servername'>;
  timeoutMs?: number;
}

/** One JSON call over http or https; answers any status, throws only when there is no answer. */
export function call(c: HttpCall): Promise<HttpAnswer> {
  const payload = c.body === undefined ? undefined : JSON.stringify(c.body);
  const headers: Record<string, string> = { accept: 'application/json', ...c.headers };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const send = c.url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(c.url, { method: c.method, headers, ...(c.url.protocol === 'https:' ? c.tls : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        if (/json/.test(res.headers['content-type'] ?? '')) {
          try {
            body = JSON.parse(text);
          } catch {
            // keep the text
          }
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.setTimeout(c.timeoutMs ?? 30_000, () => req.destroy(new Error(`no answer from ${c.url.host} within ${(c.timeoutMs ?? 30_000) / 1000} s`)));
    req.on('error', reject);
    req.end(payload);
  });
}
