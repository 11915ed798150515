"""Command line for simulated traffic (`python -m speech_assets simulate ...`).

    simulate --out DIR --n 200 --seed 1 --accents us,gb --channels clean:0.8,noisy:0.2

Importing a real corpus is the user's audio, not a simulation: `speech_assets.audio.cli` (`import-corpus`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from speech_assets.simulation.speech import (
    ACCENTS,
    CHANNELS,
    TRAINING_ACCENTS,
    SimulationConfig,
    generate_batch,
    parse_channel_weights,
)

__all__ = ["main", "build_parser"]


def _float_range(text: str) -> tuple[float, float]:
    lo, sep, hi = text.partition(",")
    try:
        return (float(lo), float(hi if sep else lo))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI, got {text!r}") from None


def _int_range(text: str) -> tuple[int, int]:
    lo, hi = _float_range(text)
    return (int(lo), int(hi))


def _accent_list(text: str) -> list[str]:
    names = [a.strip() for a in text.split(",") if a.strip()]
    bad = [a for a in names if a not in ACCENTS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown accents {bad or text!r}; choose from {','.join(sorted(ACCENTS))}"
        )
    return names


def _channels(text: str) -> dict[str, float]:
    try:
        return parse_channel_weights(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speech-assets", description="Simulated speech traffic.")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="render a labelled batch with espeak-ng + sox")
    sim.add_argument("--out", required=True, help="batch folder to create")
    sim.add_argument("--n", type=int, default=200, help="number of utterances (200)")
    sim.add_argument("--seed", type=int, default=0, help="random seed (0)")
    sim.add_argument(
        "--accents", type=_accent_list, default=list(TRAINING_ACCENTS),
        help=f"comma-separated, from {','.join(sorted(ACCENTS))} "
        f"(default {','.join(TRAINING_ACCENTS)})",
    )
    sim.add_argument(
        "--channels", type=_channels, default={"clean": 0.8, "noisy": 0.2},
        help=f"NAME:WEIGHT,... from {','.join(CHANNELS)} (default clean:0.8,noisy:0.2)",
    )
    sim.add_argument("--speakers-per-accent", type=int, default=6)
    sim.add_argument("--speaker-seed", type=int, default=None,
                     help="seed of the speaker population (default: --seed)")
    sim.add_argument("--snr", type=_float_range, default=(5.0, 20.0), metavar="LO,HI",
                     help="SNR range in dB for the noisy channel (5,20)")
    sim.add_argument("--rate", type=_int_range, default=(140, 200), metavar="LO,HI",
                     help="speaking-rate range in words per minute (140,200)")
    sim.add_argument("--pii-fraction", type=float, default=0.03)
    sim.add_argument("--workers", type=int, default=2)
    sim.add_argument("--overwrite", action="store_true",
                     help="replace a batch already in --out")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = SimulationConfig(
            n_utterances=args.n,
            seed=args.seed,
            accents=args.accents,
            channels=args.channels,
            speakers_per_accent=args.speakers_per_accent,
            speaker_seed=args.speaker_seed,
            snr_db_range=args.snr,
            rate_wpm_range=args.rate,
            pii_fraction=args.pii_fraction,
            workers=args.workers,
        )
        t0 = time.monotonic()
        manifest = generate_batch(
            args.out, config, overwrite=args.overwrite,
            log_every=max(1, min(100, args.n // 10 or 1)),
        )
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dt = time.monotonic() - t0
    print(
        f"wrote {args.n} utterances to {manifest} in {dt:.1f} s "
        f"({args.n / dt if dt else 0:.1f} utt/s)"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
