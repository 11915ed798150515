"""Statistics users can trust about a speech-recognition model.

Per-utterance error counts and corpus WER/CER (:mod:`.metrics`), speaker-level
bootstrap intervals (:mod:`.bootstrap`), per-subgroup tables (:mod:`.slices`),
confidence calibration (:mod:`.calibration`), real-time factor
(:mod:`.latency`), the champion/challenger promotion gate (:mod:`.promotion`),
the evaluation report (:mod:`.report`) and an optional pocketsphinx baseline
(:mod:`.baseline`).

Pure domain code: no Dagster import anywhere in this package, so every piece
is tested on its own and the orchestration layer only wires it up.
"""
