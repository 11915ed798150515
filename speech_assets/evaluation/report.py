"""The evaluation report of one model on one test-set commit.

:class:`EvalReport` gathers what users judge a model on - overall WER / CER
with speaker-bootstrap intervals, the per-subgroup table, calibration before
and after with reliability bins, real-time factor and an optional baseline -
plus, when given, the real-speech anchor section (:mod:`.anchor`: 11 real
recordings, a smoke alarm, not a benchmark) -
and renders it as JSON (storage, round-trips), Markdown (tables for the
Dagster UI's metadata) and a self-contained HTML page with the plots embedded
as base64 PNG, so the page can be attached to a run or mailed without any
file next to it.

Plots use matplotlib's object API on an explicit Agg canvas (never pyplot),
so rendering neither needs a display nor touches global backend state of
whatever process imports this; matplotlib is imported only when plotting.
"""

from __future__ import annotations

import base64
import html as html_lib
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .anchor import AnchorComparison, AnchorResult, anchor_table, smoke_alarm_sentence
from .bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, bootstrap_ci
from .calibration import CalibrationReport, ReliabilityDiagram
from .latency import RTFResult
from .metrics import score_rows
from .slices import DEFAULT_COLUMNS, MIN_INTERVAL_SPEAKERS, TOO_FEW, SliceResult, interval_shown, slice_table

__all__ = ["AnchorSection", "BaselineSummary", "EvalReport", "build_report", "summarize_baseline"]

SCHEMA_VERSION = 1


def _f(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _ci(x: Any) -> tuple[float, float]:
    return (_f(x[0]), _f(x[1]))


def _clean(obj: Any) -> Any:
    """NaN -> None recursively: strict JSON has no NaN and most readers reject it."""
    if isinstance(obj, float):
        return None if math.isnan(obj) else obj
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _pct(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.2f}%"


def _pct_ci(ci: Sequence[float]) -> str:
    return f"[{_pct(ci[0])}, {_pct(ci[1])}]"


def _num(x: float | None, digits: int = 4) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


# ---------------------------------------------------------------------------
# baseline
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineSummary:
    """A reference system scored on the same utterances, or why it was not."""

    name: str
    available: bool
    reason: str = ""  # why it is unavailable; empty when it ran
    wer: float | None = None
    wer_ci: tuple[float, float] | None = None
    cer: float | None = None
    cer_ci: tuple[float, float] | None = None
    n_utterances: int = 0

    @classmethod
    def unavailable(cls, name: str, reason: str) -> "BaselineSummary":
        return cls(name=name, available=False, reason=reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "available": self.available,
            "reason": self.reason,
            "wer": self.wer,
            "wer_ci": None if self.wer_ci is None else list(self.wer_ci),
            "cer": self.cer,
            "cer_ci": None if self.cer_ci is None else list(self.cer_ci),
            "n_utterances": self.n_utterances,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "BaselineSummary":
        return cls(
            name=d["name"],
            available=bool(d["available"]),
            reason=d.get("reason", ""),
            wer=None if d.get("wer") is None else float(d["wer"]),
            wer_ci=None if d.get("wer_ci") is None else _ci(d["wer_ci"]),
            cer=None if d.get("cer") is None else float(d["cer"]),
            cer_ci=None if d.get("cer_ci") is None else _ci(d["cer_ci"]),
            n_utterances=int(d.get("n_utterances", 0)),
        )


def summarize_baseline(
    name: str,
    rows: Any,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> BaselineSummary:
    """Score a baseline's rows (its hypotheses on the model's test utterances)."""
    scored = score_rows(rows)
    w = bootstrap_ci(scored, "wer", n_resamples=n_resamples, seed=seed, level=level)
    c = bootstrap_ci(scored, "cer", n_resamples=n_resamples, seed=seed, level=level)
    return BaselineSummary(name, True, "", w.estimate, w.ci, c.estimate, c.ci, len(scored))


# ---------------------------------------------------------------------------
# real-speech anchor
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorSection:
    """The models scored on the real-speech anchor set: the challenger always; the champion and the pocketsphinx
    peer when they were scored (else ``peer_reason`` says why the peer was not); the paired comparison with the
    champion when there is one. Every result must be on the same set (same ``set_digest``)."""

    challenger: AnchorResult
    champion: AnchorResult | None = None
    peer: AnchorResult | None = None
    peer_reason: str = ""  # why the pocketsphinx peer was not scored; empty when it was, or was not asked for
    comparison: AnchorComparison | None = None

    def __post_init__(self) -> None:
        digests = {r.set_digest for r in self.results()}
        if len(digests) != 1:
            raise ValueError("the anchor section's results are on different sets (set_digest differs)")

    def results(self) -> list[AnchorResult]:
        return [r for r in (self.challenger, self.champion, self.peer) if r is not None]

    @property
    def n_utterances(self) -> int:
        return self.challenger.n_utterances

    @property
    def n_words(self) -> int:
        return self.challenger.n_words

    def heading(self) -> str:
        return f"Real speech (pocketsphinx-testdata, n={self.n_utterances} utterances, {self.n_words} words)"

    def sentences(self) -> list[str]:
        out = [smoke_alarm_sentence(self.n_utterances),
               f"Interval: bootstrap over the {self.n_utterances} utterances (the recordings carry no speaker ids; "
               "utterances of one group likely share a voice, so it is if anything too narrow)."]
        if self.comparison is not None:
            out.append(f"Against the champion: {self.comparison.detail()}.")
        if self.peer is None and self.peer_reason:
            out.append(f"pocketsphinx peer skipped: {self.peer_reason}")
        return out

    def table_markdown(self) -> str:
        return anchor_table(self.results())

    def to_dict(self) -> dict[str, Any]:
        return {
            "challenger": self.challenger.to_dict(),
            "champion": None if self.champion is None else self.champion.to_dict(),
            "peer": None if self.peer is None else self.peer.to_dict(),
            "peer_reason": self.peer_reason,
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AnchorSection":
        opt = lambda k, f: None if d.get(k) is None else f(d[k])  # noqa: E731
        return cls(AnchorResult.from_dict(d["challenger"]), opt("champion", AnchorResult.from_dict),
                   opt("peer", AnchorResult.from_dict), d.get("peer_reason", ""),
                   opt("comparison", AnchorComparison.from_dict))


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


@dataclass
class EvalReport:
    model_id: str
    data_commit: str
    n_utterances: int
    n_speakers: int
    wer: float
    wer_ci: tuple[float, float]
    cer: float
    cer_ci: tuple[float, float]
    slices: list[SliceResult]  # without the overall row
    calibration: CalibrationReport | None = None
    rtf: RTFResult | None = None
    baseline: BaselineSummary | None = None
    n_resamples: int = DEFAULT_RESAMPLES
    level: float = DEFAULT_LEVEL
    min_utterances: int = 30
    min_speakers: int = 3
    anchor: AnchorSection | None = None  # the real-speech anchor; None in reports from before it existed

    # -- serialization -----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {
                "schema_version": SCHEMA_VERSION,
                "model_id": self.model_id,
                "data_commit": self.data_commit,
                "n_utterances": self.n_utterances,
                "n_speakers": self.n_speakers,
                "wer": self.wer,
                "wer_ci": list(self.wer_ci),
                "cer": self.cer,
                "cer_ci": list(self.cer_ci),
                "slices": [s.to_dict() for s in self.slices],
                "calibration": None if self.calibration is None else self.calibration.to_dict(),
                "rtf": None if self.rtf is None else self.rtf.to_dict(),
                "baseline": None if self.baseline is None else self.baseline.to_dict(),
                "n_resamples": self.n_resamples,
                "level": self.level,
                "min_utterances": self.min_utterances,
                "min_speakers": self.min_speakers,
                "anchor": None if self.anchor is None else self.anchor.to_dict(),
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EvalReport":
        version = d.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ValueError(f"unsupported EvalReport schema_version {version}")
        return cls(
            model_id=d["model_id"],
            data_commit=d["data_commit"],
            n_utterances=int(d["n_utterances"]),
            n_speakers=int(d["n_speakers"]),
            wer=_f(d["wer"]),
            wer_ci=_ci(d["wer_ci"]),
            cer=_f(d["cer"]),
            cer_ci=_ci(d["cer_ci"]),
            slices=[SliceResult.from_dict(s) for s in d["slices"]],
            calibration=None if d.get("calibration") is None else CalibrationReport.from_dict(d["calibration"]),
            rtf=None if d.get("rtf") is None else RTFResult.from_dict(d["rtf"]),
            baseline=None if d.get("baseline") is None else BaselineSummary.from_dict(d["baseline"]),
            n_resamples=int(d.get("n_resamples", DEFAULT_RESAMPLES)),
            level=float(d.get("level", DEFAULT_LEVEL)),
            min_utterances=int(d.get("min_utterances", 30)),
            min_speakers=int(d.get("min_speakers", 3)),
            anchor=None if d.get("anchor") is None else AnchorSection.from_dict(d["anchor"]),
        )

    @classmethod
    def from_json(cls, text: str) -> "EvalReport":
        return cls.from_dict(json.loads(text))

    # -- markdown ----------------------------------------------------------

    def summary_markdown(self) -> str:
        lvl = f"{round(100 * self.level)}% CI"
        lines = [
            f"| Metric | Value | {lvl} |",
            "|---|---|---|",
            f"| WER | {_pct(self.wer)} | {_pct_ci(self.wer_ci)} |",
            f"| CER | {_pct(self.cer)} | {_pct_ci(self.cer_ci)} |",
        ]
        if self.calibration is not None:
            c = self.calibration
            lines.append(f"| ECE before calibration | {_num(c.ece_before)} | |")
            lines.append(f"| ECE after calibration ({c.method}) | {_num(c.ece_after)} | |")
        if self.rtf is not None:
            lines.append(f"| Real-time factor (CPU, median of {self.rtf.repeats}) | {_num(self.rtf.rtf, 3)} | |")
        if self.baseline is not None:
            b = self.baseline
            if b.available:
                lines.append(f"| Baseline WER ({b.name}) | {_pct(b.wer)} | {_pct_ci(b.wer_ci)} |")
                lines.append(f"| Baseline CER ({b.name}) | {_pct(b.cer)} | {_pct_ci(b.cer_ci)} |")
            else:
                lines.append(f"| Baseline ({b.name}) | skipped: {_cell(b.reason)} | |")
        return "\n".join(lines)

    def slices_markdown(self) -> str:
        lvl = f"{round(100 * self.level)}% CI"
        lines = [
            f"| Column | Value | Utterances | Speakers | WER | WER {lvl} | CER | CER {lvl} | Gated |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in self.slices:
            gated = "yes" if s.gated else f"no: {TOO_FEW} ({_cell(s.note)})"
            shown = interval_shown(s.n_speakers)
            no_ci = f"— ({s.n_speakers} speaker{'s' if s.n_speakers != 1 else ''})"
            lines.append(
                f"| {_cell(s.column)} | {_cell(s.value)} | {s.n_utterances} | {s.n_speakers} | {_pct(s.wer)} | "
                f"{_pct_ci(s.wer_ci) if shown else no_ci} | {_pct(s.cer)} | {_pct_ci(s.cer_ci) if shown else no_ci} "
                f"| {gated} |"
            )
        return "\n".join(lines)

    def reliability_markdown(self) -> str:
        if self.calibration is None:
            return ""
        b, a = self.calibration.before, self.calibration.after
        lines = [
            "| Bin | n before | conf before | acc before | n after | conf after | acc after |",
            "|---|---|---|---|---|---|---|",
        ]
        for i in range(len(b.counts)):
            lines.append(
                f"| {b.edges[i]:.1f}-{b.edges[i + 1]:.1f} | {b.counts[i]} | {_num(b.confidence[i], 3)} | "
                f"{_num(b.accuracy[i], 3)} | {a.counts[i]} | {_num(a.confidence[i], 3)} | {_num(a.accuracy[i], 3)} |"
            )
        return "\n".join(lines)

    def markdown(self) -> str:
        parts = [
            f"## Evaluation of `{self.model_id}`",
            "",
            f"Test data commit `{self.data_commit}`: {self.n_utterances} utterances, {self.n_speakers} speakers. "
            f"Intervals: speaker-level bootstrap, {self.n_resamples} resamples, percentile "
            f"{round(100 * self.level)}%.",
            "",
            self.summary_markdown(),
            "",
            "### WER by slice",
            "",
            f"Slices with fewer than {self.min_utterances} utterances or {self.min_speakers} speakers "
            f"are {TOO_FEW}: reported, not gated, never called better or worse; no interval is printed from "
            f"fewer than {MIN_INTERVAL_SPEAKERS} speakers.",
            "",
            self.slices_markdown(),
        ]
        if self.calibration is not None:
            c = self.calibration
            params = ", ".join(f"{k}={_short(v)}" for k, v in c.parameters.items() if k != "why")
            why = c.parameters.get("why")
            parts += [
                "",
                "### Calibration",
                "",
                f"Method: {c.method}{f' ({params})' if params else ''}; target: {c.target} match; "
                f"ECE {_num(c.ece_before)} -> {_num(c.ece_after)}." + (f" **{why}.**" if why else ""),
                "",
                self.reliability_markdown(),
            ]
        if self.anchor is not None:
            a = self.anchor
            parts += ["", f"### {a.heading()}", "", " ".join(a.sentences()), "",
                      a.table_markdown()]
        return "\n".join(parts) + "\n"

    # -- plots and html ----------------------------------------------------

    def plots_png(self) -> dict[str, bytes]:
        """PNG bytes by plot name: ``wer_by_slice`` and, with calibration, ``reliability``."""
        plots = {"wer_by_slice": _png(self._plot_wer_by_slice())}
        if self.calibration is not None:
            plots["reliability"] = _png(self._plot_reliability())
        return plots

    def plots_markdown(self) -> str:
        """The plots as markdown images with inline base64 PNGs (what Dagster's metadata view renders)."""
        return "\n\n".join(
            f"**{name.replace('_', ' ')}**\n\n![{name}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
            for name, png in self.plots_png().items()
        )

    def _plot_wer_by_slice(self):
        from matplotlib.figure import Figure

        rows = [s for s in self.slices if not math.isnan(s.wer)]
        labels = [f"{s.column}={s.value}" for s in rows]
        fig = Figure(figsize=(7.5, 1.2 + 0.32 * max(len(rows), 1)), layout="constrained")
        ax = fig.add_subplot()
        for gated, style in ((True, dict(fmt="o", color="tab:blue")), (False, dict(fmt="o", color="0.6", mfc="white"))):
            idx = [i for i, s in enumerate(rows) if s.gated == gated]
            if not idx:
                continue
            x = [100 * rows[i].wer for i in idx]
            lo = [100 * (rows[i].wer - rows[i].wer_ci[0]) for i in idx]
            hi = [100 * (rows[i].wer_ci[1] - rows[i].wer) for i in idx]
            ax.errorbar(x, idx, xerr=[lo, hi], capsize=3, linestyle="none",
                        label="gated" if gated else "not gated (too small)", **style)
        if not math.isnan(self.wer):
            ax.axvline(100 * self.wer, color="tab:red", linestyle="--", linewidth=1, label=f"overall {_pct(self.wer)}")
        if self.baseline is not None and self.baseline.available and self.baseline.wer is not None:
            ax.axvline(100 * self.baseline.wer, color="tab:green", linestyle=":", linewidth=1,
                       label=f"{self.baseline.name} {_pct(self.baseline.wer)}")
        ax.set_yticks(range(len(rows)), labels)
        ax.invert_yaxis()
        ax.set_xlabel(f"WER (%) with {round(100 * self.level)}% speaker-bootstrap interval")
        ax.set_title(f"WER by slice - {self.model_id}")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        return fig

    def _plot_reliability(self):
        from matplotlib.figure import Figure

        c = self.calibration
        fig = Figure(figsize=(9, 4), layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        for ax, diag, title in ((axes[0], c.before, "before"), (axes[1], c.after, f"after ({c.method})")):
            _reliability_axes(ax, diag)
            ax.set_title(f"{title}: ECE {_num(diag.ece, 3)}")
        axes[0].set_ylabel("accuracy")
        fig.suptitle(f"Reliability diagram - {self.model_id}")
        return fig

    def html(self) -> str:
        """A self-contained HTML page (inline CSS, plots as data URIs)."""
        esc = html_lib.escape
        imgs = "\n".join(
            f'<figure><img alt="{esc(name)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
            f"<figcaption>{esc(name.replace('_', ' '))}</figcaption></figure>"
            for name, png in self.plots_png().items()
        )
        sections = [
            f"<h1>Evaluation of {esc(self.model_id)}</h1>",
            f"<p>Test data commit <code>{esc(self.data_commit)}</code>: {self.n_utterances} utterances, "
            f"{self.n_speakers} speakers. Intervals: speaker-level bootstrap, {self.n_resamples} resamples.</p>",
            _md_table_to_html(self.summary_markdown()),
            "<h2>WER by slice</h2>",
            _md_table_to_html(self.slices_markdown()),
        ]
        if self.calibration is not None:
            sections += ["<h2>Calibration</h2>", _md_table_to_html(self.reliability_markdown())]
        if self.anchor is not None:
            a = self.anchor
            sections += [f"<h2>{esc(a.heading())}</h2>",
                         "".join(f"<p>{esc(t)}</p>" for t in a.sentences()), _md_table_to_html(a.table_markdown())]
        sections += ["<h2>Plots</h2>", imgs]
        body = "\n".join(sections)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Evaluation of {esc(self.model_id)}</title>"
            "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;"
            "text-align:left}th{background:#f4f4f4}img{max-width:100%}</style></head>"
            f"<body>\n{body}\n</body></html>\n"
        )


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple, dict)):
        return f"<{len(v)} values>"
    return str(v)


def _md_table_to_html(md: str) -> str:
    """Render the simple pipe tables produced above (header, rule, rows)."""
    esc = html_lib.escape
    lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    if len(lines) < 2:
        return ""

    def cells(line: str) -> list[str]:
        parts, cur, i = [], "", 1
        while i < len(line) - 1:
            if line[i] == "\\" and line[i + 1] == "|":
                cur += "|"
                i += 2
                continue
            if line[i] == "|":
                parts.append(cur.strip())
                cur = ""
            else:
                cur += line[i]
            i += 1
        parts.append(cur.strip())
        return parts

    head = "".join(f"<th>{esc(c)}</th>" for c in cells(lines[0]))
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells(ln)) + "</tr>" for ln in lines[2:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _reliability_axes(ax, diag: ReliabilityDiagram) -> None:
    edges = diag.edges
    width = edges[1] - edges[0]
    centers = [(edges[i] + edges[i + 1]) / 2 for i in range(len(diag.counts))]
    acc = [0.0 if math.isnan(a) else a for a in diag.accuracy]
    ax.bar(centers, acc, width=width * 0.9, color="tab:blue", alpha=0.8, label="accuracy")
    conf_pts = [(x, c) for x, c in zip(centers, diag.confidence) if not math.isnan(c)]
    if conf_pts:
        ax.plot(*zip(*conf_pts), "o", color="tab:orange", markersize=4, label="mean confidence")
    ax.plot([0, 1], [0, 1], "--", color="0.4", linewidth=1, label="perfect calibration")
    for x, n in zip(centers, diag.counts):
        if n:
            ax.text(x, 0.02, str(n), ha="center", va="bottom", fontsize=7, rotation=90, color="white")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.legend(loc="upper left", fontsize="small")


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # explicit Agg canvas: no display, no pyplot state
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def build_report(
    rows: Any,
    *,
    model_id: str,
    data_commit: str,
    calibration: CalibrationReport | None = None,
    rtf: RTFResult | None = None,
    baseline: BaselineSummary | None = None,
    anchor: AnchorSection | None = None,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    min_utterances: int = 30,
    min_speakers: int = 3,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> EvalReport:
    """Score ``rows`` and assemble the report (slices and overall CIs computed here)."""
    table = slice_table(
        rows, columns, min_utterances, min_speakers, n_resamples=n_resamples, seed=seed, level=level
    )
    overall = table[0]  # slice_table puts the overall row first
    return EvalReport(
        model_id=model_id,
        data_commit=data_commit,
        n_utterances=overall.n_utterances,
        n_speakers=overall.n_speakers,
        wer=overall.wer,
        wer_ci=overall.wer_ci,
        cer=overall.cer,
        cer_ci=overall.cer_ci,
        slices=table[1:],
        calibration=calibration,
        rtf=rtf,
        baseline=baseline,
        n_resamples=n_resamples,
        level=level,
        min_utterances=min_utterances,
        min_speakers=min_speakers,
        anchor=anchor,
    )
