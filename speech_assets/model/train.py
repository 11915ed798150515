"""Training loop for the CTC model, plus checkpoint (de)serialization and digests.

    result = train(train_set, dev_set, ModelConfig(), TrainConfig())

Datasets are lists of ``(features float32 [T, n_mels], text)``.  Utterances
whose text has characters outside the vocabulary (e.g. a redacted
"<phone>") are skipped and counted, never trained on.

Determinism: the same data, configs and ``init_state`` give bit-identical
weights (see ``state_digest``) on the same machine and thread count.  The
seed drives weight init, dropout, SpecAugment and the data order; torch's
deterministic-algorithms mode is on while training; the thread count is
fixed by the config because float sums depend on how work is split.  The
step budget (epochs / max_steps) defines the run; ``max_minutes`` is only a
safety cap, and a run that hits it says so in ``stopped_reason`` (its
result then depends on machine speed).
"""

from __future__ import annotations

import copy
import hashlib
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields

import jiwer
import numpy as np
import torch
import torch.nn as nn

from speech_assets.model.architecture import CTCModel, ModelConfig, normalize
from speech_assets.model.decode import greedy_texts
from speech_assets.model.tokenizer import OutOfVocabulary, encode

Example = tuple[np.ndarray, str]
CHECKPOINT_FORMAT = "speech_assets.ctc/1"


@dataclass
class TrainConfig:
    seed: int = 0
    # Defaults: the demo's budgeted run (bench/train_budget.py measured them on the demo corpus, 2 cores).
    epochs: int = 4
    max_steps: int | None = None  # caps epochs * batches_per_epoch when set
    batch_size: int = 32
    lr: float = 4e-3  # peak of the one-cycle schedule
    schedule: str = "onecycle"  # "onecycle" | "constant"
    warmup_fraction: float = 0.15  # share of steps spent ramping up (onecycle)
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    # Off by default: in a 6-epoch budget the model underfits rather than overfits, and SpecAugment measured
    # 9.8 % vs 7.7 % test WER (lexicon + LM) against no augmentation; turn it on for longer runs.
    spec_augment: bool = False
    freq_masks: int = 2
    freq_mask_width: int = 12  # mel bands, max per mask
    time_masks: int = 2
    time_mask_fraction: float = 0.05  # max width of a time mask, share of the utterance
    eval_every: int | None = None  # steps between dev evaluations; None -> every epoch
    patience: int | None = None  # stop after this many evaluations without a better dev WER
    select_best: bool = True  # return the weights of the best dev WER, not the last
    max_minutes: float | None = 30.0  # safety cap only; see module doc
    num_threads: int = 2
    warm_start: bool = False  # start from ``init_state`` when one is given
    log_every: int = 10  # steps between progress "step" events

    def __post_init__(self) -> None:
        if self.schedule not in ("onecycle", "constant"):
            raise ValueError(f"schedule must be 'onecycle' or 'constant', got {self.schedule!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.num_threads < 1:
            raise ValueError(f"bad TrainConfig {self}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        return cls(**d)


@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    loss_curve: list[float]  # training loss of every step (before that step's update)
    dev_wer_curve: list[tuple[int, float]]  # (step, dev WER) at every evaluation
    dev_loss_curve: list[tuple[int, float]]
    model_config: dict
    train_config: dict
    steps: int
    epochs_completed: float
    seconds: float
    stopped_reason: str  # "completed" | "early_stopping" | "time_budget" | "callback"
    best_step: int | None
    best_dev_wer: float | None
    n_train: int
    n_skipped: int  # utterances dropped: out-of-vocabulary text or empty
    warm_started: bool
    num_parameters: int
    digest: str = ""
    extra: dict = field(default_factory=dict)


# ------------------------------------------------------------------ data --
@dataclass
class _Utt:
    feats: torch.Tensor
    target: torch.Tensor
    text: str


def _prepare(data: Sequence[Example], n_mels: int) -> tuple[list[_Utt], int]:
    out, skipped = [], 0
    for feats, text in data:
        text = " ".join(text.split())
        try:
            ids = encode(text)
        except OutOfVocabulary:
            skipped += 1
            continue
        feats = np.asarray(feats, dtype=np.float32)
        if not ids or feats.ndim != 2 or feats.shape[1] != n_mels or feats.shape[0] < 4:
            skipped += 1
            continue
        out.append(_Utt(torch.from_numpy(feats), torch.tensor(ids, dtype=torch.long), text))
    return out, skipped


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    # Sort by length (random tie-break) so a batch holds similar lengths and
    # little padding, then shuffle the order of the batches.
    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _collate(utts: list[_Utt]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([u.feats.shape[0] for u in utts])
    feats = nn.utils.rnn.pad_sequence([u.feats for u in utts], batch_first=True)
    targets = torch.cat([u.target for u in utts])
    target_lengths = torch.tensor([len(u.target) for u in utts])
    return feats, lengths, targets, target_lengths


def _spec_augment(x: torch.Tensor, lengths: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Zero random mel bands and time spans of normalized features (0 = the utterance mean)."""
    x = x.clone()
    B, _, F = x.shape
    for b in range(B):
        T = int(lengths[b])
        for _ in range(cfg.freq_masks):
            w = int(torch.randint(0, cfg.freq_mask_width + 1, (1,), generator=gen))
            f0 = int(torch.randint(0, max(1, F - w), (1,), generator=gen))
            x[b, :, f0 : f0 + w] = 0
        max_w = int(T * cfg.time_mask_fraction)
        for _ in range(cfg.time_masks):
            w = int(torch.randint(0, max_w + 1, (1,), generator=gen))
            t0 = int(torch.randint(0, max(1, T - w), (1,), generator=gen))
            x[b, t0 : t0 + w, :] = 0
    return x


# ------------------------------------------------------------------- eval --
@torch.no_grad()
def evaluate(model: CTCModel, data: list[_Utt], batch_size: int = 64) -> tuple[float, float, list[str]]:
    """(mean CTC loss, WER, hypotheses in data order) with greedy decoding."""
    was_training = model.training
    model.eval()
    ctc = nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)
    order = np.argsort([u.feats.shape[0] for u in data], kind="stable")
    hyps: list[str] = [""] * len(data)
    total, n = 0.0, 0
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        feats, lengths, targets, target_lengths = _collate([data[j] for j in idx])
        log_probs, out_lengths = model(feats, lengths)
        total += float(ctc(log_probs.transpose(0, 1), targets, out_lengths, target_lengths))
        n += len(idx)
        for j, h in zip(idx, greedy_texts(log_probs, out_lengths)):
            hyps[j] = h
    model.train(was_training)
    wer = float(jiwer.wer([u.text for u in data], hyps)) if data else float("nan")
    return total / max(n, 1), wer, hyps


# ------------------------------------------------------------------ train --
def train(
    train_set: Sequence[Example],
    dev_set: Sequence[Example] | None,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
    progress: Callable[[dict], bool | None] | None = None,
) -> TrainResult:
    """Train a CTCModel; see the module doc for determinism and budgets.

    ``progress(event)`` gets dicts with ``event`` = "step" (every
    ``log_every`` steps) or "eval"; returning True stops training cleanly
    (``stopped_reason="callback"``).
    """
    mcfg = model_config or ModelConfig()
    cfg = train_config or TrainConfig()
    t_start = time.monotonic()
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(cfg.num_threads)
    torch.use_deterministic_algorithms(True)
    # Vanishing BPTT gradients reach the denormal range, where CPU float math
    # is many times slower (measured: a step up to 7x slower); flushing them to
    # zero costs nothing in accuracy and is itself deterministic.
    torch.set_flush_denormal(True)
    try:
        # fork_rng: seeding for this run must not change the caller's global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            return _train(train_set, dev_set, mcfg, cfg, init_state, progress, t_start)
    finally:
        torch.set_flush_denormal(False)  # torch's default; it has no getter to restore from
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det)


def _train(train_set, dev_set, mcfg, cfg, init_state, progress, t_start) -> TrainResult:
    data, skipped = _prepare(train_set, mcfg.n_mels)
    dev, _ = _prepare(dev_set or [], mcfg.n_mels)
    if not data:
        raise ValueError("no usable training utterances")
    model = CTCModel(mcfg)
    warm = bool(cfg.warm_start and init_state is not None)
    if warm:
        model.load_state_dict(init_state)
    model.train()

    rng = np.random.default_rng(cfg.seed)
    aug_gen = torch.Generator().manual_seed(cfg.seed)
    lengths = np.array([u.feats.shape[0] for u in data])
    per_epoch = math.ceil(len(data) / cfg.batch_size)
    total_steps = cfg.epochs * per_epoch
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "onecycle":
        # Warm-up then cosine decay: high lr early for speed, low lr late to settle.
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=max(total_steps, 2), pct_start=cfg.warmup_fraction
        )
    else:
        sched = None
    ctc = nn.CTCLoss(blank=0, reduction="mean", zero_infinity=True)

    loss_curve: list[float] = []
    wer_curve: list[tuple[int, float]] = []
    dev_loss_curve: list[tuple[int, float]] = []
    best = {"wer": math.inf, "step": None, "state": None}
    bad_evals = 0
    step, stopped = 0, "completed"

    def elapsed() -> float:
        return time.monotonic() - t_start

    def run_eval() -> bool:
        """Evaluate on dev; True means stop (early stopping or callback)."""
        nonlocal bad_evals, stopped
        if not dev:
            return False
        dev_loss, wer, _ = evaluate(model, dev)
        wer_curve.append((step, wer))
        dev_loss_curve.append((step, dev_loss))
        if wer < best["wer"]:
            best.update(wer=wer, step=step, state=copy.deepcopy(model.state_dict()))
            bad_evals = 0
        else:
            bad_evals += 1
        if progress and progress(
            {"event": "eval", "step": step, "of": total_steps, "dev_loss": dev_loss, "dev_wer": wer,
             "elapsed_s": elapsed()}
        ):
            stopped = "callback"
            return True
        if cfg.patience is not None and bad_evals >= cfg.patience:
            stopped = "early_stopping"
            return True
        return False

    stop = False
    while step < total_steps and not stop:
        for batch in _batches(lengths, cfg.batch_size, rng):
            feats, flens, targets, tlens = _collate([data[i] for i in batch])
            x = normalize(feats, flens)
            if cfg.spec_augment:
                x = _spec_augment(x, flens, cfg, aug_gen)
            log_probs, out_lengths = model.encode(x, flens)
            loss = ctc(log_probs.transpose(0, 1), targets, out_lengths, tlens)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            loss_curve.append(float(loss.detach()))
            if progress and step % cfg.log_every == 0 and progress(
                {"event": "step", "step": step, "of": total_steps, "epoch": step / per_epoch, "loss": loss_curve[-1],
                 "lr": opt.param_groups[0]["lr"], "elapsed_s": elapsed()}
            ):
                stopped, stop = "callback", True
            elif cfg.max_minutes is not None and elapsed() > cfg.max_minutes * 60:
                stopped, stop = "time_budget", True
            elif step < total_steps and cfg.eval_every and step % cfg.eval_every == 0:
                stop = run_eval()
            elif step < total_steps and not cfg.eval_every and step % per_epoch == 0:
                stop = run_eval()  # end of an epoch
            if stop or step >= total_steps:
                break
    # Final evaluation of the last weights (unless one was just made at this step).
    if dev and (not wer_curve or wer_curve[-1][0] != step):
        saved = stopped
        run_eval()  # its verdict no longer matters: training is over
        stopped = saved
    state = model.state_dict()
    if cfg.select_best and best["state"] is not None:
        state = best["state"]
    state = {k: v.detach().clone() for k, v in state.items()}
    return TrainResult(
        state_dict=state,
        loss_curve=loss_curve,
        dev_wer_curve=wer_curve,
        dev_loss_curve=dev_loss_curve,
        model_config=mcfg.to_dict(),
        train_config=cfg.to_dict(),
        steps=step,
        epochs_completed=step / per_epoch,
        seconds=elapsed(),
        stopped_reason=stopped,
        best_step=best["step"],
        best_dev_wer=None if best["step"] is None else best["wer"],
        n_train=len(data),
        n_skipped=skipped,
        warm_started=warm,
        num_parameters=model.num_parameters(),
        digest=state_digest(state),
    )


# ------------------------------------------------------------- checkpoints --
def state_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over sorted keys, dtypes, shapes and raw tensor bytes: equal iff the weights are."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def _check_plain(obj, where: str = "extra") -> None:
    # Only what torch.load(weights_only=True) accepts back: plain containers and scalars.
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} must be str or int")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(f"{where}: {type(obj).__name__} is not checkpoint-safe (plain types and tensors only)")


def checkpoint_bytes(state_dict: dict[str, torch.Tensor], model_config: ModelConfig | dict, extra: dict | None = None) -> bytes:
    mcfg = model_config.to_dict() if isinstance(model_config, ModelConfig) else dict(model_config)
    extra = dict(extra or {})
    _check_plain(extra)
    state = {k: v.detach().cpu().clone() for k, v in state_dict.items()}
    buf = io.BytesIO()
    torch.save(
        {"format": CHECKPOINT_FORMAT, "model_config": mcfg, "state_dict": state,
         "digest": state_digest(state), "extra": extra},
        buf,
    )
    return buf.getvalue()


def load_checkpoint(data: bytes) -> tuple[CTCModel, ModelConfig, dict]:
    """bytes -> (model in eval mode, its config, extra); refuses anything but plain content."""
    ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"not a {CHECKPOINT_FORMAT} checkpoint")
    if state_digest(ckpt["state_dict"]) != ckpt["digest"]:
        raise ValueError("checkpoint digest mismatch: corrupted weights")
    mcfg = ModelConfig.from_dict(ckpt["model_config"])
    model = CTCModel(mcfg)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, mcfg, ckpt["extra"]
