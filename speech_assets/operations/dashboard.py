"""The operations dashboard: one self-contained HTML page that says how the platform is doing.

    data = collect_dashboard_data(store, repo)                 # registry, eval reports, drift reports, audit
    data = replace(data, service=scrape_service(url))          # the live service's Prometheus /metrics
    html = build_dashboard(data)

Four sections, each from the record that owns the numbers:

* WER per slice over model versions — every registered version's eval report (registry), with its stage and
  the speaker-bootstrap interval of each slice;
* drift over batches — the `drift_report` JSON each batch's monitoring run published to the store;
* canary decisions — the registry's audit events of canary rollouts (step, promote, roll back) with the
  evidence they were taken on;
* the service — p50/p95 latency from the histogram buckets and the error rate per model version, from one
  `/metrics` scrape (cumulative since the server started); when the service cannot be reached the page says so.

The page needs nothing next to it: styles inline, plots as base64 PNG data URIs, no script and no external URL,
so it can be published to the store, opened from disk or mailed. Plots use matplotlib's object API on an
explicit Agg canvas (never pyplot), as the evaluation report does.
"""

from __future__ import annotations

import base64
import html as html_lib
import io
import json
import math
import re
import urllib.request
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from prometheus_client.parser import text_string_to_metric_families

from speech_assets.evaluation.slices import MIN_INTERVAL_SPEAKERS, TOO_FEW, interval_shown
from speech_assets.registry.registry import ModelRegistry
from speech_assets.serving import metrics as prom
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError, VersionStore
from speech_assets.storage.layout import DRIFT_PREFIX
from speech_assets.training.artifacts import MODEL_NAME

__all__ = [
    "CanaryEvent",
    "DashboardData",
    "DashboardLimits",
    "DriftPoint",
    "EndpointStats",
    "ServiceSnapshot",
    "ServiceVersionStats",
    "SliceWER",
    "VersionEval",
    "build_dashboard",
    "collect_dashboard_data",
    "key_numbers",
    "scrape_service",
    "service_snapshot_from_text",
    "summary_markdown",
    "with_service",
]

OVERALL = "overall"


@dataclass(frozen=True)
class DashboardLimits:
    """How much the page shows and how long it waits for the service."""

    scrape_timeout_s: float = 3.0  # a hung service must not hold the run
    max_versions: int = 12
    max_batches: int = 60


# -- the data the page is drawn from (plain values: the Dagster layer and tests build it directly) --------------
@dataclass(frozen=True)
class SliceWER:
    label: str  # "overall" or "column=value"
    wer: float | None
    ci: tuple[float, float] | None = None
    n_utterances: int | None = None
    gated: bool = True
    n_speakers: int | None = None  # None: an older report that did not store it (the interval is then shown)


@dataclass(frozen=True)
class VersionEval:
    version: str
    stage: str
    created_at: str = ""
    data_commit: str = ""  # the test set's commit the report was scored on
    level: float | None = None  # the CI level (0.95)
    slices: tuple[SliceWER, ...] = ()  # "overall" first when the report has it
    note: str = ""  # why the report could not be read, when it could not

    def slice(self, label: str) -> SliceWER | None:
        return next((s for s in self.slices if s.label == label), None)


@dataclass(frozen=True)
class DriftPoint:
    batch_id: str
    score: float
    drifted: bool
    fired: tuple[str, ...] = ()
    utterances: int = 0
    reference_model: str = ""
    in_reference: bool = False  # the batch is part of the reference model's own training data


@dataclass(frozen=True)
class CanaryEvent:
    ts: str
    version: str
    action: str  # start | step | promote | rollback | archive
    weight_before: float | None
    weight_after: float | None
    reason: str
    actor: str = ""
    failed_rules: tuple[str, ...] = ()
    probe_power: float | None = None  # the power its probe comparison had (the canary's sample plan)
    live_sample: str = ""  # "65 / 149": live requests served / planned


@dataclass(frozen=True)
class ServiceVersionStats:
    version: str
    traffic: str  # live | pinned
    requests: int
    server_errors: int
    client_errors: int
    p50_s: float | None
    p95_s: float | None

    @property
    def error_rate(self) -> float | None:
        return self.server_errors / self.requests if self.requests else None


@dataclass(frozen=True)
class EndpointStats:
    """BentoML's own HTTP histogram (every request, health checks included), per endpoint."""

    endpoint: str
    requests: int
    server_errors: int  # 5xx responses
    p50_s: float | None
    p95_s: float | None


@dataclass(frozen=True)
class ServiceSnapshot:
    url: str | None
    reachable: bool
    error: str = ""  # why it could not be read, in plain words
    scraped_at: str = ""
    versions: tuple[ServiceVersionStats, ...] = ()
    endpoints: tuple[EndpointStats, ...] = ()


@dataclass(frozen=True)
class DashboardData:
    model: str
    generated_at: str
    store_commit: str = ""
    production: str | None = None
    canary: str | None = None
    versions: tuple[VersionEval, ...] = ()
    drift: tuple[DriftPoint, ...] = ()
    canary_events: tuple[CanaryEvent, ...] = ()
    service: ServiceSnapshot | None = None
    notes: tuple[str, ...] = ()  # anything that could not be gathered, said plainly on the page
    rollout: Mapping[str, Any] | None = None  # the release policy's rollout criteria at the commit


# -- gathering ------------------------------------------------------------------------------------------------
def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def natural_key(text: str) -> list:
    """"day-2" before "day-10": batch ids carry numbers that must sort as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _float(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _ci(x: Any) -> tuple[float, float] | None:
    if not isinstance(x, (list, tuple)) or len(x) != 2:
        return None
    lo, hi = _float(x[0]), _float(x[1])
    return None if lo is None or hi is None else (lo, hi)


def version_eval_from_report(version: str, stage: str, report: Mapping[str, Any], created_at: str = "") -> VersionEval:
    """The WER rows of an eval report (evaluation.report.EvalReport.to_dict's shape); tolerant of older or
    partial reports, whose missing numbers show as n/a instead of hiding the version."""
    slices = []
    if "wer" in report:
        slices.append(SliceWER(OVERALL, _float(report.get("wer")), _ci(report.get("wer_ci")),
                               report.get("n_utterances"), True, report.get("n_speakers")))
    for s in report.get("slices") or []:
        if not isinstance(s, Mapping) or "column" not in s:
            continue
        slices.append(SliceWER(f"{s['column']}={s.get('value')}", _float(s.get("wer")), _ci(s.get("wer_ci")),
                               s.get("n_utterances"), bool(s.get("gated", True)), s.get("n_speakers")))
    return VersionEval(version, stage, created_at, str(report.get("data_commit", "")), _float(report.get("level")),
                       tuple(slices))


def drift_point_from_report(report: Mapping[str, Any]) -> DriftPoint:
    """A stored drift report (monitoring.drift.DriftReport.to_dict plus the asset's fields) as one point."""
    in_reference = bool(report.get("in_reference", False))
    return DriftPoint(
        batch_id=str(report.get("batch_id", "?")),
        score=_float(report.get("score")) or 0.0,
        drifted=bool(report.get("drifted")) and not in_reference,
        fired=tuple(str(f) for f in report.get("fired") or ()),
        utterances=int(report.get("utterances") or 0),
        reference_model=str(report.get("reference_model", "")),
        in_reference=in_reference,
    )


def canary_events_from_audit(events: Iterable[Any]) -> list[CanaryEvent]:
    """The canary rollout's decisions among a model's audit events (registry.AuditEvent).

    Kept: a version entering or leaving the canary stage, the controller's traffic steps (action "canary") and
    rollbacks; the archive of a replaced production version, written by the same operation, is not a decision.
    """
    out = []
    for e in events:
        is_canary = (e.action in ("canary", "rollback")
                     or (e.action == "stage" and "canary" in (e.to_stage, e.from_stage)))
        if not is_canary:
            continue
        evidence = dict(e.evidence or {})
        decision = next((evidence[k] for k in ("decision", "bake") if isinstance(evidence.get(k), Mapping)), {})
        if "bake" in evidence and decision.get("action"):
            action = "bake " + str(decision["action"])
        elif decision.get("action"):
            action = str(decision["action"])
        elif e.action == "rollback":
            action = "rollback"
        elif e.to_stage == "canary":
            action = "start"
        elif e.from_stage == "canary" and e.to_stage == "production":
            action = "promote"
        elif e.from_stage == "canary" and e.to_stage == "archived":
            action = "rollback"
        else:
            action = e.action
        failed = tuple(str(r.get("name")) for r in decision.get("rules") or ()
                       if isinstance(r, Mapping) and not r.get("passed", True))
        sample = evidence.get("sample") if isinstance(evidence.get("sample"), Mapping) else {}
        live = (f"{sample['live_requests']} / {sample['live_requests_needed']}"
                if sample.get("live_requests") is not None and sample.get("live_requests_needed") else "")
        out.append(CanaryEvent(
            ts=e.ts, version=e.version, action=action, weight_before=_float(evidence.get("weight")),
            weight_after=_float(decision.get("weight")), reason=e.reason, actor=e.actor, failed_rules=failed,
            probe_power=_float(sample.get("probe_power")), live_sample=live,
        ))
    return out


def collect_dashboard_data(
    store: VersionStore,
    repo: str,
    *,
    model: str = MODEL_NAME,
    ref: str = DEFAULT_BRANCH,
    drift_prefix: str = DRIFT_PREFIX,
    max_versions: int = DashboardLimits.max_versions,
    max_batches: int = DashboardLimits.max_batches,
    max_canary_events: int = 50,
) -> DashboardData:
    """Everything the store knows, read at one commit (so the sections agree with each other).

    The service is not scraped here: that is `scrape_service`, with its own timeout, so a hung service can
    never stall reading the store. A part that cannot be read becomes a note on the page, not an exception.
    """
    commit = store.resolve(repo, ref)
    registry = ModelRegistry(store, repo)
    notes: list[str] = []
    versions: list[VersionEval] = []
    listed = registry.list_versions(model, ref=commit)
    if len(listed) > max_versions:
        notes.append(f"showing the latest {max_versions} of {len(listed)} versions of {model}")
    for mv in listed[-max_versions:]:
        stage = getattr(mv.stage, "value", str(mv.stage))
        try:
            report = json.loads(registry.eval_report(model, mv.version, ref=commit))
            versions.append(version_eval_from_report(mv.version, stage, report, mv.created_at))
        except (NotFoundError, ValueError) as exc:
            versions.append(VersionEval(mv.version, stage, mv.created_at, note=f"eval report unreadable: {exc}"))
    production = next((v.version for v in versions if v.stage == "production"), None)
    canary = next((v.version for v in versions if v.stage == "canary"), None)

    prefix = drift_prefix.rstrip("/") + "/"
    stats = sorted((s for s in store.list_objects(repo, commit, prefix) if s.path.endswith(".json")),
                   key=lambda s: natural_key(s.path))
    if len(stats) > max_batches:
        notes.append(f"showing the latest {max_batches} of {len(stats)} drift reports")
        stats = stats[-max_batches:]
    drift = []
    for s, data in zip(stats, store.get_objects(repo, commit, [s.path for s in stats])):
        try:
            drift.append(drift_point_from_report(json.loads(data)))
        except ValueError as exc:
            notes.append(f"{s.path}: not a JSON drift report ({exc})")

    events = canary_events_from_audit(registry.audit_log(model, ref=commit)) if listed else []
    rollout = None
    try:
        from speech_assets.governance.policy import read_policy

        stored = read_policy(store, repo, commit)
        rollout = {**stored.policy.rollout.to_json(), "stored": stored.stored}
    except ValueError as exc:  # a policy that does not parse: said on the page, not raised
        notes.append(f"release policy unreadable: {exc}")
    return DashboardData(
        model=model, generated_at=utc_now_iso(), store_commit=commit, production=production, canary=canary,
        versions=tuple(versions), drift=tuple(drift), canary_events=tuple(events[-max_canary_events:]),
        notes=tuple(notes), rollout=rollout,
    )


def scrape_service(url: str | None, timeout_s: float = DashboardLimits.scrape_timeout_s) -> ServiceSnapshot:
    """One scrape of the service's `/metrics`; an unreachable or absent service is a snapshot that says why."""
    now = utc_now_iso()
    if not url:
        return ServiceSnapshot(None, False, "no service is running (the deploy target reports no URL)", now)
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/metrics", timeout=timeout_s) as r:
            text = r.read().decode("utf-8", "replace")
    except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts and refused connections are OSErrors
        return ServiceSnapshot(url, False, f"service not reachable at {url}: {exc}", now)
    return service_snapshot_from_text(text, url, now)


def _quantile(buckets: Mapping[float, float], q: float) -> float | None:
    return _float(prom.quantile(dict(buckets), q))


def service_snapshot_from_text(text: str, url: str | None = None, scraped_at: str = "") -> ServiceSnapshot:
    """Per-version latency and error numbers (the service's asr_* metrics, live and pinned traffic apart) and
    per-endpoint numbers from BentoML's HTTP histogram, from one Prometheus text exposition."""
    scraped_at = scraped_at or utc_now_iso()
    try:
        per_traffic = {t: prom.parse(text, t) for t in ("live", "pinned")}
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        return ServiceSnapshot(url, True, f"the /metrics text could not be parsed: {exc}", scraped_at)
    versions = []
    for traffic, counters in per_traffic.items():
        for version in sorted(counters, key=natural_key):
            c = counters[version]
            if c.requests <= 0:
                continue
            versions.append(ServiceVersionStats(
                version, traffic, int(round(c.requests)), int(round(c.errors)), int(round(c.client_errors)),
                _quantile(c.latency_buckets, 0.5), _quantile(c.latency_buckets, 0.95),
            ))
    endpoints: dict[str, dict] = {}
    for family in families:
        # BentoML names it <namespace>_request_duration_seconds (namespace "bentoml_service" for the API server)
        if not (family.name.startswith("bentoml") and family.name.endswith("request_duration_seconds")):
            continue
        for s in family.samples:
            endpoint = s.labels.get("endpoint")
            if endpoint is None:
                continue
            e = endpoints.setdefault(endpoint, {"buckets": {}, "count": 0.0, "5xx": 0.0})
            if s.name.endswith("_bucket"):
                le = float(s.labels["le"])
                e["buckets"][le] = e["buckets"].get(le, 0.0) + s.value
            elif s.name.endswith("_count"):
                e["count"] += s.value
                if str(s.labels.get("http_response_code", "")).startswith("5"):
                    e["5xx"] += s.value
    eps = tuple(sorted(
        (EndpointStats(name, int(round(e["count"])), int(round(e["5xx"])), _quantile(e["buckets"], 0.5),
                       _quantile(e["buckets"], 0.95)) for name, e in endpoints.items() if e["count"] > 0),
        key=lambda x: -x.requests,
    ))
    return ServiceSnapshot(url, True, "", scraped_at, tuple(versions), eps)


# -- formatting -----------------------------------------------------------------------------------------------
def _pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{1000 * x:.0f} ms"


def _weight(x: float | None) -> str:
    return "" if x is None else f"{x:g}%"


def _wer_cell(s: SliceWER | None) -> str:
    if s is None:
        return "—"
    text = _pct(s.wer)
    if s.ci is not None and (s.n_speakers is None or interval_shown(s.n_speakers)):
        text += f" [{_pct(s.ci[0], 1)}, {_pct(s.ci[1], 1)}]"
    elif s.n_speakers is not None:
        text += f" ({s.n_speakers} speaker{'s' if s.n_speakers != 1 else ''}: no interval)"
    if not s.gated:
        text += f" ({TOO_FEW})"
    return text


def slice_labels(versions: Sequence[VersionEval]) -> list[str]:
    """Every slice any version reported, "overall" first, then in first-seen order."""
    labels: list[str] = []
    for v in versions:
        for s in v.slices:
            if s.label not in labels:
                labels.append(s.label)
    return sorted(labels, key=lambda x: x != OVERALL)  # stable: keeps the first-seen order of the rest


def key_numbers(data: DashboardData) -> dict[str, Any]:
    """The handful of numbers worth a glance (Dagster metadata plots these across materializations)."""
    out: dict[str, Any] = {"versions": len(data.versions), "production": data.production or "none",
                           "canary": data.canary or "none"}
    prod = next((v for v in data.versions if v.version == data.production), None)
    overall = prod.slice(OVERALL) if prod else None
    if overall is not None and overall.wer is not None:
        out["production_wer"] = round(overall.wer, 5)
    judged = [d for d in data.drift if not d.in_reference]
    out["drift_batches"] = len(data.drift)
    out["drifted_batches"] = sum(d.drifted for d in judged)
    if data.drift:
        out["latest_drift_score"] = round(data.drift[-1].score, 4)
        out["latest_drift_batch"] = data.drift[-1].batch_id
    out["canary_decisions"] = len(data.canary_events)
    svc = data.service
    out["service_reachable"] = bool(svc and svc.reachable)
    live = [v for v in (svc.versions if svc else ()) if v.traffic == "live"]
    if live:
        requests = sum(v.requests for v in live)
        out["service_requests"] = requests
        out["service_error_rate"] = round(sum(v.server_errors for v in live) / requests, 5) if requests else 0.0
    return out


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_markdown(data: DashboardData) -> str:
    """A short markdown table of the page's headline numbers (for the Dagster UI)."""
    k = key_numbers(data)
    svc = data.service
    if svc is None:
        service = "not scraped"
    elif not svc.reachable:
        service = svc.error or "not reachable"
    elif k.get("service_requests"):
        service = f"{k['service_requests']} live requests, error rate {_pct(k['service_error_rate'])}"
    else:
        service = "reachable, no live requests yet"
    last = data.canary_events[-1] if data.canary_events else None
    rows = [
        ("Model", data.model),
        ("Versions", k["versions"]),
        ("Production", data.production or "none"),
        ("Canary", data.canary or "none"),
        ("Production WER", _pct(k.get("production_wer"))),
        ("Drift reports / drifted", f"{k['drift_batches']} / {k['drifted_batches']}"),
        ("Latest drift", f"{k['latest_drift_batch']}: score {k['latest_drift_score']:.2f}" if data.drift else "none"),
        ("Last canary decision", f"{last.ts} {last.version} {last.action}" if last else "none"),
        ("Rollout criteria", rollout_criteria(data.rollout).split(": ", 1)[-1]),
        ("Service", service),
    ]
    lines = ["| Item | Value |", "|---|---|", *(f"| {_md_cell(a)} | {_md_cell(b)} |" for a, b in rows)]
    return "\n".join(lines)


# -- plots ----------------------------------------------------------------------------------------------------
def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # explicit Agg canvas: no display, no pyplot state
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def plot_wer_over_versions(versions: Sequence[VersionEval]) -> bytes | None:
    """WER of every slice across versions, with the bootstrap interval as error bars; None with no numbers.

    Only slices large enough to gate on are drawn: a two-utterance slice's interval spans half the axis and
    flattens every line that matters. The table beside the plot has them all."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    labels = slice_labels(versions)
    if not labels or not versions:
        return None
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.add_subplot()
    xs = list(range(len(versions)))
    palette = colormaps["tab20"]  # 20 distinct colours: slices (accent x channel x bands) easily exceed 10
    offsets = {label: (i - (len(labels) - 1) / 2) * min(0.3 / max(len(labels), 1), 0.06) for i, label in enumerate(labels)}
    plotted = False
    for label in labels:
        pts = [(x + offsets[label], v.slice(label)) for x, v in zip(xs, versions)]
        pts = [(x, s) for x, s in pts if s is not None and s.wer is not None and s.gated]
        if not pts:
            continue
        y = [100 * s.wer for _, s in pts]
        lo = [100 * (s.wer - s.ci[0]) if s.ci else 0.0 for _, s in pts]
        hi = [100 * (s.ci[1] - s.wer) if s.ci else 0.0 for _, s in pts]
        i = labels.index(label)
        style = (dict(color="black", linewidth=2.2, zorder=3) if label == OVERALL
                 else dict(color=palette(i % 20), linewidth=1, alpha=0.85))
        ax.errorbar([x for x, _ in pts], y, yerr=[lo, hi], marker="o", markersize=4, capsize=3, label=label, **style)
        plotted = True
    if not plotted:
        return None
    ax.set_xticks(xs, [f"{v.version}\n({v.stage})" for v in versions], fontsize="small")
    ax.set_ylabel("WER (%) with bootstrap interval")
    ax.set_title("WER per slice over model versions")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="x-small")
    return _png(fig)


def plot_drift(points: Sequence[DriftPoint]) -> bytes | None:
    """Drift score per batch (1.0 = a signal at its threshold); drifted batches red, the reference's own grey."""
    from matplotlib.figure import Figure

    if not points:
        return None
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax = fig.add_subplot()
    xs = list(range(len(points)))
    ax.plot(xs, [p.score for p in points], color="0.5", linewidth=1, zorder=1)
    groups = (
        ("drifted", [i for i, p in enumerate(points) if p.drifted], dict(color="tab:red", marker="X", s=60)),
        ("no drift", [i for i, p in enumerate(points) if not p.drifted and not p.in_reference],
         dict(color="tab:blue", marker="o", s=30)),
        ("in the reference", [i for i, p in enumerate(points) if p.in_reference],
         dict(color="0.6", marker="s", s=25, facecolors="none")),
    )
    for label, idx, style in groups:
        if idx:
            ax.scatter(idx, [points[i].score for i in idx], label=label, zorder=2, **style)
    ax.axhline(1.0, color="tab:red", linestyle="--", linewidth=1, label="threshold (score 1.0)")
    step = max(1, len(points) // 20)  # at most ~20 tick labels stay legible
    ax.set_xticks(xs[::step], [p.batch_id for p in points][::step], rotation=45, ha="right", fontsize="x-small")
    ax.set_ylabel("drift score (max value / threshold)")
    ax.set_title("Drift score per batch")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize="x-small")
    return _png(fig)


# -- html -----------------------------------------------------------------------------------------------------
def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    esc = html_lib.escape
    head = "".join(f"<th>{esc(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{html_lib.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def _versions_section(data: DashboardData) -> str:
    esc = html_lib.escape
    parts = ['<section id="wer"><h2>WER per slice over model versions</h2>']
    if not data.versions:
        return parts[0] + f"<p class=\"empty\">No version of {esc(data.model)} is registered yet.</p></section>"
    levels = {v.level for v in data.versions if v.level is not None}
    level = f"{round(100 * levels.pop())}% " if len(levels) == 1 else ""
    parts.append(f"<p>Each cell: WER with its {esc(level)}speaker-bootstrap interval on that version's test set; "
                 f"\"({TOO_FEW})\" marks a slice below the gate's minimum size (left out of the plot); no interval "
                 f"is printed from fewer than {MIN_INTERVAL_SPEAKERS} speakers.</p>")
    parts.append(_img(plot_wer_over_versions(data.versions), "WER per slice over model versions"))
    headers = ["slice", *[f"{v.version} ({v.stage})" for v in data.versions]]
    rows = [[label, *[_wer_cell(v.slice(label)) for v in data.versions]] for label in slice_labels(data.versions)]
    rows.append(["test data commit", *[(v.data_commit[:12] or "n/a") for v in data.versions]])
    rows.append(["registered", *[(v.created_at[:19].replace("T", " ") or "n/a") for v in data.versions]])
    parts.append(_table(headers, rows, "wer"))
    for v in data.versions:
        if v.note:
            parts.append(f"<p class=\"note\">{esc(v.version)}: {esc(v.note)}</p>")
    return "\n".join(parts) + "</section>"


def _drift_section(data: DashboardData) -> str:
    parts = ['<section id="drift"><h2>Drift over batches</h2>']
    if not data.drift:
        return parts[0] + '<p class="empty">No drift report has been published yet.</p></section>'
    parts.append("<p>Score: the largest value/threshold of any judged signal; 1.0 or more means a signal fired. "
                 "Batches the reference model trained on are shown but never count as drift.</p>")
    parts.append(_img(plot_drift(data.drift), "Drift score per batch"))
    fired = [d for d in data.drift if d.drifted]
    if fired:
        parts.append("<h3>Batches with fired signals</h3>")
        parts.append(_table(["batch", "score", "fired signals", "utterances", "reference model"],
                            [[d.batch_id, f"{d.score:.2f}", ", ".join(d.fired), d.utterances, d.reference_model]
                             for d in fired], "drift-fired"))
    else:
        parts.append(f"<p>No batch drifted ({len(data.drift)} reports).</p>")
    parts.append("<details><summary>Every batch</summary>" + _table(
        ["batch", "score", "verdict", "utterances", "reference model"],
        [[d.batch_id, f"{d.score:.2f}", "in the reference" if d.in_reference else ("DRIFT" if d.drifted else "ok"),
          d.utterances, d.reference_model] for d in data.drift], "drift-all") + "</details>")
    return "\n".join(parts) + "</section>"


def rollout_criteria(rollout: Mapping[str, Any] | None) -> str:
    """The release policy's rollout criteria in one line (plain text)."""
    if not rollout:
        return "rollout criteria: unknown"
    r = rollout
    return (f"rollout criteria ({'stored release policy' if r.get('stored') else 'release policy defaults'}): "
            f"mode {r['mode']}" + (f" ({r['ab_split']:g} % split, {r['ab_looks']} planned looks)" if r["mode"] == "ab"
                                   else "")
            + f"; minimum effect {r['min_effect']:.1%} WER at power {r['power']:.0%}, alpha {r['alpha']:g}; "
              f"bake window {r['bake_window_s'] / 60:.1f} min after a promotion "
              f"(at least {r['bake_min_requests']} live requests)")


def _canary_section(data: DashboardData) -> str:
    parts = ['<section id="canary"><h2>Canary decisions</h2>',
             f"<p>{html_lib.escape(rollout_criteria(data.rollout))}.</p>"]
    if not data.canary_events:
        return "\n".join(parts) + '<p class="empty">No canary rollout has been recorded yet.</p></section>'
    parts.append("<p>From the registry's hash-chained audit trail, oldest first; weight is the challenger's share "
                 "of live traffic before and after the decision; power is what its probe comparison had to detect "
                 "the minimum effect, live sample the live requests served of those its plan needs.</p>")
    rows = [[e.ts[:19].replace("T", " "), e.version, e.action, _weight(e.weight_before), _weight(e.weight_after),
             e.reason if len(e.reason) <= 400 else e.reason[:399] + "…", ", ".join(e.failed_rules),
             "" if e.probe_power is None else f"{e.probe_power:.0%}", e.live_sample, e.actor]
            for e in data.canary_events]
    parts.append(_table(["time (UTC)", "version", "action", "weight before", "weight after", "reason",
                         "failed rules", "power (probe)", "live sample", "actor"], rows, "canary"))
    return "\n".join(parts) + "</section>"


def _service_section(data: DashboardData) -> str:
    esc = html_lib.escape
    svc = data.service
    parts = ['<section id="service"><h2>Service: latency and errors</h2>']
    if svc is None:
        return parts[0] + '<p class="empty">The service was not scraped for this page.</p></section>'
    if not svc.reachable:
        return parts[0] + (f'<p class="unreachable"><strong>Service not reachable.</strong> '
                           f"{esc(svc.error)}</p></section>")
    if svc.error:
        parts.append(f'<p class="note">{esc(svc.error)}</p>')
    parts.append(f"<p>Scraped <code>{esc(svc.url or '')}/metrics</code> at {esc(svc.scraped_at)}: counts since "
                 "the server started. Latency quantiles interpolate within histogram buckets. Errors are 5xx "
                 "(server) responses; live traffic is users', pinned traffic the canary controller's probes.</p>")
    if svc.versions:
        parts.append(_table(
            ["model version", "traffic", "requests", "server errors", "error rate", "client errors", "p50", "p95"],
            [[v.version, v.traffic, v.requests, v.server_errors, _pct(v.error_rate), v.client_errors, _ms(v.p50_s),
              _ms(v.p95_s)] for v in svc.versions], "service-versions"))
    else:
        parts.append('<p class="empty">No transcription request has been served yet.</p>')
    if svc.endpoints:
        parts.append("<h3>HTTP endpoints (BentoML)</h3>")
        parts.append(_table(["endpoint", "requests", "5xx", "p50", "p95"],
                            [[e.endpoint, e.requests, e.server_errors, _ms(e.p50_s), _ms(e.p95_s)]
                             for e in svc.endpoints], "service-endpoints"))
    return "\n".join(parts) + "</section>"


_STYLE = (
    "body{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;"
    "text-align:left;vertical-align:top}th{background:#f4f4f4}img{max-width:100%}figure{margin:1em 0}"
    ".empty,.note{color:#666}.unreachable{color:#a00}section{margin-bottom:2.5em}"
    "dl.glance{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}"
)


def build_dashboard(data: DashboardData) -> str:
    """The page (see the module doc): self-contained HTML5."""
    esc = html_lib.escape
    k = key_numbers(data)
    glance = "".join(f"<dt>{esc(a)}</dt><dd>{esc(str(b))}</dd>" for a, b in (
        ("Production", data.production or "none"),
        ("Canary", data.canary or "none"),
        ("Production WER", _pct(k.get("production_wer"))),
        ("Drifted batches", f"{k['drifted_batches']} of {k['drift_batches']}"),
        ("Service", "reachable" if k["service_reachable"] else "not reachable"),
    ))
    notes = "".join(f"<li>{esc(n)}</li>" for n in data.notes)
    body = "\n".join([
        f"<h1>Operations: {esc(data.model)}</h1>",
        f"<p>Generated {esc(data.generated_at)} from store commit <code>{esc(data.store_commit[:16] or 'n/a')}</code>.</p>",
        f'<dl class="glance">{glance}</dl>',
        f'<ul class="notes">{notes}</ul>' if notes else "",
        _versions_section(data),
        _drift_section(data),
        _canary_section(data),
        _service_section(data),
    ])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Operations: {esc(data.model)}</title><style>{_STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def with_service(data: DashboardData, service: ServiceSnapshot | None) -> DashboardData:
    return replace(data, service=service)
