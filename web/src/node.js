// Node's door: an export directory on disk, onnxruntime-web's WASM backend (the same engine as in a page).
import { readFile } from "node:fs/promises";
import { join } from "node:path";

import * as ort from "onnxruntime-web";

import { ExportedModel } from "./model.js";

export async function loadExportDirectory(directory) {
  ort.env.wasm.numThreads = 1;
  return ExportedModel.load(async (name) => new Uint8Array(await readFile(join(directory, name))), ort);
}
