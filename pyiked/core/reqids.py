"""reqids: the number that ties a flow's kernel policies to the CHILD SAs carrying it.

A flow is (policy name, local selectors, remote selectors). Its CHILD SAs share one reqid,
old and rekeyed alike (a rekey keeps its predecessor's reqid), and so do two IKE SAs that
negotiate the same flow. The kernel policies of a flow go with its last CHILD SA.

A concentrator sees flows come and go all day (each road warrior's selectors are its own
address), so a reqid is counted by the CHILD SAs that hold it and released with the last
one; released reqids are reused, smallest first, which keeps them inside a backend's
reqid range (XfrmBackend: 1..0xFFFF by default).
"""

from __future__ import annotations

import heapq


class Reqids:
    __slots__ = ("_by_flow", "_flows", "_holders", "_free", "_next")

    def __init__(self):
        # two plain dicts rather than a [key, count] list per flow: one object fewer per
        # flow for the garbage collector to traverse (see bench/memory.py)
        self._by_flow: dict[tuple, int] = {}  # (policy name, ts_local, ts_remote) -> reqid
        self._flows: dict[int, tuple] = {}  # reqid -> flow key
        self._holders: dict[int, int] = {}  # reqid -> CHILD SAs holding it
        self._free: list[int] = []  # released reqids (a heap)
        self._next = 1

    def lookup(self, policy_name: str, ts_local: tuple, ts_remote: tuple) -> int:
        """The reqid of a flow, a new one if no CHILD SA carries it. It counts once a
        CHILD SA holds it (hold); until then a later lookup of the flow finds it again."""
        key = (policy_name, ts_local, ts_remote)
        reqid = self._by_flow.get(key)
        if reqid is None:
            if self._free:
                reqid = heapq.heappop(self._free)
            else:
                reqid = self._next
                self._next += 1
            self._by_flow[key] = reqid
            self._flows[reqid] = key
            self._holders[reqid] = 0
        return reqid

    def hold(self, reqid: int) -> None:
        """A CHILD SA of the flow is installed (a new flow, or a rekey keeping the reqid)."""
        self._holders[reqid] += 1

    def release(self, reqid: int) -> bool:
        """A CHILD SA of the flow is gone; True when it was the flow's last (its kernel
        policies go too, and the reqid is free for another flow)."""
        held = self._holders.get(reqid)
        if held is None:
            return True
        if held > 1:
            self._holders[reqid] = held - 1
            return False
        del self._holders[reqid]
        del self._by_flow[self._flows.pop(reqid)]
        heapq.heappush(self._free, reqid)
        return True

    def holders(self, reqid: int) -> int:
        return self._holders.get(reqid, 0)

    def __len__(self) -> int:
        """Flows with a reqid (the free list aside)."""
        return len(self._flows)
