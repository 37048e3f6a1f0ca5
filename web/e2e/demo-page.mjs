// The demo page in a real headless Chromium (Debian's, driven by playwright-core: no browser download):
// serve web/demo/ on 127.0.0.1, type a sentence, read the label, save a screenshot.
//   node e2e/demo-page.mjs SCREENSHOT.png ["a sentence"]     (prints one JSON line; exit 1 on failure)
// DEMO_DIR names a built demo folder other than web/demo/ (scripts/build-demo.mjs FOLDER).
// Every request must stay on 127.0.0.1: one to anywhere else fails the run (no CDN).
import { chromium } from "playwright-core";

import { serve } from "../scripts/serve.mjs";

const [screenshot, sentence = "a gorgeous, witty, seductive movie."] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const server = await serve(process.env.DEMO_DIR ?? new URL("../demo/", import.meta.url).pathname);
const origin = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({
  executablePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const outside = [];
const consoleErrors = [];
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 720 } });
  page.on("request", (request) => { if (!request.url().startsWith(origin)) outside.push(request.url()); });
  page.on("console", (message) => { if (message.type() === "error") consoleErrors.push(message.text()); });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
  await page.goto(`${origin}/`);
  await page.waitForSelector("body[data-state=ready]", { timeout: 60000 });
  await page.fill("#text", sentence);
  await page.click("#classify");
  await page.waitForSelector("body[data-state=predicted]", { timeout: 30000 });
  const result = await page.evaluate(() => ({
    label: document.getElementById("label").textContent,
    probabilities: [...document.querySelectorAll(".bar")].map((bar) => bar.textContent),
    downloads: [...document.querySelectorAll("#downloads tr")].map((row) => row.textContent),
    status: document.getElementById("status").textContent,
  }));
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ ...result, sentence, outside, consoleErrors }));
  if (outside.length || consoleErrors.length) process.exitCode = 1;
} finally {
  await browser.close();
  server.close();
}
