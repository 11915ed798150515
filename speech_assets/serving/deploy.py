"""Steps the deployment assets run, without Dagster: what the next routing is, building a bento, importing models.

BentoML reads BENTOML_HOME when it is imported, so the steps that touch its stores run `bentoml` (or a tiny
Python snippet) in a child process with the platform's BENTOML_HOME: the orchestrating process never depends on
which store it imported first.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from speech_assets import settings
from speech_assets.serving.routing import ModelRef, RoutingState

PROJECT_ROOT = settings.PROJECT_ROOT  # the bento is built from the project's service code


@dataclass(frozen=True)
class RolloutPlan:
    action: str  # "initial" | "champion" | "canary" | "withdrawn" | "unchanged"
    routing: RoutingState
    reason: str


def plan_rollout(
    current: RoutingState | None, production: ModelRef, canary: ModelRef | None, first_weight: float
) -> RolloutPlan:
    """The routing that serves what the registry says: its production version as champion, its canary (if any)
    as the challenger entering at ``first_weight`` percent.

    Nothing deployed yet: the production model serves everything (it passed the absolute floors; there is
    nothing live to compare it with).  A different production version than the one serving (a rollback or a
    promotion made in the registry): it takes over at once.  A new canary: it enters at ``first_weight``,
    replacing a challenger still in flight (the newer model supersedes it).  A challenger the registry no
    longer calls canary: withdrawn.  Otherwise nothing changes (and the routing revision stays).
    """
    current = current or RoutingState()
    if current.champion is None or current.champion.version != production.version:
        action = "initial" if current.champion is None else "champion"
        routing = current.with_champion(production)
        reason = (f"first deployment: {production.version} serves all traffic" if action == "initial" else
                  f"registry production is {production.version}: it replaces {current.champion.version}")
        if canary is not None and canary.version != production.version:
            routing = routing.with_challenger(canary, first_weight)
            reason += f"; canary {canary.version} at {first_weight:g}%"
        return RolloutPlan(action, routing, reason)
    if canary is not None and canary.version != production.version:
        if current.challenger is not None and current.challenger.version == canary.version:
            return RolloutPlan("unchanged", current, f"canary {canary.version} is already in flight")
        return RolloutPlan(
            "canary", current.with_challenger(canary, first_weight),
            f"{canary.version} enters as a canary at {first_weight:g}% beside champion {production.version}",
        )
    if current.challenger is not None:
        return RolloutPlan("withdrawn", current.rolled_back(),
                           f"{current.challenger.version} is no longer the registry's canary: withdrawn")
    return RolloutPlan("unchanged", current, f"{production.version} is already serving")


def _env(bentoml_home: str | Path) -> dict:
    # the API key is never passed down to build steps
    return settings.child_env({"BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"},
                              without=(settings.ASR_API_KEY,))


def import_model(checkpoint: Path, *, version: str, temperature: float, lineage: dict, bentoml_home: str | Path) -> str:
    """Import a registry checkpoint into the BentoML model store at ``bentoml_home``; returns its tag."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from speech_assets.serving.model_store import import_registered\n"
        "a = json.loads(sys.argv[1])\n"
        "print(import_registered(Path(a['checkpoint']).read_bytes(), version=a['version'],"
        " temperature=a['temperature'], lineage=a['lineage']))\n"
    )
    arg = json.dumps({"checkpoint": str(checkpoint), "version": version, "temperature": temperature,
                      "lineage": lineage}, default=str)
    out = subprocess.run([sys.executable, "-c", code, arg], env=_env(bentoml_home), capture_output=True, text=True,
                         timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"importing model {version} into BentoML failed:\n{out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


BENTOFILE = "bentos/asr/bentofile.yaml"


def service_source_digest(root: Path = PROJECT_ROOT) -> str:
    """sha256 over the bentofile and every file it includes: equal digests, equal service code.

    A bento is rebuilt only when this changes.  A new model is not a new bento: it goes into the model store
    and is switched to by routing (no restart), so a retrain never moves the service's address.
    """
    import hashlib

    import yaml

    spec = yaml.safe_load((root / BENTOFILE).read_text())
    files = {root / BENTOFILE}
    for pattern in spec.get("include", []):
        files.update(p for p in root.glob(pattern) if p.is_file() and "__pycache__" not in p.parts)
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def bento_exists(tag: str, bentoml_home: str | Path) -> bool:
    name, version = tag.split(":", 1)
    return (Path(bentoml_home) / "bentos" / name / version / "bento.yaml").exists()


@dataclass(frozen=True)
class BentoInfo:
    tag: str
    path: Path
    size_bytes: int


def build_bento(bentoml_home: str | Path, root: Path = PROJECT_ROOT) -> BentoInfo:
    """`bentoml build` of bentos/asr from the repository root (offline: nothing is resolved or downloaded)."""
    out = subprocess.run(
        [str(Path(sys.executable).with_name("bentoml")), "build", "-f", BENTOFILE, ".", "-o", "tag"],
        cwd=root, env=_env(bentoml_home), capture_output=True, text=True, timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bentoml build failed:\n{out.stdout[-1500:]}\n{out.stderr[-1500:]}")
    return bento_info(out.stdout.strip().splitlines()[-1].removeprefix("__tag__:"), bentoml_home)


def bento_info(tag: str, bentoml_home: str | Path) -> BentoInfo:
    name, version = tag.split(":", 1)
    path = Path(bentoml_home) / "bentos" / name / version
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return BentoInfo(tag, path, size)
