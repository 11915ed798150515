"""Steps the deployment assets run, without Dagster: what the next routing is, building a bento, importing models.

BentoML reads BENTOML_HOME when it is imported, so the steps that touch its stores run `bentoml` (or a tiny
Python snippet) in a child process with the platform's BENTOML_HOME: the orchestrating process never depends on
which store it imported first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from speech_assets.serving.routing import ModelRef, RoutingState

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RolloutPlan:
    action: str  # "initial" | "canary" | "unchanged"
    routing: RoutingState
    reason: str


def plan_rollout(current: RoutingState | None, new: ModelRef, first_weight: float) -> RolloutPlan:
    """The routing after a newly registered model arrives.

    No champion yet: the new model serves everything (it passed the absolute floors; there is nothing live to
    compare with).  Already the champion or the challenger: nothing changes.  Otherwise it enters as the
    challenger at ``first_weight`` (replacing a challenger still in flight: the newer model supersedes it).
    """
    current = current or RoutingState()
    if current.champion is None:
        return RolloutPlan("initial", current.with_champion(new), f"first deployment: {new.version} serves all traffic")
    if new.version in {current.champion.version, current.challenger.version if current.challenger else None}:
        return RolloutPlan("unchanged", current, f"{new.version} is already deployed")
    return RolloutPlan(
        "canary", current.with_challenger(new, first_weight),
        f"{new.version} enters as a canary at {first_weight:g}% beside champion {current.champion.version}",
    )


def _env(bentoml_home: str | Path) -> dict:
    env = dict(os.environ, BENTOML_HOME=str(bentoml_home), BENTOML_DO_NOT_TRACK="true")
    env.pop("ASR_API_KEY", None)  # never passed down to build steps
    return env


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


@dataclass(frozen=True)
class BentoInfo:
    tag: str
    path: Path
    size_bytes: int


def build_bento(bentoml_home: str | Path, root: Path = PROJECT_ROOT) -> BentoInfo:
    """`bentoml build` of bentos/asr from the repository root (offline: nothing is resolved or downloaded)."""
    out = subprocess.run(
        [str(Path(sys.executable).with_name("bentoml")), "build", "-f", "bentos/asr/bentofile.yaml", ".", "-o", "tag"],
        cwd=root, env=_env(bentoml_home), capture_output=True, text=True, timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bentoml build failed:\n{out.stdout[-1500:]}\n{out.stderr[-1500:]}")
    tag = out.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":", 1)
    path = Path(bentoml_home) / "bentos" / name / version
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return BentoInfo(tag, path, size)
