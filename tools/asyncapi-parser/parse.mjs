// Parses an AsyncAPI document with the official parser (@asyncapi/parser) and prints a JSON
// summary; exits 1 when the parser reports an error. The parser is installed in ASYNCAPI_PARSER_HOME
// (default .local/node) by `make asyncapi-parser`.
//   node tools/asyncapi-parser/parse.mjs docs/asyncapi.yaml
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";

const home = resolve(process.env.ASYNCAPI_PARSER_HOME ?? ".local/node");
const require = createRequire(`${home}/`);
const { Parser } = require("@asyncapi/parser");

const path = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(path, "utf8"), { source: resolve(path) });
const errors = diagnostics.filter((d) => d.severity === 0).map((d) => `${d.code}: ${d.message} at ${d.path.join(".")}`);
const summary = { errors, warnings: diagnostics.filter((d) => d.severity === 1).length };
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
process.stdout.write(JSON.stringify(summary) + "\n");
process.exit(document && errors.length === 0 ? 0 : 1);
