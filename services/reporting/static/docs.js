// Offline API documentation: renders /openapi.json without any external asset.
"use strict";

(async function () {
  const spec = await (await fetch("/openapi.json")).json();
  const h = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  };
  const pretty = (value) => h("pre", {}, JSON.stringify(value, null, 2));
  const resolve = (schema) => {
    if (schema && schema.$ref) return spec.components.schemas[schema.$ref.split("/").pop()];
    return schema || {};
  };
  const typeOf = (schema) => {
    if (!schema) return "";
    if (schema.$ref) return schema.$ref.split("/").pop();
    if (schema.anyOf) return schema.anyOf.map(typeOf).join(" | ");
    if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
    return (schema.type || "") + (schema.format ? ` (${schema.format})` : "");
  };

  document.getElementById("title").textContent = `${spec.info.title} ${spec.info.version}`;
  document.getElementById("description").textContent = spec.info.description || "";
  const toc = document.getElementById("toc");
  const main = document.getElementById("operations");
  main.replaceChildren();

  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const id = `${method}-${path}`.replace(/[^a-z0-9]+/gi, "-");
      toc.append(h("a", { href: "#" + id }, `${method.toUpperCase()} ${path} — ${op.summary || ""}`));
      const box = h("section", { class: "op", id });
      box.append(h("h2", {}, h("span", { class: "method" }, method.toUpperCase()), path));
      if (op.summary) box.append(h("p", {}, h("b", {}, op.summary)));
      if (op.description) box.append(h("p", {}, op.description));
      const inputs = {};
      if (op.parameters && op.parameters.length) {
        const table = h("table", {}, h("tr", {}, ...["name", "in", "required", "type", "description", "try"].map((t) => h("th", {}, t))));
        for (const p of op.parameters) {
          const input = h("input", { placeholder: p.example !== undefined ? String(p.example) : "" });
          if (p.example !== undefined) input.value = p.example;
          inputs[p.name] = [p, input];
          table.append(h("tr", {}, h("td", {}, h("code", {}, p.name)), h("td", {}, p.in), h("td", {}, p.required ? "yes" : "no"),
            h("td", {}, typeOf(p.schema)), h("td", {}, p.description || (p.schema && p.schema.description) || ""), h("td", { class: "try" }, input)));
        }
        box.append(table);
      }
      const responses = h("div", {});
      for (const [status, r] of Object.entries(op.responses || {})) {
        const det = h("details", {}, h("summary", {}, `${status} — ${r.description || ""}`));
        for (const [type, media] of Object.entries(r.content || {})) {
          det.append(h("div", {}, h("code", {}, type), media.schema ? ` schema: ${typeOf(media.schema)}` : ""));
          if (media.example !== undefined) det.append(pretty(media.example));
          for (const [name, ex] of Object.entries(media.examples || {})) det.append(h("div", {}, name + ":"), pretty(ex.value));
        }
        for (const [name, header] of Object.entries(r.headers || {})) det.append(h("div", {}, h("code", {}, name), ": " + (header.description || "")));
        responses.append(det);
      }
      box.append(responses);
      if (method === "get" && path !== "/v1/stream") {
        const out = h("pre", {}, "");
        const button = h("button", {}, "Try it");
        button.addEventListener("click", async () => {
          let url = path;
          const query = new URLSearchParams();
          const headers = {};
          for (const [name, [p, input]] of Object.entries(inputs)) {
            if (!input.value) continue;
            if (p.in === "query") query.set(name, input.value);
            else if (p.in === "header") headers[name] = input.value;
          }
          const token = document.getElementById("token").value;
          if (token && path.startsWith("/v1/")) headers.Authorization = "Bearer " + token;
          const response = await fetch(url + (query.toString() ? "?" + query : ""), { headers });
          const type = response.headers.get("content-type") || "";
          const body = type.includes("json") ? JSON.stringify(await response.json(), null, 2)
            : type.includes("text") ? (await response.text()).slice(0, 4000) : `(${type}, ${(await response.blob()).size} bytes)`;
          out.textContent = `HTTP ${response.status}  ETag: ${response.headers.get("etag") || "-"}\n\n${body}`;
        });
        box.append(h("div", {}, button), out);
      }
      main.append(box);
    }
  }
  const schemas = document.getElementById("schemas");
  schemas.append(h("h2", {}, "Schemas"));
  for (const [name, schema] of Object.entries(spec.components ? spec.components.schemas : {})) {
    const det = h("details", { id: "schema-" + name }, h("summary", {}, name));
    const rows = Object.entries(schema.properties || {}).map(([prop, s]) =>
      h("tr", {}, h("td", {}, h("code", {}, prop)), h("td", {}, typeOf(s)), h("td", {}, s.description || resolve(s).description || "")));
    if (rows.length) det.append(h("table", {}, h("tr", {}, h("th", {}, "property"), h("th", {}, "type"), h("th", {}, "description")), ...rows));
    else det.append(pretty(schema));
    schemas.append(det);
  }
})();
