// A static file server on 127.0.0.1 for a folder (the demo): `node scripts/serve.mjs demo [port]`.
// Prints the URL on its first line; serves only files inside the folder, with the types browsers insist on.
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, resolve, sep } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
  ".json": "application/json", ".txt": "text/plain; charset=utf-8", ".onnx": "application/octet-stream", ".png": "image/png",
  ".npy": "application/octet-stream",
};

export function serve(folder, port = 0) {
  const root = resolve(folder);
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url, "http://127.0.0.1").pathname);
    let file = resolve(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) return response.writeHead(403).end();
    try {
      if (statSync(file).isDirectory()) file = join(file, "index.html");
      const size = statSync(file).size;
      response.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream", "Content-Length": size });
      createReadStream(file).pipe(response);
    } catch {
      response.writeHead(404).end();
    }
  });
  return new Promise((done) => server.listen(port, "127.0.0.1", () => done(server)));
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const server = await serve(process.argv[2] ?? "demo", Number(process.argv[3] ?? 8000));
  console.log(`http://127.0.0.1:${server.address().port}/`);
}
