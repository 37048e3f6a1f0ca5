// The page: sends the sentence to the worker, shows the label, the probabilities and the bytes downloaded.
const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
const $ = (id) => document.getElementById(id);
let next = 0;

const kilobytes = (bytes) => `${(bytes / 1000).toLocaleString("en", { maximumFractionDigits: 1 })} KB`;

worker.onmessage = ({ data }) => {
  if (data.type === "ready") {
    $("status").textContent = `model ready in ${data.loadMs.toFixed(0)} ms`;
    $("classify").disabled = false;
    const page = performance.getEntriesByType("resource")
      .filter((entry) => /\/(vendor|lib)\/|worker\.js|app\.js/.test(entry.name))
      .map((entry) => ({ name: entry.name.split("/").slice(-2).join("/"), bytes: entry.decodedBodySize }));
    const runtime = [...page, ...data.runtime].filter((f, i, all) => all.findIndex((g) => g.name.endsWith(f.name)) === i);
    const runtimeBytes = runtime.reduce((sum, f) => sum + f.bytes, 0);
    const rows = [...data.files.map((f) => [`model: ${f.name}`, f.bytes]), ["model total (graph + vocabulary + config)", data.modelBytes],
      [`runtime: onnxruntime-web WASM and page code, ${runtime.length} files (cached after the first visit)`, runtimeBytes]];
    $("downloads").tBodies[0].innerHTML = rows.map(([name, bytes]) => `<tr><td>${name}</td><td>${kilobytes(bytes)}</td></tr>`).join("");
    $("downloads").hidden = false;
    document.body.dataset.state = "ready";
  } else if (data.type === "prediction") {
    $("label").textContent = data.label;
    $("bars").innerHTML = Object.entries(data.probabilities)
      .map(([label, p]) => `<div class="bar"><span>${label}</span><div style="width:${(p * 20).toFixed(2)}rem"></div><span>${(100 * p).toFixed(1)}%</span></div>`)
      .join("");
    $("timing").textContent = `${data.ms.toFixed(1)} ms in the worker`;
    $("result").hidden = false;
    $("result").dataset.id = String(data.id);
    document.body.dataset.state = "predicted";
  } else if (data.type === "error") {
    $("status").textContent = `error: ${data.message}`;
    document.body.dataset.state = "error";
  }
};

$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  document.body.dataset.state = "busy";
  worker.postMessage({ id: ++next, text: $("text").value });
});
