// A browser stand-in for `node:assert/strict`: the functions tests/js/ uses (equal,
// notEqual, ok, deepEqual, match, doesNotMatch, throws, rejects) and their strict
// aliases, with Node's strict semantics. Comparisons are Object.is; deepEqual compares
// prototypes, own enumerable keys (symbols too), array holes, typed arrays and
// ArrayBuffers byte for byte, Maps and Sets by deep membership, Dates, RegExps, Errors
// and boxed primitives, and survives cycles. throws/rejects take a RegExp (matched
// against String(error)), an Error class (instanceof) or a validation function that
// must return true, as Node's do. Anything else a suite might call is absent, so it
// fails loudly rather than passing vacuously.

/** A short, Node-flavoured rendering of a value for failure messages. */
export function inspect(value, depth = 0) {
  const text = render(value, depth);
  return text.length > 600 ? `${text.slice(0, 600)}...` : text;
}

function render(value, depth) {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number") return Object.is(value, -0) ? "-0" : String(value);
  if (typeof value === "function") return `[Function: ${value.name || "(anonymous)"}]`;
  if (typeof value !== "object" || value === null) return String(value);
  if (depth > 3) return "[Object]";
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const items = Array.from(value.slice(0, 48), (item) => render(item, depth + 1));
    return `${value.constructor.name}(${value.length}) [${items.join(", ")}${value.length > 48 ? ", ..." : ""}]`;
  }
  if (value instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${value.byteLength} }`;
  if (value instanceof Error) return `[${value.name}: ${value.message}]`;
  if (Array.isArray(value)) {
    const items = value.slice(0, 30).map((item) => render(item, depth + 1));
    return `[${items.join(", ")}${value.length > 30 ? ", ..." : ""}]`;
  }
  if (value instanceof Map) {
    const items = [...value].slice(0, 30).map(([key, item]) => `${render(key, depth + 1)} => ${render(item, depth + 1)}`);
    return `Map(${value.size}) {${items.join(", ")}}`;
  }
  if (value instanceof Set) return `Set(${value.size}) {${[...value].slice(0, 30).map((item) => render(item, depth + 1)).join(", ")}}`;
  const name = Object.getPrototypeOf(value) === Object.prototype ? "" : `${value.constructor?.name ?? "[null prototype]"} `;
  const entries = ownKeys(value).slice(0, 30).map((key) => `${String(key)}: ${render(value[key], depth + 1)}`);
  return `${name}{${entries.join(", ")}}`;
}

export class AssertionError extends Error {
  constructor({ message, generatedMessage, actual, expected, operator }) {
    super(message);
    this.name = "AssertionError";
    this.code = "ERR_ASSERTION";
    this.generatedMessage = generatedMessage;
    this.actual = actual;
    this.expected = expected;
    this.operator = operator;
    // Kept for the test page's report when a custom message replaces the generated one.
    this.inspectedActual = inspect(actual);
    this.inspectedExpected = inspect(expected);
  }
}

function fail(message, generated, actual, expected, operator) {
  if (message instanceof Error) throw message;
  const custom = message !== undefined;
  throw new AssertionError({ message: custom ? message : generated, generatedMessage: !custom, actual, expected, operator });
}

// --- deep strict equality -----------------------------------------------------------

/** Own enumerable string keys (minus array/typed-array indices) and enumerable symbols. */
function ownKeys(value, skipIndices = false) {
  const keys = Object.keys(value).filter((key) => !(skipIndices && /^(0|[1-9][0-9]*)$/.test(key)));
  for (const symbol of Object.getOwnPropertySymbols(value)) {
    if (Object.prototype.propertyIsEnumerable.call(value, symbol)) keys.push(symbol);
  }
  return keys;
}

function bytesOf(value) {
  return ArrayBuffer.isView(value)
    ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
    : new Uint8Array(value);
}

function sameBytes(left, right) {
  const [a, b] = [bytesOf(left), bytesOf(right)];
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index += 1) if (a[index] !== b[index]) return false;
  return true;
}

const BOXED = [Number, String, Boolean, BigInt, Symbol];

/** Node's isDeepStrictEqual, for the value kinds that can occur in these suites and a few more. */
export function isDeepStrictEqual(a, b, memo = new Map()) {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const tag = Object.prototype.toString.call(a);
  if (tag !== Object.prototype.toString.call(b)) return false;
  // A pair already under comparison is assumed equal (cycles).
  let partners = memo.get(a);
  if (partners?.has(b)) return true;
  if (partners === undefined) memo.set(a, (partners = new Set()));
  partners.add(b);

  let skipIndices = false;
  if (Array.isArray(a)) {
    if (a.length !== b.length) return false;
    for (let index = 0; index < a.length; index += 1) {
      const [hasA, hasB] = [Object.hasOwn(a, index), Object.hasOwn(b, index)];
      if (hasA !== hasB) return false; // a hole is not undefined
      if (hasA && !isDeepStrictEqual(a[index], b[index], memo)) return false;
    }
    skipIndices = true;
  } else if (ArrayBuffer.isView(a)) {
    if (!sameBytes(a, b)) return false;
    skipIndices = true;
  } else if (a instanceof ArrayBuffer || (typeof SharedArrayBuffer === "function" && a instanceof SharedArrayBuffer)) {
    if (!sameBytes(a, b)) return false;
  } else if (a instanceof Date) {
    if (!Object.is(a.getTime(), b.getTime())) return false;
  } else if (a instanceof RegExp) {
    if (a.source !== b.source || a.flags !== b.flags || a.lastIndex !== b.lastIndex) return false;
  } else if (a instanceof Error) {
    if (a.name !== b.name || a.message !== b.message) return false;
  } else if (a instanceof Map) {
    if (a.size !== b.size) return false;
    const unmatched = [...b.keys()].filter((key) => typeof key === "object" && key !== null);
    for (const [key, value] of a) {
      if (typeof key !== "object" || key === null || b.has(key)) {
        if (!b.has(key) || !isDeepStrictEqual(value, b.get(key), memo)) return false;
        continue;
      }
      const index = unmatched.findIndex((other) => isDeepStrictEqual(key, other, memo) && isDeepStrictEqual(value, b.get(other), memo));
      if (index < 0) return false;
      unmatched.splice(index, 1);
    }
  } else if (a instanceof Set) {
    if (a.size !== b.size) return false;
    const unmatched = [...b].filter((item) => typeof item === "object" && item !== null && !a.has(item));
    for (const item of a) {
      if (b.has(item)) continue;
      if (typeof item !== "object" || item === null) return false;
      const index = unmatched.findIndex((other) => isDeepStrictEqual(item, other, memo));
      if (index < 0) return false;
      unmatched.splice(index, 1);
    }
  } else {
    for (const Box of BOXED) {
      if (a instanceof Box && !Object.is(Box.prototype.valueOf.call(a), Box.prototype.valueOf.call(b))) return false;
    }
  }
  const keysA = ownKeys(a, skipIndices);
  const keysB = ownKeys(b, skipIndices);
  if (keysA.length !== keysB.length) return false;
  for (const key of keysA) {
    if (!Object.prototype.propertyIsEnumerable.call(b, key)) return false;
    if (!isDeepStrictEqual(a[key], b[key], memo)) return false;
  }
  return true;
}

// --- the assertions -----------------------------------------------------------------

export function ok(...args) {
  if (args.length === 0) fail(undefined, "No value argument passed to `assert.ok()`", undefined, true, "==");
  const [value, message] = args;
  if (!value) fail(message, `The expression evaluated to a falsy value: ${inspect(value)}`, value, true, "==");
}

export function equal(actual, expected, message) {
  if (!Object.is(actual, expected)) {
    fail(message, `Expected values to be strictly equal:\n\n${inspect(actual)} !== ${inspect(expected)}\n`, actual, expected, "strictEqual");
  }
}

export function notEqual(actual, expected, message) {
  if (Object.is(actual, expected)) {
    fail(message, `Expected "actual" to be strictly unequal to: ${inspect(expected)}`, actual, expected, "notStrictEqual");
  }
}

export function deepEqual(actual, expected, message) {
  if (!isDeepStrictEqual(actual, expected)) {
    fail(
      message,
      `Expected values to be strictly deep-equal:\nactual:   ${inspect(actual)}\nexpected: ${inspect(expected)}`,
      actual,
      expected,
      "deepStrictEqual",
    );
  }
}

function checkRegExp(regexp, name) {
  if (!(regexp instanceof RegExp)) throw new TypeError(`The "regexp" argument must be an instance of RegExp (assert.${name})`);
}

export function match(string, regexp, message) {
  checkRegExp(regexp, "match");
  if (typeof string !== "string") {
    fail(message, `The "string" argument must be of type string. Received ${inspect(string)}`, string, regexp, "match");
  }
  if (RegExp.prototype.exec.call(regexp, string) === null) {
    fail(message, `The input did not match the regular expression ${regexp}. Input:\n\n${inspect(string)}\n`, string, regexp, "match");
  }
}

export function doesNotMatch(string, regexp, message) {
  checkRegExp(regexp, "doesNotMatch");
  if (typeof string !== "string") {
    fail(message, `The "string" argument must be of type string. Received ${inspect(string)}`, string, regexp, "doesNotMatch");
  }
  if (RegExp.prototype.exec.call(regexp, string) !== null) {
    fail(message, `The input was expected to not match the regular expression ${regexp}. Input:\n\n${inspect(string)}\n`, string, regexp, "doesNotMatch");
  }
}

/** Node's expectedException(): is `actual` the error that `expected` describes? */
function checkError(actual, expected, message, operator) {
  if (expected instanceof RegExp) {
    const text = String(actual);
    if (RegExp.prototype.exec.call(expected, text) === null) {
      fail(message, `The input did not match the regular expression ${expected}. Input:\n\n${inspect(text)}\n`, actual, expected, operator);
    }
    return;
  }
  if (typeof expected !== "function") {
    throw new TypeError(`node:assert browser shim: ${operator}() with a ${typeof expected} is not supported`);
  }
  if (expected.prototype !== undefined && actual instanceof expected) return;
  if (expected === Error || Object.prototype.isPrototypeOf.call(Error, expected)) {
    const received = actual instanceof Error ? `${actual.name}: ${actual.message}` : inspect(actual);
    fail(message, `The error is expected to be an instance of "${expected.name}". Received ${received}`, actual, expected, operator);
  }
  const result = expected.call({}, actual);
  if (result !== true) {
    const caught = actual instanceof Error ? `\n\nCaught error:\n\n${actual}` : "";
    const name = expected.name ? `"${expected.name}" ` : "";
    fail(message, `The ${name}validation function is expected to return "true". Received ${inspect(result)}${caught}`, actual, expected, operator);
  }
}

export function throws(fn, expected, message) {
  if (typeof fn !== "function") throw new TypeError('The "fn" argument must be of type function');
  if (typeof expected === "string") [expected, message] = [undefined, expected];
  try {
    fn();
  } catch (error) {
    if (expected !== undefined) checkError(error, expected, message, "throws");
    return;
  }
  fail(message, `Missing expected exception${expected?.name ? ` (${expected.name})` : ""}.`, undefined, expected, "throws");
}

export async function rejects(promiseOrFn, expected, message) {
  if (typeof expected === "string") [expected, message] = [undefined, expected];
  let promise = promiseOrFn;
  if (typeof promiseOrFn === "function") {
    promise = promiseOrFn();
    if (promise === null || typeof promise?.then !== "function") {
      throw new TypeError(`Expected instance of Promise to be returned from the "promiseFn" function but got ${inspect(promise)}.`);
    }
  } else if (promiseOrFn === null || typeof promiseOrFn?.then !== "function") {
    throw new TypeError('The "promiseFn" argument must be of type function or an instance of Promise');
  }
  try {
    await promise;
  } catch (error) {
    if (expected !== undefined) checkError(error, expected, message, "rejects");
    return;
  }
  fail(message, `Missing expected rejection${expected?.name ? ` (${expected.name})` : ""}.`, undefined, expected, "rejects");
}

function assert(...args) {
  ok(...args);
}
Object.assign(assert, {
  AssertionError,
  ok,
  equal,
  notEqual,
  deepEqual,
  match,
  doesNotMatch,
  throws,
  rejects,
  strictEqual: equal,
  notStrictEqual: notEqual,
  deepStrictEqual: deepEqual,
});
assert.strict = assert;

export { equal as strictEqual, notEqual as notStrictEqual, deepEqual as deepStrictEqual };
export default assert;
