"""The password policy, checked on the client (the server never sees the password)."""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources

from .errors import PasswordRejected

MIN_LENGTH = 10
# The rules in a sentence, shown before a new password is typed (the browser app's hint
# says the same: web/app/password-policy.js PASSWORD_RULES).
PASSWORD_RULES = "At least 10 characters; not a common password; not containing your username."  # noqa: S105


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("securechat.client").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_password(password: str, username: str) -> None:
    """Raise PasswordRejected with a reason a person can act on."""
    normalised = unicodedata.normalize("NFKC", password)
    if len(normalised) < MIN_LENGTH:
        raise PasswordRejected(f"the password must have at least {MIN_LENGTH} characters")
    if "\x00" in normalised:
        raise PasswordRejected("the password must not contain NUL characters")
    lowered = normalised.lower()
    if lowered in common_passwords():
        raise PasswordRejected("that password is one of the most common passwords; choose another")
    if username and username.lower() in lowered:
        raise PasswordRejected("the password must not contain the username")
    if len(set(lowered)) < 4:
        raise PasswordRejected("the password is too repetitive")
