import { connect, type Socket } from 'node:net';

/**
 * A small HTTP/1.1 client for the load generator's hot path: POSTs over a fixed set of kept-alive
 * connections, one request at a time on each, with a minimal response parser.
 *
 * The load generator runs on the machine it measures, so its own CPU is taken from the platform.
 * node:http spends about 0.3 ms of CPU per request (agent bookkeeping, streams, header objects),
 * which at 1,500 orders/s is most of a core; this spends a small fraction of that. It speaks only
 * what the platform answers: a status line, headers, and a body sized by Content-Length or sent
 * chunked.
 */
export interface PipeResponse {
  status: number;
  body: string;
}

interface Pending {
  head: Buffer;
  body: Buffer;
  resolve(response: PipeResponse): void;
  reject(error: Error): void;
}

class ConnectionSlot {
  private socket: Socket | undefined;
  private buffer: Buffer = Buffer.alloc(0);
  private current: Pending | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly onIdle: (slot: ConnectionSlot) => void,
  ) {}

  send(request: Pending): void {
    this.current = request;
    const socket = this.socket ?? this.open();
    socket.write(Buffer.concat([request.head, request.body]));
  }

  /** Lets go of the connection; a request still waiting for its answer fails. */
  close(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
    this.buffer = Buffer.alloc(0);
    const request = this.current;
    this.current = undefined;
    request?.reject(Object.assign(new Error('the connection was closed before the response'), { code: 'ECONNRESET' }));
  }

  private open(): Socket {
    const socket = connect({ host: this.host, port: this.port, noDelay: true });
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return;
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
    const fail = (error: Error) => {
      // A socket this slot has let go of (its error came first, or its answer said close): the
      // slot may already carry the next request on a new socket, which this must not fail.
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.buffer = Buffer.alloc(0);
      const request = this.current;
      this.current = undefined;
      request?.reject(error);
      if (request) this.onIdle(this);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(Object.assign(new Error('connection closed before the response'), { code: 'ECONNRESET' })));
    this.socket = socket;
    return socket;
  }

  private parse(): void {
    const request = this.current;
    if (!request) return;
    const headerEnd = this.buffer.indexOf('\r\n\r\n');
    if (headerEnd < 0) return;
    const head = this.buffer.toString('latin1', 0, headerEnd);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let body: Buffer | undefined;
    let consumed = 0;
    if (length) {
      const size = Number(length[1]);
      if (this.buffer.length < headerEnd + 4 + size) return;
      body = this.buffer.subarray(headerEnd + 4, headerEnd + 4 + size);
      consumed = headerEnd + 4 + size;
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const chunks: Buffer[] = [];
      let at = headerEnd + 4;
      for (;;) {
        const lineEnd = this.buffer.indexOf('\r\n', at);
        if (lineEnd < 0) return;
        const size = parseInt(this.buffer.toString('latin1', at, lineEnd), 16);
        if (this.buffer.length < lineEnd + 2 + size + 2) return;
        if (size === 0) {
          consumed = lineEnd + 4;
          break;
        }
        chunks.push(this.buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(chunks);
    } else {
      this.current = undefined;
      this.close();
      request.reject(new Error(`unsupported response framing: ${head.split('\r\n')[0] ?? ''}`));
      this.onIdle(this);
      return;
    }
    const text = body.toString('utf8');
    this.buffer = this.buffer.subarray(consumed);
    this.current = undefined;
    if (/\r\nconnection:\s*close/i.test(head)) this.close();
    request.resolve({ status, body: text });
    this.onIdle(this);
  }
}

/** POSTs JSON to one URL over at most `connections` kept-alive connections. */
export function httpPipe(url: string, connections: number, token?: string) {
  if (!Number.isInteger(connections) || connections < 1) throw new Error(`connections must be a whole number above 0, not ${connections}`);
  const target = new URL(url);
  if (target.protocol !== 'http:') throw new Error(`only http:// URLs are supported, not ${target.protocol}`);
  const host = target.hostname.replace(/^\[|\]$/g, '');
  const port = Number(target.port || 80);
  const idle: ConnectionSlot[] = [];
  const queue: Pending[] = [];
  const onIdle = (slot: ConnectionSlot) => {
    const next = queue.shift();
    if (next) slot.send(next);
    else idle.push(slot);
  };
  const slots = Array.from({ length: connections }, () => new ConnectionSlot(host, port, onIdle));
  idle.push(...slots);
  const authorization = token ? `Authorization: Bearer ${token}\r\n` : '';
  const prefix = `POST ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\nAccept: application/json\r\n${authorization}`;

  const requestOf = (json: string, resolve: Pending['resolve'], reject: Pending['reject']): Pending => {
    const body = Buffer.from(json);
    return { head: Buffer.from(`${prefix}Content-Length: ${body.length}\r\n\r\n`, 'latin1'), body, resolve, reject };
  };

  let closed = false;
  const closedError = () => Object.assign(new Error('the pipe is closed'), { code: 'ECONNRESET' });

  return {
    post(json: string): Promise<PipeResponse> {
      return new Promise<PipeResponse>((resolve, reject) => {
        if (closed) return reject(closedError());
        const request = requestOf(json, resolve, reject);
        const slot = idle.pop();
        if (slot) slot.send(request);
        else queue.push(request);
      });
    },
    /**
     * Opens every connection and has the server answer `json` once on each, before a run is
     * timed: a Node server accepts one waiting connection per turn of its event loop (libuv since
     * 1.45), so a server already saturated by the first connections' requests took the others in
     * at a few per second, and their first requests waited seconds in its accept queue (a run's
     * p99 of 12 s, and its last seconds spent on them alone). Kept-alive connections a load
     * balancer holds open are what a platform under load serves; this measures that.
     */
    async open(json: string): Promise<void> {
      const all = idle.splice(0);
      const answers = await Promise.all(
        all.map((slot) => new Promise<PipeResponse>((resolve, reject) => slot.send(requestOf(json, resolve, reject)))),
      );
      const failed = answers.find((a) => a.status !== 200);
      if (failed) throw new Error(`opening the connections: HTTP ${failed.status} ${failed.body.slice(0, 200)}`);
    },
    /** Closes every connection: the requests waiting for an answer or a connection fail, and so does any posted after. */
    close(): void {
      closed = true;
      idle.length = 0;
      for (const request of queue.splice(0)) request.reject(closedError());
      for (const slot of slots) slot.close();
    },
  };
}
