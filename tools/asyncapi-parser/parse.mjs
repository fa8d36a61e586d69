// Parses AsyncAPI documents with the official parser (@asyncapi/parser) and prints one JSON summary
// line per document; exits 1 when the parser reports an error in any. The parser is installed in
// ASYNCAPI_PARSER_HOME (default .local/node) by `make asyncapi-parser`.
//   node tools/asyncapi-parser/parse.mjs docs/asyncapi.yaml [more.yaml ...]
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";

const home = resolve(process.env.ASYNCAPI_PARSER_HOME ?? ".local/node");
const require = createRequire(`${home}/`);
const { Parser } = require("@asyncapi/parser");

async function summarize(parser, path) {
  const { document, diagnostics } = await parser.parse(readFileSync(path, "utf8"), { source: resolve(path) });
  const errors = diagnostics
    .filter((d) => d.severity === 0)
    .map((d) => `${d.code}: ${d.message} at ${d.path.join(".")}`);
  const summary = { path, errors, warnings: diagnostics.filter((d) => d.severity === 1).length, parsed: !!document };
  if (document) {
    summary.version = document.version();
    summary.channels = document.channels().all().map((c) => c.address());
    summary.messages = document.components().messages().all().map((m) => ({
      id: m.id(),
      contentType: m.contentType(),
      headers: m.hasHeaders() ? Object.keys(m.headers().properties() ?? {}) : [],
      payloadOneOf: (m.payload()?.oneOf() ?? []).length,
    }));
  }
  return summary;
}

const parser = new Parser();
let failed = false;
for (const path of process.argv.slice(2)) {
  const summary = await summarize(parser, path);
  process.stdout.write(JSON.stringify(summary) + "\n");
  failed ||= !summary.parsed || summary.errors.length > 0;
}
process.exit(failed ? 1 : 0);
