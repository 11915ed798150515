"""Can the default demo training reach its WER target inside the CPU budget?  Measured, not assumed.

    python bench/train_budget.py [--corpus-dir DIR] [--utterances 6000] [--speakers-per-accent 40]
                                 [--seed 100] [--speaker-seed 1] [--lm-order 3]
                                 [--train key=value ...] [--model key=value ...] [--beam 8]

Simulates the demo's backlog batch (day-00: seen accents us/gb/rp/scottish,
clean 80 % / noisy 20 %, 40 speakers per accent) with generate_batch, unless the corpus dir already
holds that batch; caches its log-mel features (speech_assets.features.logmel) next to it; splits train/dev/
test by speaker hash (speech_assets.intake.manifest.split_for); trains with
the default ModelConfig/TrainConfig (overridable with --train/--model for
experiments); then transcribes the test split through the serving API
(Transcriber) and prints train minutes, steps, parameters, test WER/CER
(jiwer) greedy and with the checkpoint's lexicon + word LM decoder (fitted on
the train transcripts, tuned on dev), per accent x channel, and the
real-time factor of inference.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jiwer  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from speech_assets.simulation.speech import SimulationConfig, generate_batch  # noqa: E402
from speech_assets.features.logmel import FeatureConfig, LogMelExtractor  # noqa: E402
from speech_assets.intake.manifest import split_for  # noqa: E402
from speech_assets.model.architecture import ModelConfig  # noqa: E402
from speech_assets.model.inference import Transcriber  # noqa: E402
from speech_assets.model.train import TrainConfig, checkpoint_bytes, train  # noqa: E402

def load_corpus(corpus_dir: Path, sim: SimulationConfig) -> list[dict]:
    manifest = corpus_dir / "manifest.jsonl"
    stamp = corpus_dir / "simulation_config.json"
    want = json.dumps(sim.__dict__, sort_keys=True, default=str)
    if not (corpus_dir / "_READY").exists() or not stamp.exists() or stamp.read_text() != want:
        print(f"simulating {sim.n_utterances} utterances into {corpus_dir} ...", flush=True)
        t0 = time.monotonic()
        generate_batch(corpus_dir, sim, overwrite=True)
        stamp.write_text(want)
        print(f"  done in {time.monotonic() - t0:.0f} s", flush=True)
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    fc = FeatureConfig()
    cache = corpus_dir / f"logmel-{fc.digest()}.npz"
    if cache.exists():
        z = np.load(cache)
        feats, offsets = z["feats"], z["offsets"]
    else:
        t0 = time.monotonic()
        # the pipeline's extractor, so these are the features training and serving see
        waves = [sf.read(corpus_dir / row["audio_filepath"], dtype="float32")[0] for row in rows]
        parts = LogMelExtractor(fc)(waves)
        offsets = np.cumsum([0] + [len(p) for p in parts])
        feats = np.concatenate(parts)
        np.savez(cache, feats=feats, offsets=offsets)
        print(f"features for {len(rows)} utterances in {time.monotonic() - t0:.0f} s", flush=True)
    feats = feats.astype(np.float16).astype(np.float32)  # as the feature store keeps them
    for i, row in enumerate(rows):
        row["feats"] = feats[offsets[i] : offsets[i + 1]]
        row["split"] = split_for(f"speaker:{row['speaker']}")
    return rows


def print_slices(test: list[dict], refs: list[str], hyps: list[str]) -> None:
    """WER per accent x channel of the test split."""
    for acc in sorted({r["accent"] for r in test}):
        for ch in sorted({r["channel"] for r in test}):
            idx = [i for i, r in enumerate(test) if r["accent"] == acc and r["channel"] == ch]
            if idx:
                print(f"   {acc:9s} {ch:6s} n={len(idx):3d}  WER "
                      f"{jiwer.wer([refs[i] for i in idx], [hyps[i] for i in idx]):.4f}")


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for p in pairs:
        k, _, v = p.partition("=")
        try:
            out[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k] = v
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus-dir", type=Path, help="default /tmp/train_corpus/sim-n<N>-s<seed>-spk<K>")
    ap.add_argument("--utterances", type=int, default=6000)
    ap.add_argument("--speakers-per-accent", type=int, default=40)
    ap.add_argument("--seed", type=int, default=100, help="simulation seed (the demo's day-00 uses 100)")
    ap.add_argument("--speaker-seed", type=int, default=1, help="speaker population seed (the demo uses 1)")
    ap.add_argument("--train", nargs="*", default=[], metavar="KEY=VALUE", help="TrainConfig overrides")
    ap.add_argument("--model", nargs="*", default=[], metavar="KEY=VALUE", help="ModelConfig overrides")
    ap.add_argument("--beam", type=int, default=0, help="also score prefix beam search of this width")
    ap.add_argument("--simulate-only", action="store_true", help="simulate and cache features, then stop")
    ap.add_argument("--save", type=Path, help="write the checkpoint here")
    ap.add_argument("--lm-order", type=int, default=3, help="word LM order for lexicon decoding (0: none)")
    ap.add_argument("--load", type=Path, help="skip training: evaluate this saved checkpoint's weights")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.corpus_dir is None:
        args.corpus_dir = Path(
            f"/tmp/train_corpus/sim-n{args.utterances}-s{args.seed}-spk{args.speakers_per_accent}"
            + (f"-ss{args.speaker_seed}" if args.speaker_seed is not None else "")
        )

    sim = SimulationConfig(
        n_utterances=args.utterances, seed=args.seed, speakers_per_accent=args.speakers_per_accent, workers=2,
        speaker_seed=args.speaker_seed,
    )
    rows = load_corpus(args.corpus_dir, sim)
    if args.simulate_only:
        return
    split = {s: [r for r in rows if r["split"] == s] for s in ("train", "dev", "test")}
    for s, rs in split.items():
        print(f"{s:5s}: {len(rs):5d} utterances, {len({r['speaker'] for r in rs}):3d} speakers, "
              f"{sum(r['duration'] for r in rs) / 60:.1f} min audio")

    mcfg = ModelConfig(**_overrides(args.model))
    tcfg = TrainConfig(**_overrides(args.train))
    print("model config:", json.dumps(mcfg.to_dict()))
    print("train config:", json.dumps(tcfg.to_dict()))

    def progress(ev: dict) -> None:
        if ev["event"] == "eval":
            print(f"  step {ev['step']:5d}  {ev['elapsed_s'] / 60:5.2f} min  dev loss {ev['dev_loss']:.3f}  "
                  f"dev WER {ev['dev_wer']:.4f}", flush=True)
        elif ev["step"] % 50 == 0:
            print(f"  step {ev['step']:5d}  {ev['elapsed_s'] / 60:5.2f} min  loss {ev['loss']:.3f}  "
                  f"lr {ev['lr']:.2e}", flush=True)

    if args.load:
        from types import SimpleNamespace

        from speech_assets.model.train import load_checkpoint

        loaded, mcfg, _ = load_checkpoint(args.load.read_bytes())
        res = SimpleNamespace(
            state_dict=loaded.state_dict(), train_config=tcfg.to_dict(), seconds=0.0, steps=0,
            epochs_completed=0.0, stopped_reason=f"loaded {args.load}", best_step=None, best_dev_wer=None,
            n_train=0, n_skipped=0, num_parameters=loaded.num_parameters(), digest="",
        )
    else:
        res = train(
            [(r["feats"], r["text"]) for r in split["train"]],
            [(r["feats"], r["text"]) for r in split["dev"]],
            mcfg, tcfg, progress=progress,
        )
    extra = {"train_config": res.train_config, "feature_config": FeatureConfig().to_dict()}
    t0 = time.monotonic()
    from speech_assets.model.architecture import CTCModel
    from speech_assets.model.lexicon_decode import fit_decoder_spec

    model = CTCModel(mcfg)
    model.load_state_dict(res.state_dict)
    if args.lm_order:
        extra["decoder"] = fit_decoder_spec(
            model, [r["text"] for r in split["train"]], [(r["feats"], r["text"]) for r in split["dev"]],
            order=args.lm_order,
        )
        spec = extra["decoder"]
        print(f"LM: order {args.lm_order}, {spec['lexicon_words']} words, lm_weight {spec['lm_weight']}, "
              f"word_score {spec['word_score']}, dev WER {spec['dev_wer']:.4f}, fitted+tuned in "
              f"{time.monotonic() - t0:.0f} s", flush=True)
    blob = checkpoint_bytes(res.state_dict, mcfg, extra)
    if args.save:
        args.save.write_bytes(blob)

    tr = Transcriber.from_checkpoint(blob, decoder="greedy")
    test = split["test"]
    waves = [sf.read(args.corpus_dir / r["audio_filepath"], dtype="float32")[0] for r in test]
    # the serving features must be the training features, bit for bit
    assert np.array_equal(tr.features(waves[0]).numpy(), test[0]["feats"]), "feature mismatch"
    t0 = time.perf_counter()
    outs = tr.transcribe_batch(waves)
    infer_s = time.perf_counter() - t0
    audio_s = sum(len(w) for w in waves) / 16000
    t0 = time.perf_counter()
    for w in waves[:50]:
        tr.transcribe(w)
    single_s = time.perf_counter() - t0
    single_audio = sum(len(w) for w in waves[:50]) / 16000
    refs, hyps = [r["text"] for r in test], [o.text for o in outs]

    print("\n=== results ===")
    print(f"train: {res.seconds / 60:.2f} min, {res.steps} steps ({res.epochs_completed:.1f} epochs), "
          f"stopped: {res.stopped_reason}, best dev step {res.best_step} (dev WER {res.best_dev_wer})")
    print(f"train utterances {res.n_train} (skipped {res.n_skipped}), parameters {res.num_parameters:,}")
    print(f"test ({len(test)} utt, {audio_s / 60:.1f} min): WER {jiwer.wer(refs, hyps):.4f}  "
          f"CER {jiwer.cer(refs, hyps):.4f}  (greedy)")
    print_slices(test, refs, hyps)
    if "decoder" in extra:
        tl = Transcriber.from_checkpoint(blob)
        t0 = time.perf_counter()
        lh = [o.text for o in tl.transcribe_batch(waves)]
        lm_s = time.perf_counter() - t0
        print(f"test lexicon+LM: WER {jiwer.wer(refs, lh):.4f}  CER {jiwer.cer(refs, lh):.4f}  "
              f"RTF {lm_s / audio_s:.4f}")
        print_slices(test, refs, lh)
        bad = [(r, h) for r, h in zip(refs, lh) if r != h][:8]
        for r, h in bad:
            print(f"  REF {r}\n  LM  {h}")
    print(f"mean confidence {np.mean([o.confidence for o in outs]):.3f}")
    print(f"inference RTF (2 threads): batched {infer_s / audio_s:.4f}, one at a time {single_s / single_audio:.4f}")
    if args.beam:
        tb = Transcriber.from_checkpoint(blob, beam_width=args.beam)
        t0 = time.perf_counter()
        bh = [o.text for o in tb.transcribe_batch(waves)]
        print(f"beam {args.beam}: WER {jiwer.wer(refs, bh):.4f}  CER {jiwer.cer(refs, bh):.4f}  "
              f"RTF {(time.perf_counter() - t0) / audio_s:.4f}")
    print(f"digest {res.digest}")
    bad = [(r, h) for r, h in zip(refs, hyps) if r != h][:8]
    for r, h in bad:
        print(f"  REF {r}\n  HYP {h}")


if __name__ == "__main__":
    main()
