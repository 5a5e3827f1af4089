"""In-memory kernel backend for tests and benches: records SAs, installs nothing."""

from __future__ import annotations

from pyiked.core.events import ChildSAInstall, ChildSARemove, ChildSAUpdate

from .base import KernelBackend


class MemoryBackend(KernelBackend):
    name = "memory"

    def __init__(self):
        self.sas: dict[int, ChildSAInstall] = {}
        self.log: list = []

    def install(self, event: ChildSAInstall) -> None:
        self.sas[event.child_id] = event
        self.log.append(("install", event.child_id))

    def remove(self, event: ChildSARemove) -> None:
        self.sas.pop(event.child_id, None)
        self.log.append(("remove", event.child_id))

    def update(self, event: ChildSAUpdate) -> None:
        self.log.append(("update", event.child_id))
