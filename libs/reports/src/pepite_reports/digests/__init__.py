"""Digests as stored by the digest service and as every reader renders them."""

from pepite_reports.digests.models import Cited, Digest, KeyNumber, Section, SectionKind, Statement
from pepite_reports.digests.render import to_html, to_markdown

__all__ = [
    "Cited",
    "Digest",
    "KeyNumber",
    "Section",
    "SectionKind",
    "Statement",
    "to_html",
    "to_markdown",
]
