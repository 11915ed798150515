"""The batch data contract: soda-core verifying a batch's metadata table on DuckDB, fully offline.

The contract YAML (contracts/batch_metadata.yml) is the reviewable source of truth; this module binds it
to an in-memory DuckDB table and turns soda's result into a small, serializable summary.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

CONTRACT_PATH = Path(__file__).with_name("contracts") / "batch_metadata.yml"
TABLE_NAME = "batch_metadata"


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    column: str | None
    outcome: str  # "passed" | "failed" | "not evaluated"
    diagnostics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ContractResult:
    passed: bool
    checks: list[CheckOutcome]
    errors: str = ""

    @property
    def failed_checks(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.outcome != "passed"]

    def markdown(self) -> str:
        rows = ["| check | column | outcome | diagnostics |", "|---|---|---|---|"]
        for c in self.checks:
            diag = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(c.diagnostics.items()))
            rows.append(f"| {c.name} | {c.column or ''} | {c.outcome} | {diag} |")
        if self.errors:
            rows.append(f"\n**errors:** {self.errors}")
        return "\n".join(rows)


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def verify_batch_contract(
    table: pa.Table,
    *,
    min_duration_s: float,
    max_duration_s: float,
    max_clipped_fraction: float,
    contract_path: Path = CONTRACT_PATH,
) -> ContractResult:
    """Run the soda contract on `table`; any soda error (bad YAML, SQL failure) counts as a failed contract."""
    import duckdb
    from soda_core.contracts import verify_contract_locally
    from soda_duckdb import DuckDBDataSource

    rendered = contract_path.read_text()
    for name, value in {
        "MIN_DURATION_S": min_duration_s,
        "MAX_DURATION_S": max_duration_s,
        "MAX_CLIPPED_FRACTION": max_clipped_fraction,
    }.items():
        rendered = rendered.replace("${" + name + "}", repr(float(value)))
    con = duckdb.connect(":memory:")
    tmp = tempfile.TemporaryDirectory(prefix="contract-")
    try:
        rendered_path = Path(tmp.name) / contract_path.name
        rendered_path.write_text(rendered)
        con.register("batch_metadata_arrow", table)
        con.execute(f"CREATE TABLE {TABLE_NAME} AS SELECT * FROM batch_metadata_arrow")
        # soda logs each check at INFO; keep a run's log readable.
        logging.getLogger("soda_core").setLevel(logging.WARNING)
        result = verify_contract_locally(
            data_sources=[DuckDBDataSource.from_existing_cursor(con.cursor(), name="duckdb")],
            contract_file_path=str(rendered_path),
        )
    finally:
        con.close()
        tmp.cleanup()

    checks: list[CheckOutcome] = []
    for contract_result in result.contract_verification_results:
        for cr in contract_result.check_results:
            check = cr.check
            outcome = str(getattr(cr.outcome, "name", cr.outcome)).lower().replace("_", " ")
            checks.append(
                CheckOutcome(
                    name=getattr(check, "name", None) or check.type,
                    column=getattr(check, "column_name", None),
                    outcome=outcome,
                    diagnostics={
                        k: v
                        for k, v in (getattr(cr, "diagnostic_metric_values", None) or {}).items()
                        if isinstance(v, (int, float, str))
                    },
                )
            )
    errors = result.get_errors_str() if result.has_errors else ""
    passed = bool(result.is_passed) and not errors and bool(checks) and all(c.outcome == "passed" for c in checks)
    return ContractResult(passed=passed, checks=checks, errors=errors)
