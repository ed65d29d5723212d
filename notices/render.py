"""A notice's sections as HTML (self-contained, printable) and as PDF (fpdf2).

Both print :meth:`notices.content.NoticeContent.sections` and nothing else. The PDF uses
DejaVu Sans when the system has it (any character prints); otherwise a core font, with
every character it cannot encode replaced by its closest Latin-1 form (or ``?``).
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, time
from pathlib import Path

from fpdf import FPDF

from notices.content import TITLE, NoticeContent

DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")
CORE_FONT = "Helvetica"
_PRINTABLE_FORMS = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                                  "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u20ac": "EUR",
                                  "\u2022": "-", "\u00a0": " ", "\u0141": "L", "\u0142": "l",
                                  "\u0110": "D", "\u0111": "d", "\u0131": "i", "\u0152": "OE",
                                  "\u0153": "oe"})

_STYLE = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 11pt;
       line-height: 1.4; color: #000; max-width: 42em; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 15pt; margin-bottom: 1.2em; }
h2 { font-size: 12pt; margin: 1.4em 0 0.4em; }
section p { margin: 0.3em 0; }
section.creditor_name_and_address p, section.ecoa_statement p + p { margin: 0; }
section.applicant p:last-child { color: #555; font-style: italic; }
@media print { body { margin: 0; max-width: none; } @page { margin: 2cm; } }
"""


def to_html(content: NoticeContent) -> str:
    """The notice as one self-contained HTML page (no scripts, no external files)."""
    parts = [f"<h1>{html.escape(TITLE)}</h1>"]
    for section in content.sections():
        body = [f"<h2>{html.escape(section.heading)}</h2>"] if section.heading else []
        body += [f"<p>{html.escape(line)}</p>" for line in section.lines]
        if section.items:
            body.append("<ol>" + "".join(f"<li>{html.escape(item)}</li>"
                                         for item in section.items) + "</ol>")
        parts.append(f'<section class="{section.element}">{"".join(body)}</section>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(TITLE)}: application {html.escape(content.application_id)}"
            f"</title><style>{_STYLE}</style></head>\n<body>\n" + "\n".join(parts)
            + "\n</body></html>\n")


def to_pdf(content: NoticeContent, font_dir: Path | None = DEJAVU_DIR) -> bytes:
    """The notice as a PDF on US Letter paper, in a core font when every character of it is
    Latin-1 (small and quick), else in DejaVu Sans from ``font_dir`` when it is there."""
    pdf = FPDF(format="Letter", unit="mm")
    pdf.set_margins(22, 18, 22)
    pdf.set_auto_page_break(True, margin=18)
    # The same content gives the same file: the PDF's date is the notice's date.
    pdf.set_creation_date(datetime.combine(content.notice_date, time(), tzinfo=UTC))
    pdf.set_title(f"{TITLE}: application {content.application_id}")
    font, printable = _font(pdf, font_dir if _needs_unicode(content) else None)
    pdf.add_page()
    pdf.set_font(font, "B", 15)
    _paragraph(pdf, printable(TITLE), 8)
    pdf.ln(3)
    for section in content.sections():
        if section.heading:
            pdf.ln(2)
            pdf.set_font(font, "B", 11)
            _paragraph(pdf, printable(section.heading), 6)
        pdf.set_font(font, "", 10)
        for line in section.lines:
            _paragraph(pdf, printable(line), 4.8)
            pdf.ln(0.8)
        for number, item in enumerate(section.items, start=1):
            pdf.set_x(pdf.l_margin + 5)
            _paragraph(pdf, printable(f"{number}. {item}"), 4.8)
    return bytes(pdf.output())


def _paragraph(pdf: FPDF, text: str, line_height: float) -> None:
    pdf.multi_cell(0, line_height, text, align="L", new_x="LMARGIN", new_y="NEXT")


def _needs_unicode(content: NoticeContent) -> bool:
    return any(latin1(text) != text for section in content.sections()
               for text in (section.heading or "", *section.lines, *section.items))


def _font(pdf: FPDF, font_dir: Path | None) -> tuple[str, Callable[[str], str]]:
    regular = font_dir / "DejaVuSans.ttf" if font_dir else None
    bold = font_dir / "DejaVuSans-Bold.ttf" if font_dir else None
    if regular is not None and bold is not None and regular.is_file() and bold.is_file():
        pdf.add_font("DejaVu", "", str(regular))
        pdf.add_font("DejaVu", "B", str(bold))
        return "DejaVu", _as_is
    return CORE_FONT, latin1


def _as_is(text: str) -> str:
    return text


def latin1(text: str) -> str:
    """``text`` in characters the PDF core fonts encode (Latin-1): typographic quotes and
    dashes become plain ones, accented letters outside Latin-1 lose their accent, anything
    else becomes ``?``."""
    text = text.translate(_PRINTABLE_FORMS)
    printable = []
    for character in text:
        if _encodes(character):
            printable.append(character)
            continue
        plain = "".join(part for part in unicodedata.normalize("NFKD", character)
                        if _encodes(part) and not unicodedata.combining(part))
        printable.append(plain or "?")
    return "".join(printable)


def _encodes(character: str) -> bool:
    try:
        character.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return character.isprintable() or character in "\n\t"
