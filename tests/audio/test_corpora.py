import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech_assets.audio import cli
from speech_assets.audio.corpora import (
    ImportReport,
    LandingEntry,
    detect_layout,
    import_corpus,
    read_entries,
    write_nemo_manifest,
)

CV_HEADER = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\tsegment"


def _tone(path: Path, seconds: float, freq: float = 440.0, fmt: str | None = None) -> None:
    t = np.arange(int(16000 * seconds)) / 16000
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * freq * t), 16000, subtype="PCM_16", format=fmt)


@pytest.fixture
def cv_dir(tmp_path) -> Path:
    root = tmp_path / "cv"
    _tone(root / "clips" / "common_voice_en_1.wav", 0.5)
    _tone(root / "clips" / "common_voice_en_2.flac", 0.75, fmt="FLAC")
    lines = [
        CV_HEADER,
        "abc123\tcommon_voice_en_1.wav\tHello, \"World\"!\t2\t0\ttwenties\tmale\tScottish English\ten\t",
        "",  # blank lines are skipped
        "def456\tcommon_voice_en_2.flac\tturn on the lights\t3\t1\t\tfemale\t\ten\tbenchmark",
        "ghi789\t../../etc/passwd\tsneaky\t0\t0\t\t\t\ten\t",
        "too\tfew\tcolumns",
        "jkl000\t\tno audio here\t0\t0\t\t\t\ten\t",
    ]
    body = ("\n".join(lines) + "\n").encode()
    body += b"mno111\tcommon_voice_en_3.wav\tbad \xff\xfe bytes\t0\t0\t\t\t\ten\t\n"
    (root / "validated.tsv").write_bytes(body)
    (root / "invalidated.tsv").write_text(CV_HEADER + "\n")
    return root


@pytest.fixture
def ls_dir(tmp_path) -> Path:
    root = tmp_path / "ls"
    layout = {
        ("19", "198"): ["19-198-0000 HELLO WORLD", "19-198-0001 IT'S A FINE DAY"],
        ("103", "1240"): ["103-1240-0000 CHAPTER ONE MISSUS RACHEL LYNDE IS SURPRISED"],
    }
    for (spk, chap), lines in layout.items():
        d = root / spk / chap
        d.mkdir(parents=True)
        (d / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")
        for line in lines:
            _tone(d / f"{line.split()[0]}.flac", 0.4, fmt="FLAC")
    return root


@pytest.fixture
def nemo_dir(tmp_path) -> Path:
    root = tmp_path / "nemo"
    root.mkdir()
    good1 = {"audio_filepath": "audio/a.wav", "duration": 1.5, "text": "hello there",
             "speaker": "us-m1-p50", "accent": "us", "channel": "clean", "snr_db": None}
    good2 = {"audio_filepath": "/abs/b.wav", "text": "second good row", "speaker": "x"}
    lines = [
        json.dumps(good1).encode(),
        b"",
        b'{"audio_filepath": "audio/c.wav", "text": "caf\xe9 latin-1"}',
        b'{"audio_filepath": "audio/d.wav", "text": ',
        b'{"audio_filepath": "audio/e.wav"}',
        b'["not", "an", "object"]',
        b'{"audio_filepath": 7, "text": "wrong type"}',
        b"   ",
        json.dumps(good2).encode(),
    ]
    (root / "manifest.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return root


# ------------------------------------------------------------------ detect --
def test_detect_layout(cv_dir, ls_dir, nemo_dir, tmp_path):
    assert detect_layout(cv_dir) == "commonvoice"
    assert detect_layout(ls_dir) == "librispeech"
    assert detect_layout(nemo_dir) == "nemo"
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="layout"):
        detect_layout(other)
    with pytest.raises(ValueError):
        detect_layout(tmp_path / "missing")


def test_detect_nemo_from_other_json_names(tmp_path):
    (tmp_path / "batch.json").write_text('{"audio_filepath": "a.wav", "text": "x"}\n')
    assert detect_layout(tmp_path) == "nemo"
    [entry] = read_entries(tmp_path)
    assert entry.ok and entry.fields["source_file"] == "batch.json"


# -------------------------------------------------------------------- nemo --
def test_nemo_bad_lines_become_their_own_error_entries(nemo_dir):
    entries = read_entries(nemo_dir)
    assert [e.index for e in entries] == list(range(7))
    assert [e.error for e in entries] == [
        None,
        "manifest_not_utf8",
        "manifest_bad_json",
        "manifest_missing_field:text",
        "manifest_bad_row",
        "manifest_bad_row",
        None,
    ]
    first, last = entries[0], entries[-1]
    assert first.audio_ref == "audio/a.wav" and first.text == "hello there"
    assert first.fields["duration"] == 1.5 and first.fields["speaker"] == "us-m1-p50"
    assert first.fields["snr_db"] is None and first.fields["source_layout"] == "nemo"
    assert "audio_filepath" not in first.fields and "text" not in first.fields
    assert last.audio_ref == "/abs/b.wav"  # reported as written, not validated
    bad = entries[1]
    assert bad.text is None and bad.audio_ref is None and bad.error_detail
    assert bad.raw == b'{"audio_filepath": "audio/c.wav", "text": "caf\xe9 latin-1"}'
    assert entries[2].raw.endswith(b'"text": ')


def test_nemo_reads_a_simulated_batch(tmp_path):
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are needed")
    from speech_assets.simulation.speech import SimulationConfig, generate_batch

    out = tmp_path / "sim"
    generate_batch(out, SimulationConfig(n_utterances=3, seed=9, workers=1))
    assert detect_layout(out) == "nemo"
    entries = read_entries(out)
    assert len(entries) == 3 and all(e.ok for e in entries)
    for e in entries:
        assert (out / e.audio_ref).is_file()
        assert {"speaker", "accent", "channel", "snr_db", "duration", "rate_wpm", "kind"} <= set(
            e.fields
        )
        assert e.text == e.fields["source_text"]  # simulated transcripts are normalised already: unchanged


# ------------------------------------------------------------- commonvoice --
def test_commonvoice_entries(cv_dir):
    entries = read_entries(cv_dir)
    assert [e.index for e in entries] == list(range(6))
    e1, e2, hostile, short, noaudio, notutf8 = entries
    assert e1.error is None and e1.audio_ref == "clips/common_voice_en_1.wav"
    # Normalised to the platform alphabet (it used to come through as written, and training left it out);
    # the source's own text is kept beside it.
    assert e1.text == "hello world"
    assert e1.fields["source_text"] == 'Hello, "World"!'
    assert e1.fields["speaker"] == "abc123"
    assert e1.fields["accent"] == "Scottish English"
    assert e1.fields["channel"] == "unknown"
    assert e1.fields["gender"] == "male" and e1.fields["age"] == "twenties"
    assert e1.fields["up_votes"] == 2 and e1.fields["down_votes"] == 0
    assert e1.fields["source_layout"] == "commonvoice"
    assert e1.fields["source_path"] == "common_voice_en_1.wav"
    assert e2.fields["accent"] == "unknown" and e2.fields["segment"] == "benchmark"
    assert "age" not in e2.fields
    assert hostile.error is None and hostile.audio_ref == "clips/../../etc/passwd"
    assert hostile.fields["source_path"] == "../../etc/passwd"
    assert short.error == "manifest_bad_row" and short.raw == b"too\tfew\tcolumns"
    assert noaudio.error == "manifest_missing_field:path"
    assert notutf8.error == "manifest_not_utf8" and b"\xff\xfe" in notutf8.raw


def test_commonvoice_old_accent_column_and_split_files(tmp_path):
    header = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccent"
    (tmp_path / "train.tsv").write_text(header + "\nc1\ta.mp3\tone\t1\t0\t\t\tus\n")
    (tmp_path / "dev.tsv").write_text(header + "\nc2\tb.mp3\ttwo\t1\t0\t\t\t\n")
    entries = read_entries(tmp_path)
    assert [(e.text, e.fields["accent"], e.fields["split"]) for e in entries] == [
        ("one", "us", "train"),
        ("two", "unknown", "dev"),
    ]
    assert entries[0].fields["speaker"] == "c1"


# ------------------------------------------------------------- librispeech --
def test_librispeech_entries(ls_dir):
    entries = read_entries(ls_dir)
    assert [e.audio_ref for e in entries] == [
        "19/198/19-198-0000.flac",
        "19/198/19-198-0001.flac",
        "103/1240/103-1240-0000.flac",
    ]
    assert [e.text for e in entries] == [
        "hello world",
        "it's a fine day",
        "chapter one missus rachel lynde is surprised",
    ]
    assert [e.fields["speaker"] for e in entries] == ["19", "19", "103"]
    for e in entries:
        assert e.ok and e.fields["accent"] == "unknown" and e.fields["channel"] == "unknown"
        assert e.fields["source_layout"] == "librispeech"
        assert (ls_dir / e.audio_ref).is_file()


def test_librispeech_bad_lines(ls_dir):
    trans = ls_dir / "19" / "198" / "19-198.trans.txt"
    trans.write_bytes(trans.read_bytes() + b"19-198-0002 CAF\xc9\nNOSPACE\n")
    entries = read_entries(ls_dir)
    assert [e.error for e in entries] == [None, None, "manifest_not_utf8", "manifest_bad_row", None]


# ------------------------------------------------------------ write/import --
def test_write_nemo_manifest_round_trip(ls_dir, tmp_path):
    entries = read_entries(ls_dir)
    entries.append(LandingEntry(99, None, None, {}, "manifest_bad_row"))
    path = tmp_path / "out" / "manifest.jsonl"
    assert write_nemo_manifest(entries, path) == 3
    back = read_entries(path.parent)
    assert [(e.audio_ref, e.text) for e in back] == [(e.audio_ref, e.text) for e in entries[:3]]
    assert back[0].fields["speaker"] == "19"
    assert write_nemo_manifest([{"text": "t", "audio_filepath": "a.wav", "duration": 1.0}], path) == 1
    assert list(json.loads(path.read_text())) == ["audio_filepath", "duration", "text"]


def test_import_commonvoice(cv_dir, tmp_path):
    outside = tmp_path / "secret.wav"
    _tone(outside, 0.2)
    os.symlink(outside, cv_dir / "clips" / "link.wav")
    with open(cv_dir / "validated.tsv", "a") as f:
        f.write("pqr222\tlink.wav\tescaping link\t0\t0\t\t\t\ten\t\n")
    out = tmp_path / "imported"
    report = import_corpus("commonvoice", cv_dir, out)
    assert report.written == 2
    reasons = dict(report.skipped)
    assert reasons[2] == "unsafe_audio_path"  # ../../etc/passwd
    assert reasons[6] == "unsafe_audio_path"  # symlink out of the corpus
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["audio_filepath"] for r in rows] == [
        "audio/clips/common_voice_en_1.wav",
        "audio/clips/common_voice_en_2.flac",
    ]
    assert [r["duration"] for r in rows] == [0.5, 0.75]
    assert rows[0]["speaker"] == "abc123" and rows[0]["accent"] == "Scottish English"
    for r in rows:
        p = out / r["audio_filepath"]
        assert p.is_file() and not p.is_symlink()
    assert (out / "_READY").exists()
    assert detect_layout(out) == "nemo"
    assert all(e.ok for e in read_entries(out))


def test_cli_import_librispeech(ls_dir, tmp_path, capsys):
    out = tmp_path / "imported"
    assert cli.main(["-q", "import-corpus", "--layout", "librispeech", "--src", str(ls_dir),
                     "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and rows[0]["text"] == "hello world"
    assert rows[0]["audio_filepath"] == "audio/19/198/19-198-0000.flac"
    assert abs(rows[0]["duration"] - 0.4) < 0.01
    assert (out / "_READY").read_bytes() == b""
    assert cli.main(["-q", "import-corpus", "--layout", "nemo", "--src", str(tmp_path / "nope"),
                     "--out", str(out)]) == 2


# ---------------------------------------------------------- normalisation --
def test_commonvoice_transcript_is_normalised_on_import_and_the_original_kept(tmp_path):
    src = tmp_path / "cv"
    _tone(src / "clips" / "a.wav", 0.3)
    _tone(src / "clips" / "b.wav", 0.3)
    (src / "validated.tsv").write_text(
        CV_HEADER + "\n"
        "c1\ta.wav\tHello, World! It's 5 o'clock.\t1\t0\t\t\t\ten\t\n"
        "c2\tb.wav\tturn on the lights\t1\t0\t\t\t\ten\t\n"
    )
    out = tmp_path / "imported"
    report = import_corpus("commonvoice", src, out)
    assert report.written == 2 and report.skipped == [] and report.normalised == 1
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == ["hello world it's five o'clock", "turn on the lights"]
    assert [r["source_text"] for r in rows] == ["Hello, World! It's 5 o'clock.", "turn on the lights"]
    # Read again (as intake reads the imported batch): still normalised, and the original is not overwritten by
    # the already-normalised text.
    back = read_entries(out)
    assert [(e.text, e.fields["source_text"]) for e in back] == [
        ("hello world it's five o'clock", "Hello, World! It's 5 o'clock."),
        ("turn on the lights", "turn on the lights"),
    ]


def test_librispeech_keeps_its_upper_case_original(ls_dir):
    first = read_entries(ls_dir)[1]
    assert first.text == "it's a fine day" and first.fields["source_text"] == "IT'S A FINE DAY"


def _nemo_batch(root: Path, rows: list[dict]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for r in rows:
        _tone(root / r["audio_filepath"], 0.3)
    (root / "manifest.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return root


CYRILLIC_ROWS = [
    {"audio_filepath": "audio/a.wav", "text": "Turn on the lights.", "speaker": "s1"},
    {"audio_filepath": "audio/b.wav", "text": "Привет, как дела?", "speaker": "s2"},
    {"audio_filepath": "audio/c.wav", "text": "...", "speaker": "s3"},
]


def test_nemo_cyrillic_transcript_becomes_an_error_entry_with_its_reason(tmp_path):
    batch = _nemo_batch(tmp_path / "nemo", CYRILLIC_ROWS)
    ok, cyrillic, empty = read_entries(batch)
    assert ok.ok and ok.text == "turn on the lights"
    assert cyrillic.error == "non_latin_script"
    assert cyrillic.error_detail.startswith("manifest.jsonl:2: ") and "CYRILLIC" in cyrillic.error_detail
    # Kept for a person to fix: the audio path and the transcript as written; no raw bytes, which intake would
    # store verbatim (unsanitised) for an unparsable row.
    assert cyrillic.audio_ref == "audio/b.wav" and cyrillic.text == "Привет, как дела?"
    assert cyrillic.fields["speaker"] == "s2" and cyrillic.raw == b""
    assert empty.error == "empty_after_normalisation"


def test_import_counts_every_unnormalisable_transcript_per_reason(tmp_path):
    rows = CYRILLIC_ROWS + [{"audio_filepath": "audio/d.wav", "text": "日本語", "speaker": "s4"}]
    batch = _nemo_batch(tmp_path / "nemo", rows)
    out = tmp_path / "imported"
    report = import_corpus("nemo", batch, out)
    assert report.written == 1
    assert report.skipped == [(1, "non_latin_script"), (2, "empty_after_normalisation"), (3, "non_latin_script")]
    assert report.skipped_by_reason == {"non_latin_script": 2, "empty_after_normalisation": 1}
    written = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["text"] for r in written] == ["turn on the lights"]
    assert not (out / "audio" / "audio" / "b.wav").exists()


def test_skipped_by_reason_orders_by_count_then_name():
    report = ImportReport("nemo", Path("m.jsonl"), skipped=[(0, "b"), (1, "a"), (2, "b"), (3, "c")])
    assert list(report.skipped_by_reason.items()) == [("b", 2), ("a", 1), ("c", 1)]


def test_intake_quarantines_the_cyrillic_transcript_and_counts_it(store, landing):
    from tests.intake.conftest import REPO, good_rows, make_batch
    import io

    import pyarrow.parquet as pq

    from speech_assets.intake.batch import ingest_batch, metadata_path, rejections_path
    from speech_assets.intake.landing import scan_landing

    rows = good_rows(3)
    rows[0]["text"] = "Turn on the kitchen lights, please!"
    rows[1]["text"] = "Включи свет"
    make_batch(landing, "mixed", rows)
    (b,) = scan_landing(landing)
    result = ingest_batch(store, REPO, b, run_id="r1")

    assert result.published, result.contract.markdown()
    assert result.staged.accepted == 2 and result.staged.rejected == 1
    assert result.staged.rejection_reasons == {"non_latin_script": 1}
    rejected = pq.read_table(io.BytesIO(store.get_object(REPO, "main", rejections_path(b.batch_id)))).to_pylist()
    assert [(r["source_ref"], r["reason"]) for r in rejected] == [("'audio/good_0_1.wav'", "non_latin_script")]
    assert rejected[0]["text_sanitized"] == "Включи свет" and rejected[0]["quarantine_path"]
    assert list(store.list_objects(REPO, "main", f"quarantine/{b.batch_id}/records/")) == []
    meta = pq.read_table(io.BytesIO(store.get_object(REPO, "main", metadata_path(b.batch_id)))).to_pylist()
    assert sorted(r["text"] for r in meta) == ["turn on the kitchen lights number two",
                                                "turn on the kitchen lights please"]


def test_a_transcript_with_personal_data_is_left_for_intake_to_redact(tmp_path):
    from speech_assets.audio.pii import sanitize_transcript
    from speech_assets.text import normalize_text

    text = "Call me on 555-123-4567."
    # Why: spelled out as cardinals, the number is no longer a phone number to the redactor.
    assert sanitize_transcript(normalize_text(text)).total == 0
    batch = _nemo_batch(tmp_path / "nemo", [{"audio_filepath": "audio/a.wav", "text": text}])
    (entry,) = read_entries(batch)
    assert entry.ok and entry.text == text == entry.fields["source_text"]
    assert sanitize_transcript(entry.text).counts["phone"] == 1


def test_a_blank_transcript_is_left_for_intake_to_reject(tmp_path):
    batch = _nemo_batch(tmp_path / "nemo", [{"audio_filepath": "audio/a.wav", "text": "  "}])
    (entry,) = read_entries(batch)
    assert entry.ok and entry.text == "  "  # intake rejects it as manifest_missing_field:text, as before
