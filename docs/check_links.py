#!/usr/bin/env python3
"""Checks the relative links of README.md and the book (docs/src/**/*.md).

Every relative link must name a file or folder of the repository (never one outside it: the
repository is self-contained), and every #anchor must be the id of a heading in the file it
points at, as mdBook and GitHub make them: the heading's text, lower-cased, spaces turned to
`-`, punctuation dropped (letters, digits, `-` and `_` kept), `-1`, `-2`, ... added to repeats.
Links inside code (fenced blocks, `code spans`) are not links. External links (http:, https:,
mailto:) are not checked.

    python3 docs/check_links.py        # exit 0: every link resolves; 1: the broken ones listed

Standard library only.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
# [text](target "title") and ![alt](target); the target may be wrapped in <...>.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.M)
HTML_HREF = re.compile(r"""<a\s[^>]*href=["']([^"']+)["']""", re.I)
HTML_ID = re.compile(r"""\sid=["']([^"']+)["']""", re.I)
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def files_to_check() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs" / "src").rglob("*.md"))]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, with their line numbers."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * len(match.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            continue
        out.append((number, line))
    return out


def heading_text(raw: str) -> str:
    """A heading's text as rendered: code spans' contents, links' texts, no emphasis marks."""
    text = CODE_SPAN.sub(lambda m: m.group(2).strip(), raw)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"(\*{1,3})(\S.*?\S|\S)\1", r"\2", text)
    return text


def slug(text: str) -> str:
    out = []
    for ch in text:
        if ch.isalnum() or ch in "-_":
            out.append(ch.lower())
        elif ch.isspace():
            out.append("-")
    return "".join(out)


_anchor_cache: dict[Path, set[str]] = {}


def anchors(path: Path) -> set[str]:
    if path not in _anchor_cache:
        found, seen = set(), {}
        text = path.read_text(encoding="utf-8")
        for _, line in prose_lines(text):
            match = HEADING.match(line)
            if match:
                base = slug(heading_text(match.group(2)))
                count = seen.get(base, 0)
                seen[base] = count + 1
                found.add(base if count == 0 else f"{base}-{count}")
            found.update(HTML_ID.findall(line))
        _anchor_cache[path] = found
    return _anchor_cache[path]


def links(text: str) -> list[tuple[int, str]]:
    out = []
    for number, line in prose_lines(text):
        line = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        for pattern in (INLINE_LINK, HTML_HREF):
            out.extend((number, m.group(1).strip("<>")) for m in pattern.finditer(line))
        match = REFERENCE_DEF.match(line)
        if match:
            out.append((number, match.group(1).strip("<>")))
    return out


def check(path: Path) -> list[str]:
    problems = []
    shown = path.relative_to(ROOT)
    for number, target in links(path.read_text(encoding="utf-8")):
        if EXTERNAL.match(target) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        file_part = file_part.split("?", 1)[0]
        if file_part:
            if file_part.startswith("/"):
                problems.append(f"{shown}:{number}: {target}: an absolute path; link relative to the file")
                continue
            resolved = (path.parent / file_part).resolve()
            try:
                resolved.relative_to(ROOT)
            except ValueError:
                problems.append(f"{shown}:{number}: {target}: outside the repository")
                continue
            if not resolved.exists():
                problems.append(f"{shown}:{number}: {target}: no such file")
                continue
        else:
            resolved = path
        if anchor and resolved.is_file() and resolved.suffix == ".md":
            if anchor not in anchors(resolved):
                problems.append(
                    f"{shown}:{number}: {target}: no heading #{anchor} in {resolved.relative_to(ROOT)}"
                )
    return problems


def main() -> int:
    checked = files_to_check()
    problems = [problem for path in checked if path.exists() for problem in check(path)]
    problems += [f"{p.relative_to(ROOT)}: missing" for p in checked if not p.exists()]
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} broken link(s) in {len(checked)} files")
        return 1
    print(f"links: {len(checked)} files, every relative link and anchor resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
