import type { Socket } from 'node:net';

/**
 * Gathers what is written to a socket during one turn of the event loop into a single write.
 *
 * rabbitmq-client writes each publish and each ack to its socket as soon as it is encoded: one
 * system call per message, which under load cost more CPU than anything else in the services
 * (and a TCP segment for the broker to read per message). A batch of 250 answers and their 250
 * acks now leave in one write. Writes with a callback or an encoding, and `end()`, first flush
 * what is gathered, so the order of bytes is kept. (rabbitmq-client corks the socket around each
 * message, and for as long as the broker blocks the connection; a flush into a corked socket
 * waits there like any other write.)
 */
export function coalesceWrites(socket: Socket): void {
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  const end = socket.end.bind(socket) as (...args: unknown[]) => Socket;
  let chunks: Buffer[] = [];
  let scheduled = false;

  const flush = () => {
    scheduled = false;
    if (chunks.length === 0) return;
    const data = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    chunks = [];
    if (!socket.destroyed) write(data);
  };

  socket.write = (chunk: unknown, ...rest: unknown[]) => {
    if (rest.length > 0 || !Buffer.isBuffer(chunk) || socket.destroyed) {
      flush();
      return write(chunk, ...rest);
    }
    chunks.push(chunk);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
    return !socket.writableNeedDrain;
  };

  socket.end = (...args: unknown[]) => {
    flush();
    return end(...args);
  };
}
