"""What a restored history backup adds (PROTOCOL.md 15.10.1), pure.

A backup is sealed under the recovery key alone, so whoever held that key once (a former
device, a key that leaked) can upload an archive of any rows, and a faulty client can
write odd ones; the rows become verified messages. ``restore_rows`` applies the row
check of a device hand-over (15.10.2, ``row_fits``, the one check both use) to every row:

- a row in a group conversation (terminal backups hold the group messages they show)
  is skipped and counted: only the group's signed chain says who was a member, and a
  backup carries none of it;
- any other row that does not fit is skipped and counted. Unlike a hand-over, whose
  sending device leaves such rows out (so one there is a forgery and refuses the whole
  archive), a backup is often the only copy of a history and older clients wrote rows
  they could not place: one such row must not cost the user the rest;
- a message id already taken by an earlier row is skipped and counted (the first wins);
- an own row without its peer (``peer`` the account itself, outside its conversation
  with itself: a browser writes these for messages it imported) takes as peer the
  sender of a fitting row of the same conversation, the one account that conversation
  can be with; it is then checked like any other, so this adds nothing a forger could
  not write directly.

Which of the kept rows are new to the device (a message id it already holds keeps its
own copy) is the client's to decide against its store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ....protocol.v2.backup import BackupMessage
from .link import row_fits

# 3.3: a group conversation's id (a direct one is "dm-" and a hash).
_GROUP_CONVERSATION = re.compile(r"grp-[0-9a-f]{32}")


@dataclass(frozen=True)
class RestoreRows:
    rows: tuple[BackupMessage, ...]  # to add (each fits; each id once; in archive order)
    group: int  # rows of group conversations, skipped
    unfit: int  # other rows that fail the check, skipped
    repeated: int  # fitting rows whose id an earlier fitting row has, skipped


def restore_rows(username: str, messages: Sequence[BackupMessage]) -> RestoreRows:
    """The rows of a restored archive to add as verified messages, and what was skipped."""
    peers = {
        message.conversation_id: message.sender
        for message in messages
        if message.sender != username and row_fits(username, message)
    }
    rows: list[BackupMessage] = []
    seen: set[str] = set()
    group = unfit = repeated = 0
    for message in messages:
        if message.sender == username and message.peer == username and message.conversation_id in peers:
            message = replace(message, peer=peers[message.conversation_id])
        if not row_fits(username, message):
            if _GROUP_CONVERSATION.fullmatch(message.conversation_id):
                group += 1
            else:
                unfit += 1
        elif message.message_id in seen:
            repeated += 1
        else:
            seen.add(message.message_id)
            rows.append(message)
    return RestoreRows(tuple(rows), group, unfit, repeated)
