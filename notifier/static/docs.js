// Renders /openapi.json as a page: every route, what it takes, what it answers. No CDN, no build.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
  children.flat().forEach((c) => node.append(c instanceof Node ? c : document.createTextNode(String(c))));
  return node;
}

function resolve(spec, schema) {
  if (schema && schema.$ref) return [schema.$ref.split("/").pop(), spec.components.schemas[schema.$ref.split("/").pop()]];
  return [null, schema];
}

function schemaBlock(spec, schema) {
  const [name, resolved] = resolve(spec, schema);
  const details = el("details", {}, el("summary", {}, name || "schema"));
  details.append(el("pre", {}, JSON.stringify(resolved, null, 2)));
  return details;
}

function operation(spec, path, method, op) {
  const section = el("section", { class: "op", id: op.operationId, "data-route": `${method.toUpperCase()} ${path}` });
  section.append(el("h2", {}, el("span", { class: `method ${method}` }, method.toUpperCase()), " ", el("code", {}, path)));
  section.append(el("p", {}, op.summary || ""));
  if (op.description) section.append(el("p", { class: "muted" }, op.description));
  if (op.security && op.security.length === 0) section.append(el("p", { class: "muted" }, "No key needed."));
  (op.parameters || []).forEach((p) => section.append(el("p", {}, "Parameter ", el("code", {}, p.name), ` (${p.in})`)));
  if (op.requestBody) {
    section.append(el("h3", {}, "Request body"));
    section.append(schemaBlock(spec, op.requestBody.content["application/json"].schema));
  }
  section.append(el("h3", {}, "Responses"));
  const list = el("ul");
  Object.entries(op.responses).forEach(([status, answer]) => {
    const content = answer.content || {};
    const [type] = Object.keys(content);
    const item = el("li", {}, el("strong", {}, status), " ", answer.description, type ? ` (${type})` : "");
    if (type && content[type].schema && content[type].schema.$ref) item.append(schemaBlock(spec, content[type].schema));
    list.append(item);
  });
  section.append(list);
  return section;
}

fetch("/openapi.json")
  .then((r) => r.json())
  .then((spec) => {
    document.title = `${spec.info.title} ${spec.info.version}`;
    const main = document.getElementById("api");
    main.replaceChildren(el("h1", {}, `${spec.info.title} `, el("small", {}, spec.info.version)), el("p", {}, spec.info.description));
    const nav = el("ul", { id: "routes" });
    Object.entries(spec.paths).forEach(([path, methods]) =>
      Object.entries(methods).forEach(([method, op]) => {
        nav.append(el("li", {}, el("a", { href: `#${op.operationId}` }, `${method.toUpperCase()} ${path}`)));
        main.append(operation(spec, path, method, op));
      })
    );
    main.insertBefore(nav, main.children[2]);
  })
  .catch((e) => { document.getElementById("api").textContent = `Could not load /openapi.json: ${e}`; });
