/**
 * Contacts' keys on this device (PROTOCOL.md 8): pinned on first use, a change held as
 * pending until the user accepts it, the user's verified marks. The pins the core decides
 * with come from here. No DOM.
 *
 * @module
 */

import {
  PublicIdentity,
  fingerprint,
  formatSafetyNumber,
  parseNormalisedUsername,
  safetyNumber,
} from "../protocol/index.js";
import { b64decode, b64encode } from "../protocol/encoding.js";
import * as store from "./store.js";

/** @import { PrivateIdentity, PublicIdentityWire } from "../protocol/index.js" */
/** @import { Pin as CorePin } from "../core/messages.js" */
/** @import { Api } from "./api.js" */

/**
 * @typedef {object} Pin a contact's keys as pinned on this device (PROTOCOL.md 8)
 * @property {string} username
 * @property {PublicIdentityWire} identity the keys trusted for the contact
 * @property {boolean} verified the user compared the safety number
 * @property {PublicIdentityWire | null} pending keys the directory has published since, not
 *   accepted yet: sending stops until they are
 * @property {string} [accountKey] the v2 account key (b64, 32 bytes) a followed signed
 *   rotation moved to (PROTOCOL.md 15.11); absent: the pinned signing key is it
 */

/** The SPKI prefix of an Ed25519 public key (5.1). */
const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

/**
 * The identity a safety number is computed with: the pinned keys, with the signing key
 * replaced by the rotated account key if a rotation moved the pin (15.11).
 *
 * @param {string} name
 * @param {PublicIdentityWire} identity
 * @param {string | undefined} accountKey
 */
function safetyIdentity(name, identity, accountKey) {
  if (!accountKey) return PublicIdentity.fromWire(name, identity);
  const spki = new Uint8Array([...ED25519_SPKI_PREFIX, ...b64decode(accountKey)]);
  return PublicIdentity.fromWire(name, { ...identity, signing_key: b64encode(spki) });
}

/** Sending to a contact whose keys changed is refused until the user accepts the change. */
export class KeyChanged extends Error {
  /** @param {string} username whose keys changed */
  constructor(username) {
    super(`${username}'s keys have changed. Compare the safety number, then accept the new keys to send again.`);
    this.username = username;
  }
}

/**
 * @param {PublicIdentityWire} a
 * @param {PublicIdentityWire} b
 * @returns {boolean}
 */
function sameKeys(a, b) {
  return (
    a.signing_key === b.signing_key &&
    a.encryption_key === b.encryption_key &&
    a.encryption_key_signature === b.encryption_key_signature
  );
}

export class Trust {
  /**
   * @param {Pick<Api, "publicKeys">} api
   * @param {PrivateIdentity} me
   * @param {(username: string) => void} changed called when a pin changed
   */
  constructor(api, me, changed) {
    this.api = api;
    this.me = me;
    this.changed = changed;
    /** @type {Map<string, Pin>} */
    this.pins = new Map();
  }

  /** Load the pins; this device's own keys are pinned (and verified) for its user. */
  async load() {
    for (const pin of await store.allFor("pins", this.me.username)) this.pins.set(pin.username, pin);
    const mine = this.me.public.toWire();
    const pinned = this.pins.get(this.me.username);
    if (!pinned || !sameKeys(pinned.identity, mine)) {
      await this.save({ username: this.me.username, identity: mine, verified: true, pending: null });
    }
  }

  /**
   * What this device has pinned for a contact (read only).
   *
   * @param {string} name
   * @returns {Readonly<Pin> | undefined}
   */
  pin(name) {
    return this.pins.get(name);
  }

  /** @returns {string[]} every username with a pin here */
  pinnedNames() {
    return [...this.pins.keys()];
  }

  /** @param {Pin} pin */
  async save(pin) {
    this.pins.set(pin.username, pin);
    await store.put("pins", [this.me.username, pin.username], pin);
    this.changed(pin.username);
  }

  /**
   * The contact's current keys from the directory, checked; pinned on first use. A
   * difference from the pin is recorded as pending and raised as KeyChanged.
   *
   * @param {string} name
   * @returns {Promise<PublicIdentity>}
   */
  async trustedIdentity(name) {
    // Names come from the server too: an invalid one is refused before any request.
    parseNormalisedUsername(name);
    const data = await this.api.publicKeys(name);
    const identity = await PublicIdentity.fromWire(name, data).verified();
    const wire = identity.toWire();
    const pin = this.pins.get(name);
    if (!pin) {
      await this.save({ username: name, identity: wire, verified: false, pending: null });
      return identity;
    }
    if (!sameKeys(pin.identity, wire)) {
      if (!pin.pending || !sameKeys(pin.pending, wire)) await this.save({ ...pin, pending: wire });
      throw new KeyChanged(name);
    }
    if (pin.pending) await this.save({ ...pin, pending: null });
    return identity;
  }

  /**
   * The pinned keys, or the directory's (pinned now) if none are pinned.
   *
   * @param {string} name
   * @returns {Promise<PublicIdentity>}
   */
  async pinnedOrFetch(name) {
    if (name === this.me.username) return this.me.public;
    const pin = this.pins.get(name);
    if (pin) return PublicIdentity.fromWire(name, pin.identity);
    return this.trustedIdentity(name);
  }

  /**
   * The pins the core decides with (PROTOCOL.md 14.1, 14.3): for each name, the pinned
   * identity and any pending one. A name without a pin is pinned on first use (8.1) if
   * the directory has valid keys for it; otherwise it has no pin, which the core refuses.
   *
   * @param {Iterable<string>} names
   * @returns {Promise<Map<string, CorePin>>}
   */
  async corePins(names) {
    /** @type {Map<string, CorePin>} */
    const pins = new Map();
    for (const name of new Set(names)) {
      if (!this.pins.has(name)) {
        try {
          await this.trustedIdentity(name);
        } catch {
          // No valid keys for this name: no pin, and the core says so.
        }
      }
      const pin = this.pins.get(name);
      if (!pin) continue;
      try {
        pins.set(name, {
          identity: PublicIdentity.fromWire(name, pin.identity),
          pending: pin.pending ? PublicIdentity.fromWire(name, pin.pending) : null,
        });
      } catch {
        // A stored pin that no longer parses counts as none.
      }
    }
    return pins;
  }

  /**
   * The first of these members, me aside, whose keys changed and are not accepted yet.
   *
   * @param {Iterable<string>} names
   * @returns {string | null}
   */
  changedAmong(names) {
    for (const name of names) {
      if (name !== this.me.username && this.pins.get(name)?.pending) return name;
    }
    return null;
  }

  /**
   * Replace the pin with the new keys; the verified mark is cleared.
   *
   * @param {string} name
   */
  async acceptKeyChange(name) {
    const pin = this.pins.get(name);
    if (!pin?.pending) return;
    await this.save({ username: name, identity: pin.pending, verified: false, pending: null });
  }

  /**
   * A signed rotation of the contact's account key was followed (15.11): the verified mark
   * belonged to the old key and goes; the safety number is now computed with the new one.
   *
   * @param {string} name
   * @param {Uint8Array} key
   */
  async rotated(name, key) {
    const pin = this.pins.get(name);
    if (!pin) return;
    await this.save({ ...pin, verified: false, accountKey: b64encode(key) });
  }

  /**
   * @param {string} name
   * @param {boolean} verified
   */
  async setVerified(name, verified) {
    const pin = this.pins.get(name);
    if (!pin || pin.pending) return;
    await this.save({ ...pin, verified });
  }

  /**
   * What the contact panel shows.
   *
   * @param {string} name
   */
  async trustInfo(name) {
    const pin = this.pins.get(name);
    if (!pin) return null;
    const identity = safetyIdentity(name, pin.identity, pin.accountKey);
    const pending = pin.pending ? PublicIdentity.fromWire(name, pin.pending) : null;
    const mine = this.pins.get(this.me.username);
    const me = mine?.accountKey ? safetyIdentity(this.me.username, mine.identity, mine.accountKey) : this.me.public;
    return {
      verified: pin.verified,
      keyChanged: pending !== null,
      rotated: Boolean(pin.accountKey),
      signingFingerprint: await fingerprint(identity.signingKey),
      encryptionFingerprint: await fingerprint(identity.encryptionKey),
      safetyNumber: formatSafetyNumber(await safetyNumber(me, identity)),
      pendingSafetyNumber: pending ? formatSafetyNumber(await safetyNumber(me, pending)) : null,
    };
  }

  async ownFingerprints() {
    return {
      signing: await fingerprint(this.me.public.signingKey),
      encryption: await fingerprint(this.me.public.encryptionKey),
    };
  }
}
