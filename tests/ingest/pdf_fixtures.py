"""Small PDFs written by hand (pypdf cannot lay out text): text pages, and a shared content stream.

Used by tests/test_parsing_limits.py and scripts/bench_parse.py.
"""

from __future__ import annotations

import zlib


def _literal(text: str) -> bytes:
    """A PDF string literal in WinAnsi (characters it lacks become '?')."""
    raw = text.encode("cp1252", "replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _stream(content: bytes) -> bytes:
    packed = zlib.compress(content, 9)
    return (
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream"
    )


def _assemble(objects: list[bytes]) -> bytes:
    """Objects numbered from 1 (1 is the catalog), a cross-reference table and a trailer."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"


def text_pdf(pages: list[list[str]], lines_per_page: int = 50) -> bytes:
    """One page per list of lines, in Helvetica 10 pt (longer pages are cut at ``lines_per_page``)."""
    # 1 catalog, 2 pages, 3 font, then page/content pairs
    kids = [4 + 2 * i for i in range(len(pages))]
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % k for k in kids), len(pages)),
        FONT,
    ]
    for index, lines in enumerate(pages):
        ops = [b"BT /F1 10 Tf 12 TL 50 760 Td"]
        ops += [_literal(line) + b" Tj T*" for line in lines[:lines_per_page]]
        ops.append(b"ET")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents %d 0 R >>" % (5 + 2 * index)
        )
        objects.append(_stream(b"\n".join(ops)))
    return _assemble(objects)


def shared_stream_pdf(pages: int, operations: int, distinct_resources: bool = False) -> bytes:
    """``pages`` pages that all draw one content stream of ``operations`` text operations.

    The stream compresses to almost nothing, so the file is small while every page costs
    parsing the whole stream. With ``distinct_resources`` each page has its own resource
    dictionary (the same font), so a reader cannot tell that the pages are the same.
    """
    line = b"BT /F1 10 Tf 50 700 Td (The same words on every page) Tj ET"
    resources = b"<< /Font << /F1 3 0 R >> >>"
    kids = [6 + i for i in range(pages)]
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % k for k in kids), pages),
        FONT,
        _stream(b"\n".join([line] * operations)),
        resources,
    ]
    for _ in range(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources %s /Contents 4 0 R >>"
            % (resources if distinct_resources else b"5 0 R")
        )
    return _assemble(objects)


def inflating_pdf(megabytes: int) -> bytes:
    """One page whose content stream inflates from a few KB to ``megabytes`` MB (spaces)."""
    content = b"BT /F1 10 Tf 50 700 Td (Hello) Tj ET\n" + b" " * (megabytes * 2**20)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        FONT,
        (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents 5 0 R >>"
        ),
        _stream(content),
    ]
    return _assemble(objects)
