"""The sessions a device keeps with one peer device (PROTOCOL.md 15.9.1).

One *active* session (the one sends use), up to five *previous* ones (receive-only, so
messages already in flight on a replaced session still open), and the ids of the last
forty sessions evicted from ``previous`` (so a replayed setup cannot bring one back).
Which session is active follows two rules that both devices apply alike, so they end on
the same one: a new setup replaces the active session (a repair) unless this device's
own setup is still unanswered, when the lower session id wins; and a previous session
that opens the peer's newest message becomes active if its id is the lower.
Every function returns a new :class:`SessionSet`; a refusal raises
:class:`~securechat.protocol.v2.errors.Refusal` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from ....protocol.v2.errors import Refusal
from ....protocol.v2.ratchet import RatchetMessage, SessionState, ratchet_decrypt

MAX_PREVIOUS = 5
MAX_EVICTED = 40

Notice = Literal["session_repaired"]
# Derive a new responder session from a setup and open the message with it:
# (plaintext, state, one-time prekey id used). Raises Refusal (prekey_unknown, ratchet_failed).
AcceptSetup = Callable[[RatchetMessage], tuple[bytes, SessionState, int | None]]


@dataclass(frozen=True)
class SessionSet:
    """A device's sessions with one peer device.

    ``last_sent_at`` is the greatest ``sent_at`` of the peer device's messages accepted
    through this set (None before any). A message sent before it is *stale*: the peer
    may have moved on from its session since, so a stale message never changes which
    session is active (15.9.1).
    """

    active: SessionState | None = None
    previous: tuple[SessionState, ...] = ()  # newest first, at most MAX_PREVIOUS
    evicted: tuple[bytes, ...] = ()  # session ids, newest first, at most MAX_EVICTED
    last_sent_at: int | None = None

    @property
    def active_id(self) -> bytes | None:
        return None if self.active is None else self.active.session_id


EMPTY = SessionSet()


def is_pending(state: SessionState) -> bool:
    """This device initiated the session and has never received on it (15.7.1)."""
    return bool(state.pending_setup)


@dataclass(frozen=True)
class Opened:
    plaintext: bytes
    sessions: SessionSet
    one_time_prekey_used: int | None = None
    notices: tuple[Notice, ...] = ()


def _with_previous(sessions: SessionSet, state: SessionState) -> SessionSet:
    """Put ``state`` first in ``previous``; the oldest beyond five is evicted, its id kept."""
    previous = (state, *sessions.previous)
    gone = tuple(old.session_id for old in previous[MAX_PREVIOUS:])
    return replace(
        sessions, previous=previous[:MAX_PREVIOUS], evicted=(*gone, *sessions.evicted)[:MAX_EVICTED]
    )


def start_session(sessions: SessionSet, state: SessionState) -> SessionSet:
    """The sending side: a session this device just initiated becomes active."""
    if sessions.active is None:
        return replace(sessions, active=state)
    return replace(_with_previous(sessions, sessions.active), active=state)


def with_active(sessions: SessionSet, state: SessionState) -> SessionSet:
    """The active session's state after a send."""
    return replace(sessions, active=state)


def _seen_at(sessions: SessionSet, sent_at: int) -> SessionSet:
    last = sessions.last_sent_at
    return replace(sessions, last_sent_at=sent_at if last is None else max(last, sent_at))


def _replace_at(sessions: SessionSet, index: int, state: SessionState) -> SessionSet:
    """``index`` -1 is the active session, 0.. the previous ones."""
    if index < 0:
        return replace(sessions, active=state)
    previous = list(sessions.previous)
    previous[index] = state
    return replace(sessions, previous=tuple(previous))


def _candidates(sessions: SessionSet) -> list[tuple[int, SessionState]]:
    active = [] if sessions.active is None else [(-1, sessions.active)]
    return active + list(enumerate(sessions.previous))


def _decrypt_known(
    sessions: SessionSet, message: RatchetMessage, extra_ad: bytes, sent_at: int, now: int
) -> Opened:
    """No setup: the active session, then the previous ones newest first; the first that
    opens wins. If none does, the active session's refusal (``session_unknown`` without one)."""
    first: Refusal | None = None
    for index, state in _candidates(sessions):
        try:
            plaintext, new_state = ratchet_decrypt(state, message, extra_ad, now)
        except Refusal as exc:
            first = exc if first is None and index < 0 else first
            continue
        if index < 0:
            # The usual case, the active session opened it: the set in one copy (what
            # _opened_known and _seen_at make in two, with no notice: the active id stays).
            last = sessions.last_sent_at
            latest = sent_at if last is None else max(last, sent_at)
            placed = SessionSet(new_state, sessions.previous, sessions.evicted, latest)
            return Opened(plaintext, placed)
        placed = _opened_known(sessions, index, new_state, sent_at)
        return Opened(plaintext, _seen_at(placed, sent_at), None, _notices(sessions, placed))
    raise first if first is not None else Refusal("session_unknown")


def _stale(sessions: SessionSet, sent_at: int) -> bool:
    """Sent before a message the peer device sent since and this device accepted."""
    return sessions.last_sent_at is not None and sent_at < sessions.last_sent_at


def _activate(sessions: SessionSet, state: SessionState) -> SessionSet:
    """``state`` (in the set, or new) becomes active; the old active one goes first in previous."""
    active = sessions.active
    if active is not None and active.session_id == state.session_id:
        return replace(sessions, active=state)
    rest = replace(sessions, previous=tuple(p for p in sessions.previous if p.session_id != state.session_id))
    return (
        replace(rest, active=state) if active is None else replace(_with_previous(rest, active), active=state)
    )


def _notices(before: SessionSet, after: SessionSet) -> tuple[Notice, ...]:
    """A repair: an established active session was replaced on a peer's setup."""
    old = before.active
    changed = old is not None and after.active_id != old.session_id
    return ("session_repaired",) if changed and old is not None and not is_pending(old) else ()


def _opened_known(sessions: SessionSet, index: int, state: SessionState, sent_at: int) -> SessionSet:
    """A session of the set opened the message. A previous one with a lower id than the
    active one becomes active if the message is the peer's newest: the peer uses it,
    and both devices move only towards the lower of their two active sessions."""
    updated = _replace_at(sessions, index, state)
    active = sessions.active
    if index < 0 or active is None or _stale(sessions, sent_at) or state.session_id > active.session_id:
        return updated
    return _activate(updated, state)


def _place_new(sessions: SessionSet, state: SessionState, sent_at: int) -> SessionSet:
    """Where a new, opened session from the peer goes (15.9.1 step 3)."""
    active = sessions.active
    if active is None:
        return replace(sessions, active=state)
    if _stale(sessions, sent_at):
        # The peer sent this before a message accepted from it since: it has moved on
        # from this session (a crossed setup delivered late, or the older of two repairs).
        return _with_previous(sessions, state)
    if is_pending(active) and active.session_id < state.session_id:
        # Simultaneous initiation: both devices keep the session with the lower id.
        return _with_previous(sessions, state)
    return _activate(sessions, state)


def open_message(
    sessions: SessionSet,
    message: RatchetMessage,
    setup_session_id: bytes | None,
    accept_setup: AcceptSetup,
    extra_ad: bytes,
    sent_at: int,
    now: int,
) -> Opened:
    """Open a ratchet message from the peer device with this set (15.5 step 1, 15.9.1).

    ``setup_session_id`` is the id the message's setup would make (None without a setup).
    """
    if setup_session_id is None:
        return _decrypt_known(sessions, message, extra_ad, sent_at, now)
    for index, state in _candidates(sessions):
        if state.session_id == setup_session_id:
            plaintext, new_state = ratchet_decrypt(state, message, extra_ad, now)
            placed = _opened_known(sessions, index, new_state, sent_at)
            return Opened(plaintext, _seen_at(placed, sent_at), None, _notices(sessions, placed))
    if setup_session_id in sessions.evicted:
        raise Refusal("ratchet_duplicate")
    plaintext, state, one_time = accept_setup(message)
    placed = _place_new(sessions, state, sent_at)
    return Opened(plaintext, _seen_at(placed, sent_at), one_time, _notices(sessions, placed))
