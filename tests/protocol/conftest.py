"""Personas shared by the protocol tests.

Generating an RSA-2048 key costs up to half a second, so each persona is made once
per test session. Every protocol type is a frozen dataclass, so sharing them between
tests is safe: a test that needs a variant builds one with ``dataclasses.replace``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from securechat.protocol.identifiers import parse_username
from securechat.protocol.keys import PrivateIdentity


@pytest.fixture(scope="session")
def make_identity() -> Callable[[str], PrivateIdentity]:
    """Factory: one fresh identity (Ed25519 + RSA-2048) per call."""

    def make(name: str) -> PrivateIdentity:
        return PrivateIdentity.generate(parse_username(name))

    return make


@pytest.fixture(scope="session")
def alice(make_identity: Callable[[str], PrivateIdentity]) -> PrivateIdentity:
    return make_identity("alice")


@pytest.fixture(scope="session")
def bob(make_identity: Callable[[str], PrivateIdentity]) -> PrivateIdentity:
    return make_identity("bob")


@pytest.fixture(scope="session")
def carol(make_identity: Callable[[str], PrivateIdentity]) -> PrivateIdentity:
    return make_identity("carol")


@pytest.fixture(scope="session")
def mallory(make_identity: Callable[[str], PrivateIdentity]) -> PrivateIdentity:
    return make_identity("mallory")
