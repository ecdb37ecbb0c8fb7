// Cost of one access-token verification in V8 (Node's engine, the same as workerd's), for the
// Rust verifier compiled to WASM, against Node's native (OpenSSL) Ed25519 on the same token.
import { createPublicKey, verify } from "node:crypto";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { VerifyBench } = require("./pkg/latch_verify_wasm.js");
const bench = new VerifyBench();
const token = bench.token();

function perCall(fn, n) {
  fn(Math.max(1, n / 10)); // warm up
  const start = performance.now();
  fn(n);
  return ((performance.now() - start) * 1000) / n;
}

const n = Number(process.argv[2] ?? 2000);
const wasmUs = perCall((k) => bench.verify(k), n);

// Baseline: signature only, natively. The same public key, derived from the fixed seed.
const [header, payload, signature] = token.split(".");
const seed = Buffer.alloc(32, 42);
const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
const publicKey = createPublicKey({ key: pkcs8, format: "der", type: "pkcs8" });
const input = Buffer.from(`${header}.${payload}`);
const sig = Buffer.from(signature, "base64url");
const nativeUs = perCall((k) => {
  for (let i = 0; i < k; i++) if (!verify(null, input, publicKey, sig)) throw new Error("bad");
}, n);

console.log(JSON.stringify({
  wasm_verify_us: Number(wasmUs.toFixed(1)),
  native_ed25519_us: Number(nativeUs.toFixed(1)),
  wasm_over_native: Number((wasmUs / nativeUs).toFixed(2)),
}));
