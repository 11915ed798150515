"""docs/architecture.md carries the store layout table; it must be `layout.markdown_table()`, byte for byte.

When this fails after a change to `speech_assets/storage/layout.py`'s KEYS, regenerate the table with
`python scripts/update_layout_doc.py` (from the repository root) and commit the doc with the change.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from speech_assets.storage.layout import markdown_table

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "update_layout_doc.py"


def _script():
    spec = importlib.util.spec_from_file_location("update_layout_doc", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_layout_table_in_the_architecture_doc_is_the_generated_one():
    script = _script()
    _, table, _ = script.split(script.DOC.read_text(encoding="utf-8"))
    assert table.strip("\n") == markdown_table(), (
        f"the store layout table in {script.DOC.relative_to(REPO_ROOT)} differs from "
        f"speech_assets.storage.layout.markdown_table(): run `{script.COMMAND}`"
    )


def test_regenerating_the_table_changes_nothing_else():
    script = _script()
    text = "# doc\n\nbefore\n\n<!-- layout:start (generated) -->\nstale\n<!-- layout:end -->\n\nafter\n"
    updated = script.with_table(text, "| new |")
    assert updated == "# doc\n\nbefore\n\n<!-- layout:start (generated) -->\n| new |\n<!-- layout:end -->\n\nafter\n"
    assert script.with_table(updated, "| new |") == updated
