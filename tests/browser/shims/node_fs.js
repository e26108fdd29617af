// A browser stand-in for `node:fs`: readFileSync and readdirSync, synchronous like
// Node's, over a synchronous XMLHttpRequest to the test's HTTP server.
//
// The suites name files as `new URL(name, import.meta.url)`; in the browser
// import.meta.url is the http:// URL of the module, so those URLs point at the same
// files through the server. A relative string path is taken relative to the server
// root, which is the repository root, as Node takes it relative to the working
// directory the suites run from. Directory listings come from the server as a JSON
// array of names (the test's handler does this), sorted as Node's readdirSync is.

function locate(path) {
  if (path instanceof URL) return path;
  if (typeof path === "string" && !path.startsWith("/") && !/^[a-z]+:/i.test(path)) return new URL(path, `${location.origin}/`);
  throw new TypeError(`node:fs browser shim: cannot map ${String(path)} to the test server`);
}

function get(url) {
  const request = new XMLHttpRequest();
  request.open("GET", url.href, false);
  // Bytes exactly as stored: each byte arrives as one char code in 0x00..0xff (x-user-defined).
  request.overrideMimeType("text/plain; charset=x-user-defined");
  request.send();
  if (request.status !== 200) {
    const error = new Error(`ENOENT: no such file or directory (HTTP ${request.status}), '${url.href}'`);
    error.code = "ENOENT";
    throw error;
  }
  const text = request.responseText;
  const bytes = new Uint8Array(text.length);
  for (let index = 0; index < text.length; index += 1) bytes[index] = text.charCodeAt(index) & 0xff;
  return bytes;
}

function encodingOf(options) {
  const encoding = typeof options === "string" ? options : options?.encoding;
  if (encoding === undefined || encoding === null) return null;
  if (encoding === "utf8" || encoding === "utf-8") return "utf8";
  throw new TypeError(`node:fs browser shim: encoding ${encoding} is not supported`);
}

export function readFileSync(path, options) {
  const encoding = encodingOf(options);
  const bytes = get(locate(path));
  // Node keeps a BOM and replaces malformed sequences with U+FFFD; so does this decoder.
  return encoding === "utf8" ? new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes) : bytes;
}

export function readdirSync(path, options) {
  if (options !== undefined) throw new TypeError("node:fs browser shim: readdirSync options are not supported");
  const url = new URL(locate(path));
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  const names = JSON.parse(new TextDecoder().decode(get(url)));
  if (!Array.isArray(names)) throw new Error(`node:fs browser shim: ${url.href} is not a directory listing`);
  return names;
}
