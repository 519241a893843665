"""A digest as Markdown or HTML: statements with numbered citations, sources at the end."""

from __future__ import annotations

from html import escape

from pepite_reports.digests.models import Digest, KeyNumber

_NUMBER_LABELS = {
    "messages": "Messages",
    "active_members": "Active members",
    "new_members": "New members",
    "questions": "Questions",
    "answered_questions": "Questions answered",
    "answer_rate_percent": "Answer rate (%)",
}


def _change(number: KeyNumber) -> str:
    if number.previous is None:
        return ""
    delta = number.value - number.previous
    if delta == 0:
        return " (same as the period before)"
    sign = "+" if delta > 0 else "−"
    return f" ({sign}{abs(delta):g} on the period before)"


def _footnotes(digest: Digest) -> dict[str, int]:
    return {cited.message_id: n for n, cited in enumerate(digest.sources, start=1)}


def to_markdown(digest: Digest) -> str:
    notes = _footnotes(digest)
    lines = [f"# {digest.title}", "", f"_{digest.summary}_", "", "## Key numbers", ""]
    lines += [
        f"- {_NUMBER_LABELS.get(n.name, n.name)}: {n.value:g}{_change(n)}" for n in digest.numbers
    ]
    for section in digest.sections:
        lines += ["", f"## {section.title}", ""]
        for statement in section.statements:
            refs = "".join(f"[^{notes[m]}]" for m in statement.message_ids)
            lines.append(f"- {statement.text} {refs}")
    lines += ["", "## Sources", ""]
    for cited in digest.sources:
        lines.append(
            f"[^{notes[cited.message_id]}]: #{cited.channel_name} · {cited.author_name} · "
            f"{cited.created_at:%Y-%m-%d %H:%M} UTC — “{cited.excerpt}” (`{cited.message_id}`)"
        )
    return "\n".join(lines) + "\n"


def to_html(digest: Digest) -> str:
    notes = _footnotes(digest)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(digest.title)}</title></head><body>",
        f"<h1>{escape(digest.title)}</h1>",
        f"<p><em>{escape(digest.summary)}</em></p>",
        "<h2>Key numbers</h2><ul>",
    ]
    parts += [
        f"<li>{escape(_NUMBER_LABELS.get(n.name, n.name))}: {n.value:g}{escape(_change(n))}</li>"
        for n in digest.numbers
    ]
    parts.append("</ul>")
    for section in digest.sections:
        parts.append(f'<section id="{section.kind.value}"><h2>{escape(section.title)}</h2><ul>')
        for statement in section.statements:
            refs = "".join(
                f'<sup><a href="#source-{notes[m]}">{notes[m]}</a></sup>'
                for m in statement.message_ids
            )
            parts.append(f"<li>{escape(statement.text)} {refs}</li>")
        parts.append("</ul></section>")
    parts.append('<section id="sources"><h2>Sources</h2><ol>')
    for cited in digest.sources:
        parts.append(
            f'<li id="source-{notes[cited.message_id]}" data-message-id="'
            f'{escape(cited.message_id)}">#{escape(cited.channel_name)} · '
            f"{escape(cited.author_name)} · {cited.created_at:%Y-%m-%d %H:%M} UTC — "
            f"“{escape(cited.excerpt)}”</li>"
        )
    parts.append("</ol></section></body></html>")
    return "\n".join(parts) + "\n"
