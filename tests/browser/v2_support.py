"""What the v2 browser tests share: switching v2 on, watching v2 posts, reading the
profile's stored v2 records, and two people (alice and bob) in a v2 conversation."""

from __future__ import annotations

import base64
import re

from playwright.sync_api import Page, expect

from .conftest import Person

# A fresh account has no device list (204) until its first device publishes
# one; a send across a list change is answered 409 device_list_stale and sealed again.
V2_STATUSES = {401, 404, 409}

# An own message the server took: "Sent", or further once receipts (15.17) came back.
POSTED = re.compile(r"^ · (Sent|Delivered|Read)$")


def switch_on_v2(person: Person) -> None:
    person.expected_statuses |= V2_STATUSES
    page = person.page
    page.locator("#open-account").click()
    page.locator("#setting-v2").check()
    expect(page.locator("#device-list li.current")).to_have_count(1, timeout=30_000)
    page.locator("#account-close").click()


def wait_for_own_device(person: Person) -> None:
    """Until this page's device is in the account's list (v2 starts at login, by default)."""
    page = person.page
    page.locator("#open-account").click()
    expect(page.locator("#device-list li.current")).to_have_count(1, timeout=30_000)
    page.locator("#account-close").click()


def v2_posts(page: Page) -> list[str]:
    """Record every POST /v2/messages this page makes (the v2 send path)."""
    posts: list[str] = []
    page.on(
        "request",
        lambda request: (
            posts.append(request.url)
            if request.method == "POST" and request.url.endswith("/api/v1/v2/messages")
            else None
        ),
    )
    return posts


def raw_v2_store(page: Page) -> bytes:
    """Everything in the profile's `v2` object store as stored (byte arrays as base64):
    what a script, an extension or a copy of the profile's files could read, without the
    non-extractable sealing key."""
    dump: str = page.evaluate(
        """() => new Promise((resolve, reject) => {
            const request = indexedDB.open('securechat');
            request.onerror = () => reject(request.error);
            request.onsuccess = () => {
                const all = request.result.transaction('v2').objectStore('v2').getAll();
                all.onsuccess = () => resolve(JSON.stringify(all.result, (key, value) => {
                    if (value instanceof Uint8Array) {
                        let text = '';
                        for (const byte of value) text += String.fromCharCode(byte);
                        return 'bytes:' + btoa(text);
                    }
                    if (value instanceof CryptoKey) return {cryptoKey: value.extractable};
                    return value;
                }));
            };
        })"""
    )
    assert '"cryptoKey":true' not in dump  # the sealing key cannot be read back
    return dump.encode() + b"".join(
        base64.b64decode(part.split('"')[0]) for part in dump.split('"bytes:')[1:]
    )


def two_in_a_v2_chat(
    people: dict[str, Person], first: str, *, remember: bool = False
) -> tuple[Person, Person]:
    """Alice (remembered if asked) and bob registered with v2 on, alice's ``first``
    message sent and bob's conversation list showing her (his chat not opened)."""
    alice, bob = people["alice"], people["bob"]
    alice.register(remember=remember)
    bob.register()
    switch_on_v2(alice)
    switch_on_v2(bob)
    alice.start_chat("bob")
    alice.send(first)
    bob.page.locator(".conversation-item[data-peer='alice']").wait_for(timeout=20_000)
    return alice, bob
