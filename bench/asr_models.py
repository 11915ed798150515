"""WER and RTF of every model on speech it never trained on, zero-shot and after one fine-tune.  Measured, not assumed.

    python bench/asr_models.py [--quick] [--out bench/results/asr_models.json] [--work-dir /tmp/asr_models_bench]
                               [--ctc-utterances 1000] [--ctc-epochs 2] [--ctc-checkpoint CKPT]
                               [--drift-utterances 360] [--drift-speakers 36] [--heldout-speakers 12]
                               [--steps 150] [--batch-size 8] [--lr LR] [--audio-context-s 2|none]
                               [--full-steps 3] [--resamples 1000]

Test sets
- real: the 11 recordings of Debian's pocketsphinx-testdata (`evaluation.anchor.read_pocketsphinx_testdata`). They
  carry no speaker ids, so the interval is the anchor's bootstrap over utterances (`score_anchor`): a smoke alarm,
  not a benchmark. Whisper may have heard LibriVox recordings in its web-scale training data; nothing here can
  rule that out.
- drifted: simulated speech (`simulation.speech.generate_batch`) of the population the demo's drifted day adds: the
  caribbean accent (not in TRAINING_ACCENTS, so no CTC model here trained on it) on the demo drifted day's channel
  mix (clean 0.4 / telephone 0.6), speaker_seed 1 as the demo's population. It is split by speaker AND by espeak
  voice variant into a fine-tune part and held-out speakers (the test): no held-out speaker shares a voice
  variant with a fine-tune speaker (otherwise they would differ only in pitch). The sentences come from the same
  generator on both sides; how many held-out sentences also occur in the fine-tune part is printed.

Models (all served as the platform serves them, through the model-backend port)
- ctc: the built-in model trained from scratch (`backend_named("ctc").train`, default model config, lexicon + word
  LM decoder) on a simulated corpus of the demo's training population (day-00's config: us/gb/rp/scottish,
  clean 0.8 / noisy 0.2, 40 speakers per accent), `--ctc-utterances` x `--ctc-epochs`: a small budget so the
  bench finishes, far below the demo's (5000 utterances x 4 epochs); the output says which. Or `--ctc-checkpoint`.
- whisper tiny.en and whisper base, zero-shot (`WhisperBackend.pretrained_checkpoint`), int8, greedy.
- pocketsphinx (the bundled en-us model, default config; `evaluation.baseline`).
- tiny.en fine-tuned: `WhisperBackend.train` warm-started from the zero-shot tiny.en checkpoint (what the loop's
  drift retrain does from a Whisper champion) on the drifted population's fine-tune speakers, frozen encoder,
  `--steps` steps of batch `--batch-size`. Its end-of-run dev WER is decoded on up to 20 utterances of the
  fine-tune speakers themselves (a fit check, not a test: the held-out speakers are never shown to training).

How
- WER = corpus WER (word errors / reference words, `evaluation.metrics`) with a 95 % percentile bootstrap
  interval: by speaker on the drifted set (`evaluation.bootstrap.bootstrap_ci`), by utterance on the real set.
  Differences between two models are paired bootstraps on the same utterances.
- RTF = processing seconds / audio seconds, wall clock, over the same clips for every model: each set is cut into
  chunks of 8 clips (one Whisper batch); for every chunk every model transcribes it in turn (the order rotated
  chunk by chunk), so all models run under the same machine load; each model is warmed up on one clip first.
  RTF = sum of chunk times / sum of chunk audio; its 95 % interval is a bootstrap over chunks (paired over the
  same chunks for a ratio of two models). Threads: CTranslate2 intra_threads=2, torch 2 threads (CTC);
  pocketsphinx decodes on one thread (it has no threading). Whisper decodes with word timings, as served.
- Fine-tune cost: seconds per step of the frozen-encoder run (batch `--batch-size`) and of a full fine-tune
  (encoder trained too, batch 4, `--full-steps` steps on batch*steps utterances, no dev), each with a bootstrap
  interval over the per-step times (step 1 is left out: its start is not observed; fewer than 5 steps is too few
  to judge), the encoding seconds per utterance (bootstrap over encoder batches), the export seconds and the
  wall time of the whole frozen-encoder fine-tune (init conversion, encoding, steps, export, dev decode) = the
  training part of one drift retrain. To see every step's time the fine-tune's progress meter is made to report
  every step (`finetune._Reporter.meter`, patched for the run only; it changes no computation).
- Target checks, PASS/FAIL with the numbers: (i) served Whisper (tiny.en fine-tuned, and zero-shot) has a lower
  WER than pocketsphinx on both sets (with whether the paired interval excludes 0); (ii) tiny.en fine-tuned beats
  zero-shot base on the held-out speakers with non-overlapping intervals, at <= 1/2 of base's RTF; (iii) on the
  real set the fine-tuned tiny.en is not clearly worse than zero-shot tiny.en (`compare_anchor`).

Markdown tables on stdout; everything (hypotheses included) as JSON to `--out`. Simulated corpora are cached in
`--work-dir` (keyed by their config), so a rerun skips rendering. `--quick`: tiny sizes, a ~3-minute smoke run
whose numbers are too small to judge anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

THREADS = 2
CHUNK = 8  # clips per timed chunk = one Whisper batch
DRIFT_ACCENTS = ["caribbean"]
DRIFT_CHANNELS = {"clean": 0.4, "telephone": 0.6}  # the demo's drifted day (story.STORY_DAYS day-05)
MIN_FOR_INTERVAL = 5  # fewer samples than this: "too few to judge", no interval

T_START = time.monotonic()


def say(msg: str) -> None:
    print(f"[{(time.monotonic() - T_START) / 60:5.1f} min] {msg}", flush=True)


def meter(what: str, total: int, unit: str):
    from speech_assets.progress import ProgressMeter

    return ProgressMeter(what, total=total, unit=unit, every_s=10.0, emit=lambda line: say("  " + line))


def pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def interval(lo: float | None, hi: float | None, fmt=pct) -> str:
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)):
        return "too few to judge"
    return f"[{fmt(lo)}, {fmt(hi)}]"


def boot_mean(values, resamples: int, seed: int = 0) -> dict:
    """Mean of `values` with a 95 % percentile bootstrap interval (None below MIN_FOR_INTERVAL samples)."""
    v = np.asarray(values, dtype=np.float64)
    out = {"n": int(v.size), "mean": float(v.mean()) if v.size else None,
           "median": float(np.median(v)) if v.size else None, "low": None, "high": None}
    if v.size >= MIN_FOR_INTERVAL:
        rng = np.random.default_rng(seed)
        means = v[rng.integers(0, v.size, size=(resamples, v.size))].mean(axis=1)
        out["low"], out["high"] = (float(x) for x in np.quantile(means, [0.025, 0.975]))
    return out


def boot_ratio(num, den, resamples: int, seed: int = 0) -> dict:
    """sum(num) / sum(den) with a 95 % bootstrap interval over the paired items (None below MIN_FOR_INTERVAL)."""
    a, b = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = {"n": int(a.size), "value": float(a.sum() / b.sum()), "low": None, "high": None}
    if a.size >= MIN_FOR_INTERVAL:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, a.size, size=(resamples, a.size))
        r = a[idx].sum(axis=1) / b[idx].sum(axis=1)
        out["low"], out["high"] = (float(x) for x in np.quantile(r, [0.025, 0.975]))
    return out


# ------------------------------------------------------------------------------------------------ data --
@dataclass
class Utt:
    utt_id: str
    text: str
    speaker: str
    path: Path
    duration_s: float
    meta: dict = field(default_factory=dict)

    def wave(self) -> np.ndarray:
        import soundfile as sf

        return sf.read(self.path, dtype="float32")[0]


def simulated(work: Path, name: str, sim) -> list[Utt]:
    """Render `sim` into work/name-<config hash> unless it is there already; its utterances."""
    from speech_assets.simulation.speech import generate_batch

    want = json.dumps(sim.__dict__, sort_keys=True, default=str)
    out = work / f"{name}-{hashlib.sha256(want.encode()).hexdigest()[:10]}"
    stamp = out / "simulation_config.json"
    if not (out / "_READY").exists() or not stamp.exists() or stamp.read_text() != want:
        say(f"simulating {sim.n_utterances} utterances ({name}) into {out}")
        m = meter(f"simulate {name}", sim.n_utterances, "utterance")
        generate_batch(out, sim, overwrite=True, progress=lambda done, total: m.advance(done - m.done_steps),
                       log_every=0)
        stamp.write_text(want)
    else:
        say(f"{name}: cached at {out}")
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines() if x.strip()]
    return [Utt(Path(r["audio_filepath"]).stem, r["text"], r["speaker"], out / r["audio_filepath"],
                float(r["duration"]), {k: r[k] for k in ("accent", "channel")}) for r in rows]


def split_drifted(utts: list[Utt], n_heldout_speakers: int) -> tuple[list[Utt], list[Utt], list[str]]:
    """(fine-tune, held-out, held-out voice variants): held-out = every speaker of the first voice variants in
    sha256 order until at least `n_heldout_speakers` speakers are held out."""
    variant = lambda spk: spk.split("-")[1]  # noqa: E731  "<accent>-<variant>-p<pitch>"
    speakers = sorted({u.speaker for u in utts})
    variants = sorted({variant(s) for s in speakers}, key=lambda v: hashlib.sha256(v.encode()).hexdigest())
    held: list[str] = []
    for v in variants:
        if len([s for s in speakers if variant(s) in held]) >= n_heldout_speakers:
            break
        held.append(v)
    test = [u for u in utts if variant(u.speaker) in held]
    tune = [u for u in utts if variant(u.speaker) not in held]
    if not test or not tune:
        raise SystemExit(f"cannot split {len(speakers)} speakers into fine-tune and >= {n_heldout_speakers} held-out "
                         f"speakers by voice variant; simulate more speakers (--drift-speakers)")
    return tune, test, held


def describe_set(utts: list[Utt]) -> dict:
    return {"utterances": len(utts), "speakers": len({u.speaker for u in utts}),
            "words": sum(len(u.text.split()) for u in utts), "audio_s": round(sum(u.duration_s for u in utts), 2),
            "channels": dict(sorted({c: sum(u.meta.get("channel") == c for u in utts)
                                     for c in {u.meta.get("channel") for u in utts}}.items()))}


# ---------------------------------------------------------------------------------------------- models --
class PocketsphinxTimed:
    """The pocketsphinx baseline (`evaluation.baseline.transcribe_pocketsphinx`: default config, one decoder,
    utterances decoded in order) with the decoder built once, so timed chunks do not pay the model load.  Live
    CMN carries over between utterances in both, so the same clips in the same order give the same hypotheses
    (checked against `transcribe_pocketsphinx` on the whole real set and the drifted set's first chunk)."""

    def __init__(self):
        from pocketsphinx import Decoder

        from speech_assets.evaluation.baseline import normalize_transcript

        self.decoder = Decoder(loglevel="ERROR")
        self.normalize = normalize_transcript

    def __call__(self, waves: list[np.ndarray]) -> list[str]:
        out = []
        for w in waves:
            x = np.round(np.clip(np.asarray(w, dtype=np.float64), -1.0, 1.0) * 32767.0).astype("<i2")
            if x.size == 0:
                out.append("")
                continue
            self.decoder.start_utt()
            self.decoder.process_raw(x.tobytes(), no_search=False, full_utt=True)
            self.decoder.end_utt()
            hyp = self.decoder.hyp()
            out.append(self.normalize(hyp.hypstr if hyp is not None else ""))
        return out


def train_ctc(args, work: Path) -> tuple[bytes, dict]:
    from speech_assets.demo.landing import DEMO_SPEAKERS_PER_ACCENT
    from speech_assets.features.logmel import FeatureConfig, LogMelExtractor, to_storage_dtype
    from speech_assets.intake.manifest import split_for
    from speech_assets.model.backend import Sample, backend_named
    from speech_assets.simulation.speech import TRAINING_ACCENTS, SimulationConfig

    if args.ctc_checkpoint:
        blob = Path(args.ctc_checkpoint).read_bytes()
        say(f"ctc: loaded {args.ctc_checkpoint} ({len(blob) / 1e6:.1f} MB), not trained here")
        return blob, {"budget": f"loaded from {args.ctc_checkpoint}", "trained_here": False}
    sim = SimulationConfig(n_utterances=args.ctc_utterances, seed=100, speaker_seed=1,
                           speakers_per_accent=DEMO_SPEAKERS_PER_ACCENT, accents=list(TRAINING_ACCENTS),
                           channels={"clean": 0.8, "noisy": 0.2}, workers=THREADS)
    utts = simulated(work, "ctc-train", sim)
    t0 = time.monotonic()
    fc = FeatureConfig()
    feats = LogMelExtractor(fc)([u.wave() for u in utts])
    feats = [to_storage_dtype(f).astype(np.float32) for f in feats]  # as the feature store keeps them
    say(f"ctc: log-mel features of {len(utts)} utterances in {time.monotonic() - t0:.0f} s")
    split = {s: [] for s in ("train", "dev", "test")}
    for u, f in zip(utts, feats):
        split[split_for(f"speaker:{u.speaker}")].append(Sample(u.utt_id, u.text, features=f, duration_s=u.duration_s))
    config = {"epochs": args.ctc_epochs, "num_threads": THREADS, "lm_order": 3, "max_minutes": 30.0}
    m = meter("ctc train", args.ctc_epochs * math.ceil(len(split["train"]) / 32), "step")  # TrainConfig batch 32

    def progress(ev: dict):
        if ev.get("event") == "step":
            m.total = int(ev["of"])
            m.advance(int(ev["step"]) - m.done_steps, loss=f"{ev['loss']:.3f}")
        elif ev.get("event") == "eval":
            say(f"  ctc dev: step {ev['step']}, dev loss {ev['dev_loss']:.3f}, greedy dev WER {ev['dev_wer']:.3f}")
        elif ev.get("message"):
            say(f"  ctc: {ev['message']}")

    say(f"ctc: training from scratch on {len(split['train'])} utterances (dev {len(split['dev'])}; the "
        f"{len(split['test'])} test-split utterances unused), {args.ctc_epochs} epoch(s)")
    t0 = time.monotonic()
    outcome = backend_named("ctc").train(split["train"], split["dev"], config, seed=0, progress=progress)
    info = {
        "trained_here": True, "simulation": sim.__dict__, "train_utterances": len(split["train"]),
        "dev_utterances": len(split["dev"]),
        "train_audio_min": round(sum(s.duration_s for s in split["train"]) / 60, 2),
        "epochs": args.ctc_epochs, "steps": outcome.steps, "stopped_reason": outcome.stopped_reason,
        "train_seconds": round(outcome.seconds, 1), "wall_seconds_with_lm": round(time.monotonic() - t0, 1),
        "parameters": outcome.card.parameters, "best_dev_wer_greedy": outcome.best_dev_wer,
        "dev_wer_lexicon_lm": (outcome.summary.get("decoder") or {}).get("dev_wer"),
    }
    info["budget"] = (f"{info['train_utterances']} utterances ({info['train_audio_min']} min) x {args.ctc_epochs} "
                      f"epoch(s) = {outcome.steps} steps, {outcome.seconds / 60:.1f} min on {THREADS} threads "
                      f"(the demo trains 5000 utterances x 4 epochs)")
    say(f"ctc: {info['budget']}; dev WER lexicon+LM {info['dev_wer_lexicon_lm']}")
    return outcome.checkpoint, info


@contextmanager
def every_step_reported():
    """Make the Whisper fine-tune's progress meter report every step and encoder batch (timing only)."""
    from speech_assets.model.whisper import finetune as ft
    from speech_assets.progress import ProgressMeter

    original = ft._Reporter.meter
    ft._Reporter.meter = lambda self, what, total, unit: ProgressMeter(what, total=total, unit=unit, every_s=0.0)
    try:
        yield
    finally:
        ft._Reporter.meter = original


def finetune_whisper(wb, init: bytes, train, dev, config: dict, label: str, resamples: int) -> tuple[object, dict]:
    """Run `wb.train`, print its progress every ~10 s, and time every step and encoder batch from its events."""
    events: list[tuple[float, dict]] = []
    last_print = [0.0]

    def progress(ev: dict):
        now = time.monotonic()
        events.append((now, ev))
        if ev.get("event") != "step" and ev.get("stage") not in ("encoding", "features", "decode"):
            say(f"  {label}: {ev.get('message', ev)}")
        elif now - last_print[0] >= 10.0 or ev.get("step") == ev.get("of"):
            last_print[0] = now
            say(f"  {label}: {ev.get('message')}")

    t0 = time.monotonic()
    with every_step_reported():
        outcome = wb.train(train, dev, config, seed=0, init=init, progress=progress)
    wall = time.monotonic() - t0
    steps = [(t, e) for t, e in events if e.get("event") == "step"]
    step_s = [b[0] - a[0] for a, b in zip(steps, steps[1:])]  # steps 2..n
    enc = [(t, e) for t, e in events if e.get("event") == "stage" and e.get("stage") in ("encoding", "features")]
    enc_s = [b[0] - a[0] for a, b in zip(enc, enc[1:])]
    enc_n = [b[1]["step"] - a[1]["step"] for a, b in zip(enc, enc[1:])]
    s = outcome.summary
    cost = {
        "recipe": s.get("recipe"), "config": outcome.train_config, "steps": outcome.steps, "n_train": outcome.n_train,
        "n_skipped": outcome.n_skipped, "s_per_step_all_steps": s.get("s_per_step"),
        "s_per_step": boot_mean(step_s, resamples), "step_seconds": [round(x, 3) for x in step_s],
        "encode_seconds": s.get("encode_seconds"), "encode_s_per_utterance_all": s.get("encode_s_per_utterance"),
        "encode_s_per_utterance": boot_ratio(enc_s, enc_n, resamples) if enc_s else None,
        "export_seconds": s.get("export_seconds"), "dev_decode_seconds": s.get("dev_decode_seconds"),
        "dev_wer": outcome.best_dev_wer, "n_dev": s.get("n_dev"), "wall_seconds": round(wall, 2),
        "backend_seconds": round(outcome.seconds, 2), "trainable_parameters": s.get("trainable_parameters"),
        "loss_first_last": [outcome.loss_curve[0], outcome.loss_curve[-1]] if outcome.loss_curve else None,
    }
    return outcome, cost


# ------------------------------------------------------------------------------------------------ main --
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench/results/asr_models.json"))
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/asr_models_bench"))
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, numbers too small to judge")
    ap.add_argument("--ctc-utterances", type=int, default=None, help="default 1000 (quick 150)")
    ap.add_argument("--ctc-epochs", type=int, default=None, help="default 2 (quick 1)")
    ap.add_argument("--ctc-checkpoint", type=Path, help="use this CTC checkpoint instead of training one")
    ap.add_argument("--drift-utterances", type=int, default=None, help="default 360 (quick 40)")
    ap.add_argument("--drift-speakers", type=int, default=None, help="speakers of the drifted accent, default 36")
    ap.add_argument("--heldout-speakers", type=int, default=None, help="at least this many held out, default 12")
    ap.add_argument("--steps", type=int, default=None, help="frozen-encoder fine-tune steps, default 150 (quick 4)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=None, help="fine-tune learning rate (default: WhisperTrainConfig's)")
    ap.add_argument("--audio-context-s", default="default",
                    help="fine-tune audio context: 'none' (Whisper's 30 s window), seconds (fitted to the clip), "
                         "or 'default' (WhisperTrainConfig's)")
    ap.add_argument("--full-steps", type=int, default=None, help="full fine-tune steps (cost only), default 3")
    ap.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args()
    q = args.quick
    for name, full, quick in (("ctc_utterances", 1000, 150), ("ctc_epochs", 2, 1), ("drift_utterances", 360, 40),
                              ("drift_speakers", 36, 8), ("heldout_speakers", 12, 3), ("steps", 150, 4),
                              ("full_steps", 3, 2)):
        if getattr(args, name) is None:
            setattr(args, name, quick if q else full)

    import torch

    torch.set_num_threads(THREADS)
    from speech_assets.evaluation.anchor import (
        AnchorSet, anchor_table, compare_anchor, read_pocketsphinx_testdata, score_anchor, set_digest,
        smoke_alarm_sentence,
    )
    from speech_assets.evaluation.baseline import pocketsphinx_unavailable_reason, transcribe_pocketsphinx
    from speech_assets.evaluation.bootstrap import bootstrap_ci, paired_bootstrap
    from speech_assets.model.backend import Sample, backend_named
    from speech_assets.simulation.speech import SimulationConfig

    load_start = os.getloadavg()
    phase: dict[str, float] = {}
    t_phase = time.monotonic()
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    say(f"asr_models bench{' (--quick: sizes too small to judge anything)' if q else ''}; {os.cpu_count()} CPUs, "
        f"load average {load_start[0]:.2f}; {THREADS} threads")

    # ---- test sets
    real = read_pocketsphinx_testdata()
    anchor = AnchorSet(tuple(real), set_digest([u.manifest_entry() for u in real]), "package (not in a store)")
    real_waves = [u.waveform for u in real]
    real_audio = sum(len(w) for w in real_waves) / 16000
    say(f"real: {len(real)} pocketsphinx-testdata utterances, {anchor.n_words} words, {real_audio:.1f} s audio")

    dsim = SimulationConfig(n_utterances=args.drift_utterances, seed=105, speaker_seed=1,
                            speakers_per_accent=args.drift_speakers, accents=DRIFT_ACCENTS,
                            channels=dict(DRIFT_CHANNELS), workers=THREADS, id_prefix="drift")
    drifted = simulated(work, "drifted", dsim)
    tune, test, held_variants = split_drifted(drifted, args.heldout_speakers)
    tune_texts = {u.text for u in tune}
    tune_words = {w for u in tune for w in u.text.split()}
    test_tokens = [w for u in test for w in u.text.split()]
    overlap = {"heldout_texts_in_finetune": sum(u.text in tune_texts for u in test),
               "heldout_word_tokens_seen_in_finetune": round(sum(w in tune_words for w in test_tokens)
                                                             / max(1, len(test_tokens)), 3),
               "heldout_voice_variants": held_variants,
               "shared_speakers": sorted({u.speaker for u in tune} & {u.speaker for u in test})}
    say(f"drifted: {describe_set(tune)['utterances']} fine-tune / {len(test)} held-out utterances; held-out "
        f"speakers {sorted({u.speaker for u in test})}")

    # ---- models
    phase["test sets (read, simulate, split)"] = time.monotonic() - t_phase
    t_phase = time.monotonic()
    ctc_blob, ctc_info = train_ctc(args, work)
    phase["ctc (simulate, features, train, LM)"] = time.monotonic() - t_phase
    t_phase = time.monotonic()
    wb = backend_named("whisper")
    tiny_blob = wb.pretrained_checkpoint("tiny.en")
    base_blob = wb.pretrained_checkpoint("base")

    def wsample(u: Utt) -> Sample:
        return Sample(u.utt_id, u.text, waveform=u.wave, duration_s=u.duration_s)

    dev = sorted(tune, key=lambda u: hashlib.sha256(u.utt_id.encode()).hexdigest())[:20]
    ft_config = {"base_model": "tiny.en", "max_steps": args.steps, "batch_size": args.batch_size,
                 "num_threads": THREADS, "dev_utterances": len(dev)}
    if args.lr is not None:
        ft_config["lr"] = args.lr
    if args.audio_context_s != "default":
        ft_config["audio_context_s"] = None if args.audio_context_s.lower() == "none" else float(args.audio_context_s)
    say(f"fine-tune tiny.en, frozen encoder: {len(tune)} utterances, {args.steps} steps x batch {args.batch_size}")
    ft_outcome, ft_cost = finetune_whisper(wb, tiny_blob, [wsample(u) for u in tune], [wsample(u) for u in dev],
                                           ft_config, "tiny.en fine-tune", args.resamples)
    full_n = min(len(tune), 4 * args.full_steps)
    full_config = {"base_model": "tiny.en", "max_steps": args.full_steps, "batch_size": 4, "full_finetune": True,
                   "num_threads": THREADS, "dev_utterances": 0, "max_train_utterances": full_n,
                   **({"audio_context_s": ft_config["audio_context_s"]} if "audio_context_s" in ft_config else {})}
    phase["whisper checkpoints + frozen-encoder fine-tune"] = time.monotonic() - t_phase
    t_phase = time.monotonic()
    say(f"full fine-tune (cost only): {args.full_steps} steps x batch 4 on {full_n} utterances")
    _, full_cost = finetune_whisper(wb, tiny_blob, [wsample(u) for u in tune], [], full_config, "full fine-tune",
                                    args.resamples)

    phase["full fine-tune (cost)"] = time.monotonic() - t_phase
    t_phase = time.monotonic()
    ps_reason = pocketsphinx_unavailable_reason()
    recognizers = {
        "ctc": backend_named("ctc").load(ctc_blob),
        "whisper tiny.en zero-shot": wb.load(tiny_blob, cpu_threads=THREADS),
        "whisper base zero-shot": wb.load(base_blob, cpu_threads=THREADS),
        "whisper tiny.en fine-tuned": wb.load(ft_outcome.checkpoint, cpu_threads=THREADS),
    }
    models = {name: (lambda r: (lambda waves: [t.text for t in r.transcribe_batch(waves)]))(r)
              for name, r in recognizers.items()}
    if ps_reason is None:
        models["pocketsphinx"] = None  # a fresh decoder per set (its CMN carries over), made below
    else:
        say(f"pocketsphinx skipped: {ps_reason}")
    names = list(models)

    # ---- transcribe every set with every model, interleaved chunk by chunk
    sets = {"real": (real_waves, [u.utt_id for u in real]),
            "drifted": ([u.wave() for u in test], [u.utt_id for u in test])}
    n_chunks = sum(math.ceil(len(w) / CHUNK) for w, _ in sets.values())
    m = meter("transcribe (all models, interleaved)", n_chunks * len(names), "chunk-model")
    hyps: dict[str, dict[str, list[str]]] = {s: {n: [] for n in names} for s in sets}
    times: dict[str, dict[str, list[float]]] = {s: {n: [] for n in names} for s in sets}
    chunk_audio: dict[str, list[float]] = {s: [] for s in sets}
    ps_check = {}
    for sname, (waves, _) in sets.items():
        fns = dict(models)
        if "pocketsphinx" in fns:
            fns["pocketsphinx"] = PocketsphinxTimed()
        for n in names:  # warm-up, untimed (pocketsphinx warms up on its own decoder copy: its CMN carries over)
            (PocketsphinxTimed() if n == "pocketsphinx" else fns[n])(waves[:1])
        for k, start in enumerate(range(0, len(waves), CHUNK)):
            chunk = waves[start: start + CHUNK]
            chunk_audio[sname].append(sum(len(w) for w in chunk) / 16000)
            for n in names[k % len(names):] + names[: k % len(names)]:
                t0 = time.perf_counter()
                out = fns[n](chunk)
                times[sname][n].append(time.perf_counter() - t0)
                hyps[sname][n].extend(out)
                m.advance(1)
        if "pocketsphinx" in names:  # whole real set; the drifted set's first chunk (the same prefix of clips)
            k = len(waves) if sname == "real" else min(CHUNK, len(waves))
            same = transcribe_pocketsphinx(waves[:k]) == hyps[sname]["pocketsphinx"][:k]
            ps_check[f"{sname} (first {k} clips)"] = same
    phase["transcribe + time all models"] = time.monotonic() - t_phase

    # ---- scores
    test_rows = {n: [{"utterance_id": u.utt_id, "reference": u.text, "hypothesis": h, "speaker": u.speaker}
                     for u, h in zip(test, hyps["drifted"][n])] for n in names}
    real_res = {n: score_anchor(lambda _w, n=n: hyps["real"][n], anchor, model=n, n_resamples=args.resamples)
                for n in names}
    drift_res = {n: bootstrap_ci(test_rows[n], "wer", n_resamples=args.resamples) for n in names}
    rtf = {s: {n: boot_ratio(times[s][n], chunk_audio[s], args.resamples) for n in names} for s in sets}

    def paired(a: str, b: str, sname: str):
        if sname == "drifted":
            return paired_bootstrap(test_rows[a], test_rows[b], "wer", n_resamples=args.resamples)
        return compare_anchor(real_res[a], real_res[b], n_resamples=args.resamples).result

    # ---- target checks
    checks = []
    FT, TZ, BZ, PS = ("whisper tiny.en fine-tuned", "whisper tiny.en zero-shot", "whisper base zero-shot",
                      "pocketsphinx")
    wer_of = {"real": lambda n: real_res[n].wer, "drifted": lambda n: drift_res[n].estimate}
    if PS in names:
        for who in (FT, TZ):
            parts, ok = [], True
            for sname in ("real", "drifted"):
                d = paired(who, PS, sname)
                ok &= d.delta < 0
                clear = "clearly" if d.high < 0 else "not clearly (interval includes 0)"
                parts.append(f"{sname}: {pct(wer_of[sname](who))} vs {pct(wer_of[sname](PS))}, delta "
                             f"{100 * d.delta:+.1f} pts [{100 * d.low:+.1f}, {100 * d.high:+.1f}], {clear}")
            checks.append({"check": f"(i) {who} beats pocketsphinx on both sets", "pass": bool(ok),
                           "detail": "; ".join(parts)})
    else:
        checks.append({"check": "(i) served Whisper beats pocketsphinx", "pass": None, "detail": ps_reason})
    a, b = drift_res[FT], drift_res[BZ]
    ratio = boot_ratio(times["drifted"][FT], times["drifted"][BZ], args.resamples)
    non_overlap = a.high < b.low
    fast = ratio["value"] <= 0.5
    d = paired(FT, BZ, "drifted")
    checks.append({"check": "(ii) tiny.en fine-tuned beats base zero-shot on held-out speakers, non-overlapping "
                            "intervals, at <= 1/2 of base's RTF", "pass": bool(non_overlap and fast),
                   "detail": (f"WER {pct(a.estimate)} {interval(a.low, a.high)} vs {pct(b.estimate)} "
                              f"{interval(b.low, b.high)}: {'non-overlapping' if non_overlap else 'OVERLAPPING'} "
                              f"(paired delta {100 * d.delta:+.1f} pts [{100 * d.low:+.1f}, {100 * d.high:+.1f}], "
                              f"{d.n_speakers} speakers); RTF {rtf['drifted'][FT]['value']:.3f} vs "
                              f"{rtf['drifted'][BZ]['value']:.3f}, ratio {ratio['value']:.2f} "
                              f"{interval(ratio['low'], ratio['high'], lambda x: f'{x:.2f}')} "
                              f"({ratio['n']} paired chunks) {'<=' if fast else '>'} 0.5")})
    cmp = compare_anchor(real_res[FT], real_res[TZ], n_resamples=args.resamples)
    checks.append({"check": "(iii) no regression on the real set: tiny.en fine-tuned vs zero-shot (compare_anchor "
                            "not clearly worse)", "pass": not cmp.clearly_worse, "detail": cmp.detail()})

    # ---- print
    wall = time.monotonic() - T_START
    print("\n## asr_models: WER and RTF on speech the models never trained on"
          + (" (--quick: too small to judge)" if q else ""))
    print(f"\nmachine: {os.cpu_count()} CPUs ({platform.machine()}), {THREADS} threads; load average "
          f"{load_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end (a shared machine); wall {wall / 60:.1f} min")
    print("\n### Test sets\n")
    print("| set | utterances | speakers | words | audio (s) | what |")
    print("|---|---:|---:|---:|---:|---|")
    print(f"| real | {len(real)} | n/a (no ids; each utterance its own cluster) | {anchor.n_words} | {real_audio:.1f} "
          f"| pocketsphinx-testdata: 5 cards, 5 LibriVox, 1 goforward |")
    dt, dtest = describe_set(tune), describe_set(test)
    print(f"| drifted: fine-tune part | {dt['utterances']} | {dt['speakers']} | {dt['words']} | {dt['audio_s']} | "
          f"caribbean, {dt['channels']} (trains the fine-tune only) |")
    print(f"| drifted: held-out (test) | {dtest['utterances']} | {dtest['speakers']} | {dtest['words']} | "
          f"{dtest['audio_s']} | caribbean, {dtest['channels']}; voice variants {held_variants} not in the "
          f"fine-tune part |")
    print(f"\nheld-out sentences that also occur verbatim in the fine-tune part: "
          f"{overlap['heldout_texts_in_finetune']}/{len(test)}; held-out word tokens whose word occurs in the "
          f"fine-tune part: {100 * overlap['heldout_word_tokens_seen_in_finetune']:.0f} % (one sentence generator "
          f"on both sides: the fine-tune also learns the domain's vocabulary)")
    print(f"\nctc budget: {ctc_info['budget']}")

    print("\n### WER and RTF (95 % intervals: speaker bootstrap on drifted, utterance bootstrap on real; RTF: "
          f"bootstrap over chunks of {CHUNK} clips)\n")
    print("| model | set | WER | 95 % interval | utterances | speakers | words | RTF | RTF 95 % interval (chunks) |")
    print("|---|---|---:|---|---:|---:|---:|---:|---|")
    for n in names:
        r, dr = real_res[n], drift_res[n]
        rr, rd = rtf["real"][n], rtf["drifted"][n]
        print(f"| {n} | real | {pct(r.wer)} | {interval(*r.wer_ci)} | {r.n_utterances} | n/a | {r.n_words} | "
              f"{rr['value']:.3f} | {interval(rr['low'], rr['high'], lambda x: f'{x:.3f}')} ({rr['n']}) |")
        print(f"| {n} | drifted held-out | {pct(dr.estimate)} | {interval(dr.low, dr.high)} | {dr.n_utterances} | "
              f"{dr.n_speakers} | {sum(len(u.text.split()) for u in test)} | {rd['value']:.3f} | "
              f"{interval(rd['low'], rd['high'], lambda x: f'{x:.3f}')} ({rd['n']}) |")
    if ps_check:
        print(f"\npocketsphinx timed with one decoder per set; hypotheses equal transcribe_pocketsphinx's: {ps_check}")
    print(f"\n### Real set per model ({smoke_alarm_sentence(len(real))})\n")
    print(anchor_table([real_res[n] for n in names]))

    print("\n### Target checks\n")
    print("| check | result | numbers |")
    print("|---|---|---|")
    for c in checks:
        res = "n/a" if c["pass"] is None else ("PASS" if c["pass"] else "FAIL")
        print(f"| {c['check']} | {res} | {c['detail']} |")

    print("\n### Fine-tune cost (tiny.en, 2 threads)\n")
    print("| what | value | 95 % interval | n |")
    print("|---|---:|---|---:|")
    for label, c in ((f"frozen encoder, batch {args.batch_size}", ft_cost), ("full fine-tune, batch 4", full_cost)):
        sp = c["s_per_step"]
        print(f"| s/step, {label} (steps 2..{c['steps']}) | {sp['mean']:.2f} | "
              f"{interval(sp['low'], sp['high'], lambda x: f'{x:.2f}')} | {sp['n']} |" if sp["n"] else
              f"| s/step, {label} | {c['s_per_step_all_steps']} (all steps, one run) | too few to judge | "
              f"{c['steps']} |")
    if full_cost["s_per_step"]["mean"] and ft_cost["s_per_step"]["mean"]:
        print(f"| full / frozen s/step | {full_cost['s_per_step']['mean'] / ft_cost['s_per_step']['mean']:.1f}x | "
              f"(consecutive runs, one process) | |")
    e = ft_cost["encode_s_per_utterance"]
    if e:
        print(f"| encoding s/utterance (frozen encoder, batches of {args.batch_size}) | {e['value']:.3f} | "
              f"{interval(e['low'], e['high'], lambda x: f'{x:.3f}')} | {e['n']} batches |")
    print(f"| encoding, all {ft_cost['n_train']} utterances (s) | {ft_cost['encode_seconds']} | one run | 1 |")
    print(f"| export to CTranslate2 (s), frozen run / full run | {ft_cost['export_seconds']} / "
          f"{full_cost['export_seconds']} | one export each | 1+1 |")
    print(f"| dev decode (s), {ft_cost['n_dev']} fine-tune-speaker utterances | {ft_cost['dev_decode_seconds']} | "
          f"one run | 1 |")
    print(f"| whole frozen-encoder fine-tune = one drift retrain's training (s) | {ft_cost['wall_seconds']} | one run "
          f"| 1 |")
    print(f"\nfine-tune: {ft_cost['n_train']} utterances, {ft_cost['steps']} steps, loss {[round(x, 3) for x in ft_cost['loss_first_last'] or []]} (first, last step), "
          f"dev WER on fine-tune speakers (fit check, not a test) {pct(ft_cost['dev_wer'])} on {ft_cost['n_dev']}")
    print("\n### Wall time per phase\n")
    print("| phase | minutes |")
    print("|---|---:|")
    for k, v in phase.items():
        print(f"| {k} | {v / 60:.1f} |")
    print(f"| whole bench | {wall / 60:.1f} |")

    # ---- JSON
    result = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "threads": THREADS,
                    "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "wall_seconds": round(wall, 1), "phase_seconds": {k: round(v, 1) for k, v in phase.items()},
        "sets": {"real": {"utterances": len(real), "words": anchor.n_words, "audio_s": real_audio,
                          "set_digest": anchor.set_digest},
                 "drifted": {"simulation": dsim.__dict__, "finetune": dt, "heldout": dtest, "overlap": overlap,
                             "heldout_speakers": sorted({u.speaker for u in test})}},
        "ctc": ctc_info,
        "models": {n: {"real": real_res[n].to_dict(), "drifted": {**drift_res[n].to_dict(), "rows": test_rows[n]},
                       "rtf": {s: {**rtf[s][n], "chunk_seconds": times[s][n], "chunk_audio_s": chunk_audio[s]}
                               for s in sets}} for n in names},
        "pocketsphinx": {"unavailable": ps_reason, "matches_transcribe_pocketsphinx": ps_check},
        "checks": checks,
        "finetune": {"frozen": ft_cost, "full": full_cost, "card": ft_outcome.card.to_dict()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
