"""A small hyperparameter sweep: seeded random search, a trial budget, early pruning.

    result = sweep(train_set, dev_set, ModelConfig(), TrainConfig(epochs=4),
                   SweepConfig(n_trials=6, space={"train.lr": ("log", 5e-4, 5e-3),
                                                  "model.hidden": [128, 192, 256]}))
    result.best_model_config, result.best_train_config, print(format_table(result.trials))

Search space keys name a field of ModelConfig ("model.<field>") or
TrainConfig ("train.<field>"); values are a list (pick one), or
("log", lo, hi) / ("uniform", lo, hi) / ("int", lo, hi) ranges.  Every trial
evaluates on dev every ``probe_steps``; a trial whose dev loss at the first
probe is worse than the best earlier trial's at that step by more than
``prune_margin`` (relative) is stopped there: a bad learning rate shows
early, and the budget goes to the promising ones.  All trials use the base
TrainConfig's seed, so they differ only in their parameters.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace

from speech_assets.model.architecture import ModelConfig
from speech_assets.model.train import Example, TrainConfig, TrainResult, train


@dataclass
class SweepConfig:
    n_trials: int = 6  # the trial budget
    seed: int = 0  # of the sampler
    space: dict = field(
        default_factory=lambda: {"train.lr": ("log", 5e-4, 5e-3), "model.hidden": [128, 192, 256]}
    )
    probe_steps: int = 50
    prune_margin: float = 0.2
    max_minutes: float | None = None  # whole-sweep cap; trials not started by then are skipped


@dataclass
class Trial:
    index: int
    params: dict
    status: str  # "completed" | "pruned" | "skipped"
    steps: int = 0
    probe_dev_loss: float | None = None
    dev_loss: float | None = None
    dev_wer: float | None = None
    seconds: float = 0.0
    digest: str = ""

    def row(self) -> dict:
        return {"trial": self.index, **self.params, "status": self.status, "steps": self.steps,
                "probe_dev_loss": self.probe_dev_loss, "dev_loss": self.dev_loss,
                "dev_wer": self.dev_wer, "seconds": round(self.seconds, 2)}


@dataclass
class SweepResult:
    best_params: dict
    best_model_config: ModelConfig
    best_train_config: TrainConfig
    best_result: TrainResult
    trials: list[Trial]

    def table(self) -> list[dict]:
        return [t.row() for t in self.trials]


def _check_space(space: dict) -> None:
    names = {"model": {f.name for f in fields(ModelConfig)}, "train": {f.name for f in fields(TrainConfig)}}
    for key, spec in space.items():
        scope, _, name = key.partition(".")
        if name not in names.get(scope, ()):
            raise ValueError(f"unknown search parameter {key!r}: use model.<field> or train.<field>")
        if isinstance(spec, list):
            if not spec:
                raise ValueError(f"{key}: empty choice list")
        elif not (isinstance(spec, tuple) and len(spec) == 3 and spec[0] in ("log", "uniform", "int")):
            raise ValueError(f"{key}: expected a list or ('log'|'uniform'|'int', lo, hi), got {spec!r}")


def sample_trials(space: dict, n: int, seed: int) -> list[dict]:
    """The ``n`` parameter sets the sweep will try, in order (a pure function of its inputs)."""
    _check_space(space)
    rng = random.Random(f"sweep:{seed}")
    out = []
    for _ in range(n):
        params = {}
        for key in sorted(space):  # sorted: the draw order must not depend on dict order
            spec = space[key]
            if isinstance(spec, list):
                params[key] = spec[rng.randrange(len(spec))]
            elif spec[0] == "int":
                params[key] = rng.randint(spec[1], spec[2])
            elif spec[0] == "log":
                params[key] = float(f"{math.exp(rng.uniform(math.log(spec[1]), math.log(spec[2]))):.3g}")
            else:
                params[key] = float(f"{rng.uniform(spec[1], spec[2]):.3g}")
        out.append(params)
    return out


def _apply(params: dict, mcfg: ModelConfig, tcfg: TrainConfig) -> tuple[ModelConfig, TrainConfig]:
    m = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("model.")}
    t = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("train.")}
    return replace(mcfg, **m), replace(tcfg, **t)


def sweep(
    train_set: Sequence[Example],
    dev_set: Sequence[Example],
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    config: SweepConfig | None = None,
    progress: Callable[[dict], None] | None = None,
) -> SweepResult:
    if not dev_set:
        raise ValueError("a sweep needs a dev set")
    cfg = config or SweepConfig()
    base_m, base_t = model_config or ModelConfig(), train_config or TrainConfig()
    t0 = time.monotonic()
    trials: list[Trial] = []
    results: dict[int, TrainResult] = {}
    best_probe = math.inf  # best dev loss at the probe step among earlier trials

    for i, params in enumerate(sample_trials(cfg.space, cfg.n_trials, cfg.seed)):
        if cfg.max_minutes is not None and time.monotonic() - t0 > cfg.max_minutes * 60:
            trials.append(Trial(i, params, "skipped"))
            continue
        mcfg, tcfg = _apply(params, base_m, base_t)
        tcfg = replace(tcfg, eval_every=cfg.probe_steps, patience=None)
        probe: dict = {}

        def on_event(ev: dict) -> bool:
            if ev["event"] == "eval" and "loss" not in probe:
                probe["loss"] = ev["dev_loss"]
                return ev["dev_loss"] > best_probe * (1 + cfg.prune_margin)
            return False

        res = train(train_set, dev_set, mcfg, tcfg, progress=on_event)
        pruned = res.stopped_reason == "callback"
        trial = Trial(
            index=i,
            params=params,
            status="pruned" if pruned else "completed",
            steps=res.steps,
            probe_dev_loss=probe.get("loss"),
            dev_loss=res.dev_loss_curve[-1][1] if res.dev_loss_curve else None,
            dev_wer=res.best_dev_wer,
            seconds=res.seconds,
            digest=res.digest,
        )
        trials.append(trial)
        if not pruned:
            results[i] = res
            if trial.probe_dev_loss is not None:
                best_probe = min(best_probe, trial.probe_dev_loss)
        if progress:
            progress(trial.row())

    done = [t for t in trials if t.status == "completed"]
    if not done:
        raise RuntimeError("no trial completed (time budget too small?)")
    best = min(done, key=lambda t: (t.dev_wer, t.dev_loss, t.index))
    mcfg, tcfg = _apply(best.params, base_m, base_t)
    return SweepResult(best.params, mcfg, tcfg, results[best.index], trials)


def format_table(trials: Sequence[Trial]) -> str:
    rows = [t.row() for t in trials]
    if not rows:
        return "(no trials)"
    cols = list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v) -> str:
        return f"{v:.4g}" if isinstance(v, float) else ("-" if v is None else str(v))

    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[j]) for row in cells)) for j, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
