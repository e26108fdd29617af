// A browser stand-in for `node:test`, enough to run the suites in tests/js/ unchanged.
//
// describe/suite and test/it register a tree while a suite module is imported (Node also
// runs describe bodies at registration); runCollectedTests() then runs every test
// sequentially, in registration order, as Node does within one file, and returns one
// record per test with its suite path, status and error. Anything the suites do not use
// (hooks, `only`, subtests through the context, mocks) is absent or throws, so a suite
// that starts using it fails loudly here instead of running differently from Node.

/**
 * @typedef {{kind: "suite" | "test", name: string, fn: Function | undefined, skip: boolean,
 *   todo: boolean, children: Node[], parent: Node | null, collected?: Promise<unknown>,
 *   collectError?: unknown}} Node
 * @typedef {{path: string[], name: string, type: "test" | "suite",
 *   status: "pass" | "fail" | "skip" | "todo", error: string | null, site?: string | null,
 *   durationMs: number}} TestRecord
 */

/** @type {Node} */
const root = { kind: "suite", name: "", fn: undefined, skip: false, todo: false, children: [], parent: null };
let current = root;
let running = false;

/** The forms Node accepts: (name?, options?, fn?). */
function parseArguments(args) {
  let [name, options, fn] = args;
  if (typeof name === "function") [name, options, fn] = [name.name || "<anonymous>", {}, name];
  else if (typeof options === "function") [options, fn] = [{}, options];
  if (typeof name !== "string") name = String(name ?? "<anonymous>");
  options ??= {};
  for (const key of Object.keys(options)) {
    if (key !== "skip" && key !== "todo" && key !== "timeout") {
      throw new TypeError(`node:test browser shim: option ${key} is not supported`);
    }
  }
  return { name, fn, skip: Boolean(options.skip), todo: Boolean(options.todo) };
}

function register(kind, args, extra = {}) {
  if (running) throw new Error("node:test browser shim: tests must be registered at import time, not from a running test");
  const parsed = { ...parseArguments(args), ...extra };
  /** @type {Node} */
  const node = { kind, ...parsed, children: [], parent: current };
  current.children.push(node);
  if (kind === "suite" && node.fn !== undefined) {
    current = node;
    try {
      const result = node.fn.call(undefined);
      // Registration after an `await` inside an async describe body would escape this
      // stack; the suites do not do that, so only wait for the body to settle.
      if (result && typeof result.then === "function") node.collected = Promise.resolve(result);
    } catch (error) {
      node.collectError = error;
    } finally {
      current = node.parent;
    }
  }
  return Promise.resolve();
}

export function describe(...args) {
  return register("suite", args);
}
describe.skip = (...args) => register("suite", args, { skip: true });
describe.todo = (...args) => register("suite", args, { todo: true });
export const suite = describe;

export function test(...args) {
  return register("test", args);
}
test.skip = (...args) => register("test", args, { skip: true });
test.todo = (...args) => register("test", args, { todo: true });
export const it = test;

/** What a test function receives as `t`: the parts that need no runner support. */
function context(node) {
  return {
    name: node.name,
    signal: new AbortController().signal,
    diagnostic() {},
    test() {
      throw new Error("node:test browser shim: subtests through the test context are not supported");
    },
  };
}

/** A readable one-line-or-so account of an error, for the pytest assertion message. */
export function describeError(error) {
  if (!(error instanceof Error)) return `thrown non-Error: ${String(error)}`;
  let text = `${error.name}: ${error.message}`;
  if (error.name === "AssertionError" && error.generatedMessage === false && "actual" in error) {
    text += ` [actual ${error.inspectedActual}, expected ${error.inspectedExpected}]`;
  }
  if (error.cause !== undefined) text += ` (cause: ${error.cause instanceof Error ? `${error.cause.name}: ${error.cause.message}` : String(error.cause)})`;
  return text;
}

/**
 * Where an error was thrown, as "path:line" under the server root: the first stack frame
 * outside this page and its shims (the runner's own frames say nothing).
 */
function siteOf(error) {
  for (const [, path, line] of String(error?.stack ?? "").matchAll(/https?:\/\/[^/\s]+\/([^\s?):]+)(?:\?[^\s):]*)?:(\d+):\d+/g)) {
    if (!path.startsWith("tests/browser/")) return `${path}:${line}`;
  }
  return null;
}

/** Set before each test so that a hung run can say where it hung. */
export const progress = { current: null };

async function runNode(node, path, records, inheritedSkip) {
  const skip = inheritedSkip || node.skip;
  if (node.kind === "test") {
    const record = { path, name: node.name, type: "test", status: "pass", error: null, durationMs: 0 };
    records.push(record);
    if (skip) {
      record.status = "skip";
      return;
    }
    progress.current = [...path, node.name].join(" > ");
    const started = performance.now();
    try {
      if (typeof node.fn !== "function") throw new TypeError("test without a function");
      if (node.fn.length > 1) throw new Error("node:test browser shim: done callbacks are not supported");
      await node.fn.call(undefined, context(node));
      if (node.todo) record.status = "todo";
    } catch (error) {
      record.status = node.todo ? "todo" : "fail";
      record.error = describeError(error);
      record.site = siteOf(error);
    }
    record.durationMs = performance.now() - started;
    return;
  }
  const childPath = node === root ? path : [...path, node.name];
  let suiteError = node.collectError;
  if (suiteError === undefined && node.collected !== undefined) {
    await node.collected.catch((error) => {
      suiteError = error;
    });
  }
  if (suiteError !== undefined) {
    records.push({ path, name: node.name, type: "suite", status: "fail", error: describeError(suiteError), durationMs: 0 });
  }
  for (const child of node.children) await runNode(child, childPath, records, skip);
}

/**
 * Not part of node:test: the test page calls this once, after importing a suite module.
 *
 * @returns {Promise<TestRecord[]>}
 */
export async function runCollectedTests() {
  if (running) throw new Error("runCollectedTests() called twice");
  running = true;
  const records = [];
  await runNode(root, [], records, false);
  progress.current = null;
  return records;
}
