"""Typed views of the API's objects. Each keeps the whole answer in ``raw``, so a field the
server adds later is still at hand (``model.raw["new_field"]``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FINAL_STATUSES = ("done", "error", "aborted")


@dataclass
class Dataset:
    id: int
    name: str
    type: str
    status: str
    job: int | None
    visibility: str
    owner: str | None
    options: dict[str, Any]
    manifest: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Dataset:
        return cls(
            id=data["id"], name=data["name"], type=data["type"], status=data["status"],
            job=data.get("job"), visibility=data.get("visibility", ""), owner=data.get("owner"),
            options=data.get("options") or {}, manifest=data.get("manifest"), raw=data,
        )  # fmt: skip

    def counts(self) -> dict[str, int]:
        """Entries per stage, once built (``{"train": 1200, "val": 300}``)."""
        stages = (self.manifest or {}).get("stages", {})
        return {stage: info.get("count", 0) for stage, info in stages.items()}


@dataclass
class Model:
    id: int
    name: str
    status: str
    dataset: int | None
    job: int | None
    best_epoch: int | None
    best: dict[str, Any]
    network: dict[str, Any]
    solver: dict[str, Any]
    sweep: str | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Model:
        return cls(
            id=data["id"], name=data["name"], status=data["status"], dataset=data.get("dataset"),
            job=data.get("job"), best_epoch=data.get("best_epoch"), best=data.get("best") or {},
            network=data.get("network") or {}, solver=data.get("solver") or {},
            sweep=data.get("sweep") or None, raw=data,
        )  # fmt: skip

    @property
    def snapshots(self) -> list[int]:
        return list(self.raw.get("snapshots") or [])


@dataclass
class Job:
    id: int
    name: str
    kind: str
    status: str
    progress: float
    status_text: str
    error: str
    result: dict[str, Any]
    last_seq: int
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Job:
        return cls(
            id=data["id"], name=data.get("name", ""), kind=data["kind"], status=data["status"],
            progress=data.get("progress") or 0.0, status_text=data.get("status_text") or "",
            error=data.get("error") or "", result=data.get("result") or {},
            last_seq=data.get("last_seq") or 0, raw=data,
        )  # fmt: skip

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class Event:
    """One event of a job: ``log``, ``status``, ``progress`` or ``metric``, numbered by ``seq``."""

    seq: int
    type: str
    time: str
    data: dict[str, Any]

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Event:
        return cls(seq=data["seq"], type=data["type"], time=data.get("time", ""), data=data["data"])

    @property
    def final_status(self) -> str | None:
        """The job's final status when this event ends it (``done``, ``error``, ``aborted``)."""
        status = self.data.get("status")
        return status if self.type == "status" and status in FINAL_STATUSES else None


@dataclass(frozen=True)
class Token:
    id: int
    name: str
    scope: str
    key: str | None
    expires_at: str | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Token:
        return cls(
            id=data["id"], name=data.get("name", ""), scope=data.get("scope", "full"),
            key=data.get("key"), expires_at=data.get("expires_at"), raw=data,
        )  # fmt: skip
