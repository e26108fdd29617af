"""The sessions a device keeps with one peer device (PROTOCOL.md 15.9.1).

One *active* session (the one sends use), up to five *previous* ones (receive-only, so
messages already in flight on a replaced session still open), and the ids of the last
forty sessions evicted from ``previous`` (so a replayed setup cannot bring one back).
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
    through this set (None before any): a setup sent before it is older than a session
    the peer has used since, so it never becomes active (15.9.1).
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
        return Opened(plaintext, _seen_at(_replace_at(sessions, index, new_state), sent_at))
    raise first if first is not None else Refusal("session_unknown")


def _stale(sessions: SessionSet, sent_at: int) -> bool:
    """Sent before a message the peer device sent since and this device accepted."""
    return sessions.last_sent_at is not None and sent_at < sessions.last_sent_at


def _wins_tie(active: SessionState, sessions: SessionSet, state: SessionState, sent_at: int) -> bool:
    """A previous session the peer still offers with its setup (so the peer has not taken
    this device's session) wins against a pending active one with a higher id: the same
    tie-break as for a new setup, so a repair that crossed a pending setup converges too."""
    return is_pending(active) and not _stale(sessions, sent_at) and state.session_id < active.session_id


def _promote(sessions: SessionSet, index: int, active: SessionState, state: SessionState) -> SessionSet:
    """Previous session ``index`` (now ``state``) becomes active; the active one goes first
    in previous."""
    rest = replace(sessions, previous=sessions.previous[:index] + sessions.previous[index + 1 :])
    return replace(_with_previous(rest, active), active=state)


def _place_new(
    sessions: SessionSet, state: SessionState, sent_at: int
) -> tuple[SessionSet, tuple[Notice, ...]]:
    """Where a new, opened responder session goes (15.9.1)."""
    active = sessions.active
    if active is None:
        return replace(sessions, active=state), ()
    if _stale(sessions, sent_at):
        # Sent before a message the peer device sent on another session since: a setup
        # the peer itself abandoned (a crossed setup delivered late). Readable, not used.
        return _with_previous(sessions, state), ()
    if is_pending(active):
        # Simultaneous initiation: both devices keep the session with the lower id.
        if active.session_id < state.session_id:
            return _with_previous(sessions, state), ()
        return replace(_with_previous(sessions, active), active=state), ()
    return replace(_with_previous(sessions, active), active=state), ("session_repaired",)


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
            active = sessions.active
            if index >= 0 and active is not None and _wins_tie(active, sessions, new_state, sent_at):
                promoted = _promote(sessions, index, active, new_state)
                return Opened(plaintext, _seen_at(promoted, sent_at))
            return Opened(plaintext, _seen_at(_replace_at(sessions, index, new_state), sent_at))
    if setup_session_id in sessions.evicted:
        raise Refusal("ratchet_duplicate")
    plaintext, state, one_time = accept_setup(message)
    placed, notices = _place_new(sessions, state, sent_at)
    return Opened(plaintext, _seen_at(placed, sent_at), one_time, notices)
