"""The account key sealed under the password (PROTOCOL.md 15.11, 15.16): stored with a
rotation, served only to its own account, replaced after a password change; a seal of
another key is refused with a stable code, never stored, never a 500."""

from __future__ import annotations

import httpx

from securechat.protocol.identifiers import Username
from securechat.protocol.v2.account_key_seal import open_account_key, seal_account_key
from securechat.protocol.v2.primitives import ed25519_raw_public

from .conftest import RegisterUser
from .test_devices import account_seed
from .test_identity_transitions import list_under, new_seed, rotate, setup, transition

SEAL = "/api/v1/account/identity-key-seal"
WRAP = bytes(range(32))


async def test_a_seal_is_stored_with_the_rotation_and_served_to_its_account_only(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, bob, laptop = await setup(http, register_user)
    k1, k2 = account_seed(alice.identity), new_seed("alice")
    missing = await http.get(SEAL, headers=alice.headers)
    assert (missing.status_code, missing.json()) == (200, {"account_key_seal": None})

    # A seal of another key than the new one: refused, and nothing of the rotation stored.
    wrong = seal_account_key(WRAP, Username("alice"), new_seed("alice", 9)).to_wire()
    body = {"transition": transition(k1, k2, alice, 10), "device_list": list_under(k2, alice, [laptop], 2)}
    refused = await rotate(http, alice, {**body, "account_key_seal": wrong})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_input"
    assert (await http.get(SEAL, headers=alice.headers)).json() == {"account_key_seal": None}
    for malformed in ({"v": 2}, {**wrong, "v": 3}, {**wrong, "ciphertext": "AAAA"}):
        answer = await rotate(http, alice, {**body, "account_key_seal": malformed})
        assert answer.status_code == 422, answer.text

    sealed = seal_account_key(WRAP, Username("alice"), k2).to_wire()
    assert (await rotate(http, alice, {**body, "account_key_seal": sealed})).status_code == 200
    served = (await http.get(SEAL, headers=alice.headers)).json()["account_key_seal"]
    assert served == sealed
    assert open_account_key(WRAP, Username("alice"), served) == k2
    # bob's own seal is not alice's: he has none.
    assert (await http.get(SEAL, headers=bob.headers)).json() == {"account_key_seal": None}

    # Sealed again (a password change): only the current key.
    other = bytes(reversed(WRAP))
    stale = seal_account_key(other, Username("alice"), k1).to_wire()
    answer = await http.put(SEAL, headers=alice.headers, json={"account_key_seal": stale})
    assert answer.status_code == 422
    again = seal_account_key(other, Username("alice"), k2).to_wire()
    answer = await http.put(SEAL, headers=alice.headers, json={"account_key_seal": again})
    assert answer.status_code == 200 and answer.json()["account_key"]
    served = (await http.get(SEAL, headers=alice.headers)).json()["account_key_seal"]
    assert open_account_key(other, Username("alice"), served) == k2
    assert ed25519_raw_public(k2) != ed25519_raw_public(k1)


async def test_a_seal_cannot_be_put_before_any_rotation(
    http: httpx.AsyncClient, register_user: RegisterUser
) -> None:
    alice, _, _ = await setup(http, register_user)
    sealed = seal_account_key(WRAP, Username("alice"), account_seed(alice.identity)).to_wire()
    answer = await http.put(SEAL, headers=alice.headers, json={"account_key_seal": sealed})
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "no_account_key_seal")
