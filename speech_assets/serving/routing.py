"""Which model answers a request: a stable hash of the request key against the canary weight.

Open-source BentoML has no traffic split, so the service splits traffic itself.  The same key (a client id
header, or the caller's address) always lands on the same side for a given challenger, so one client does not
flip between models mid-session; a new challenger (a new salt) draws a fresh sample of clients.

The routing state is a small JSON document the platform writes (atomically) and the service re-reads when
it changes: promoting, stepping the weight or rolling back never restarts the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

CHAMPION, CHALLENGER = "champion", "challenger"


def bucket(key: str, salt: str) -> float:
    """A uniform number in [0, 100) from (salt, key): stable across processes and machines."""
    digest = hashlib.sha256(f"{salt}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


@dataclass(frozen=True)
class ModelRef:
    version: str  # registry semver, e.g. "1.1.0"
    tag: str  # BentoML model store tag, e.g. "asr:1.1.0"
    temperature: float = 1.0  # calibrated temperature from the registry


@dataclass
class RoutingState:
    champion: ModelRef | None = None
    challenger: ModelRef | None = None
    weight: float = 0.0  # percent of traffic the challenger gets
    revision: int = 0
    history: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 100.0:
            raise ValueError(f"weight must be within [0, 100], got {self.weight}")
        if self.challenger is not None and self.champion is None:
            raise ValueError("a challenger needs a champion to compare with")

    def route(self, key: str) -> str:
        """CHAMPION or CHALLENGER for this request key."""
        if self.challenger is None or self.weight <= 0:
            return CHAMPION
        if self.weight >= 100:
            return CHALLENGER
        return CHALLENGER if bucket(key, self.challenger.version) < self.weight else CHAMPION

    def model_for(self, side: str) -> ModelRef:
        ref = self.challenger if side == CHALLENGER else self.champion
        if ref is None:
            raise LookupError(f"no {side} model is deployed")
        return ref

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "RoutingState":
        d = json.loads(text)
        for side in (CHAMPION, CHALLENGER):
            if d.get(side) is not None:
                d[side] = ModelRef(**d[side])
        return cls(**d)

    # -- transitions (each returns a new state with the revision bumped and the change recorded) -------
    def _next(self, what: str, **changes) -> "RoutingState":
        d = {"champion": self.champion, "challenger": self.challenger, "weight": self.weight}
        d.update(changes)
        entry = {"revision": self.revision + 1, "change": what,
                 "champion": d["champion"].version if d["champion"] else None,
                 "challenger": d["challenger"].version if d["challenger"] else None, "weight": d["weight"]}
        return RoutingState(**d, revision=self.revision + 1, history=[*self.history, entry][-50:])

    def with_champion(self, ref: ModelRef) -> "RoutingState":
        """First deployment (or a forced replacement): all traffic to ``ref``, no canary."""
        return self._next(f"champion {ref.version}", champion=ref, challenger=None, weight=0.0)

    def with_challenger(self, ref: ModelRef, weight: float) -> "RoutingState":
        if self.champion is None:
            raise ValueError("deploy a champion before a challenger")
        return self._next(f"canary {ref.version} at {weight:g}%", challenger=ref, weight=weight)

    def with_weight(self, weight: float) -> "RoutingState":
        if self.challenger is None:
            raise ValueError("no challenger to weight")
        return self._next(f"canary {self.challenger.version} at {weight:g}%", weight=weight)

    def promoted(self) -> "RoutingState":
        if self.challenger is None:
            raise ValueError("no challenger to promote")
        return self._next(f"promote {self.challenger.version}", champion=self.challenger, challenger=None, weight=0.0)

    def rolled_back(self) -> "RoutingState":
        if self.challenger is None:
            raise ValueError("no challenger to roll back")
        return self._next(f"roll back {self.challenger.version}", challenger=None, weight=0.0)


def write_state(path: str | Path, state: RoutingState) -> None:
    """Atomic replace: a reader sees the old document or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".routing-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(state.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_state(path: str | Path) -> RoutingState:
    return RoutingState.from_json(Path(path).read_text())


def routing_markdown(routing: RoutingState) -> str:
    """Who serves what share of traffic, as a markdown table (Dagster metadata, `serving status`)."""
    rows = ["| side | version | BentoML model | traffic |", "|---|---|---|---:|"]
    if routing.champion:
        rows.append(f"| champion | {routing.champion.version} | `{routing.champion.tag}` | {100 - routing.weight:g}% |")
    if routing.challenger:
        rows.append(f"| challenger | {routing.challenger.version} | `{routing.challenger.tag}` | {routing.weight:g}% |")
    return "\n".join(rows)
