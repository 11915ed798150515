"""The one index of the platform's environment variables. Each is read when used (a function call), not at import.

Where the platform keeps its files — SPEECH_ASSETS_HOME (default: `<project>/data`) holds:
    landing/   batches dropped for intake (a folder each, `_READY` when complete)
    store/     the embedded local store (content-addressed blobs + SQLite refs)
    alerts/    the alert log
    serving/   the local serving target (routing file, server log)
    reports/   the operations dashboard page, refreshed by `ops_dashboard`

| variable | read by | default | what |
|---|---|---|---|
| SPEECH_ASSETS_HOME | everything below | `<project>/data` | moves every file the platform writes |
| SPEECH_ASSETS_LANDING | intake sensor, demo | `$HOME/landing` | the landing zone |
| SPEECH_ASSETS_STORE | storage.open | `$HOME/store` | the local store's folder |
| LAKEFS_ENDPOINT, LAKEFS_ACCESS_KEY_ID, LAKEFS_SECRET_ACCESS_KEY | storage.open | unset (local store) | lakeFS instead of the local store (secrets: Dagster `EnvVar`s in runs) |
| ASR_API_KEY | serving resource, the service | unset (no auth) | API key of the HTTP service (secret) |
| SPEECH_ASSETS_ALERT_WEBHOOK | alert resource | unset | also POST alerts there (secret: it usually embeds a token) |
| SPEECH_ASSETS_ALERT_LOG | alert resource | `$HOME/alerts/alerts.jsonl` | the alert log |
| SPEECH_ASSETS_UI_URL | alert resource | `http://127.0.0.1:3000` | links in alerts |
| SPEECH_ASSETS_RETRAIN | retrain resource | `{}` | JSON overrides of the retrain settings |
| SPEECH_ASSETS_RETENTION_DAYS | retention asset | 365 | raw-audio retention |
| SPEECH_ASSETS_INTAKE_FRESHNESS_HOURS | intake freshness check | 24 | how stale `raw_audio` may get |
| SPEECH_ASSETS_DASHBOARD_CRON | ops dashboard | `*/15 * * * *` | when the dashboard refreshes |
| SPEECH_ASSETS_CANARY_INTERVAL_S, _RETRAIN_INTERVAL_S, _RUN_FAILURE_INTERVAL_S, _ALERT_INTERVAL_S | sensors (when the definitions load) | 30, 30, 30, 60 | sensor intervals |
| BENTOML_HOME, BENTOML_DO_NOT_TRACK | BentoML's child processes (`child_env`) | `$HOME/bentoml`, true | set by the serving steps, not read from here |
| ASR_ROUTING_FILE, ASR_MAX_UPLOAD_BYTES, ASR_MAX_DURATION_S, ASR_REQUEST_TIMEOUT_S, ASR_BATCH_MAX_LATENCY_MS | `bentos/asr/service.py` (its own process) | set by the serving target | the service's knobs |
| DAGSTER_HOME | Dagster, the demo | `<project>/.dagster_home` (Makefile) | the Dagster instance |
| SPEECH_ASSETS_WHISPER_BATCH | `model.whisper.backend` (serving, evaluation) | `1` | clips per CTranslate2 call (1 is fastest on CPU; raise it on a GPU) |
| SPEECH_ASSETS_WHISPER_CACHE | `model.whisper.weights`, `model.whisper.artifact` | `~/.cache/speech_assets/whisper` | where Whisper base weights are assembled and checkpoints unpacked for serving |
| SPEECH_ASSETS_LAKEFS_SPEC | the tests' lakeFS stub (`tests/storage/lakefs_stub.py`) | `<project>/../shared/lakefs-openapi.yml` | the lakeFS OpenAPI spec the stub validates against (tests skip without it) |

Secrets are only ever read by name here (`secret_env_names`); their values go to Dagster as `EnvVar`s.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REPOSITORY = "speech-assets"

LAKEFS_ENDPOINT = "LAKEFS_ENDPOINT"
LAKEFS_ACCESS_KEY_ID = "LAKEFS_ACCESS_KEY_ID"
LAKEFS_SECRET_ACCESS_KEY = "LAKEFS_SECRET_ACCESS_KEY"
ASR_API_KEY = "ASR_API_KEY"
ALERT_WEBHOOK = "SPEECH_ASSETS_ALERT_WEBHOOK"
ALERT_LOG = "SPEECH_ASSETS_ALERT_LOG"
UI_URL = "SPEECH_ASSETS_UI_URL"
RETRAIN = "SPEECH_ASSETS_RETRAIN"
DEFAULT_UI_URL = "http://127.0.0.1:3000"  # where `make ui` and the demo serve the Dagster UI


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def secret_env_names() -> tuple[str, ...]:
    """Variables that hold secrets: passed to Dagster as `EnvVar`s, never logged."""
    return (LAKEFS_ACCESS_KEY_ID, LAKEFS_SECRET_ACCESS_KEY, ASR_API_KEY, ALERT_WEBHOOK)


# -- files ------------------------------------------------------------------------------------------------
def data_home() -> Path:
    return Path(os.environ.get("SPEECH_ASSETS_HOME", PROJECT_ROOT / "data")).resolve()


def landing_dir() -> Path:
    return Path(os.environ.get("SPEECH_ASSETS_LANDING", data_home() / "landing")).resolve()


def local_store_dir() -> Path:
    return Path(os.environ.get("SPEECH_ASSETS_STORE", data_home() / "store")).resolve()


def serving_home() -> Path:
    return data_home() / "serving"


def bentoml_home() -> Path:
    return data_home() / "bentoml"


def reports_dir() -> Path:
    return data_home() / "reports"


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME", PROJECT_ROOT / ".dagster_home"))


# -- store ------------------------------------------------------------------------------------------------
def lakefs_endpoint() -> str | None:
    return _env(LAKEFS_ENDPOINT)


def lakefs_credentials() -> tuple[str | None, str | None]:
    return _env(LAKEFS_ACCESS_KEY_ID), _env(LAKEFS_SECRET_ACCESS_KEY)


# -- serving and alerts -----------------------------------------------------------------------------------
def has_api_key() -> bool:
    return _env(ASR_API_KEY) is not None


def api_key() -> str | None:
    """ASR_API_KEY's value, for a process outside Dagster that calls the service (Dagster runs get an EnvVar)."""
    return _env(ASR_API_KEY)


def has_alert_webhook() -> bool:
    return _env(ALERT_WEBHOOK) is not None


def alert_log() -> str:
    return _env(ALERT_LOG, "") or ""


def ui_url() -> str:
    return _env(UI_URL, DEFAULT_UI_URL) or DEFAULT_UI_URL


# -- automation -------------------------------------------------------------------------------------------
def retrain_overrides() -> dict:
    """SPEECH_ASSETS_RETRAIN: a JSON object of retrain-setting overrides (the demo sets it)."""
    return json.loads(_env(RETRAIN, "{}") or "{}")


def retention_days(default: float) -> float:
    return float(_env("SPEECH_ASSETS_RETENTION_DAYS", str(default)))


def intake_freshness_hours() -> float:
    return float(_env("SPEECH_ASSETS_INTAKE_FRESHNESS_HOURS", "24"))


def dashboard_cron() -> str:
    return _env("SPEECH_ASSETS_DASHBOARD_CRON", "*/15 * * * *") or "*/15 * * * *"


def sensor_interval_s(sensor: str, default: int) -> int:
    """SPEECH_ASSETS_<SENSOR>_INTERVAL_S (CANARY, RETRAIN, RUN_FAILURE, ALERT): read when the definitions load."""
    return int(_env(f"SPEECH_ASSETS_{sensor.upper()}_INTERVAL_S", str(default)))


# -- child processes --------------------------------------------------------------------------------------
def child_env(overrides: dict[str, str] | None = None, without: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment a child process starts with (the served `bentoml serve`, BentoML's build steps): this
    process's, less the variables in `without` (e.g. a secret the child must not see), with `overrides` set."""
    env = {k: v for k, v in os.environ.items() if k not in without}
    env.update(overrides or {})
    return env
