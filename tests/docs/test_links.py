"""Every relative link in README.md and docs/ (and the adapters' READMEs) resolves to a
file inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "adapters").glob("*/README.md")]
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
EXTERNAL = ("http://", "https://", "mailto:", "#")


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks are not links
    return [link for link in LINK.findall(text) if not link.startswith(EXTERNAL)]


def test_the_guides_exist() -> None:
    names = {page.name for page in PAGES if page.parent.name == "docs"}
    assert {"slack.md", "telegram.md", "mcp.md", "configuration.md", "deployment.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(page: Path) -> None:
    links = relative_links(page)
    broken = []
    for link in links:
        target = (page.parent / link.split("#", 1)[0]).resolve()
        if not target.is_relative_to(ROOT) or not target.exists():
            broken.append(link)
    assert broken == []
    if page.name == "README.md" and page.parent == ROOT:
        assert len(links) >= 6  # the guides are linked from the README
