"""A report as sections, written twice: one self-contained HTML file and a Markdown summary.

The HTML embeds every figure as a `data:` URI and its style inline, and links nothing: it opens
offline, from a mail attachment or a CI artefact, as the one file it is. The Markdown points at the
PNG files in `plots/`, for reading on a forge.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

__all__ = ["Figure", "Section", "Table", "to_html", "to_markdown"]

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; }
figcaption { font-size: 0.9rem; color: #444; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.4rem 0.8rem; }
"""


@dataclass(frozen=True)
class Table:
    """A table: column headers and rows of already formatted cells."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Figure:
    """A PNG figure: its file name under `plots/`, its bytes and a caption that says what to look for."""

    name: str
    png: bytes
    caption: str


@dataclass
class Section:
    """A heading with paragraphs, notes (warnings), then optional tables and figures."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


def to_html(title: str, sections: list[Section]) -> str:
    """One HTML document with inline style and embedded images; no external reference."""
    escape = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             f"<h1>{escape(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{escape(section.title)}</h2>")
        parts += [f"<p>{escape(text)}</p>" for text in section.paragraphs]
        parts += [f'<p class="note">{escape(text)}</p>' for text in section.notes]
        for table in section.tables:
            parts.append("<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in table.headers)
                         + "</tr></thead><tbody>")
            parts += ["<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in table.rows]
            parts.append("</tbody></table>")
        for figure in section.figures:
            data = base64.b64encode(figure.png).decode("ascii")
            parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{escape(figure.caption)}">'
                         f"<figcaption>{escape(figure.caption)}</figcaption></figure>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def to_markdown(title: str, sections: list[Section]) -> str:
    """The same sections as Markdown; figures link to `plots/<name>`."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for text in section.paragraphs:
            lines += [text, ""]
        for text in section.notes:
            lines += [f"> **Note.** {text}", ""]
        for table in section.tables:
            lines.append("| " + " | ".join(table.headers) + " |")
            lines.append("|" + "|".join(":--" if i == 0 else "--:" for i in range(len(table.headers))) + "|")
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table.rows]
            lines.append("")
        for figure in section.figures:
            lines += [f"![{figure.caption}](plots/{figure.name})", "", f"*{figure.caption}*", ""]
    return "\n".join(lines)
