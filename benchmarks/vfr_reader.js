// VFR's read path in VFR's own runtime: Node.js, JSON.parse, the envelope's expiry check.
// Driven by bench_read_path.py (no npm packages: a minimal RESP client on node:net).
//
//   node vfr_reader.js <redis-url> <readers> <reads-per-second> <keys-file> <results-file>
//
// Opens <readers> connections, each a reader with Poisson arrivals at rate/readers, reading
// random keys from <keys-file> (one per line). Reads stdin lines "phase <n>" (1 = quiet,
// 2 = publishing; others are not recorded) and "done", then writes <results-file> (JSON: per
// phase the latencies in microseconds, GET sent to payload parsed, misses, malformed entries)
// and prints "done".
"use strict";
const net = require("node:net");
const fs = require("node:fs");
const readline = require("node:readline");

const [url, readersArg, rateArg, keysFile, resultsFile] = process.argv.slice(2);
const readers = Number(readersArg);
const ratePerReader = Number(rateArg) / readers;
const keys = fs.readFileSync(keysFile, "utf8").split("\n").filter(Boolean);
let phase = 0;
const results = {};
for (const p of [1, 2]) results[p] = { latencies: [], misses: 0, malformed: 0, examples: [] };

function target(u) {
  const parsed = new URL(u);
  if (parsed.protocol === "unix:") {
    return { connect: { path: parsed.pathname }, db: Number(parsed.searchParams.get("db") || 0), password: parsed.password };
  }
  if (parsed.protocol !== "redis:") throw new Error(`unsupported Redis URL scheme ${parsed.protocol}`);
  return {
    connect: { host: parsed.hostname || "127.0.0.1", port: Number(parsed.port || 6379) },
    db: Number(parsed.pathname.replace("/", "") || 0),
    password: decodeURIComponent(parsed.password || ""),
    username: decodeURIComponent(parsed.username || ""),
  };
}

function command(...args) {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return out;
}

// One connection: requests answered in order; replies parsed from a byte stream.
class Connection {
  constructor(where) {
    this.socket = net.createConnection(where.connect);
    this.socket.setNoDelay(true);
    this.pending = [];
    this.buffer = Buffer.alloc(0);
    this.socket.on("data", (chunk) => this.onData(chunk));
    this.socket.on("error", (err) => { console.error(`redis connection: ${err.message}`); process.exit(2); });
  }

  send(args, callback) {
    this.pending.push(callback);
    this.socket.write(command(...args));
  }

  onData(chunk) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    for (;;) {
      const reply = this.parse();
      if (reply === undefined) return;
      this.pending.shift()(reply);
    }
  }

  // A whole reply (string, null, or Error) or undefined when more bytes are needed.
  parse() {
    const end = this.buffer.indexOf("\r\n");
    if (end < 0) return undefined;
    const kind = String.fromCharCode(this.buffer[0]);
    const line = this.buffer.toString("utf8", 1, end);
    if (kind === "$") {
      const size = Number(line);
      if (size < 0) { this.buffer = this.buffer.subarray(end + 2); return null; }
      if (this.buffer.length < end + 2 + size + 2) return undefined;
      const value = this.buffer.toString("utf8", end + 2, end + 2 + size);
      this.buffer = this.buffer.subarray(end + 2 + size + 2);
      return value;
    }
    this.buffer = this.buffer.subarray(end + 2);
    if (kind === "-") return new Error(line);
    return line; // +OK, :1
  }
}

// What VFR's RedisCache.get and MLCacheService do with a value: JSON.parse (a throw is the
// malformed case that marks VFR's Redis unavailable), then the envelope's own expiry.
function readLikeVfr(raw, nowMs) {
  if (raw === null) return { payload: null };
  const entry = JSON.parse(raw);
  if (typeof entry !== "object" || entry === null) return { payload: null, entry };
  if (typeof entry.timestamp === "number" && typeof entry.ttl === "number" && nowMs - entry.timestamp > entry.ttl * 1000) {
    return { payload: null, entry };
  }
  return { payload: entry.data, entry };
}

// The strict check outside the timed part (VFR does not do it): envelope shape and the
// MLPrediction fields VFR uses.
function problem(entry, payload) {
  if (typeof entry !== "object" || entry === null) return "envelope is not an object";
  for (const [name, type] of [["timestamp", "number"], ["ttl", "number"], ["source", "string"], ["version", "string"]]) {
    if (typeof entry[name] !== type) return `envelope field ${name} is not a ${type}`;
  }
  if (payload === null || payload === undefined) return null;
  const p = payload.prediction;
  if (typeof payload.symbol !== "string" || typeof p !== "object" || p === null) return "payload lacks symbol or prediction";
  if (!["BUY", "SELL", "HOLD"].includes(p.direction)) return `direction ${p.direction}`;
  for (const name of ["confidence", "probability"]) {
    if (typeof p[name] !== "number" || p[name] < 0 || p[name] > 1) return `${name} ${p[name]} outside 0..1`;
  }
  if (typeof p.expectedReturn !== "number" || !Number.isFinite(p.expectedReturn)) return "expectedReturn not finite";
  if (typeof payload.features !== "object" || payload.features === null) return "features missing";
  return null;
}

function startReader(conn) {
  const schedule = () => setTimeout(readOnce, (-Math.log(1 - Math.random()) / ratePerReader) * 1000);
  const readOnce = () => {
    if (phase === 3) return;
    const recordIn = phase;
    const key = keys[Math.floor(Math.random() * keys.length)];
    const started = process.hrtime.bigint();
    conn.send(["GET", key], (raw) => {
      let result = null;
      let bad = null;
      try {
        if (raw instanceof Error) throw raw;
        result = readLikeVfr(raw, Date.now());
      } catch (err) {
        bad = `${key}: ${err.message}`;
      }
      const micros = Number(process.hrtime.bigint() - started) / 1000;
      if (bad === null && result.entry !== undefined) {
        const why = problem(result.entry, result.payload);
        if (why !== null) bad = `${key}: ${why}`;
      }
      const slot = results[recordIn];
      if (slot) {
        slot.latencies.push(micros);
        if (bad !== null) { slot.malformed += 1; if (slot.examples.length < 3) slot.examples.push(bad); }
        else if (!result.payload) slot.misses += 1;
      }
    });
    schedule();
  };
  schedule();
}

const where = target(url);
const connections = [];
let ready = 0;
for (let i = 0; i < readers; i++) {
  const conn = new Connection(where);
  const setup = [];
  if (where.password) setup.push(where.username ? ["AUTH", where.username, where.password] : ["AUTH", where.password]);
  if (where.db) setup.push(["SELECT", String(where.db)]);
  setup.push(["PING"]);
  for (const args of setup) {
    conn.send(args, (reply) => {
      if (reply instanceof Error) { console.error(`${args[0]}: ${reply.message}`); process.exit(2); }
      if (args[0] === "PING" && ++ready === readers) process.stdout.write("ready\n");
    });
  }
  connections.push(conn);
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const [word, value] = line.trim().split(/\s+/);
  if (word === "phase") {
    phase = Number(value); // any phase starts the readers; only 1 and 2 are recorded
    for (const conn of connections) if (!conn.started) { conn.started = true; startReader(conn); }
  } else if (word === "done") {
    phase = 3;
    // let the reads in flight land, then report
    setTimeout(() => {
      fs.writeFileSync(resultsFile, JSON.stringify(results));
      process.stdout.write("done\n");
      for (const conn of connections) conn.socket.destroy();
      process.exit(0);
    }, 200);
  }
});
