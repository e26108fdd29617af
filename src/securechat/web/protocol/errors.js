/**
 * Errors raised by the protocol layer (PROTOCOL.md 1.1), mirroring
 * `securechat/protocol/errors.py`:
 *
 *     ProtocolError
 *     ├── MalformedInput        bytes or fields that do not parse (strict base64, bad ids, sizes)
 *     ├── UnsupportedVersion    a version other than the one this code speaks
 *     ├── WeakParameters        KDF or key parameters below the protocol's floor
 *     └── VerificationFailed    any cryptographic check failed (deliberately opaque)
 *
 * Each class carries the stable `kind` string of PROTOCOL.md 1.1, which is also the
 * `expected` value of the test vectors. `VerificationFailed` never says which check
 * failed and carries no `cause`: a signature, an AEAD tag, an OAEP unwrap and a header
 * mismatch all look the same to a caller, and so to an attacker.
 *
 * Errors that are programming mistakes (a wrong argument type, an HKDF length the
 * protocol never asks for) are plain `TypeError`/`RangeError`s, outside this tree, as
 * the Python code lets `ValueError`/`TypeError` through.
 *
 * @module
 */

/** @typedef {"malformed" | "unsupported_version" | "weak_parameters" | "unverifiable"} ErrorKind */

/** Base class of every error the protocol layer raises. */
export class ProtocolError extends Error {
  /**
   * @param {string} [message]
   */
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }

  /** @returns {ErrorKind | "protocol_error"} */
  get kind() {
    return "protocol_error";
  }
}

/** Input does not follow the wire format. */
export class MalformedInput extends ProtocolError {
  /** @returns {ErrorKind} */
  get kind() {
    return "malformed";
  }
}

/** A version this implementation does not speak; never downgraded. */
export class UnsupportedVersion extends ProtocolError {
  /** @returns {ErrorKind} */
  get kind() {
    return "unsupported_version";
  }
}

/** Parameters below the protocol's minimum (iterations, key size, exponent). */
export class WeakParameters extends ProtocolError {
  /** @returns {ErrorKind} */
  get kind() {
    return "weak_parameters";
  }
}

/** A signature, MAC, AEAD tag, key unwrap, padding, payload or context check failed. */
export class VerificationFailed extends ProtocolError {
  constructor() {
    // The message is fixed on purpose: callers cannot pass detail that would tell an
    // attacker which check failed.
    super("verification failed");
  }

  /** @returns {ErrorKind} */
  get kind() {
    return "unverifiable";
  }
}
