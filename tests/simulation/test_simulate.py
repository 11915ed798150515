import dataclasses
import json
import re
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech_assets.simulation import cli
from speech_assets.simulation.speech import (
    ACCENTS,
    CHANNELS,
    MANIFEST_NAME,
    READY_MARKER,
    SimulationConfig,
    UtteranceSpec,
    generate_batch,
    parse_channel_weights,
    plan_batch,
    render_utterance,
    speakers_for_accent,
)

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox are needed",
)

SCHEMA = [
    "audio_filepath", "duration", "text", "speaker", "accent", "channel",
    "snr_db", "rate_wpm", "kind",
]
ALL_CHANNELS = {c: 1.0 for c in CHANNELS}


def _config(**kw) -> SimulationConfig:
    base = dict(
        n_utterances=8, seed=4, accents=["us", "gb", "scottish"], channels=ALL_CHANNELS,
        speakers_per_accent=2, workers=2,
    )
    base.update(kw)
    return SimulationConfig(**base)


def _rows(batch: Path) -> list[dict]:
    return [json.loads(line) for line in (batch / MANIFEST_NAME).read_text().splitlines()]


def _snapshot(batch: Path) -> dict[str, bytes]:
    return {
        p.relative_to(batch).as_posix(): p.read_bytes()
        for p in sorted(batch.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "batch"
    generate_batch(out, _config())
    return out


def _spec(text: str, channel: str = "clean", snr_db=None, accent="us", index=0, **kw) -> UtteranceSpec:
    speaker = speakers_for_accent(accent, 1, seed=0)[0]
    fields = dict(
        index=index, utt_id=f"t-{index}", text=text, kind="open", speaker=speaker,
        rate_wpm=170, channel=channel, snr_db=snr_db, level_dbfs=-3.0, seed=0,
    )
    fields.update(kw)
    return UtteranceSpec(**fields)


def _high_band_fraction(x: np.ndarray, cutoff_hz: float = 3600.0) -> float:
    x = x.astype(np.float64)
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / 16000)
    return float(power[freqs > cutoff_hz].sum() / power.sum())


# -------------------------------------------------------------- determinism --
def test_same_seed_same_bytes_any_worker_count(batch, tmp_path):
    again = tmp_path / "again"
    generate_batch(again, _config(workers=1))
    assert _snapshot(again) == _snapshot(batch)


def test_different_seed_different_bytes(batch, tmp_path):
    other = tmp_path / "other"
    generate_batch(other, _config(seed=5, workers=1))
    assert (other / MANIFEST_NAME).read_bytes() != (batch / MANIFEST_NAME).read_bytes()
    a = {p.read_bytes() for p in (batch / "audio").iterdir()}
    b = {p.read_bytes() for p in (other / "audio").iterdir()}
    assert not a & b


# ----------------------------------------------------------------- manifest --
def test_manifest_schema_and_wav_format(batch):
    rows = _rows(batch)
    assert len(rows) == 8
    for row in rows:
        assert list(row) == SCHEMA
        assert re.fullmatch(r"audio/[A-Za-z0-9_-]+\.wav", row["audio_filepath"])
        path = batch / row["audio_filepath"]
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        with wave.open(str(path)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
            assert abs(w.getnframes() / 16000 - row["duration"]) <= 0.010
        assert isinstance(row["duration"], float) and row["duration"] > 0.3
        assert isinstance(row["rate_wpm"], int) and 140 <= row["rate_wpm"] <= 200
        assert row["text"] and row["kind"]
    assert sorted(p.name for p in (batch / "audio").iterdir()) == sorted(
        Path(r["audio_filepath"]).name for r in rows
    )


def test_batch_covers_configured_population(batch):
    cfg = _config()
    rows = _rows(batch)
    assert {r["accent"] for r in rows} == set(cfg.accents)
    assert {r["channel"] for r in rows} == set(CHANNELS)
    allowed = {
        s.speaker_id
        for a in cfg.accents
        for s in speakers_for_accent(a, cfg.speakers_per_accent, cfg.seed)
    }
    assert {r["speaker"] for r in rows} <= allowed
    assert [r["text"] for r in rows] == [s.text for s in plan_batch(cfg)]


def test_manifest_matches_config(tmp_path):
    cfg = _config(
        n_utterances=24, accents=["rp", "caribbean"], channels={"telephone": 1, "noisy": 1},
        speakers_per_accent=2, snr_db_range=(8, 12),
    )
    specs = plan_batch(cfg)
    assert {s.accent for s in specs} == {"rp", "caribbean"}
    assert {s.channel for s in specs} == {"telephone", "noisy"}
    for accent in ("rp", "caribbean"):
        ids = {s.speaker.speaker_id for s in specs if s.accent == accent}
        assert 1 <= len(ids) <= 2
        assert all(re.fullmatch(rf"{accent}-[mf]\d-p\d+", i) for i in ids)
    for s in specs:
        assert (s.snr_db is None) == (s.channel != "noisy")
        if s.snr_db is not None:
            assert 8 <= s.snr_db <= 12

    small = dataclasses.replace(cfg, n_utterances=6, workers=1)
    rows = _rows(generate_batch(tmp_path / "b", small).parent)
    assert {r["accent"] for r in rows} <= {"rp", "caribbean"}
    assert {r["channel"] for r in rows} <= {"telephone", "noisy"}
    for r in rows:
        assert r["speaker"].startswith(r["accent"] + "-")
        assert (r["snr_db"] is None) == (r["channel"] != "noisy")


def test_default_config_is_training_population():
    cfg = SimulationConfig()
    assert set(cfg.accents) == {"us", "gb", "rp", "scottish"}
    assert set(cfg.channels) == {"clean", "noisy"}
    assert cfg.workers == 2


def test_ready_marker_written_last(tmp_path):
    out = tmp_path / "b"
    seen = []

    def progress(done, total):
        seen.append((done, total, (out / READY_MARKER).exists(), (out / MANIFEST_NAME).exists()))

    manifest = generate_batch(out, _config(n_utterances=3, workers=1), progress=progress)
    assert manifest == out / MANIFEST_NAME
    assert [s[:2] for s in seen] == [(1, 3), (2, 3), (3, 3)]
    assert not any(ready or man for _, _, ready, man in seen)
    assert (out / READY_MARKER).read_bytes() == b""
    assert (out / READY_MARKER).stat().st_mtime_ns >= manifest.stat().st_mtime_ns
    assert not list(out.rglob("*.part"))


def test_refuses_to_overwrite_a_batch_unless_asked(tmp_path):
    out = tmp_path / "b"
    generate_batch(out, _config(n_utterances=2, workers=1))
    with pytest.raises(FileExistsError):
        generate_batch(out, _config(n_utterances=2, workers=1))
    generate_batch(out, _config(n_utterances=1, workers=1), overwrite=True)
    assert len(list((out / "audio").iterdir())) == 1
    assert len(_rows(out)) == 1


# ------------------------------------------------------------------ channels --
def test_telephone_has_no_energy_above_3600_hz_but_clean_does():
    text = "she sells six fresh fish so fast"
    clean = render_utterance(_spec(text, "clean"))
    phone = render_utterance(_spec(text, "telephone"))
    assert _high_band_fraction(clean) > 1e-3
    assert _high_band_fraction(phone) < 1e-5


def test_telephone_rows_in_a_batch_are_band_limited(batch):
    rows = [r for r in _rows(batch) if r["channel"] in ("telephone", "clean")]
    assert {r["channel"] for r in rows} == {"telephone", "clean"}
    for r in rows:
        x, _ = sf.read(str(batch / r["audio_filepath"]), dtype="int16")
        frac = _high_band_fraction(x)
        assert (frac < 1e-5) if r["channel"] == "telephone" else (frac > 1e-4)


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_noisy_channel_hits_requested_snr(snr):
    text = "the train leaves from platform nine at half past seven"
    noisy_spec = _spec(text, "noisy", snr_db=snr, index=3)
    noisy = render_utterance(noisy_spec).astype(np.float64)
    clean = render_utterance(dataclasses.replace(noisy_spec, channel="clean", snr_db=None))
    clean = clean.astype(np.float64)
    assert noisy.size == clean.size
    gain = (noisy @ clean) / (clean @ clean)  # output levels are peak-normalized
    noise = noisy - gain * clean
    measured = 10 * np.log10(np.sum((gain * clean) ** 2) / np.sum(noise**2))
    assert abs(measured - snr) < 1.5


def test_reverb_lengthens_and_changes_the_signal():
    text = "open the garage door"
    clean = render_utterance(_spec(text, "clean"))
    wet = render_utterance(_spec(text, "reverb"))
    assert wet.size >= clean.size + 0.4 * 16000
    assert not np.array_equal(wet[: clean.size], clean)


# ----------------------------------------------------------- voices, speakers --
def test_speakers_are_stable_and_prefix_consistent():
    six = speakers_for_accent("scottish", 6, seed=5)
    assert speakers_for_accent("scottish", 3, seed=5) == six[:3]
    assert len({s.speaker_id for s in six}) == 6
    assert all(re.fullmatch(r"scottish-[mf]\d-p\d+", s.speaker_id) for s in six)
    assert speakers_for_accent("scottish", 6, seed=6) != six


def test_variants_accents_and_rates_change_the_audio():
    text = "turn on the kitchen lights"
    gb = speakers_for_accent("gb", 40, seed=0)
    by_variant = {}
    for s in gb:
        by_variant.setdefault(s.variant[0], s)
    male, female = by_variant["m"], by_variant["f"]
    base = _spec(text, accent="gb")
    a = render_utterance(dataclasses.replace(base, speaker=male))
    b = render_utterance(dataclasses.replace(base, speaker=female))
    assert a.tobytes() != b.tobytes()  # the +variant really applies to en-gb
    accents = {
        name: render_utterance(_spec(text, accent=name)).tobytes() for name in ACCENTS
    }
    assert len(set(accents.values())) == len(ACCENTS)
    slow = render_utterance(dataclasses.replace(base, rate_wpm=140))
    fast = render_utterance(dataclasses.replace(base, rate_wpm=200))
    assert fast.size < 0.85 * slow.size


# -------------------------------------------------------------- config, cli --
def test_config_validation_and_channel_parsing():
    with pytest.raises(ValueError):
        SimulationConfig(accents=["martian"])
    with pytest.raises(ValueError):
        SimulationConfig(channels={"underwater": 1})
    with pytest.raises(ValueError):
        SimulationConfig(channels={"clean": 0})
    with pytest.raises(ValueError):
        SimulationConfig(seed=-1)
    assert parse_channel_weights("clean:0.8,noisy:0.2") == {"clean": 0.8, "noisy": 0.2}
    assert parse_channel_weights("telephone") == {"telephone": 1.0}
    with pytest.raises(ValueError):
        parse_channel_weights("clean:lots")


def test_cli_simulate(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = cli.main([
        "-q", "simulate", "--out", str(out), "--n", "3", "--seed", "4",
        "--accents", "us,gb", "--channels", "clean:0.5,telephone:0.5", "--workers", "1",
    ])
    assert rc == 0
    rows = _rows(out)
    assert len(rows) == 3 and (out / READY_MARKER).exists()
    assert {r["accent"] for r in rows} <= {"us", "gb"}
    assert {r["channel"] for r in rows} <= {"clean", "telephone"}
    assert cli.main(["-q", "simulate", "--out", str(out), "--n", "3"]) == 2  # exists
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--out", str(out), "--accents", "martian"])
