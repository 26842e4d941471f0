"""E-books (.epub): the XHTML chapters in spine (reading) order, read with the HTML extractor.

An EPUB is a zip archive: ``META-INF/container.xml`` names the package document (OPF), whose
manifest lists the files and whose spine gives the reading order.  Those two small XML files are
read with lxml (no entities resolved, no network), and each chapter goes through the same
visible-text extractor as an ``.html`` file.  Each chapter with text is one part, numbered in
reading order, named after its first heading: a citation reads "chapter 3 (Down the
Rabbit-Hole)".

Why not EbookLib: it is licensed AGPL-3.0, which an Apache-2.0 application cannot ship; what
it would do here (find the OPF, follow the spine) is these few lines of standard EPUB structure.
Chapters encrypted with DRM are refused; font obfuscation (also listed in ``encryption.xml``)
is not DRM and does not matter for the text.
"""

from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path
from urllib.parse import unquote

from ingest.document import LoadedDocument
from ingest.errors import LoadError, one_line
from ingest.formats.html import first_heading, parse_html, soup_text
from ingest.safety import check_zip_archive
from rag_qa.config import Settings

_NS = {
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "enc": "http://www.w3.org/2001/04/xmlenc#",
}
_XHTML = {"application/xhtml+xml", "text/html", "application/xml", "text/xml"}


def _xml(data: bytes, what: str):  # noqa: ANN202 - an lxml element
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise LoadError(f"corrupt .epub ({what}: {one_line(exc)})") from exc


def _read(archive: zipfile.ZipFile, name: str, what: str) -> bytes:
    try:
        return archive.read(name)
    except KeyError:
        raise LoadError(f"corrupt .epub ({what} {name} is missing)") from None


def spine_files(archive: zipfile.ZipFile) -> list[str]:
    """The archive paths of the spine's XHTML documents, in reading order."""
    container = _xml(_read(archive, "META-INF/container.xml", "the container file"), "container.xml")
    rootfile = container.find(".//c:rootfile", _NS)
    if rootfile is None or not rootfile.get("full-path"):
        raise LoadError("corrupt .epub (container.xml names no package document)")
    opf_path = rootfile.get("full-path")
    package = _xml(_read(archive, opf_path, "the package document"), opf_path)
    base = posixpath.dirname(opf_path)
    manifest = {item.get("id"): item for item in package.iterfind(".//opf:manifest/opf:item", _NS)}
    files = []
    for ref in package.iterfind(".//opf:spine/opf:itemref", _NS):
        item = manifest.get(ref.get("idref"))
        if item is None or item.get("media-type") not in _XHTML or not item.get("href"):
            continue
        files.append(posixpath.normpath(posixpath.join(base, unquote(item.get("href").split("#")[0]))))
    return files


def _encrypted(archive: zipfile.ZipFile) -> set[str]:
    """Archive paths that ``META-INF/encryption.xml`` lists as encrypted."""
    try:
        data = archive.read("META-INF/encryption.xml")
    except KeyError:
        return set()
    root = _xml(data, "encryption.xml")
    return {unquote(ref.get("URI", "")) for ref in root.iterfind(".//enc:CipherReference", _NS)}


def load_epub(path: Path, source: str, settings: Settings) -> LoadedDocument:
    """One part per spine chapter that has text, numbered in reading order, named by its heading."""
    check_zip_archive(path, settings.max_docx_uncompressed_mb, settings.max_zip_ratio, ".epub")
    pieces = []
    try:
        with zipfile.ZipFile(path) as archive:
            files = spine_files(archive)
            if not files:
                raise LoadError("corrupt .epub (its spine lists no chapters)")
            locked = _encrypted(archive) & set(files)
            if locked:
                raise LoadError(f"DRM-protected e-book ({len(locked)} of {len(files)} chapters are encrypted)")
            for name in files:
                root = parse_html(_read(archive, name, "chapter"), "an e-book chapter")
                text = soup_text(root)
                if text:
                    pieces.append((text, len(pieces) + 1, first_heading(root), False))
    except (LoadError, MemoryError):
        raise
    except Exception as exc:  # a damaged zip member (bad CRC, truncated stream)
        raise LoadError(f"corrupt or unreadable .epub ({one_line(exc)})") from exc
    return LoadedDocument.from_parts(source, "epub", pieces, unit="chapter")
