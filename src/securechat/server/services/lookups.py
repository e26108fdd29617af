"""Lookups that tell whether a username exists, limited per account.

A user's public keys, a direct conversation with them and a group change naming them
each answer "does this name exist?". Unlimited, they let one account test every name
it can think of; so each costs one of the account's ``lookups_per_minute`` (stored, so
the budget is shared by every instance), counted *before* the answer is looked for: a
name nobody has costs exactly what a taken one does, and a refused lookup (429) says
nothing about the name.

Free are only answers the caller already has: its own name, and users it shares a
conversation with (direct or group) - the apps re-check those contacts' keys before
every message and when a conversation opens, and must never run into the limit.

A group change is checked the other way round, because a change that succeeds is not a
lookup: it is stored for good, delivered to everyone it names and counted by
``group_changes_per_minute``. A change refused because it names users who do not exist
says which, and so tells the caller about every name in it: it costs one lookup per
name (besides the caller's own), paid before the refusal is given, and past the budget
the answer is a 429 instead. With the budget spent, changes naming others are refused
before any work, so that success or refusal cannot serve as the answer then either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..errors import NotFound
from ..storage import contacts
from . import ratelimit
from .context import ServiceContext
from .principal import Principal

ACTION = "lookup"


def _subject(principal: Principal) -> str:
    return f"user:{principal.user_id}"


async def look_up(ctx: ServiceContext, principal: Principal, username: str) -> None:
    """Count a lookup of ``username`` (a parsed name) by the caller, or raise RateLimited."""
    if username == principal.username:
        return
    async with ctx.database.read() as conn:
        if await contacts.shares_conversation(conn, principal.user_id, username):
            return
    await ratelimit.hit(ctx, ACTION, _subject(principal), ctx.settings.lookups_per_minute, who="account")


def _named(principal: Principal, raw_change: Any) -> set[str]:
    """The names a (not yet parsed) group change lists besides the caller's."""
    members = raw_change.get("members") if isinstance(raw_change, dict) else None
    if not isinstance(members, list):
        return set()
    return {name for name in members if isinstance(name, str)} - {principal.username}


@asynccontextmanager
async def naming_users(ctx: ServiceContext, principal: Principal, raw_change: Any) -> AsyncIterator[None]:
    """Around a group change: what it tells about the names it lists is paid for."""
    named = _named(principal, raw_change)
    if not named:
        yield
        return
    limit = ctx.settings.lookups_per_minute
    await ratelimit.check(ctx, ACTION, _subject(principal), limit, who="account")
    try:
        yield
    except NotFound as refused:
        if "unknown" in refused.fields:
            await ratelimit.charge(ctx, ACTION, _subject(principal), limit, len(named), who="account")
        raise
