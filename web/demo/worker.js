// The model lives here, off the page's thread: the export's files are fetched from ./model/, onnxruntime-web's
// WASM from ./vendor/ (nothing from a CDN), and each sentence comes back as a label with probabilities.
import * as ort from "./vendor/ort.wasm.min.mjs";
import { ExportedModel } from "./lib/model.js";

ort.env.wasm.wasmPaths = new URL("./vendor/", import.meta.url).href;
ort.env.wasm.numThreads = 1; // threads need cross-origin isolation headers a plain static server does not send

const files = [];
async function readModelFile(name) {
  const response = await fetch(new URL(`./model/${name}`, import.meta.url));
  if (!response.ok) throw new Error(`model/${name}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  files.push({ name, bytes: bytes.byteLength });
  return bytes;
}

const started = performance.now();
const ready = ExportedModel.load(readModelFile, ort).then((model) => {
  const runtime = performance.getEntriesByType("resource")
    .filter((entry) => entry.name.includes("/vendor/"))
    .map((entry) => ({ name: entry.name.split("/").pop(), bytes: entry.decodedBodySize }));
  postMessage({ type: "ready", loadMs: performance.now() - started, files, modelBytes: model.bytesRead, runtime });
  return model;
});
ready.catch((error) => postMessage({ type: "error", message: String(error.message ?? error) }));

onmessage = async ({ data }) => {
  try {
    const model = await ready;
    const t0 = performance.now();
    const [prediction] = await model.predict([data.text]);
    postMessage({ type: "prediction", id: data.id, ...prediction, ms: performance.now() - t0 });
  } catch (error) {
    postMessage({ type: "error", message: String(error.message ?? error) });
  }
};
