"""The store's key space: every object path and prefix the platform writes, in one place.

Each key has one owner (the module that writes it); every other module reads it through the name here. No other
module spells a store path (`tests/test_layering.py` fails if one does). Each entry of `KEYS` says who writes the
key, who reads it, and what speaker data it holds, so erasure and retention read the flag instead of keeping lists
of their own; a new artifact that holds speaker data fails `tests/privacy` until erasure knows how to rewrite it.

`holds` is one of:
  - `AUDIO`    raw audio of a speaker (retention deletes it after the policy's age; erasure deletes a speaker's)
  - `ROWS`     per-utterance rows or arrays keyed by a speaker (erasure rewrites them without that speaker)
  - `NONE`     no speaker data (aggregates, digests, pointers, models: a model trained on a speaker is *marked*)

The mutable pointers on `main` (`checkpoints/latest.json`, `evaluations/latest.json`, `serving/bento.json`) are how
one asset hands its latest result to the next: each is written by exactly one asset and read by the next one down
the graph; the immutable objects they point at are the record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

AUDIO = "audio"
ROWS = "rows"
NONE = "none"


@dataclass(frozen=True)
class Key:
    pattern: str  # the path, with <placeholders> for the variable parts; a trailing "/" marks a prefix
    writer: str
    readers: str
    holds: str  # AUDIO, ROWS or NONE
    what: str

    @property
    def prefix(self) -> str:
        """The fixed part of the pattern: what a `list_objects` over every such object starts from."""
        return self.pattern.split("<", 1)[0]

    def within(self, batch_id: str) -> str:
        """The fixed part of the pattern with `<batch>` filled in: what a listing of one batch's objects starts from."""
        if "<batch>" not in self.pattern:
            raise ValueError(f"{self.pattern} is not kept per batch")
        return self.pattern.replace("<batch>", batch_id).split("<", 1)[0]

    def matches(self, path: str) -> bool:
        """Whether `path` is an object of this key: a placeholder stands for one path segment (or part of one), a
        pattern ending in "/" holds everything under it."""
        regex = "".join("[^/]+" if part.startswith("<") else re.escape(part)
                        for part in re.split(r"(<[^>]+>)", self.pattern) if part)
        return re.fullmatch(regex + (".+" if self.pattern.endswith("/") else ""), path) is not None


# -- intake: one batch's audio, metadata and rejections ---------------------------------------------------
METADATA_PREFIX = "metadata"
AUDIO_PREFIX = "audio"
QUARANTINE_PREFIX = "quarantine"
PUBLISHED_PREFIX = "intake/published"


def metadata_path(batch_id: str) -> str:
    return f"{METADATA_PREFIX}/{batch_id}.parquet"


def metadata_batch_id(path: str) -> str | None:
    """The batch whose metadata table `path` is (the inverse of `metadata_path`); None for any other path."""
    head, tail = f"{METADATA_PREFIX}/", ".parquet"
    if path.startswith(head) and path.endswith(tail) and "/" not in path[len(head) : -len(tail)]:
        return path[len(head) : -len(tail)] or None
    return None


def audio_dir(batch_id: str) -> str:
    return f"{AUDIO_PREFIX}/{batch_id}/"


def audio_path(batch_id: str, utt_id: str) -> str:
    return f"{audio_dir(batch_id)}{utt_id}.wav"


def quarantine_dir(batch_id: str) -> str:
    return f"{QUARANTINE_PREFIX}/{batch_id}/"


def rejections_path(batch_id: str) -> str:
    return f"{quarantine_dir(batch_id)}rejections.parquet"


def quarantine_file_path(batch_id: str, index: int, safe_name: str) -> str:
    return f"{quarantine_dir(batch_id)}files/{index:06d}_{safe_name}"


def quarantine_record_path(batch_id: str, index: int) -> str:
    return f"{quarantine_dir(batch_id)}records/{index:06d}.raw"


def published_marker_path(batch_id: str) -> str:
    return f"{PUBLISHED_PREFIX}/{batch_id}.json"


# -- corpus -----------------------------------------------------------------------------------------------
MANIFEST_PATH = "manifest/audio_manifest.parquet"
HOLDOUT_PREFIX = "manifest/holdouts"


def holdout_path(batch_id: str) -> str:
    return f"{HOLDOUT_PREFIX}/{batch_id}.json"

# -- features ---------------------------------------------------------------------------------------------
FEATURES_PREFIX = "features"


def feature_dir(config_digest: str, batch_id: str) -> str:
    return f"{FEATURES_PREFIX}/{config_digest}/{batch_id}"


# -- training and evaluation ------------------------------------------------------------------------------
CHECKPOINT_POINTER = "checkpoints/latest.json"
EVALUATION_POINTER = "evaluations/latest.json"
CHECKPOINTS_PREFIX = "checkpoints"
EVALUATIONS_PREFIX = "evaluations/"


def checkpoint_dir(digest: str) -> str:
    return f"{CHECKPOINTS_PREFIX}/{digest[:16]}"


def evaluation_dir(checkpoint_digest: str) -> str:
    return f"{EVALUATIONS_PREFIX}{checkpoint_digest[:16]}"


def evaluation_rows_path(checkpoint_digest: str) -> str:
    return f"{evaluation_dir(checkpoint_digest)}/rows.parquet"


def champion_rows_path(checkpoint_digest: str) -> str:
    return f"{evaluation_dir(checkpoint_digest)}/champion_rows.parquet"


def anchor_rows_path(checkpoint_digest: str) -> str:
    return f"{evaluation_dir(checkpoint_digest)}/anchor_rows.parquet"


def checkpoint_path(digest: str) -> str:
    return f"{checkpoint_dir(digest)}/checkpoint.pt"


def training_record_path(digest: str) -> str:
    return f"{checkpoint_dir(digest)}/training.json"


def evaluation_paths(checkpoint_digest: str) -> dict[str, str]:
    """The files of one checkpoint's evaluation, by role: report (JSON), html, rows, champion_rows, anchor_rows."""
    prefix = evaluation_dir(checkpoint_digest)
    return {"report": f"{prefix}/report.json", "html": f"{prefix}/report.html",
            "rows": evaluation_rows_path(checkpoint_digest), "champion_rows": champion_rows_path(checkpoint_digest),
            "anchor_rows": anchor_rows_path(checkpoint_digest)}


# -- registry ---------------------------------------------------------------------------------------------
MODELS_PREFIX = "models/"
AUDIT_ROOT = "audit/"
PLATFORM_AUDIT_PREFIX = "audit/_platform/"


def stages_path(name: str) -> str:
    return f"{MODELS_PREFIX}{name}/stages.json"


def version_prefix(name: str, version: str) -> str:
    return f"{MODELS_PREFIX}{name}/{version}/"


def audit_prefix(name: str) -> str:
    return f"{AUDIT_ROOT}{name}/"


def audit_path(name: str, seq: int, action: str) -> str:
    return f"{audit_prefix(name)}{seq:08d}-{action}.json"


# -- governance and privacy -------------------------------------------------------------------------------
POLICY_PATH = "governance/release_policy.json"
ERASURE_MARKS_PREFIX = "governance/erasure_marks"
RETENTION_PREFIX = "retention"
REDACTION_REPORT_PATH = "reports/redactions.json"


def marks_path(model: str, version: str) -> str:
    return f"{ERASURE_MARKS_PREFIX}/{model}/{version}.json"


def tombstone_path(batch_id: str) -> str:
    return f"{RETENTION_PREFIX}/{batch_id}.json"


# -- monitoring -------------------------------------------------------------------------------------------
DRIFT_PREFIX = "monitoring/drift"
REFERENCE_PREFIX = "monitoring/reference"


def drift_report_path(batch_id: str) -> str:
    return f"{DRIFT_PREFIX}/{batch_id}.json"


def reference_path(version: str) -> str:
    return f"{REFERENCE_PREFIX}/{version}.json"


# -- evaluation: the fixed real-speech anchor set ---------------------------------------------------------
# Debian's pocketsphinx-testdata recordings (`evaluation.anchor`): public test recordings of no platform user, so
# they are not speaker data (`NONE`): retention must not sweep a fixed set, and erasure has no speaker to find.
ANCHOR_DIR = "anchor/pocketsphinx_testdata/"
ANCHOR_MANIFEST_PATH = f"{ANCHOR_DIR}manifest.json"


def anchor_audio_path(utt_id: str) -> str:
    return f"{ANCHOR_DIR}{utt_id}.wav"


# -- serving and operations -------------------------------------------------------------------------------
BENTO_RECORD = "serving/bento.json"
DEPLOYMENT_RECORD = "serving/local/deployment.json"
PROBE_SET_PATH = "serving/probe_set.json"
SAMPLE_PLAN_PATH = "serving/sample_plan.json"
DASHBOARD_PATH = "reports/ops_dashboard.html"
DASHBOARD_DIGEST_PATH = "reports/ops_dashboard.sha256"  # digest of the store-derived content of the stored page


KEYS: tuple[Key, ...] = (
    Key("audio/<batch>/<utt>.wav", "intake.batch (raw_audio)", "features, evaluation, serving.probe_set", AUDIO,
        "canonical 16 kHz mono PCM16 audio of each accepted utterance"),
    Key("metadata/<batch>.parquet", "intake.batch (raw_audio)", "intake.manifest, features, privacy", ROWS,
        "one row per accepted utterance: transcript, speaker pseudonym, subgroup, audio facts"),
    Key("quarantine/<batch>/files/<n>_<name>", "intake.batch (raw_audio)", "a person (`store quarantine`)", AUDIO,
        "the bytes of each rejected file, kept with its reason"),
    Key("quarantine/<batch>/records/<n>.raw", "intake.batch (raw_audio)", "a person", ROWS,
        "manifest lines that could not be parsed, verbatim"),
    Key("quarantine/<batch>/rejections.parquet", "intake.batch (raw_audio)", "a person, privacy.redaction", ROWS,
        "one row per rejected item: reason code, sentence, sanitized transcript"),
    Key("intake/published/<batch>.json", "intake.batch (raw_audio)", "intake.batch (a repeated run is a no-op)",
        NONE, "publish marker: which run published which content of a batch"),
    Key("manifest/audio_manifest.parquet", "intake.manifest (audio_manifest)",
        "features, training, evaluation, monitoring, serving.probe_set, governance", ROWS,
        "every published utterance with its speaker-disjoint split"),
    Key("manifest/holdouts/<batch>.json", "intake.holdout (drift_report)",
        "intake.manifest (read_manifest_rows), evaluation, serving.probe_set", NONE,
        "a drifted batch's new speakers held out of training (sha256 digests of speaker keys, no pseudonym) and "
        "its drifted slices: the drift test set"),
    Key("features/<config digest>/<batch>/", "features.store (features)", "training, evaluation, monitoring", ROWS,
        "log-mel arrays + offsets index + per-batch statistics"),
    Key("checkpoints/<digest16>/checkpoint.pt", "training.artifacts (asr_checkpoint)", "evaluation, registry",
        NONE, "model weights (a model trained on erased speech is marked, not rewritten)"),
    Key("checkpoints/<digest16>/training.json", "training.artifacts (asr_checkpoint)", "evaluation, registry", NONE,
        "training lineage, configs, loss curve"),
    Key("checkpoints/latest.json", "training.artifacts (asr_checkpoint)", "eval_report, registered_model", NONE,
        "mutable pointer: the checkpoint the next evaluation judges"),
    Key("evaluations/<digest16>/report.json", "evaluation (eval_report)", "registry, dashboard", NONE,
        "the evaluation report (aggregates per slice)"),
    Key("evaluations/<digest16>/report.html", "evaluation (eval_report)", "a person", NONE,
        "the evaluation report for a person, with plots"),
    Key("evaluations/<digest16>/rows.parquet", "evaluation (eval_report)", "promotion gate, privacy", ROWS,
        "one row per test utterance: reference, hypothesis, speaker, errors"),
    Key("evaluations/<digest16>/champion_rows.parquet", "evaluation (eval_report)", "promotion gate, privacy", ROWS,
        "the champion's rows on the same test audio"),
    Key("evaluations/<digest16>/anchor_rows.parquet", "evaluation (eval_report)", "promotion gate, a person", NONE,
        "challenger's and champion's transcripts of the real-speech anchor set (public test recordings, no "
        "platform user)"),
    Key("evaluations/latest.json", "evaluation (eval_report)", "promotion_gate, registered_model", NONE,
        "mutable pointer: the latest evaluation and its gate inputs"),
    Key("models/<name>/stages.json", "registry", "registry, serving, dashboard", NONE,
        "which version holds which stage"),
    Key("models/<name>/<version>/", "registry", "registry, serving", NONE,
        "a registered version: checkpoint copy, model card, lineage, evidence"),
    Key("audit/<name>/<seq>-<action>.json", "registry", "governance (timeline, verify)", NONE,
        "append-only model events"),
    Key("audit/_platform/<id>.json", "storage.audit_log", "governance (timeline, served-at, verify)", NONE,
        "append-only platform events (publish, erasure, retention, approval, policy change); subjects are digests"),
    Key("governance/release_policy.json", "governance.policy", "evaluation gate, canary, approvals", NONE,
        "the versioned release policy"),
    Key("governance/erasure_marks/<model>/<version>.json", "registry.erasure_marks (privacy.erasure)",
        "governance.served, retrain sensor", NONE, "which erasures touched a model version's training data"),
    Key("retention/<batch>.json", "privacy.retention", "serving.probe_set, evaluation, privacy", NONE,
        "tombstone: a batch whose raw audio was swept on purpose"),
    Key("reports/redactions.json", "privacy.redaction (redaction_report)", "a person, dashboard", NONE,
        "per-batch PII redaction counts"),
    Key("anchor/pocketsphinx_testdata/<utt>.wav", "evaluation.anchor (import_anchor_set)",
        "evaluation.anchor (load_anchor_set)", NONE,
        "canonical 16 kHz mono PCM16 audio of the 11 real anchor utterances: Debian pocketsphinx-testdata's "
        "public test recordings, no platform user's speech (so neither swept by retention nor erased)"),
    Key("anchor/pocketsphinx_testdata/manifest.json", "evaluation.anchor (import_anchor_set)",
        "evaluation.anchor (load_anchor_set)", NONE,
        "the anchor set: utt_id, group, transcript, duration, wav sha256, source file; and the set digest"),
    Key("monitoring/drift/<batch>.json", "monitoring (drift_report)", "retrain sensor, dashboard, alerts", NONE,
        "drift signals of one batch against the served model's reference"),
    Key("monitoring/reference/<version>.json", "monitoring.reference", "monitoring (drift_report)", NONE,
        "aggregate statistics of the data a model version was trained on"),
    Key("serving/bento.json", "serving (asr_bento)", "asr_deployment", NONE,
        "mutable pointer: the bento built for the service code and model"),
    Key("serving/local/deployment.json", "serving (asr_deployment)", "canary sensor, dashboard", NONE,
        "what the local target serves and with which routing"),
    Key("serving/probe_set.json", "serving.probe_set (asr_deployment)", "canary controller", ROWS,
        "held-out utterances the canary sends to both models"),
    Key("serving/sample_plan.json", "serving.sample_plan (asr_deployment)", "canary controller, dashboard", NONE,
        "the sample the canary needs before it may promote (probe speakers, live requests) and the power it has"),
    Key("reports/ops_dashboard.html", "operations (ops_dashboard)", "a person", NONE, "the operations dashboard"),
    Key("reports/ops_dashboard.sha256", "operations (ops_dashboard)", "operations (ops_dashboard)", NONE,
        "digest of the stored dashboard's store-derived content"),
)


def key(pattern: str) -> Key:
    """The entry of `KEYS` with this pattern."""
    found = [k for k in KEYS if k.pattern == pattern]
    if len(found) != 1:
        raise KeyError(f"{pattern!r} is not one key of the layout")
    return found[0]


# The keys that hold speaker data, by name: erasure and retention act on them (each is one entry of KEYS).
AUDIO_KEY = key("audio/<batch>/<utt>.wav")
METADATA_KEY = key("metadata/<batch>.parquet")
QUARANTINE_FILES_KEY = key("quarantine/<batch>/files/<n>_<name>")
QUARANTINE_RECORDS_KEY = key("quarantine/<batch>/records/<n>.raw")
REJECTIONS_KEY = key("quarantine/<batch>/rejections.parquet")
MANIFEST_KEY = key("manifest/audio_manifest.parquet")
FEATURES_KEY = key("features/<config digest>/<batch>/")
EVALUATION_ROWS_KEY = key("evaluations/<digest16>/rows.parquet")
CHAMPION_ROWS_KEY = key("evaluations/<digest16>/champion_rows.parquet")
PROBE_SET_KEY = key("serving/probe_set.json")
ANCHOR_AUDIO_KEY = key("anchor/pocketsphinx_testdata/<utt>.wav")
ANCHOR_MANIFEST_KEY = key("anchor/pocketsphinx_testdata/manifest.json")


def keys_holding(kind: str) -> tuple[Key, ...]:
    """The keys that hold `kind` of speaker data (AUDIO or ROWS)."""
    return tuple(k for k in KEYS if k.holds == kind)


def markdown_table() -> str:
    """The layout as a markdown table (docs/architecture.md carries it; a test keeps the two the same)."""
    lines = ["| key | written by | read by | speaker data | what |", "|---|---|---|---|---|"]
    for k in KEYS:
        lines.append(f"| `{k.pattern}` | {k.writer} | {k.readers} | {k.holds} | {k.what} |")
    return "\n".join(lines)
