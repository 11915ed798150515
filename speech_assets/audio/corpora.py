"""Reading real corpus layouts into the platform's manifest form.

A landing batch folder holds one of three layouts:

``nemo``         ``manifest.jsonl`` (or other ``*.json`` / ``*.jsonl`` files),
                 one JSON object per line with ``audio_filepath`` and ``text``
``commonvoice``  ``validated.tsv`` (or ``train.tsv``, ``dev.tsv``, ...) with
                 columns client_id, path, sentence, ..., audio under ``clips/``
``librispeech``  ``<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` plus
                 ``<speaker>-<chapter>.trans.txt`` ("ID TRANSCRIPT" lines)

:func:`read_entries` reports what the source *says*, one
:class:`LandingEntry` per record, without opening audio or resolving paths
(the intake validates those).  Source files are read line by line as bytes
and every line is decoded on its own, so one broken line becomes one error
entry and never stops the rest.

Transcripts, of every layout, are normalised to the platform alphabet with
:func:`speech_assets.text.normalize_text` ("Hello, World! It's 5 o'clock." ->
"hello world it's five o'clock"), because the model and the training set
accept nothing else and a transcript in another spelling would otherwise be
left out downstream.  The transcript as the source wrote it stays in
``fields["source_text"]`` (written to an imported manifest, and kept when that
manifest is read again).  Two exceptions:

* a transcript that cannot be normalised (letters of another script, nothing
  left after punctuation) becomes an error entry whose code is the
  :class:`~speech_assets.text.Unnormalisable` reason (``non_latin_script``,
  ``unmappable_letter``, ``empty_after_normalisation``), so intake quarantines
  it with that reason and counts it;
* a transcript in which :func:`~speech_assets.audio.pii.sanitize_transcript`
  finds personal data is passed on as written: intake's redaction looks for
  written digits ("555-123-4567"), which normalisation would spell out as
  cardinals it no longer recognises.  Such a row never trains anyway (the
  training set leaves redacted transcripts out).

A blank transcript is passed on as written too: intake already rejects it as
``manifest_missing_field:text``.

``audio_ref`` is always meant relative to the batch directory:

* NeMo: ``audio_filepath`` exactly as written.
* Common Voice: the TSV ``path`` column is relative to ``clips/``, so
  ``audio_ref = "clips/" + path`` (string concatenation, so a hostile
  ``../../etc/passwd`` stays visibly hostile: ``clips/../../etc/passwd``);
  an absolute ``path`` is kept as written.  The raw column value is in
  ``fields["source_path"]``.
* LibriSpeech: ``<dir of the .trans.txt>/<ID>.flac``, relative to the batch.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from speech_assets.audio.pii import sanitize_transcript
from speech_assets.text import Unnormalisable, normalize_text

__all__ = [
    "LAYOUTS",
    "ImportReport",
    "LandingEntry",
    "SOURCE_TEXT",
    "detect_layout",
    "read_entries",
    "write_nemo_manifest",
    "import_corpus",
]

log = logging.getLogger(__name__)

LAYOUTS = ("nemo", "commonvoice", "librispeech")
READY_MARKER = "_READY"
NEMO_MANIFEST = "manifest.jsonl"

#: Common Voice TSVs, in the order they are read when there's no validated.tsv
CV_SPLITS = ("train.tsv", "dev.tsv", "test.tsv", "other.tsv")
CV_VALIDATED = "validated.tsv"
#: every TSV name that marks a Common Voice folder
CV_TSVS = (CV_VALIDATED, *CV_SPLITS, "invalidated.tsv", "reported.tsv")
_CV_INT_FIELDS = ("up_votes", "down_votes")
_LS_TRANS_SUFFIX = ".trans.txt"
_LS_MAX_DEPTH = 4
#: the ``fields`` key holding a transcript exactly as its source wrote it
SOURCE_TEXT = "source_text"


@dataclass
class LandingEntry:
    index: int  # 0-based order in the source listing
    audio_ref: str | None  # audio path exactly as the source wrote it
    # The transcript normalised (see the module docstring for when it is left as written); None if it could not
    # be read. As written, it is in fields["source_text"].
    text: str | None
    fields: dict  # speaker, accent, channel, ... whatever the source has, and source_text
    error: str | None  # None, or a reason code for an unreadable row or an unnormalisable transcript
    error_detail: str = ""  # human-readable detail
    # The source line bytes (without its line terminator). Empty for an unnormalisable transcript: that row was
    # parsed, so its text can be sanitised like any other, and intake keeps the raw bytes of an error row verbatim.
    raw: bytes = b""

    @property
    def ok(self) -> bool:
        return self.error is None


# ------------------------------------------------------------------ detect --
def _nemo_manifests(batch: Path) -> list[Path]:
    for name in (NEMO_MANIFEST, "manifest.json"):
        if (batch / name).is_file():
            return [batch / name]
    return sorted(
        p
        for p in batch.iterdir()
        if p.is_file() and p.suffix in (".json", ".jsonl") and not p.name.startswith(".")
    )


def _cv_tsvs(batch: Path) -> list[Path]:
    if (batch / CV_VALIDATED).is_file():
        return [batch / CV_VALIDATED]
    return [batch / n for n in CV_SPLITS if (batch / n).is_file()]


def _natural_key(name: str):
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t]


def _ls_transcripts(batch: Path) -> list[Path]:
    """*.trans.txt files up to a few folders deep, in natural sort order."""
    found: list[Path] = []

    def walk(d: Path, depth: int) -> None:
        try:
            children = sorted(d.iterdir(), key=lambda p: _natural_key(p.name))
        except OSError:
            return
        for p in children:
            if p.is_symlink():
                continue
            if p.is_file() and p.name.endswith(_LS_TRANS_SUFFIX):
                found.append(p)
            elif p.is_dir() and depth < _LS_MAX_DEPTH and not p.name.startswith("."):
                walk(p, depth + 1)

    walk(batch, 0)
    return found


def detect_layout(batch_dir: str | os.PathLike) -> str:
    """``"nemo"``, ``"commonvoice"`` or ``"librispeech"``; ValueError otherwise."""
    batch = Path(batch_dir)
    if not batch.is_dir():
        raise ValueError(f"batch folder {batch} does not exist or is not a folder")
    if (batch / NEMO_MANIFEST).is_file() or (batch / "manifest.json").is_file():
        return "nemo"
    if any((batch / n).is_file() for n in CV_TSVS):
        return "commonvoice"
    if _nemo_manifests(batch):
        return "nemo"
    if _ls_transcripts(batch):
        return "librispeech"
    listing = sorted(p.name for p in batch.iterdir())[:20]
    raise ValueError(
        f"cannot tell the corpus layout of {batch}: expected a NeMo manifest "
        f"({NEMO_MANIFEST} or *.json/*.jsonl), a Common Voice TSV "
        f"({', '.join(CV_TSVS)}) or LibriSpeech *{_LS_TRANS_SUFFIX} files; "
        f"found {listing or 'an empty folder'}"
    )


# -------------------------------------------------------------------- read --
def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line bytes without terminator), blank lines skipped."""
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if line.endswith(b"\n"):
                line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if line.strip():
                yield lineno, line


def _decode(line: bytes) -> tuple[str | None, str]:
    try:
        return line.decode("utf-8"), ""
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 at byte {exc.start}: {exc.reason}"


def _error(index, code, detail, raw, base) -> LandingEntry:
    return LandingEntry(
        index=index, audio_ref=None, text=None, fields=dict(base),
        error=code, error_detail=detail, raw=raw,
    )


def _transcript_entry(index: int, audio_ref: str, text: str, fields: dict, raw: bytes,
                      where: str) -> LandingEntry:
    """The entry of a parsed row: its transcript normalised, or an error entry naming why it cannot be."""
    # setdefault: a manifest this module wrote carries the original already; its `text` is the normalised one.
    fields.setdefault(SOURCE_TEXT, text)
    if not text.strip() or sanitize_transcript(text).total:
        return LandingEntry(index, audio_ref, text, fields, None, "", raw)
    try:
        normalised = normalize_text(text)
    except Unnormalisable as exc:
        return LandingEntry(index, audio_ref, text, fields, exc.reason, f"{where}: {exc}", b"")
    return LandingEntry(index, audio_ref, normalised, fields, None, "", raw)


def _read_nemo(batch: Path) -> list[LandingEntry]:
    out: list[LandingEntry] = []
    for path in _nemo_manifests(batch):
        for lineno, raw in _lines(path):
            base = {"source_layout": "nemo", "source_file": path.name, "source_line": lineno}
            i = len(out)
            line, why = _decode(raw)
            if line is None:
                out.append(_error(i, "manifest_not_utf8", f"{path.name}:{lineno}: {why}", raw, base))
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                out.append(_error(i, "manifest_bad_json", f"{path.name}:{lineno}: {exc}", raw, base))
                continue
            if not isinstance(row, dict):
                out.append(
                    _error(i, "manifest_bad_row",
                           f"{path.name}:{lineno}: expected a JSON object, got {type(row).__name__}",
                           raw, base)
                )
                continue
            missing = [k for k in ("audio_filepath", "text") if k not in row]
            if missing:
                out.append(
                    _error(i, f"manifest_missing_field:{missing[0]}",
                           f"{path.name}:{lineno}: no {missing[0]!r} key", raw, base)
                )
                continue
            audio, text = row["audio_filepath"], row["text"]
            if not isinstance(audio, str) or not isinstance(text, str):
                out.append(
                    _error(i, "manifest_bad_row",
                           f"{path.name}:{lineno}: audio_filepath and text must be strings",
                           raw, base)
                )
                continue
            fields = {k: v for k, v in row.items() if k not in ("audio_filepath", "text")}
            fields.update(base)
            out.append(_transcript_entry(i, audio, text, fields, raw, f"{path.name}:{lineno}"))
    return out


def _read_commonvoice(batch: Path) -> list[LandingEntry]:
    out: list[LandingEntry] = []
    for path in _cv_tsvs(batch):
        header: list[str] | None = None
        for lineno, raw in _lines(path):
            if header is None:
                # A broken header byte only spoils that column name; the rows
                # then report the missing field instead of stopping the read.
                header = [h.strip() for h in raw.decode("utf-8", "replace").split("\t")]
                continue
            base = {
                "source_layout": "commonvoice",
                "source_file": path.name,
                "source_line": lineno,
                "split": path.name[: -len(".tsv")],
            }
            i = len(out)
            line, why = _decode(raw)
            if line is None:
                out.append(_error(i, "manifest_not_utf8", f"{path.name}:{lineno}: {why}", raw, base))
                continue
            # Common Voice TSVs are unquoted: split on tabs, keep quotes as text.
            cells = line.split("\t")
            if len(cells) != len(header):
                out.append(
                    _error(i, "manifest_bad_row",
                           f"{path.name}:{lineno}: {len(cells)} columns, header has {len(header)}",
                           raw, base)
                )
                continue
            row = dict(zip(header, cells))
            missing = next((k for k in ("path", "sentence") if not row.get(k)), None)
            if missing:
                out.append(
                    _error(i, f"manifest_missing_field:{missing}",
                           f"{path.name}:{lineno}: no {missing!r} value", raw, base)
                )
                continue
            src = row["path"]
            audio_ref = src if src.startswith("/") else "clips/" + src
            fields: dict = {}
            if row.get("client_id"):
                fields["speaker"] = row["client_id"]
            accent = row.get("accents", row.get("accent", ""))
            fields["accent"] = accent if accent else "unknown"
            fields["channel"] = "unknown"
            for k in ("age", "gender", "locale", "segment", "variant", "sentence_id"):
                if row.get(k):
                    fields[k] = row[k]
            for k in _CV_INT_FIELDS:
                if row.get(k):
                    try:
                        fields[k] = int(row[k])
                    except ValueError:
                        fields[k] = row[k]
            fields["source_path"] = src
            fields.update(base)
            out.append(_transcript_entry(i, audio_ref, row["sentence"], fields, raw, f"{path.name}:{lineno}"))
    return out


def _read_librispeech(batch: Path) -> list[LandingEntry]:
    out: list[LandingEntry] = []
    for path in _ls_transcripts(batch):
        rel_dir = PurePosixPath(path.parent.relative_to(batch).as_posix())
        parts = rel_dir.parts
        speaker = parts[-2] if len(parts) >= 2 else path.name.split("-")[0]
        chapter = parts[-1] if parts else ""
        rel_file = (rel_dir / path.name).as_posix()
        for lineno, raw in _lines(path):
            base = {
                "source_layout": "librispeech",
                "source_file": rel_file,
                "source_line": lineno,
            }
            i = len(out)
            line, why = _decode(raw)
            if line is None:
                out.append(_error(i, "manifest_not_utf8", f"{rel_file}:{lineno}: {why}", raw, base))
                continue
            utt_id, sep, transcript = line.strip().partition(" ")
            if not sep or not utt_id or not transcript.strip():
                out.append(
                    _error(i, "manifest_bad_row",
                           f"{rel_file}:{lineno}: expected 'ID TRANSCRIPT'", raw, base)
                )
                continue
            fields = {
                "speaker": speaker,
                "chapter": chapter,
                "utterance_id": utt_id,
                "accent": "unknown",
                "channel": "unknown",
            }
            fields.update(base)
            audio_ref = (rel_dir / f"{utt_id}.flac").as_posix()
            out.append(_transcript_entry(i, audio_ref, transcript.strip(), fields, raw, f"{rel_file}:{lineno}"))
    return out


_READERS = {"nemo": _read_nemo, "commonvoice": _read_commonvoice, "librispeech": _read_librispeech}


def read_entries(batch_dir: str | os.PathLike, layout: str | None = None) -> list[LandingEntry]:
    """One :class:`LandingEntry` per record of the batch, in source order.

    ``layout`` defaults to :func:`detect_layout`.  Audio files are not opened
    and paths are not resolved or validated.
    """
    batch = Path(batch_dir)
    layout = layout or detect_layout(batch)
    if layout not in _READERS:
        raise ValueError(f"unknown layout {layout!r}; choose from {list(LAYOUTS)}")
    return _READERS[layout](batch)


# ------------------------------------------------------------------- write --
_LEADING_KEYS = ("audio_filepath", "duration", "text")
_INTERNAL_FIELDS = ("source_line",)


def _as_row(item) -> dict | None:
    if isinstance(item, LandingEntry):
        if item.error is not None:
            return None
        row = {"audio_filepath": item.audio_ref, "text": item.text}
        row.update({k: v for k, v in item.fields.items() if k not in _INTERNAL_FIELDS})
        return row
    if isinstance(item, dict):
        return dict(item)
    raise TypeError(f"expected LandingEntry or dict, got {type(item).__name__}")


def write_nemo_manifest(entries_or_rows: Iterable, path: str | os.PathLike) -> int:
    """Write a NeMo JSONL manifest; returns the number of rows written.

    Takes :class:`LandingEntry` objects (error entries are skipped) or plain
    dicts.  Keys ``audio_filepath``, ``duration``, ``text`` come first.  The
    file is written to a temporary name and renamed into place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    n = 0
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for item in entries_or_rows:
            row = _as_row(item)
            if row is None:
                continue
            for k in ("audio_filepath", "text"):
                if not isinstance(row.get(k), str):
                    raise ValueError(f"manifest row needs a string {k!r}: {row!r}")
            ordered = {k: row[k] for k in _LEADING_KEYS if k in row}
            ordered.update({k: v for k, v in row.items() if k not in ordered})
            f.write(json.dumps(ordered, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


# ------------------------------------------------------------------ import --
@dataclass
class ImportReport:
    layout: str
    manifest: Path
    written: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (index, reason)
    normalised: int = 0  # written rows whose transcript normalisation changed (the original is in source_text)

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        """reason -> rows skipped for it, most frequent first."""
        counts = Counter(reason for _, reason in self.skipped)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _safe_relpath(ref: str) -> PurePosixPath | None:
    p = PurePosixPath(ref.replace("\\", "/"))
    if p.is_absolute() or not p.parts or any(part in ("..", "") for part in p.parts):
        return None
    return PurePosixPath(*[part for part in p.parts if part != "."])


def import_corpus(
    layout: str, src: str | os.PathLike, out: str | os.PathLike
) -> ImportReport:
    """Turn a corpus folder into a NeMo landing batch in ``out``.

    Audio is copied (file contents, never links) to ``out/audio/<path>``,
    keeping the source's relative path; the manifest references it relative
    to ``out``; ``duration`` is read from the audio header when soundfile can
    (otherwise left out); ``text`` is the normalised transcript and
    ``source_text`` the source's own.  Rows whose audio is missing, outside
    ``src`` (``..``, absolute paths, symlinks that escape) or unreadable as a
    path, rows the source could not give, and rows whose transcript cannot be
    normalised are skipped and listed in the returned report with their reason
    (``report.skipped_by_reason`` counts them).  ``_READY`` is written last.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ValueError(f"corpus folder {src} does not exist or is not a folder")
    if layout == "auto":
        layout = detect_layout(src)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose from {list(LAYOUTS)}")
    entries = read_entries(src, layout)
    src_root = src.resolve()
    if out.resolve() == src_root:
        raise ValueError("import output folder must differ from the source folder")
    (out / READY_MARKER).unlink(missing_ok=True)
    report = ImportReport(layout=layout, manifest=out / NEMO_MANIFEST)
    rows: list[dict] = []
    try:
        import soundfile
    except ImportError:  # pragma: no cover - soundfile is a dependency
        soundfile = None
    for e in entries:
        if e.error is not None:
            report.skipped.append((e.index, e.error))
            continue
        rel = _safe_relpath(e.audio_ref or "")
        if rel is None:
            report.skipped.append((e.index, "unsafe_audio_path"))
            continue
        source = src / rel
        try:
            resolved = source.resolve(strict=True)
        except (OSError, RuntimeError):
            report.skipped.append((e.index, "audio_missing"))
            continue
        if not resolved.is_relative_to(src_root) or not resolved.is_file():
            report.skipped.append((e.index, "unsafe_audio_path"))
            continue
        dest = out / "audio" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(resolved, dest)  # contents only; dest is a plain file
        row = {"audio_filepath": ("audio" / rel).as_posix()}
        if soundfile is not None:
            try:
                row["duration"] = round(float(soundfile.info(str(dest)).duration), 6)
            except Exception as exc:  # noqa: BLE001 - any decoder failure
                log.warning("cannot read duration of %s: %s", dest, exc)
        row["text"] = e.text
        row.update({k: v for k, v in e.fields.items() if k not in _INTERNAL_FIELDS})
        report.normalised += row["text"] != row.get(SOURCE_TEXT)
        rows.append(row)
    report.written = write_nemo_manifest(rows, report.manifest)
    (out / READY_MARKER).write_bytes(b"")
    if report.skipped:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in report.skipped_by_reason.items())
        log.warning("import skipped %d of %d rows (%s)", len(report.skipped), len(entries), reasons)
    return report
