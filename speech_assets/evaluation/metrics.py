"""Per-utterance edit counts and corpus WER / CER.

A *row* is one test utterance as a mapping (a dict, or one element of
``pyarrow.Table.to_pylist()``) with at least:

``reference``   the reference transcript (required, may be empty)
``hypothesis``  the model output (``None`` is read as "no output", i.e. "")
``speaker``     speaker id (needed by the bootstrap, not by the counts)

and optionally ``utterance_id``, ``confidence`` and the subgroup columns
(``accent``, ``channel``, ``snr_band``, ``duration_band``).

:func:`score_rows` adds integer edit counts to each row (see
:data:`COUNT_COLUMNS`).  Corpus WER is then ``sum(errors) / sum(reference
words)`` - a ratio of sums, not a mean of per-utterance WERs, so a two-word
utterance does not weigh as much as a forty-word one - and it can be
re-aggregated over any subset (slices, bootstrap resamples) from the counts
alone, without re-running the alignment.

Text handling: runs of whitespace are collapsed and the ends stripped before
alignment (so a double space is not a character error), but case and
punctuation are *not* touched.  Transcripts are expected to be normalized
upstream (lowercase a-z, apostrophe, single spaces); a metric that silently
lowercased would hide a normalization bug instead of counting it.

Empty references (silence, noise-only clips) are kept, not dropped: such an
utterance has 0 reference words and every hypothesis word is an insertion, so
a model that hallucinates words on silence is charged for it in the corpus
WER.  Corpus WER is undefined when the whole selection has no reference word:
:func:`corpus_wer` / :func:`corpus_cer` raise ``ValueError`` then, while the
internal :func:`rate` returns NaN (bootstrap resamples and tiny slices use it,
and NaN fails every ``<=`` comparison a gate makes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import jiwer
import numpy as np

__all__ = [
    "CHAR_COUNT_COLUMNS",
    "COUNT_COLUMNS",
    "Metric",
    "ScoredRows",
    "WORD_COUNT_COLUMNS",
    "as_rows",
    "corpus_cer",
    "corpus_wer",
    "error_arrays",
    "normalize_whitespace",
    "rate",
    "score_rows",
    "utterance_counts",
    "utterance_wer",
]

Metric = Literal["wer", "cer"]

WORD_COUNT_COLUMNS: tuple[str, ...] = (
    "word_substitutions",
    "word_deletions",
    "word_insertions",
    "ref_words",
)
CHAR_COUNT_COLUMNS: tuple[str, ...] = (
    "char_substitutions",
    "char_deletions",
    "char_insertions",
    "ref_chars",
)
COUNT_COLUMNS: tuple[str, ...] = WORD_COUNT_COLUMNS + CHAR_COUNT_COLUMNS


def normalize_whitespace(text: str | None) -> str:
    """Collapse whitespace runs and strip; ``None`` becomes ``""``."""
    if text is None:
        return ""
    return " ".join(str(text).split())


def utterance_counts(reference: str, hypothesis: str | None) -> dict[str, int]:
    """Word and character edit counts of one utterance, via jiwer.

    Reference lengths come from the alignment itself (hits + substitutions +
    deletions) so they always agree with the error counts.
    """
    if reference is None:
        # a missing reference is a data bug upstream, not an empty utterance
        raise ValueError("reference is None; use '' for an utterance with no speech")
    ref = normalize_whitespace(reference)
    hyp = normalize_whitespace(hypothesis)
    w = jiwer.process_words(ref, hyp)
    c = jiwer.process_characters(ref, hyp)
    return {
        "word_substitutions": int(w.substitutions),
        "word_deletions": int(w.deletions),
        "word_insertions": int(w.insertions),
        "ref_words": int(w.hits + w.substitutions + w.deletions),
        "char_substitutions": int(c.substitutions),
        "char_deletions": int(c.deletions),
        "char_insertions": int(c.insertions),
        "ref_chars": int(c.hits + c.substitutions + c.deletions),
    }


def as_rows(data: Any) -> list[dict[str, Any]]:
    """Rows as a list of dicts from a ``pyarrow.Table`` or an iterable of mappings."""
    to_pylist = getattr(data, "to_pylist", None)
    if callable(to_pylist):  # pyarrow Table / RecordBatch, without importing pyarrow
        return [dict(r) for r in to_pylist()]
    return [dict(r) for r in data]


class ScoredRows(list):
    """A list of rows whose counts were computed by :func:`score_rows`.

    Passing one back to any function here skips re-alignment; this type
    marker (rather than "the count columns are present") is what makes that
    safe, because a copied row with an edited hypothesis would otherwise keep
    stale counts.
    """


def score_rows(rows: Any) -> ScoredRows:
    """Copies of ``rows`` with :data:`COUNT_COLUMNS` added.

    * a :class:`ScoredRows` is returned as is (already scored here);
    * a row with text (``reference``) is always (re)aligned: the text is the
      source of truth and counts that came with it may be stale;
    * a row with every count column but no ``reference`` (a counts-only table
      read back from storage) is trusted as is.

    The output is Arrow-friendly (``pyarrow.Table.from_pylist``) for storing
    per-utterance results.
    """
    if isinstance(rows, ScoredRows):
        return rows
    out = ScoredRows()
    for row in as_rows(rows):
        if "reference" in row:
            row.update(utterance_counts(row["reference"], row.get("hypothesis")))
        elif not all(k in row for k in COUNT_COLUMNS):
            raise ValueError(f"row has neither a 'reference' nor the count columns: {sorted(row)}")
        out.append(row)
    return out


def error_arrays(rows: Sequence[Mapping[str, Any]], metric: Metric = "wer") -> tuple[np.ndarray, np.ndarray]:
    """Per-utterance ``(errors, reference units)`` as int64 arrays for ``metric``.

    ``rows`` must be scored (see :func:`score_rows`).
    """
    if metric == "wer":
        s, d, i, n = WORD_COUNT_COLUMNS
    elif metric == "cer":
        s, d, i, n = CHAR_COUNT_COLUMNS
    else:
        raise ValueError(f"unknown metric {metric!r}; expected 'wer' or 'cer'")
    errors = np.fromiter((r[s] + r[d] + r[i] for r in rows), dtype=np.int64, count=len(rows))
    units = np.fromiter((r[n] for r in rows), dtype=np.int64, count=len(rows))
    return errors, units


def rate(errors: float, units: float) -> float:
    """``errors / units``, NaN when there is no reference unit at all."""
    return float(errors) / float(units) if units > 0 else float("nan")


def _corpus(rows: Any, metric: Metric) -> float:
    scored = score_rows(rows)
    errors, units = error_arrays(scored, metric)
    if units.sum() == 0:
        raise ValueError(
            f"corpus {metric.upper()} is undefined: the {len(scored)} utterance(s) "
            "have no reference unit at all"
        )
    return rate(errors.sum(), units.sum())


def corpus_wer(rows: Any) -> float:
    """Corpus word error rate: total word edits / total reference words."""
    return _corpus(rows, "wer")


def corpus_cer(rows: Any) -> float:
    """Corpus character error rate (spaces count as characters)."""
    return _corpus(rows, "cer")


def utterance_wer(row: Mapping[str, Any]) -> float:
    """WER of a single scored row.

    For an empty reference there is no denominator; it is 0.0 when the
    hypothesis is empty too and 1.0 otherwise (any word on silence is fully
    wrong).  Can exceed 1 with many insertions.
    """
    errors = row["word_substitutions"] + row["word_deletions"] + row["word_insertions"]
    if row["ref_words"] == 0:
        return 0.0 if errors == 0 else 1.0
    return errors / row["ref_words"]
