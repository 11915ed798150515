"""Rewrite the store layout table in docs/architecture.md from `speech_assets.storage.layout.markdown_table()`.

    python scripts/update_layout_doc.py          rewrite the table between the layout markers
    python scripts/update_layout_doc.py --check  exit 1 (and say so) when the table is out of date

`tests/storage/test_layout_doc.py` runs the check; run this after changing `layout.KEYS`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC = REPO_ROOT / "docs" / "architecture.md"
START = "<!-- layout:start"  # the rest of the start comment says where the table comes from
END = "<!-- layout:end -->"
COMMAND = "python scripts/update_layout_doc.py"


def _table() -> str:
    sys.path.insert(0, str(REPO_ROOT))  # run from a checkout, installed or not
    from speech_assets.storage.layout import markdown_table

    return markdown_table()


def split(text: str) -> tuple[str, str, str]:
    """(everything up to and including the start marker's line, the table between the markers, the end marker
    onwards); raises ValueError when the markers are missing or out of order."""
    start = text.find(START)
    end = text.find(END)
    if start < 0 or end < 0 or end < start:
        raise ValueError(f"{DOC} needs the markers {START} ... --> and {END}, in that order")
    head_end = text.index("\n", start) + 1
    return text[:head_end], text[head_end:end], text[end:]


def with_table(text: str, table: str) -> str:
    head, _, tail = split(text)
    return f"{head}{table}\n{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the table is out of date")
    args = parser.parse_args(argv)
    text = DOC.read_text(encoding="utf-8")
    updated = with_table(text, _table())
    if updated == text:
        print(f"{DOC.relative_to(REPO_ROOT)}: the layout table is up to date")
        return 0
    if args.check:
        print(f"{DOC.relative_to(REPO_ROOT)}: the layout table is out of date; run `{COMMAND}`")
        return 1
    DOC.write_text(updated, encoding="utf-8")
    print(f"{DOC.relative_to(REPO_ROOT)}: layout table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
