// The origin's container image, built by scripts/build-image.sh in the test command: what it
// declares (user, entrypoint, healthcheck, data directory, size), what it holds, and the binary
// taken out of it serving /readyz on the embedded SQLite default. (`podman run` cannot run on
// these machines, so the binary runs outside the container.)
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { freePort, sleep } from "../support.mjs";

const IMAGE = process.env.LATCH_TEST_IMAGE ?? "latch-origin:test";
const MAX_IMAGE_BYTES = 40 * 1024 * 1024;
let dir, config, layerRoot;

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "latch-image-"));
  config = JSON.parse(execFileSync("podman", ["image", "inspect", IMAGE], { encoding: "utf8" }))[0];
  // The image as a Docker archive: manifest.json names its layers, each a tar of files.
  const archive = path.join(dir, "image.tar");
  execFileSync("podman", ["save", "--quiet", "--format", "docker-archive", "--output", archive, IMAGE]);
  const unpacked = path.join(dir, "unpacked");
  execFileSync("mkdir", ["-p", unpacked]);
  execFileSync("tar", ["-xf", archive, "-C", unpacked]);
  const [manifest] = JSON.parse(readFileSync(path.join(unpacked, "manifest.json"), "utf8"));
  layerRoot = path.join(dir, "root");
  execFileSync("mkdir", ["-p", layerRoot]);
  for (const layer of manifest.Layers) {
    execFileSync("tar", ["-xf", path.join(unpacked, layer), "-C", layerRoot, "--no-same-owner"]);
  }
  // Owners, as the image records them (extraction above does not keep them).
  config.listing = manifest.Layers.map((layer) =>
    execFileSync("tar", ["-tvf", path.join(unpacked, layer), "--numeric-owner"], { encoding: "utf8" }),
  ).join("\n");
});

after(() => rmSync(dir, { recursive: true, force: true }));

test("the image runs as a non-root user with a healthcheck, from scratch, and is small", () => {
  const c = config.Config;
  assert.equal(c.User, "10001:10001");
  assert.deepEqual(c.Entrypoint, ["/usr/local/bin/latch-origin"]);
  // Kept only in the Docker format (which scripts/build-image.sh builds): OCI drops it.
  assert.deepEqual(config.Healthcheck.Test, ["CMD", "/usr/local/bin/latch-origin", "healthcheck"]);
  assert.equal(c.WorkingDir, "/var/lib/latch");
  assert.ok("/var/lib/latch" in c.Volumes, "the data directory is a volume");
  assert.ok("3567/tcp" in c.ExposedPorts);
  assert.ok(c.Env.includes("LATCH_LISTEN=0.0.0.0:3567"));
  assert.ok(config.Size < MAX_IMAGE_BYTES, `${config.Size} bytes`);
  console.log(`figure: image ${(config.Size / 1024 / 1024).toFixed(1)} MiB`);
});

test("the image holds the binary, the user and a data directory the user owns, and nothing else", () => {
  const passwd = readFileSync(path.join(layerRoot, "etc/passwd"), "utf8");
  assert.match(passwd, /^latch:x:10001:10001:/m);
  const dataDir = config.listing.split("\n").find((line) => / var\/lib\/latch\/?$/.test(line));
  assert.ok(dataDir, config.listing);
  assert.match(dataDir, /^d\S+ 10001\/10001 /, "writable by the latch user");
  const files = config.listing.split("\n").filter((line) => line.startsWith("-")).map((line) => line.split(" ").pop()).sort();
  assert.deepEqual(files, ["etc/group", "etc/passwd", "usr/local/bin/latch-origin"]);
});

test("the binary taken out of the image is static and serves /readyz on the embedded database", async () => {
  const binary = path.join(layerRoot, "usr/local/bin/latch-origin");
  assert.ok(statSync(binary).mode & 0o111, "executable");
  // A static executable names no dynamic loader.
  assert.ok(!readFileSync(binary).includes("ld-linux-x86-64.so"), "statically linked");
  const port = await freePort();
  const env = { LATCH_LISTEN: `127.0.0.1:${port}`, LATCH_DATA_DIR: path.join(dir, "data"), LATCH_LOG: "warn", LATCH_NO_EDGE: "true" };
  const healthcheck = () =>
    new Promise((resolve) => spawn(binary, ["healthcheck"], { env, stdio: "ignore" }).on("exit", resolve));
  assert.equal(await healthcheck(), 1, "unhealthy before it listens");
  const child = spawn(binary, [], { env, stdio: ["ignore", "inherit", "inherit"] });
  try {
    let ready = null;
    for (let i = 0; i < 100 && ready === null; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        if (res.status === 200) ready = res;
      } catch {}
      if (ready === null) await sleep(100);
    }
    assert.ok(ready, "/readyz answered 200");
    assert.equal(await healthcheck(), 0, "the image's HEALTHCHECK passes");
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  }
});
