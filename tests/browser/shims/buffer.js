// The part of Node's global `Buffer` that tests/js/ uses, for the test page to install
// as a global: Buffer.from(bytes | base64 | base64url text) and toString("base64" |
// "base64url"). The suites use it only as an independent base64 reference and to edit
// JWK members; the protocol modules themselves must not use Buffer, which
// protocol_units checks in their source. Implemented over atob/btoa, not over the
// protocol's own base64 code, so the comparison stays independent.

const ENCODINGS = new Set(["base64", "base64url"]);

function copy(bytes) {
  const buffer = new Buffer(bytes.length);
  buffer.set(bytes);
  return buffer;
}

export class Buffer extends Uint8Array {
  static from(value, encoding) {
    if (typeof value === "string") {
      if (!ENCODINGS.has(encoding)) throw new TypeError(`Buffer browser shim: encoding ${encoding} is not supported`);
      // Node's decoder takes either alphabet and optional padding.
      const standard = value.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
      const binary = atob(standard + "=".repeat((4 - (standard.length % 4)) % 4));
      return copy(Uint8Array.from(binary, (char) => char.charCodeAt(0)));
    }
    if (value instanceof ArrayBuffer) return copy(new Uint8Array(value));
    if (ArrayBuffer.isView(value)) return copy(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    throw new TypeError("Buffer browser shim: Buffer.from() takes a string, an ArrayBuffer or a typed array");
  }

  toString(encoding) {
    if (!ENCODINGS.has(encoding)) throw new TypeError(`Buffer browser shim: encoding ${encoding} is not supported`);
    let binary = "";
    for (const byte of this) binary += String.fromCharCode(byte);
    const text = btoa(binary);
    return encoding === "base64" ? text : text.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
}
