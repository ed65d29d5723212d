"""A notice's printed text, as a reader of the PDF or the HTML page sees it (whitespace
collapsed, so a line the PDF wrapped reads as one)."""

from __future__ import annotations

import io
from html.parser import HTMLParser

from pypdf import PdfReader

from config.settings import Settings

NOTICE_SETTINGS = {
    "notice_creditor_name": "Prairie Lending Co.",
    "notice_creditor_address": "100 Main Street; Springfield, IL 62701",
    "notice_creditor_phone": "1-217-555-0100",
    "notice_agency_name": "Consumer Financial Protection Bureau",
    "notice_agency_address": "1700 G Street NW; Washington, DC 20552",
    "notice_bureau_name": "Equifax Information Services LLC",
    "notice_bureau_address": "P.O. Box 740241; Atlanta, GA 30374",
    "notice_bureau_phone": "1-800-685-1111",
}


def notice_settings(**changes: str | None) -> Settings:
    return Settings(**(NOTICE_SETTINGS | changes))


def collapsed(text: str) -> str:
    return " ".join(text.split())


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return collapsed(" ".join(page.extract_text() for page in reader.pages))


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skipping = False

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self._skipping = tag in ("style", "title")

    def handle_endtag(self, tag: str) -> None:
        self._skipping = False
        self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_text(page: str) -> str:
    """The page's visible text (the body, entities decoded)."""
    parser = _Text()
    parser.feed(page)
    return collapsed("".join(parser.parts))
