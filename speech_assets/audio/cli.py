"""Command line for importing a real corpus (`python -m speech_assets import-corpus ...`).

    import-corpus --layout {commonvoice,librispeech,nemo,auto} --src DIR --out DIR

Simulated traffic is not the user's audio: `speech_assets.simulation.cli` (`simulate`).
"""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speech-assets", description="Corpus import.")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    sub = parser.add_subparsers(dest="command", required=True)

    imp = sub.add_parser("import-corpus", help="turn a corpus folder into a NeMo landing batch")
    imp.add_argument("--layout", required=True,
                     choices=["commonvoice", "librispeech", "nemo", "auto"])
    imp.add_argument("--src", required=True, help="corpus folder")
    imp.add_argument("--out", required=True, help="batch folder to write")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from speech_assets.audio.corpora import import_corpus

    try:
        report = import_corpus(args.layout, args.src, args.out)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"imported {report.written} rows ({report.layout}) to {report.manifest}; "
        f"skipped {len(report.skipped)}; transcripts normalised {report.normalised}"
        + "".join(f"\n  quarantined, {reason}: {n}" for reason, n in report.skipped_by_reason.items())
    )
    for index, reason in report.skipped[:20]:
        print(f"  skipped row {index}: {reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
