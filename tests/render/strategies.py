"""Hypothesis strategies for Markdown documents that know their own visible words."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

# Letters at both ends keep every emphasis flanking rule satisfied; the middle
# brings multi-byte, astral and combined characters (UTF-16 surrogate pairs).
_EDGE = st.sampled_from(list("abcxyzéßжд中"))
_MIDDLE = st.sampled_from([*"klmnö文", "😀", "𝔘", "👍🏽", "🇫🇷", "é"])


@dataclass(frozen=True)
class Doc:
    markdown: str
    words: tuple[str, ...]


words = st.builds(
    lambda a, middle, b: a + "".join(middle) + b,
    _EDGE,
    st.lists(_MIDDLE, max_size=5),
    _EDGE,
)


def _join(parts: list[Doc], sep: str = " ") -> Doc:
    return Doc(sep.join(p.markdown for p in parts), tuple(w for p in parts for w in p.words))


def _wrap(marker: str, inner: Doc) -> Doc:
    return Doc(f"{marker}{inner.markdown}{marker}", inner.words)


def _extend(children: st.SearchStrategy[Doc]) -> st.SearchStrategy[Doc]:
    return st.one_of(
        st.builds(_wrap, st.sampled_from(["**", "_", "*", "~~"]), children),
        st.lists(children, min_size=1, max_size=4).map(_join),
    )


def _link(label: Doc, n: int) -> Doc:
    return Doc(f"[{label.markdown}](https://example.com/{n})", label.words)


_word_doc = words.map(lambda w: Doc(w, (w,)))
_code_doc = words.map(lambda w: Doc(f"`{w}`", (w,)))
# Links hold no links: CommonMark would show the outer brackets literally.
_label = st.recursive(st.one_of(_word_doc, _code_doc), _extend, max_leaves=3)
_link_doc = st.builds(_link, _label, st.integers(0, 99))
inline = st.recursive(st.one_of(_word_doc, _code_doc, _link_doc), _extend, max_leaves=6)
# A line starts with a plain word, so it never opens a fence or a list by accident.
line = st.builds(lambda first, rest: _join([first, *rest]), _word_doc, st.lists(inline, max_size=5))


def _heading(level: int, d: Doc) -> Doc:
    return Doc("#" * level + " " + d.markdown, d.words)


def _list(items: list[Doc], ordered: bool, nested: Doc | None) -> Doc:
    out = []
    for i, item in enumerate(items):
        marker = f"{i + 1}. " if ordered else "- "
        out.append(marker + item.markdown)
    if nested is not None:
        out.insert(1, "   " + nested.markdown.replace("\n", "\n   "))
    parts = [*items, *([nested] if nested else [])]
    return Doc("\n".join(out), tuple(w for p in parts for w in p.words))


def _fence(info: str, rows: list[list[str]], indent: str) -> Doc:
    body = "\n".join(indent + " ".join(row) for row in rows)
    text = f"```{info}\n{body}\n```" if rows else f"```{info}\n```"
    return Doc(text, tuple(w for row in rows for w in row))


def _table(header: list[str], rows: list[list[str]]) -> Doc:
    width = len(header)
    rows = [(row + header)[:width] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return Doc("\n".join(lines), tuple(header) + tuple(w for row in rows for w in row))


simple_list = st.builds(_list, st.lists(line, min_size=1, max_size=4), st.booleans(), st.none())
block = st.one_of(
    line,
    st.builds(_heading, st.integers(1, 3), line),
    st.builds(
        _list, st.lists(line, min_size=1, max_size=4), st.booleans(), st.none() | simple_list
    ),
    st.builds(
        _fence,
        st.sampled_from(["", "python", "js"]),
        st.lists(st.lists(words, min_size=1, max_size=6), max_size=8),
        st.sampled_from(["", "  "]),
    ),
    line.map(lambda d: Doc("> " + d.markdown, d.words)),
    st.builds(
        _table,
        st.lists(words, min_size=1, max_size=3),
        st.lists(st.lists(words, min_size=1, max_size=3), max_size=4),
    ),
)
documents = st.lists(block, min_size=1, max_size=6).map(lambda bs: _join(bs, "\n\n"))
