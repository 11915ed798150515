"""The real-speech anchor: 11 real recordings every evaluation scores, as a smoke alarm for catastrophic forgetting.

The platform's models are trained and tested on simulated speech (espeak-ng). A model can get better on that and
worse on real voices without any simulated number noticing. Debian's ``pocketsphinx-testdata`` package ships real
recordings with transcripts; this module turns them into a fixed, versioned set in the store and scores models on it:

- :func:`read_pocketsphinx_testdata` reads the 11 utterances from the installed package (5 ``cards``, 5 ``librivox``
  sentences, 1 ``goforward``); :class:`AnchorSetUnavailable` names the fix when the package is missing.
- :func:`import_anchor_set` writes them to ``layout.ANCHOR_DIR`` (canonical WAVs + one JSON manifest with each
  wav's sha256 and the ``set_digest``) in one branch transaction; importing the same content again writes nothing.
- :func:`load_anchor_set` reads the set at a ref and verifies every wav against the manifest.
- :func:`score_anchor` scores a transcriber on it (:class:`AnchorResult`); :func:`compare_anchor` compares two
  models on it with the paired bootstrap (:class:`AnchorComparison`), for the promotion gate's
  ``anchor_wer_no_regression`` rule.

What it is not: 11 utterances (about 90 words, from few voices) are a smoke alarm, not a benchmark. An interval on
so little data is wide, so only a large regression is "clearly worse" — which is the point: the rule is meant to
catch a model that has stopped recognising real speech, not to rank two good ones. Every rendering says so.

The interval is a bootstrap over *utterances*: the project's cluster bootstrap (:mod:`.bootstrap`) with each
utterance as its own cluster, because the recordings carry no speaker ids. The utterances of one group most likely
share a voice, so the interval is, if anything, too narrow — one more reason to read it as an alarm only.

The recordings are public test recordings of no platform user: the store layout marks them as holding no speaker
data, so retention never sweeps the fixed set and erasure has nothing to find in it.

No Dagster here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speech_assets.audio.decode import AudioRejected, decode_audio, encode_wav_pcm16, read_canonical_wav
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError, VersionStore
from speech_assets.storage.layout import ANCHOR_DIR, ANCHOR_MANIFEST_PATH, anchor_audio_path
from speech_assets.storage.publish import branch_transaction, retry_on_conflict

from .baseline import normalize_transcript
from .bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, PairedBootstrapResult, bootstrap_ci, paired_bootstrap
from .metrics import error_arrays, rate, score_rows

__all__ = [
    "ANCHOR_SOURCE",
    "DEFAULT_ANCHOR_TOLERANCE",
    "DEFAULT_ROOT",
    "AnchorComparison",
    "AnchorResult",
    "AnchorSet",
    "AnchorSetCorrupt",
    "AnchorSetUnavailable",
    "AnchorUtterance",
    "GroupWER",
    "anchor_table",
    "compare_anchor",
    "import_anchor_set",
    "load_anchor_set",
    "read_pocketsphinx_testdata",
    "result_from_rows",
    "score_anchor",
    "set_digest",
    "smoke_alarm_sentence",
]

ANCHOR_SOURCE = (
    "Debian package pocketsphinx-testdata (CMU Sphinx's test recordings, /usr/share/pocketsphinx/test/data): "
    "cards/001-005.wav (card names read to a grammar), librivox/sense_and_sensibility_01_austen_64kb-0870..0930.wav "
    "(LibriVox public-domain audiobook sentences) and goforward.raw ('go forward ten meters'); real speech, 16 kHz "
    "mono, 11 utterances"
)
ANCHOR_NAME = "pocketsphinx-testdata"
DEFAULT_ROOT = "/usr/share/pocketsphinx/test/data"
SAMPLE_RATE = 16000
MANIFEST_SCHEMA = 1
# Absolute WER points the challenger's lower bound may exceed the champion's by before it is "clearly worse":
# large on purpose, with ~90 words only a collapse is distinguishable from noise.
DEFAULT_ANCHOR_TOLERANCE = 0.05
GROUPS = ("cards", "librivox", "goforward")

_FIX = ("install the package (`apt-get install pocketsphinx-testdata`) or run the set-up script "
        "(`scripts/setup.sh`, which lists it in APT_PACKAGES)")
_TRANSCRIPT_LINE = re.compile(r"^<s>\s*(?P<text>.*?)\s*</s>\s*\((?P<id>[^()\s]+)\)\s*$")
_GOFORWARD_RULE = re.compile(r"public\s+<move>\s*=\s*(?P<text>[^;|\[\]<>()]+);")


class AnchorSetUnavailable(RuntimeError):
    """The anchor set cannot be read here (package not installed, or not imported at the ref); says the fix."""


class AnchorSetCorrupt(ValueError):
    """The stored anchor set does not match its manifest (a wav's sha256, or the set digest)."""


# ---------------------------------------------------------------------------
# the utterances
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorUtterance:
    """One real recording: its id, group, normalised transcript, canonical WAV bytes and their samples.

    ``wav`` is the canonical 16 kHz mono PCM16 file (`audio.decode.encode_wav_pcm16`), exactly what the store
    holds; ``waveform`` is that file read back (float32 in [-1, 1)), so what is scored is what is stored.
    Equality is by the fields other than ``waveform`` (the wav bytes carry the same samples).
    """

    utt_id: str
    group: str
    text: str
    duration_s: float
    source: str  # the file inside the package, e.g. "cards/001.wav"
    wav: bytes = field(repr=False)
    waveform: np.ndarray = field(repr=False, compare=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.wav).hexdigest()

    @property
    def n_words(self) -> int:
        return len(self.text.split())

    @classmethod
    def from_samples(cls, utt_id: str, group: str, text: str, source: str, samples: np.ndarray) -> "AnchorUtterance":
        """Encode `samples` (16 kHz mono float) canonically and keep the decoded canonical samples."""
        wav = encode_wav_pcm16(samples, SAMPLE_RATE)
        waveform, rate_ = read_canonical_wav(wav)
        return cls(utt_id, group, text, len(waveform) / rate_, source, wav, waveform)

    def manifest_entry(self) -> dict[str, Any]:
        return {"utt_id": self.utt_id, "group": self.group, "text": self.text, "duration_s": self.duration_s,
                "sha256": self.sha256, "source": self.source}


def _normalised(text: str, where: str) -> str:
    # The transcripts ship lower-case already; collapse spaces and refuse anything the platform's normalisation
    # would change, because a reference in another alphabet would silently inflate every model's WER.
    text = " ".join(text.split())
    if not text or normalize_transcript(text) != text:
        raise ValueError(f"{where}: transcript {text!r} is not normalised text (lower-case a-z, apostrophe, spaces)")
    return text


def _transcripts(path: Path) -> list[tuple[str, str]]:
    """(file id, text) of each `<s> text </s> (id)` line of a Sphinx transcription file."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        m = _TRANSCRIPT_LINE.match(line.strip())
        if m is None:
            raise ValueError(f"{path}:{n}: not a '<s> text </s> (id)' line: {line!r}")
        out.append((m["id"], _normalised(m["text"], f"{path}:{n}")))
    return out


def _wav_samples(path: Path) -> np.ndarray:
    try:
        decoded = decode_audio(path.read_bytes())
    except AudioRejected as exc:
        raise ValueError(f"{path}: {exc}") from None
    if decoded.sample_rate != SAMPLE_RATE or decoded.channels != 1:
        # the set is 16 kHz mono by construction; resampling here would make it a different set
        raise ValueError(f"{path}: expected 16 kHz mono, got {decoded.sample_rate} Hz x {decoded.channels}")
    return decoded.samples[0]


def _require(path: Path) -> Path:
    if not path.exists():
        raise AnchorSetUnavailable(f"the anchor set's file {path} is missing: {_FIX}")
    return path


def read_pocketsphinx_testdata(root: str | Path = DEFAULT_ROOT) -> list[AnchorUtterance]:
    """The anchor utterances from an installed ``pocketsphinx-testdata``, in a fixed order (cards, librivox,
    goforward; by id within a group).

    Ids: ``ps-cards-001``, ``ps-librivox-0870`` (the LibriVox file's segment number), ``ps-goforward``. Texts are
    the package's transcripts with whitespace collapsed (they are lower-case already; anything else raises
    ValueError). ``goforward.raw`` is headerless 16 kHz signed 16-bit little-endian mono; its transcript is the
    ``<move>`` rule of ``goforward.gram``. Raises :class:`AnchorSetUnavailable` naming the fix when `root` or a
    file is missing.
    """
    root = Path(root)
    if not root.is_dir():
        raise AnchorSetUnavailable(f"no pocketsphinx test data at {root}: {_FIX}")
    out: list[AnchorUtterance] = []
    for file_id, text in sorted(_transcripts(_require(root / "cards" / "cards.transcription"))):
        source = f"cards/{file_id}.wav"
        out.append(AnchorUtterance.from_samples(f"ps-cards-{file_id}", "cards", text, source,
                                                _wav_samples(_require(root / source))))
    for file_id, text in sorted(_transcripts(_require(root / "librivox" / "transcription"))):
        source = f"librivox/{file_id}.wav"
        out.append(AnchorUtterance.from_samples(f"ps-librivox-{file_id.rsplit('-', 1)[-1]}", "librivox", text,
                                                source, _wav_samples(_require(root / source))))
    gram = _require(root / "goforward.gram")
    m = _GOFORWARD_RULE.search(gram.read_text(encoding="utf-8"))
    if m is None:
        raise ValueError(f"{gram}: no 'public <move> = ...;' rule to take the transcript from")
    raw = _require(root / "goforward.raw").read_bytes()
    if len(raw) % 2:
        raise ValueError(f"{root / 'goforward.raw'}: odd byte count {len(raw)} for 16-bit samples")
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0  # the scale decode_audio uses
    out.append(AnchorUtterance.from_samples("ps-goforward", "goforward", _normalised(m["text"], str(gram)),
                                            "goforward.raw", samples))
    return out


# ---------------------------------------------------------------------------
# the set in the store
# ---------------------------------------------------------------------------


def set_digest(entries: Sequence[Mapping[str, Any]]) -> str:
    """sha256 of the manifest entries (ids, groups, texts, durations, wav digests, sources) as canonical JSON:
    equal content, equal digest, wherever the package was read from."""
    canonical = json.dumps(sorted((dict(e) for e in entries), key=lambda e: e["utt_id"]), sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _manifest(utterances: Sequence[AnchorUtterance]) -> dict[str, Any]:
    entries = [u.manifest_entry() for u in utterances]
    return {"schema": MANIFEST_SCHEMA, "name": ANCHOR_NAME, "source": ANCHOR_SOURCE, "set_digest": set_digest(entries),
            "utterances": entries}


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, indent=1).encode() + b"\n"


@dataclass(frozen=True)
class AnchorSet:
    """The anchor set as stored at one commit: its utterances (verified against the manifest) and digest."""

    utterances: tuple[AnchorUtterance, ...]
    set_digest: str
    commit: str
    source: str = ANCHOR_SOURCE

    @property
    def n_utterances(self) -> int:
        return len(self.utterances)

    @property
    def n_words(self) -> int:
        return sum(u.n_words for u in self.utterances)

    def waveforms(self) -> list[np.ndarray]:
        return [u.waveform for u in self.utterances]


def _objects(utterances: Sequence[AnchorUtterance]) -> dict[str, bytes]:
    ids = [u.utt_id for u in utterances]
    if not ids:
        raise ValueError("an anchor set needs at least one utterance")
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate utterance ids in the anchor set: {sorted({i for i in ids if ids.count(i) > 1})}")
    objects = {anchor_audio_path(u.utt_id): u.wav for u in utterances}
    objects[ANCHOR_MANIFEST_PATH] = _manifest_bytes(_manifest(utterances))
    return objects


def _stored(store: VersionStore, repo: str, commit: str) -> dict[str, bytes]:
    paths = [o.path for o in store.list_objects(repo, commit, ANCHOR_DIR)]
    return dict(zip(paths, store.get_objects(repo, commit, paths)))


def import_anchor_set(store: VersionStore, repo: str, utterances: Sequence[AnchorUtterance], *,
                      run_id: str = "", attempts: int = 3) -> str:
    """Make `utterances` the anchor set on main; returns the main commit that holds it.

    Writes each canonical WAV and the manifest under ``layout.ANCHOR_DIR`` and deletes any other object there (the
    set on main is exactly `utterances`), on a branch from main's head, committed and merged in one step: a crash
    before the merge leaves main as it was. When main already holds exactly these bytes nothing is written and
    main's head is returned (no new commit). A merge lost to a concurrent writer is planned again from the new head.
    """
    wanted = _objects(utterances)
    digest = json.loads(wanted[ANCHOR_MANIFEST_PATH])["set_digest"]

    def attempt(n: int) -> str:
        head = store.resolve(repo, DEFAULT_BRANCH)
        current = _stored(store, repo, head)
        if current == wanted:
            return head
        suffix = hashlib.sha256(f"{head}{digest}{run_id}".encode()).hexdigest()[:12]
        message = f"anchor set {ANCHOR_NAME} {digest[:12]} ({len(utterances)} utterances)"
        metadata = {"run_id": run_id, "anchor_set_digest": digest, "anchor_utterances": str(len(utterances))}
        with branch_transaction(store, repo, f"anchor-{suffix}", base=head) as tx:
            for path, data in wanted.items():
                if current.get(path) != data:
                    tx.put(path, data, content_type="application/json" if path == ANCHOR_MANIFEST_PATH
                           else "audio/wav")
            for path in sorted(set(current) - set(wanted)):
                tx.delete(path)
            tx.commit(message, metadata)
            return tx.merge(message, metadata)

    return retry_on_conflict(attempt, attempts=attempts)


def load_anchor_set(store: VersionStore, repo: str, ref: str = DEFAULT_BRANCH) -> AnchorSet:
    """The anchor set at `ref`, every wav checked against the manifest's sha256 and the set digest recomputed.

    Raises :class:`AnchorSetUnavailable` when `ref` holds no anchor manifest (run :func:`import_anchor_set`), and
    :class:`AnchorSetCorrupt` when a wav or the digest does not match.
    """
    commit = store.resolve(repo, ref)
    try:
        manifest = json.loads(store.get_object(repo, commit, ANCHOR_MANIFEST_PATH))
    except NotFoundError:
        raise AnchorSetUnavailable(
            f"no anchor set at {ref} ({commit[:12]}): import it with evaluation.anchor.import_anchor_set "
            f"(reading the package needs pocketsphinx-testdata: {_FIX})") from None
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise AnchorSetCorrupt(f"anchor manifest schema {manifest.get('schema')!r}; this code reads {MANIFEST_SCHEMA}")
    entries = manifest["utterances"]
    if set_digest(entries) != manifest["set_digest"]:
        raise AnchorSetCorrupt("the anchor manifest's set_digest does not match its entries")
    utterances = []
    for e, data in zip(entries, store.get_objects(repo, commit, [anchor_audio_path(e["utt_id"]) for e in entries])):
        actual = hashlib.sha256(data).hexdigest()
        if actual != e["sha256"]:
            raise AnchorSetCorrupt(f"{anchor_audio_path(e['utt_id'])}: sha256 {actual[:12]}… but the manifest "
                                   f"says {e['sha256'][:12]}…")
        decoded = read_canonical_wav(data)
        if decoded is None or decoded[1] != SAMPLE_RATE:
            raise AnchorSetCorrupt(f"{anchor_audio_path(e['utt_id'])}: not a canonical 16 kHz mono PCM16 wav")
        utterances.append(AnchorUtterance(e["utt_id"], e["group"], e["text"], float(e["duration_s"]), e["source"],
                                          data, decoded[0]))
    return AnchorSet(tuple(utterances), manifest["set_digest"], commit, manifest.get("source", ANCHOR_SOURCE))


# ---------------------------------------------------------------------------
# scoring
# ---------------------------------------------------------------------------


def smoke_alarm_sentence(n_utterances: int) -> str:
    """The sentence every rendering of an anchor result carries."""
    return (f"{n_utterances} real utterances: a smoke alarm, not a benchmark. It catches a model that has stopped "
            "recognising real speech (catastrophic forgetting); it is too small to rank two working models.")


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


@dataclass(frozen=True)
class GroupWER:
    """WER of one group of the anchor set, with its size (every group is too small to judge alone)."""

    group: str
    wer: float
    errors: int
    n_words: int
    n_utterances: int

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "wer": None if math.isnan(self.wer) else self.wer, "errors": self.errors,
                "n_words": self.n_words, "n_utterances": self.n_utterances}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "GroupWER":
        return cls(d["group"], float("nan") if d.get("wer") is None else float(d["wer"]), int(d["errors"]),
                   int(d["n_words"]), int(d["n_utterances"]))


@dataclass(frozen=True)
class AnchorResult:
    """One model scored on the anchor set.

    ``rows``: one per utterance (``utterance_id``, ``group``, ``reference``, ``hypothesis``, and ``speaker`` =
    the utterance id, which makes the project's cluster bootstrap resample utterances). ``wer`` is the corpus WER
    (errors / reference words) with a seeded percentile bootstrap interval ``wer_ci`` over the utterances.
    """

    model: str
    set_digest: str
    commit: str
    rows: tuple[dict, ...]
    wer: float
    wer_ci: tuple[float, float]
    errors: int
    n_words: int
    n_utterances: int
    groups: tuple[GroupWER, ...]
    n_resamples: int = DEFAULT_RESAMPLES
    level: float = DEFAULT_LEVEL
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        nan = lambda x: None if isinstance(x, float) and math.isnan(x) else x  # noqa: E731 - strict JSON has no NaN
        return {
            "model": self.model, "set_digest": self.set_digest, "commit": self.commit,
            "rows": [{k: r[k] for k in ("utterance_id", "group", "reference", "hypothesis", "speaker")}
                     for r in self.rows],
            "wer": nan(self.wer), "wer_ci": [nan(self.wer_ci[0]), nan(self.wer_ci[1])], "errors": self.errors,
            "n_words": self.n_words, "n_utterances": self.n_utterances,
            "groups": [g.to_dict() for g in self.groups],
            "n_resamples": self.n_resamples, "level": self.level, "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AnchorResult":
        f = lambda x: float("nan") if x is None else float(x)  # noqa: E731
        return cls(
            model=d["model"], set_digest=d["set_digest"], commit=d["commit"],
            rows=tuple(dict(r) for r in d["rows"]), wer=f(d["wer"]), wer_ci=(f(d["wer_ci"][0]), f(d["wer_ci"][1])),
            errors=int(d["errors"]), n_words=int(d["n_words"]), n_utterances=int(d["n_utterances"]),
            groups=tuple(GroupWER.from_dict(g) for g in d["groups"]),
            n_resamples=int(d.get("n_resamples", DEFAULT_RESAMPLES)), level=float(d.get("level", DEFAULT_LEVEL)),
            seed=int(d.get("seed", 0)),
        )

    def heading(self) -> str:
        return f"Real speech (pocketsphinx-testdata, n={self.n_utterances} utterances, {self.n_words} words)"

    def markdown(self) -> str:
        """The result as markdown: heading with n, the smoke-alarm sentence, the summary row, one row per
        utterance."""
        lines = [f"### {self.heading()}", "", smoke_alarm_sentence(self.n_utterances), "",
                 anchor_table([self]), "", "| Utterance | Group | Reference | Hypothesis | Errors / words |",
                 "|---|---|---|---|---|"]
        scored = score_rows(self.rows)
        errors, words = error_arrays(scored, "wer")
        for r, e, w in zip(scored, errors, words):
            lines.append(f"| {r['utterance_id']} | {r['group']} | {_cell(r['reference'])} | "
                         f"{_cell(r['hypothesis'] or '')} | {e}/{w} |")
        return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def anchor_table(results: Sequence[AnchorResult]) -> str:
    """One markdown row per model: WER (errors/words), the interval, and each group's WER with its n.

    All results must be on the same set (same ``set_digest``): a table mixing sets would compare nothing.
    """
    if not results:
        raise ValueError("no anchor results to tabulate")
    if len({r.set_digest for r in results}) != 1:
        raise ValueError("anchor results on different sets (set_digest differs) cannot share a table")
    first = results[0]
    lvl = f"{round(100 * first.level)}% interval"
    groups = [g.group for g in first.groups]
    head = [f"{g} (n={x.n_utterances} utt, {x.n_words} words)" for g, x in zip(groups, first.groups)]
    lines = ["| Model | WER (errors/words) | " + lvl + " | " + " | ".join(head) + " |",
             "|---|---|---|" + "---|" * len(groups)]
    for r in results:
        by_group = {g.group: g for g in r.groups}
        cells = [f"{_pct(by_group[g].wer)} ({by_group[g].errors}/{by_group[g].n_words})" if g in by_group else "n/a"
                 for g in groups]
        lines.append(f"| {_cell(r.model)} | {_pct(r.wer)} ({r.errors}/{r.n_words}) | "
                     f"[{_pct(r.wer_ci[0])}, {_pct(r.wer_ci[1])}] | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _group_wers(scored: Sequence[Mapping[str, Any]]) -> tuple[GroupWER, ...]:
    order = [g for g in GROUPS if any(r["group"] == g for r in scored)]
    order += sorted({r["group"] for r in scored} - set(order))
    out = []
    for g in order:
        sub = [r for r in scored if r["group"] == g]
        e, w = error_arrays(sub, "wer")
        out.append(GroupWER(g, rate(e.sum(), w.sum()), int(e.sum()), int(w.sum()), len(sub)))
    return tuple(out)


def score_anchor(transcribe: Callable[[list[np.ndarray]], list[str]], anchor: AnchorSet, *, model: str = "model",
                 n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = DEFAULT_LEVEL) -> AnchorResult:
    """Transcribe every anchor waveform (16 kHz mono float32) in one call and score the hypotheses.

    `transcribe` must return one string per waveform, in order (``None`` counts as no output). Hypotheses are
    scored as given: a transcriber is expected to emit normalised text, as the references are.
    """
    waveforms = anchor.waveforms()
    hyps = list(transcribe(waveforms))
    if len(hyps) != len(waveforms):
        raise ValueError(f"the transcriber returned {len(hyps)} hypotheses for {len(waveforms)} waveforms")
    rows = [{"utterance_id": u.utt_id, "group": u.group, "reference": u.text, "hypothesis": h or "",
             "speaker": u.utt_id} for u, h in zip(anchor.utterances, hyps)]
    return result_from_rows(rows, model=model, set_digest=anchor.set_digest, commit=anchor.commit,
                            n_resamples=n_resamples, seed=seed, level=level)


def result_from_rows(rows: Sequence[Mapping[str, Any]], *, model: str, set_digest: str, commit: str,
                     n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                     level: float = DEFAULT_LEVEL) -> AnchorResult:
    """An :class:`AnchorResult` from rows already transcribed (each with utterance_id, group, reference,
    hypothesis, speaker)."""
    scored = score_rows(rows)
    ci = bootstrap_ci(scored, "wer", n_resamples=n_resamples, seed=seed, level=level)
    e, w = error_arrays(scored, "wer")
    return AnchorResult(
        model=model, set_digest=set_digest, commit=commit,
        rows=tuple({k: r[k] for k in ("utterance_id", "group", "reference", "hypothesis", "speaker")}
                   for r in scored),
        wer=ci.estimate, wer_ci=ci.ci, errors=int(e.sum()), n_words=int(w.sum()), n_utterances=len(scored),
        groups=_group_wers(scored), n_resamples=n_resamples, level=level, seed=seed,
    )


# ---------------------------------------------------------------------------
# comparison
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorComparison:
    """``challenger - champion`` WER on the same anchor utterances, with its paired-bootstrap interval.

    ``clearly_worse``: the interval's lower bound exceeds ``tolerance`` (absolute WER points), i.e. the challenger
    is worse by more than the tolerance with ~97.5 % confidence. With ~11 utterances only a large regression gets
    there; an undefined bound (NaN) is not "clearly worse" here, and the gate's rule fails it as missing evidence.
    """

    result: PairedBootstrapResult
    tolerance: float
    n_words: int

    @property
    def clearly_worse(self) -> bool:
        return not math.isnan(self.result.low) and self.result.low > self.tolerance

    @property
    def n_utterances(self) -> int:
        return self.result.n_utterances

    def detail(self) -> str:
        d = self.result
        stat = (f"real-speech anchor (n={d.n_utterances} utterances, {self.n_words} words; a smoke alarm, not a "
                f"benchmark): WER {_pct(d.challenger)} vs champion {_pct(d.champion)}, delta {d.delta:+.4f} "
                f"[{d.low:+.4f}, {d.high:+.4f}]")
        if math.isnan(d.low):
            return f"{stat}; delta undefined"
        verdict = ("clearly worse (catastrophic-forgetting alarm)" if self.clearly_worse
                   else "not clearly worse (on this little data only a large regression would be)")
        return f"{stat}; lower bound {d.low:+.4f} {'>' if self.clearly_worse else '<='} tolerance " \
               f"{self.tolerance:.4f}: {verdict}"

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result.to_dict(), "tolerance": self.tolerance, "n_words": self.n_words,
                "clearly_worse": self.clearly_worse}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AnchorComparison":
        r = {k: (float("nan") if v is None else v) for k, v in d["result"].items()}
        return cls(PairedBootstrapResult(**r), float(d["tolerance"]), int(d["n_words"]))


def _rows_of(x: AnchorResult | Sequence[Mapping[str, Any]]) -> list[dict]:
    rows = [dict(r) for r in (x.rows if isinstance(x, AnchorResult) else x)]
    for r in rows:
        # rows read back from a table may lack the cluster id: each utterance is its own
        r.setdefault("speaker", r.get("utterance_id"))
    return rows


def compare_anchor(challenger: AnchorResult | Sequence[Mapping[str, Any]],
                   champion: AnchorResult | Sequence[Mapping[str, Any]], *,
                   tolerance: float = DEFAULT_ANCHOR_TOLERANCE, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                   level: float = DEFAULT_LEVEL) -> AnchorComparison:
    """Paired bootstrap (the project's, with each utterance its own cluster) of challenger − champion WER on the
    same anchor utterances; accepts :class:`AnchorResult` s or their rows. Two results on different sets (set
    digests differ), or rows of different utterances, raise ValueError: that would compare nothing."""
    if isinstance(challenger, AnchorResult) and isinstance(champion, AnchorResult) \
            and challenger.set_digest != champion.set_digest:
        raise ValueError(f"anchor results on different sets: {challenger.set_digest[:12]} vs "
                         f"{champion.set_digest[:12]}")
    a, b = _rows_of(challenger), _rows_of(champion)
    d = paired_bootstrap(a, b, "wer", n_resamples=n_resamples, seed=seed, level=level)
    _, words = error_arrays(score_rows(a), "wer")
    return AnchorComparison(d, float(tolerance), int(words.sum()))
