// A minimal WebSocket server (RFC 6455: handshake, binary and close frames, client masking)
// on node's http server, for browser tests that need a room to talk to without `coil serve`:
// breach.browser.mjs uses it to play a recorded match to the real page over a real socket.
// Not a general WebSocket library: no fragmentation, no extensions, messages under 64 KiB
// from the client (the client's frames are a few bytes).

import { createHash } from 'node:crypto';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** One accepted connection: `send(bytes)`, `close()`, `onMessage(bytes)`, `onClose()`. */
class Connection {
  constructor(socket, path) {
    this.socket = socket;
    this.path = path;
    this.open = true;
    this.buffer = Buffer.alloc(0);
    this.onMessage = () => {};
    this.onClose = () => {};
    socket.on('data', (chunk) => this.read(chunk));
    socket.on('close', () => this.closed());
    socket.on('error', () => this.closed());
  }

  read(chunk) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 2) {
      const opcode = this.buffer[0] & 0x0f;
      const masked = (this.buffer[1] & 0x80) !== 0;
      let length = this.buffer[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) return;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        this.close();
        return;
      }
      const maskAt = offset;
      if (masked) offset += 4;
      if (this.buffer.length < offset + length) return;
      const payload = Buffer.from(this.buffer.subarray(offset, offset + length));
      if (masked) for (let i = 0; i < payload.length; i++) payload[i] ^= this.buffer[maskAt + (i % 4)];
      this.buffer = this.buffer.subarray(offset + length);
      if (opcode === 0x8) {
        this.close();
        return;
      }
      if (opcode === 0x2) this.onMessage(new Uint8Array(payload));
    }
  }

  send(bytes) {
    if (!this.open) return;
    const length = bytes.length;
    const header = length < 126 ? Buffer.from([0x82, length]) : Buffer.from([0x82, 126, length >> 8, length & 0xff]);
    this.socket.write(Buffer.concat([header, Buffer.from(bytes)]));
  }

  /** A clean close (status 1000). */
  close() {
    if (!this.open) return;
    this.socket.write(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
    this.socket.end();
    this.closed();
  }

  /** Drops the TCP connection without a close frame, as a lost network does. */
  destroy() {
    this.socket.destroy();
    this.closed();
  }

  closed() {
    if (!this.open) return;
    this.open = false;
    this.onClose();
  }
}

/** Accepts WebSocket upgrades on `server`; `onConnection(connection)` for each. */
export function acceptWebSockets(server, onConnection) {
  server.on('upgrade', (request, socket) => {
    const key = request.headers['sec-websocket-key'];
    if (!key) {
      socket.destroy();
      return;
    }
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.setNoDelay(true);
    onConnection(new Connection(socket, new URL(request.url, 'http://x').pathname));
  });
}
