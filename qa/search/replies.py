"""Replies remembered by everything that decides them, so a repeated question (a widget's
starter question, a popular one) is answered without encoding or searching again.

The key holds the collection's generation, so an update is never answered from before it,
and the caller's groups and filters, so one reader's reply never reaches another who may
see less.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Hashable

from qa.search.answer import Reply


class ReplyCache:
    """Up to ``size`` replies, least recently used dropped first; ``size`` 0 keeps none.

    Replies go in and come out as copies, so no caller can change what another receives.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._replies: OrderedDict[Hashable, Reply] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Reply | None:
        """A copy of the reply stored under ``key``, or ``None``."""
        with self._lock:
            reply = self._replies.get(key)
            if reply is None:
                return None
            self._replies.move_to_end(key)
        return copy.deepcopy(reply)

    def put(self, key: Hashable, reply: Reply) -> None:
        """Remember a copy of ``reply`` under ``key``."""
        if self.size <= 0:
            return
        stored = copy.deepcopy(reply)
        with self._lock:
            self._replies[key] = stored
            self._replies.move_to_end(key)
            while len(self._replies) > self.size:
                self._replies.popitem(last=False)

    def __len__(self) -> int:
        return len(self._replies)
