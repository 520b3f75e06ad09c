// A TCP proxy on 127.0.0.1 in front of a real server that can be made to hang: while hung, bytes are held in both
// directions (and delivered in order on resume), new connections are accepted but get nothing through, as a stalled API server or a black-holed network
// path looks to a client (no error, no reset: calls just never return).
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export class FaultProxy {
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #pairs = new Set<[Socket, Socket]>();
  /** Chunks held while hung, in arrival order, with the socket each is for. */
  readonly #held: [Socket, Buffer][] = [];
  #hung = false;

  private constructor(server: Server, target: { host: string; port: number }) {
    this.#server = server;
    this.#target = target;
  }

  /** Starts a proxy to `host:port` on a free loopback port. */
  static async start(host: string, port: number): Promise<FaultProxy> {
    const holder: { proxy?: FaultProxy } = {};
    const server = createServer((client) => holder.proxy?.accept(client));
    const proxy = new FaultProxy(server, { host, port });
    holder.proxy = proxy;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** From now on nothing gets through (in either direction) until {@link FaultProxy.resume}. */
  hang(): void {
    this.#hung = true;
  }

  resume(): void {
    this.#hung = false;
    for (const [to, chunk] of this.#held.splice(0)) if (!to.destroyed) to.write(chunk);
  }

  async stop(): Promise<void> {
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
    this.#pairs.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const upstream = connect(this.#target.port, this.#target.host);
    const pair: [Socket, Socket] = [client, upstream];
    this.#pairs.add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.#pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    const forward = (to: Socket) => (chunk: Buffer) => {
      if (this.#hung) this.#held.push([to, chunk]);
      else to.write(chunk);
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
  }
}
