// Makes web/demo/ (or the folder given, which gets the page's own files too) a self-contained static folder:
// the runtime's modules into lib/, onnxruntime-web's WASM build into vendor/. The model goes into model/ from
// Python: `eelbert export uno-eelbert-sentiment -o web/demo/model --quantize int8` (make web-demo does both).
//   node scripts/build-demo.mjs [FOLDER]
import { cpSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");
const demo = resolve(process.argv[2] ?? join(web, "demo"));
if (demo !== join(web, "demo")) {
  for (const name of ["index.html", "app.js", "worker.js"]) cpSync(join(web, "demo", name), join(demo, name));
}
const ortDist = join(web, "node_modules", "onnxruntime-web", "dist");
mkdirSync(join(demo, "lib"), { recursive: true });
mkdirSync(join(demo, "vendor"), { recursive: true });
for (const name of ["hash.js", "wordpiece.js", "model.js"]) cpSync(join(web, "src", name), join(demo, "lib", name));
for (const name of ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"]) {
  cpSync(join(ortDist, name), join(demo, "vendor", name));
}
console.log(`${demo}: lib/ and vendor/ written; the model goes in model/`);
