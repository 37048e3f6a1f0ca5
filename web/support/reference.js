// The Python runtime's answers (scripts/web_reference.py), when EELBERT_WEB_REFERENCE names their folder.
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const REFERENCE_DIR = process.env.EELBERT_WEB_REFERENCE ?? null;
export const SKIP = REFERENCE_DIR ? false : "needs EELBERT_WEB_REFERENCE (make test-web writes Python's answers and sets it)";
export const reference = REFERENCE_DIR ? JSON.parse(readFileSync(join(REFERENCE_DIR, "reference.json"), "utf-8")) : null;
