"""Read the `Delegate Form` sheet of an untrusted `.xlsx` safely: `read_workbook(bytes) -> SheetCells`.

Hostile files are refused before they cost memory or time (spec: "Limits (hostile files)"), judged
by content only. The zip directory is checked before anything is inflated; entries are inflated by
hand from the bytes in bounded chunks, so the real ratio and total are enforced as they grow,
whatever the headers claim. The prolog of every XML part in the zip (where a DTD would have to sit)
goes through defusedxml's parser with DTDs forbidden; the parts the reader needs are parsed by the
C ElementTree pull parser, the form sheet row by row, each row freed once read.

Reading choices (where the spec is silent):
- a formula cell holds its formula text with a leading '=' (a shared-formula child, whose text is
  not stored, holds just '='); its cached value is never read;
- numbers are numbers: a date-formatted cell is its serial number (e.g. '45000'), never a date;
- an integer is written without '.0' or exponent ('1234567890'); any other number as Python's
  shortest repr ('1.5', '1e-05'); booleans as 'TRUE'/'FALSE'; error cells as their code ('#N/A');
- text escapes of the form `_x003D_` are decoded, as Excel shows them ('=' stays visible);
- the 1,000-character limit is measured after stripping and NFC, on every cell of the sheet.
"""

from __future__ import annotations

import math
import posixpath
import re
import struct
import unicodedata
import zipfile
import zlib
from collections import deque
from collections.abc import Container, Iterable, Iterator
from io import BytesIO
from xml.etree import ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from grants.errors import Code, FileRejected
from grants.form import COLUMN_LETTERS, FORM_SHEET
from grants.sheet import SheetCells

KiB = 1024
MiB = 1024 * KiB

# The spec's limits.
MAX_FILE_BYTES = 10 * MiB  # a workbook cannot be larger than the sealed file it came in
MAX_ENTRIES = 100
MAX_UNCOMPRESSED = 50 * MiB  # in all: declared by the zip directory and counted while inflating
MAX_RATIO = 100  # an entry may inflate more than 100-fold only while its output is under ...
RATIO_GRACE = 100 * KiB  # ... its first 100 KiB
MAX_ROWS = 5_000  # <row> elements present in the form sheet, the title row included
MAX_CELL_CHARS = 1_000
MAX_OUTSIDE_KEPT = 50  # a sample of the cells beyond column K; the scan goes on for the limits

# Guards the spec leaves implicit: far above any real form, they bound memory and time per part.
MAX_STRUCTURE_PART = 1 * MiB  # [Content_Types].xml, xl/workbook.xml and its relationships
MAX_SHARED_STRINGS = 100_000  # 5,000 rows x 11 columns is 55,000
MAX_PART_ELEMENTS = 1_000_000  # XML elements in sharedStrings or the form sheet
MAX_HELD_ELEMENTS = 100_000  # elements held at once (one open row or string, and strays)

MAX_DIRECTORY_BYTES = 256 * KiB  # 100 entries need ~15 KiB; zipfile parses whatever is declared

MAX_COLUMN = 16_384  # XFD, Excel's last column
MAX_ROW_NUMBER = 1_048_576

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # 30 bytes; name and extra lengths are the last two
_END_RECORD = struct.Struct("<4s4H2LH")  # 22 bytes: ..., entries, directory size, offset, comment
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes, just before the end record
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")  # 56 bytes, just before the locator
_IN_CHUNK = 16 * KiB
_PARSE_SLICE = 8 * KiB  # few elements alive at once: less for the garbage collector to scan
_OUT_CHUNK = 128 * KiB  # over RATIO_GRACE: a bomb is refused on its first chunk, before it is parsed

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_STRICT_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"
_REL_ID = (
    "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id",
    "{http://purl.oclc.org/ooxml/officeDocument/relationships}id",
)
_WORKBOOK = "xl/workbook.xml"
_WORKBOOK_RELS = "xl/_rels/workbook.xml.rels"
_CONTENT_TYPES = "[content_types].xml"  # part names are looked up lower-cased (OPC: case-insensitive)

_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLEANS = {"1": "TRUE", "0": "FALSE", "true": "TRUE", "false": "FALSE"}
_DIGITS = "0123456789"
_WIDTH = len(COLUMN_LETTERS)  # A-K


def read_workbook(data: bytes) -> SheetCells:
    """The workbook's sheet names and its `Delegate Form` cells; FileRejected for a file-level problem."""
    package = _Package(data)
    package.content_types = _content_types(package.read_xml(_CONTENT_TYPES, MAX_STRUCTURE_PART))
    sheets = _workbook_sheets(package.read_xml(_WORKBOOK, MAX_STRUCTURE_PART))
    names = tuple(name for name, _ in sheets)
    form_ids = [rel_id for name, rel_id in sheets if name == FORM_SHEET]
    if not form_ids:
        package.check_remaining_prologs()
        return SheetCells(sheet_names=names, has_form_sheet=False)
    if len(form_ids) > 1:
        raise _damaged("two sheets share the name Delegate Form")
    rels = {}
    if package.has(_WORKBOOK_RELS):
        rels = _relationships(package.read_xml(_WORKBOOK_RELS, MAX_STRUCTURE_PART), "xl")
    target = rels.get(form_ids[0])
    if target is None or not package.has(target[1]):
        raise _damaged("the Delegate Form sheet's part is missing")
    strings_part = next((p for kind, p in rels.values() if kind.endswith("/sharedStrings")), None)
    if strings_part is None and package.has("xl/sharedstrings.xml"):
        strings_part = "xl/sharedstrings.xml"  # lenient: a writer that forgot the relationship
    if strings_part is not None and not package.has(strings_part):
        raise _damaged("its shared strings part is missing")
    sheet_part = target[1]
    package.check_remaining_prologs(skip={sheet_part, strings_part})
    shared = _shared_strings(package.stream(strings_part)) if strings_part else []
    return _read_form_sheet(package, sheet_part, names, shared)


def _read_form_sheet(package: _Package, part: str, names: tuple[str, ...], shared: list[str]) -> SheetCells:
    """The form sheet's cells: by the quick reader when the sheet is a usual one, else the general one."""
    if package.size(part) <= QUICK_SHEET_MAX:
        budget = package._left  # inflated bytes still allowed, over all parts
        chunks = _small_part(package, part)
        if chunks is not None:
            cells = _quick_sheet(b"".join(chunks), names, shared)
            if cells is not None:
                return cells
            return _FormSheet(names, shared).read(_XmlStream(iter(chunks)))
        package._left = budget  # the general reader meets the problem where it lies, and says so
    return _FormSheet(names, shared).read(package.stream(part))


def _small_part(package: _Package, part: str) -> list[bytes] | None:
    """The part's bytes, when they are no more than QUICK_SHEET_MAX and pass every check of the zip."""
    chunks, size = [], 0
    try:
        for chunk in package.stream(part).chunks():
            size += len(chunk)
            if size > QUICK_SHEET_MAX:  # its size was a lie
                return None
            chunks.append(chunk)
    except FileRejected:
        return None
    return chunks


def _not_xlsx(message: str) -> FileRejected:
    return FileRejected(Code.NOT_XLSX, message)


def _damaged(what: str) -> FileRejected:
    return FileRejected(Code.NOT_XLSX, f"the workbook is damaged: {what}")


def _too_large(message: str) -> FileRejected:
    return FileRejected(Code.FILE_TOO_LARGE, message)


# ---------------------------------------------------------------------------------------- the zip


class _Package:
    """The zip's directory, checked before anything is inflated, and bounded inflation of its parts."""

    def __init__(self, data: bytes):
        if not data:
            raise _not_xlsx("the file is empty")
        if data.startswith(_OLE_MAGIC):
            raise _not_xlsx("a legacy .xls or a password-protected workbook: save it as a plain .xlsx")
        if not data.startswith(_ZIP_MAGIC):
            raise _not_xlsx("not an .xlsx workbook (the file is not a zip archive)")
        if len(data) > MAX_FILE_BYTES:
            raise _too_large(f"the workbook file is over {MAX_FILE_BYTES // MiB} MiB")
        _check_directory_record(data)
        try:
            infos = zipfile.ZipFile(BytesIO(data)).infolist()
        except Exception as exc:  # any failure to read the directory means a malformed zip
            raise _damaged("its zip directory cannot be read") from exc
        if len(infos) > MAX_ENTRIES:
            raise _too_large(f"the workbook's zip holds {len(infos):,} entries; the limit is {MAX_ENTRIES}")
        self._parts: dict[str, zipfile.ZipInfo] = {}
        declared = 0
        for info in infos:
            key = info.filename.lower()
            if key in self._parts:
                raise _damaged("its zip holds two entries of the same name")
            self._parts[key] = info
            if posixpath.basename(key) == "vbaproject.bin":
                raise _macro_enabled()
            if info.flag_bits & 0x1:
                raise _not_xlsx("a password-protected workbook: save it without a password")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _damaged("its zip uses a compression method Excel does not write")
            if info.file_size > RATIO_GRACE and info.file_size > MAX_RATIO * info.compress_size:
                raise _bomb()
            declared += info.file_size
        if declared > MAX_UNCOMPRESSED:
            raise _too_large(f"the workbook inflates to over {MAX_UNCOMPRESSED // MiB} MiB")
        for required in (_CONTENT_TYPES, _WORKBOOK):
            if required not in self._parts:
                raise _not_xlsx("not an .xlsx workbook (it has no [Content_Types].xml or xl/workbook.xml)")
        self._data = memoryview(data)
        self._left = MAX_UNCOMPRESSED  # inflated bytes still allowed, over all parts
        self._read: set[str] = set()
        # (extension -> content type, "/part name" -> content type), all lower-cased
        self.content_types: tuple[dict[str, str], dict[str, str]] = ({}, {})

    def has(self, name: str) -> bool:
        return name in self._parts

    def size(self, name: str) -> int:
        """The part's inflated size, as the zip directory declares it (checked while inflating)."""
        return self._parts[name].file_size

    def stream(self, name: str, limit: int | None = None) -> _XmlStream:
        """The XML part `name` (lower-cased), ready to be parsed."""
        self._read.add(name)
        return _XmlStream(self._inflate(self._parts[name], limit))

    def read_xml(self, name: str, limit: int) -> list[ET.Element]:
        """Every element of a small XML part, in document order of their ends."""
        elements = []
        for batch in self.stream(name, limit).batches():
            elements += batch
            if len(elements) > MAX_HELD_ELEMENTS:
                raise _too_large("a part of the workbook's structure is too large")
        return elements

    def check_remaining_prologs(self, skip: Container[str | None] = ()) -> None:
        """Refuse a DTD in any XML part not parsed in full (downstream tools may parse them)."""
        defaults, overrides = self.content_types
        for name, info in self._parts.items():
            if name in self._read or name in skip or info.is_dir():
                continue
            extension = name.rpartition(".")[2]
            kind = overrides.get("/" + name) or defaults.get(extension, "")
            if extension in ("xml", "rels", "vml") or kind.endswith("xml"):
                _XmlStream(self._inflate(info, None)).check_prolog()

    def _inflate(self, info: zipfile.ZipInfo, limit: int | None) -> Iterator[bytes]:
        """The entry's bytes in chunks; the ratio, the total and `limit` are enforced on the way."""
        raw = self._compressed(info)
        produced = 0
        crc = 0
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                raise _damaged("a stored zip entry has inconsistent sizes")
            for start in range(0, len(raw), _OUT_CHUNK):
                out = bytes(raw[start : start + _OUT_CHUNK])
                produced += len(out)
                self._account(produced, produced, len(out), limit)
                crc = zlib.crc32(out, crc)
                yield out
        else:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            fed = 0
            pending: bytes | memoryview = b""
            while not inflater.eof:
                if not pending:
                    if fed >= len(raw):
                        raise _damaged("a zip entry is truncated")
                    pending = raw[fed : fed + _IN_CHUNK]
                    fed += len(pending)
                try:
                    out = inflater.decompress(pending, _OUT_CHUNK)
                except zlib.error as exc:
                    raise _damaged("a zip entry cannot be inflated") from exc
                pending = inflater.unconsumed_tail
                produced += len(out)
                self._account(produced, fed - len(pending), len(out), limit)
                if out:
                    crc = zlib.crc32(out, crc)
                    yield out
        if produced != info.file_size or crc != info.CRC:
            raise _damaged("a zip entry does not match its recorded size or checksum")

    def _account(self, produced: int, consumed: int, size: int, limit: int | None) -> None:
        if produced > RATIO_GRACE and produced > MAX_RATIO * consumed:
            raise _bomb()
        self._left -= size
        if self._left < 0:
            raise _too_large(f"the workbook inflates to over {MAX_UNCOMPRESSED // MiB} MiB")
        if limit is not None and produced > limit:
            raise _too_large("a part of the workbook's structure is too large")

    def _compressed(self, info: zipfile.ZipInfo) -> memoryview:
        """The entry's compressed bytes, found through its local header (checked against the directory)."""
        start = info.header_offset
        header = self._data[start : start + _LOCAL_HEADER.size]
        if len(header) < _LOCAL_HEADER.size:
            raise _damaged("a zip entry is truncated")
        fields = _LOCAL_HEADER.unpack(header)
        name_length, extra_length = fields[-2], fields[-1]
        if fields[0] != _ZIP_MAGIC:
            raise _damaged("a zip entry's header is missing")
        name = bytes(self._data[start + _LOCAL_HEADER.size : start + _LOCAL_HEADER.size + name_length])
        try:
            expected = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
        except UnicodeEncodeError:
            expected = None
        if name != expected:
            raise _damaged("a zip entry's header does not match the zip directory")
        begin = start + _LOCAL_HEADER.size + name_length + extra_length
        end = begin + info.compress_size
        if end > len(self._data):
            raise _damaged("a zip entry is truncated")
        return self._data[begin:end]


def _check_directory_record(data: bytes) -> None:
    """Refuse too many entries from the zip's end record, before zipfile parses the directory.

    The record is found the way zipfile finds it (at the very end, else the last one in the
    trailing 64 KiB), zip64 record included, so the counts checked are the ones zipfile uses.
    """
    tail_start = len(data) - _END_RECORD.size
    if data[tail_start : tail_start + 4] == b"PK\x05\x06" and data[-2:] == b"\0\0":
        position = tail_start
    else:
        position = data.rfind(b"PK\x05\x06", max(0, tail_start - 0xFFFF))
    if position < 0 or position + _END_RECORD.size > len(data):
        raise _damaged("its zip directory cannot be read")
    record = _END_RECORD.unpack_from(data, position)
    entries, directory_size = record[4], record[5]
    locator = position - _ZIP64_LOCATOR.size
    zip64 = locator - _ZIP64_END_RECORD.size
    if zip64 >= 0 and data[locator : locator + 4] == b"PK\x06\x07":
        record64 = _ZIP64_END_RECORD.unpack_from(data, zip64)
        if record64[0] == b"PK\x06\x06":
            entries, directory_size = max(entries, record64[7]), max(directory_size, record64[8])
    if entries > MAX_ENTRIES:
        raise _too_large(f"the workbook's zip lists {entries:,} entries; the limit is {MAX_ENTRIES}")
    if directory_size > MAX_DIRECTORY_BYTES:
        raise _too_large("the workbook's zip directory is too large")


def _bomb() -> FileRejected:
    return _too_large(
        f"a part of the workbook inflates over {MAX_RATIO}-fold beyond its first {RATIO_GRACE // KiB} KiB (a zip bomb?)"
    )


def _macro_enabled() -> FileRejected:
    return _not_xlsx("a macro-enabled workbook (.xlsm): save it as a plain .xlsx without macros")


# ------------------------------------------------------------------------------------------- XML


class _RootReached(Exception):
    """The prolog is over: no DTD came before the root element."""


class _PrologTarget:
    """A parser target that stops at the root element, noting its tag."""

    root_tag: str | None = None

    def start(self, tag: str, attrib: dict) -> None:
        self.root_tag = tag
        raise _RootReached

    def end(self, tag: str) -> None:
        pass

    def data(self, data: str) -> None:
        pass

    def close(self) -> None:
        pass


class _XmlStream:
    """The events of one XML part fed in chunks; a DTD (defusedxml's check) refuses the part.

    defusedxml's parser is pure Python (slow), so it only reads the prolog, fed the same chunks in
    lockstep just before the fast C pull parser: a DOCTYPE can only precede the root element, and
    both parsers are expat over the same bytes, so the C parser never gets to expand one.
    """

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._guard = _PrologTarget()
        self._prolog: DefusedXMLParser | None = DefusedXMLParser(target=self._guard, forbid_dtd=True)

    @property
    def namespace(self) -> str:
        tag = self._guard.root_tag or ""
        return tag[1:].partition("}")[0] if tag.startswith("{") else ""

    def batches(self) -> Iterator[list[ET.Element]]:
        """The elements that ended in each chunk, in document order (one list per chunk)."""
        for _, elements in self.selected(None):
            yield elements

    def selected(self, local_names: tuple[str, ...] | None) -> Iterator[tuple[int, list[ET.Element]]]:
        """(how many elements ended, those of them named `local_names`) for each chunk parsed.

        The names are taken in the part's SpreadsheetML namespace; None keeps every element. The
        pull parser's event queue is read in one pass (its read_events() generator costs more per
        element than the parsing: a form sheet has ~17,000 elements).
        """
        parser = ET.XMLPullParser(("end",))
        queue = getattr(parser, "_events_queue", None)
        if not isinstance(queue, deque):  # another ElementTree: its public interface, slower
            queue = None
        wanted: frozenset[str] | None = None
        try:
            for _ in self._fed(parser):
                if queue is None:
                    events = list(parser.read_events())
                elif queue and not isinstance(queue[-1], tuple):
                    raise queue.pop()  # a parse error, queued after the events before it (dropped)
                else:
                    events = list(queue)
                    queue.clear()
                if local_names is None:
                    yield len(events), [element for _, element in events]
                    continue
                if wanted is None and events:  # an element has ended: the root's namespace is known
                    ns = _spreadsheet_namespace(self)
                    wanted = frozenset(f"{{{ns}}}{name}" for name in local_names)
                yield len(events), [element for _, element in events if element.tag in wanted]
        except ET.ParseError as exc:
            raise _damaged("a part of it is not well-formed XML") from exc

    def _fed(self, parser: ET.XMLPullParser) -> Iterator[None]:
        """Feed the part to `parser` in slices (the prolog checked on the way); a pause after each."""
        for chunk in self._chunks:
            if self._prolog is not None:
                self._check(chunk)
            for start in range(0, len(chunk), _PARSE_SLICE):
                parser.feed(chunk[start : start + _PARSE_SLICE])
                yield
        parser.close()
        yield

    def check_prolog(self) -> None:
        """Read only until the root element; refuse a DTD before it."""
        for chunk in self._chunks:
            self._check(chunk)
            if self._prolog is None:
                return
        raise _damaged("a part of it is not well-formed XML")

    def drain(self) -> None:
        """Inflate the rest, unparsed: the limits and the checksum still apply."""
        for _ in self._chunks:
            pass

    def chunks(self) -> Iterator[bytes]:
        """The part's bytes, unparsed (the limits and the checksum still apply)."""
        return self._chunks

    def _check(self, chunk: bytes) -> None:
        try:
            self._prolog.feed(chunk)
        except _RootReached:
            self._prolog = None
        except DefusedXmlException as exc:
            raise _not_xlsx("the workbook's XML declares a DTD or entities, which .xlsx files never need") from exc
        except SyntaxError as exc:  # ParseError
            raise _damaged("a part of it is not well-formed XML") from exc


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _content_types(elements: list[ET.Element]) -> tuple[dict[str, str], dict[str, str]]:
    """(extension -> type, part name -> type); a macro-enabled content type refuses the workbook."""
    defaults, overrides = {}, {}
    for element in elements:
        kind = element.get("ContentType", "").lower()
        if "macroenabled" in kind or "vbaproject" in kind:
            raise _macro_enabled()
        if _local(element.tag) == "Default":
            defaults[element.get("Extension", "").lower()] = kind
        elif _local(element.tag) == "Override":
            overrides[element.get("PartName", "").lower()] = kind
    return defaults, overrides


def _workbook_sheets(elements: list[ET.Element]) -> list[tuple[str, str | None]]:
    """(name, relationship id) of every sheet, in workbook order."""
    sheets = []
    for element in elements:
        if _local(element.tag) == "sheet":
            rel_id = element.get(_REL_ID[0]) or element.get(_REL_ID[1])
            sheets.append((element.get("name", ""), rel_id))
    return sheets


def _relationships(elements: list[ET.Element], base: str) -> dict[str, tuple[str, str]]:
    """Relationship id -> (type, part name lower-cased), internal targets only."""
    rels = {}
    for element in elements:
        if _local(element.tag) != "Relationship" or element.get("TargetMode") == "External":
            continue
        target = element.get("Target", "")
        absolute = target.startswith("/")
        part = target.lstrip("/") if absolute else posixpath.normpath(posixpath.join(base, target))
        rels[element.get("Id", "")] = (element.get("Type", ""), part.lower())
    return rels


# ---------------------------------------------------------------------------------------- values


def _clean(text: str) -> str:
    """Text as compared: escapes decoded, surrounding white space stripped, NFC."""
    if "_x" in text:
        text = _unescape(text)
    text = text.strip()
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _unescape(text: str) -> str:
    text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    if any("\ud800" <= ch <= "\udfff" for ch in text):  # UTF-16 pairs written as two escapes
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _rich_text(element: ET.Element, t_tag: str, r_tag: str) -> str:
    """The text of an <si> or <is>: its <t>, or its runs' <t>s; phonetic guides (<rPh>) left out."""
    if len(element) == 1 and element[0].tag == t_tag:
        return element[0].text or ""
    parts = []
    for child in element:
        if child.tag == t_tag:
            parts.append(child.text or "")
        elif child.tag == r_tag:
            parts.extend(g.text or "" for g in child if g.tag == t_tag)
    return "".join(parts)


def _number_text(value: str) -> str:
    """A number's text: integers in full without '.0' or exponent, others as Python's repr."""
    value = value.strip()
    if _INTEGER.fullmatch(value):
        return str(int(value))
    if not _DECIMAL.fullmatch(value):
        raise _damaged("a number cell does not hold a number")
    number = float(value)
    if not math.isfinite(number):
        raise _damaged("a number cell does not hold a number")
    return str(int(number)) if number.is_integer() else repr(number)


_COLUMNS: dict[str, int] = {letter: i for i, letter in enumerate(COLUMN_LETTERS, 1)}


def _column_index(letters: str) -> int:
    index = _COLUMNS.get(letters)
    if index is None:
        name = letters.upper()
        if not (1 <= len(name) <= 3 and name.isascii() and name.isalpha()):
            raise _damaged("a cell has an invalid reference")
        index = 0
        for ch in name:
            index = index * 26 + ord(ch) - 64
        if index > MAX_COLUMN:
            raise _damaged("a cell lies beyond the last column")
        if letters.isupper():  # as Excel writes them: at most 16,384 keys
            _COLUMNS[letters] = index
    return index


def _column_letters(index: int) -> str:
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _shared_strings(stream: _XmlStream) -> list[str]:
    """The shared strings, cleaned, in index order."""
    strings: list[str] = []
    seen = held = 0
    si_tag = t_tag = r_tag = ""
    for ended, batch in stream.selected(("si",)):
        if batch and not si_tag:  # an element has ended: the root (and its namespace) is known
            ns = _spreadsheet_namespace(stream)
            si_tag, t_tag, r_tag = f"{{{ns}}}si", f"{{{ns}}}t", f"{{{ns}}}r"
        seen += ended
        held += ended
        if held > MAX_HELD_ELEMENTS or seen > MAX_PART_ELEMENTS:
            raise _too_large("the workbook's shared strings are too large")
        for element in batch:
            strings.append(_clean(_rich_text(element, t_tag, r_tag)))
            held -= _subtree_size(element)
            element.clear()
        if len(strings) > MAX_SHARED_STRINGS:
            raise _too_large(f"the workbook holds over {MAX_SHARED_STRINGS:,} distinct texts")
    return strings


def _spreadsheet_namespace(stream: _XmlStream) -> str:
    """The part's SpreadsheetML namespace: Strict's, else the usual (transitional) one."""
    return _STRICT_NS if stream.namespace == _STRICT_NS else _MAIN_NS


def _subtree_size(element: ET.Element) -> int:
    """The number of elements freed by clearing `element` (itself included)."""
    return len(list(element.iter()))


# ------------------------------------------------------------------------------- the form sheet


class _FormSheet:
    """Collects the `Delegate Form` sheet's cells, one <row> element at a time."""

    def __init__(self, sheet_names: tuple[str, ...], shared: list[str]):
        self._names = sheet_names
        self._shared = shared
        self._header: tuple[str, ...] = ("",) * len(COLUMN_LETTERS)
        self._rows: dict[int, tuple[str, ...]] = {}
        self._formulas: set[tuple[int, str]] = set()
        self._numeric: set[tuple[int, str]] = set()
        self._outside: list[tuple[int, str, str]] = []
        self._last_row = 0
        self._tags: dict[str, str] = {}

    def read(self, stream: _XmlStream) -> SheetCells:
        """The sheet's cells; the row and element limits are checked as each chunk is parsed."""
        rows = seen = held = 0
        sheet_data = ""
        for ended, batch in stream.selected(("row", "sheetData")):
            if batch and not self._tags:  # an element has ended: the root's namespace is known
                ns = _spreadsheet_namespace(stream)
                names = ("row", "c", "f", "v", "is", "t", "r", "sheetData")
                self._tags = {name: f"{{{ns}}}{name}" for name in names}
                sheet_data = self._tags["sheetData"]
            seen += ended
            held += ended
            if held > MAX_HELD_ELEMENTS or seen > MAX_PART_ELEMENTS:
                raise _too_large("the Delegate Form sheet is too large")
            done = False
            for element in batch:
                if element.tag == sheet_data:
                    done = True  # nothing after <sheetData> matters
                    break
                rows += 1
                if rows > MAX_ROWS:
                    raise _too_large(f"the Delegate Form sheet has over {MAX_ROWS:,} rows")
                self._row(element)
                held -= _subtree_size(element)
                element.clear()
            if done:
                break
        stream.drain()
        return SheetCells(
            sheet_names=self._names,
            has_form_sheet=True,
            header=self._header,
            rows=self._rows,
            formulas=frozenset(self._formulas),
            numeric=frozenset(self._numeric),
            outside=tuple(self._outside),
        )

    def _row(self, row: ET.Element) -> None:
        """Record one <row>: its number from `r` (else the next one), its cells' columns likewise."""
        r = row.get("r")
        try:
            number = self._last_row + 1 if r is None else int(r)
        except ValueError:
            raise _damaged("a row has an invalid number") from None
        if not self._last_row < number <= MAX_ROW_NUMBER:
            raise _damaged("its rows are out of order")
        self._last_row = number
        row_digits = str(number)
        tags = self._tags
        c_tag, v_tag, is_tag, t_tag, r_tag = tags["c"], tags["v"], tags["is"], tags["t"], tags["r"]
        columns = _COLUMNS
        values = [""] * len(COLUMN_LETTERS)
        column = 0
        for cell in row:
            if cell.tag != c_tag:
                continue
            ref = cell.get("r")
            if ref is None:
                column += 1
            else:
                letters = ref.rstrip(_DIGITS)
                index = columns.get(letters) or _column_index(letters)
                digits = ref[len(letters) :]
                if index <= column or (digits != row_digits and digits != r):
                    raise _damaged("its cells are out of order")
                column = index
            size = len(cell)
            if not size:
                continue  # a formatted, empty cell
            kind = cell.get("t", "n")
            child = cell[0]
            if size == 1 and kind == "s" and child.tag == v_tag:  # how Excel writes text
                text = self._shared_string(child)
                numeric = formula = False
            elif size == 1 and kind == "inlineStr" and child.tag == is_tag:  # how openpyxl does
                if len(child) == 1 and child[0].tag == t_tag:  # _clean(_rich_text(child)), inlined
                    text = child[0].text or ""
                    if "_x" in text:
                        text = _unescape(text)
                    text = text.strip()
                    if not text.isascii():
                        text = unicodedata.normalize("NFC", text)
                else:
                    text = _clean(_rich_text(child, t_tag, r_tag))
                numeric = formula = False
            else:
                text, numeric, formula = self._value(cell, kind, number, column)
            if not text:
                continue
            if len(text) > MAX_CELL_CHARS:
                raise _cell_too_long(number, column)
            if column <= _WIDTH:
                values[column - 1] = text
                if formula:
                    self._formulas.add((number, COLUMN_LETTERS[column - 1]))
                elif numeric:
                    self._numeric.add((number, COLUMN_LETTERS[column - 1]))
            elif len(self._outside) < MAX_OUTSIDE_KEPT:
                self._outside.append((number, _column_letters(column), text))
        if column > MAX_COLUMN:
            raise _damaged("a cell lies beyond the last column")
        if number == 1:
            self._header = tuple(values)
        elif any(values):
            self._rows[number] = tuple(values)

    def _value(self, cell: ET.Element, kind: str, row: int, column: int) -> tuple[str, bool, bool]:
        """(text, is a number, is a formula) of a cell of any type; '' when it holds nothing."""
        tags = self._tags
        formula = value = inline = None
        for child in cell:
            if child.tag == tags["v"]:
                value = child
            elif child.tag == tags["f"]:
                formula = child
            elif child.tag == tags["is"]:
                inline = child
        if formula is not None:
            text = unicodedata.normalize("NFC", (formula.text or "").strip())
            return (text if text.startswith("=") else "=" + text), False, True
        if kind == "s":
            return self._shared_string(value), False, False
        if kind == "inlineStr" and inline is not None:
            return _clean(_rich_text(inline, tags["t"], tags["r"])), False, False
        if value is None or not value.text:
            return "", False, False
        if kind == "n":
            if len(value.text) > MAX_CELL_CHARS:  # before int() works on it
                raise _cell_too_long(row, column)
            return _number_text(value.text), True, False
        if kind in ("str", "e", "d", "inlineStr"):
            return _clean(value.text), False, False
        if kind == "b":
            text = _BOOLEANS.get(value.text.strip().lower())
            if text is None:
                raise _damaged("a true/false cell holds something else")
            return text, False, False
        raise _damaged("a cell has an unknown type")

    def _shared_string(self, value: ET.Element | None) -> str:
        """The shared string a cell's <v> points at (an index, checked)."""
        try:
            index = int(value.text)
            if index < 0:
                raise IndexError(index)
            return self._shared[index]
        except (AttributeError, TypeError, ValueError, IndexError):
            raise _damaged("a cell refers to a text that is not in the workbook") from None


def _cell_too_long(row: int, column: int) -> FileRejected:
    return _too_large(
        f"a cell of the Delegate Form sheet holds over {MAX_CELL_CHARS:,} characters "
        f"(row {row}, column {_column_letters(column)})"
    )


# -------------------------------------------------------------------------- the quick reader
#
# A form sheet as Excel, LibreOffice and openpyxl write it is a run of <row r="N"> elements of
# <c r="A1" s=".." t="s|inlineStr"> cells holding a shared-string index or an inline string. For
# such a sheet (the common case) the cells are taken with one regular expression, a row a match,
# instead of a tree: a third of the cost. It answers only when the sheet is exactly of that shape and
# well-formed, with no DTD: expat reads the part around the sheet data (and must find it there, as
# the root's child, not in a comment), and the sheet data, which the rows must cover whole, is
# checked for what expat would refuse in it (characters XML forbids, references, duplicate or
# unbound attributes), without expat's second pass over it. Anything else (numbers, formulas,
# booleans, columns past K, CDATA, comments, a carriage return, an out-of-order row or cell, a limit
# reached) returns None and the general reader above decides, with its own errors.
# tests/test_workbook_quick.py holds the two readers to the same answer.

QUICK_SHEET_MAX = 4 * MiB  # larger sheets go to the streaming reader, which holds one row at a time
_QUICK_ROOT = re.compile(
    r'(?:<\?xml version="1\.0" encoding="UTF-8"(?: standalone="yes")?\?>\s*)?'
    r'<worksheet xmlns="http://schemas\.openxmlformats\.org/spreadsheetml/2006/main"[ >]'
)
_NAME, _VALUE = r"[A-Za-z_][A-Za-z0-9_.-]*(?::[A-Za-z_][A-Za-z0-9_.-]*)?", r'="[^"<]*"'  # an attribute's (ASCII)
# XML's white space only. Possessive: what follows it never starts with white space, so a match that
# fails after a long run of it does not try again with every shorter run.
_WS = r"[ \t\r\n]*+"


def _row_cell(letter: str) -> str:
    """A cell of column `letter` in the row being matched, if there is one, and the white space after
    it: inline text (captured), a shared string's index (captured), or empty (formatted only)."""
    return (rf'(?:<c r="{letter}(?P=row)"(?: s="[0-9]{{1,5}}")?'
            rf'(?: t="inlineStr">{_WS}<is>{_WS}<t(?: xml:space="preserve")?>([^<]*)</t>{_WS}</is>{_WS}</c>'
            rf'| t="s">{_WS}<v>{_WS}([0-9]{{1,9}}){_WS}</v>{_WS}</c>'
            rf'|(?: t="[A-Za-z]{{1,9}}")?{_WS}/>){_WS})?')


# A whole row, its cells in column order and each of the row's number (the backreference), with the
# white space after it: 1 all of it, 2 its number, 3 its other attributes, then for each of A-K its
# inline text and its shared string index. White space goes with what precedes it, read once. The
# expression starts with a literal, so that text between rows costs one search, not a failed match
# at every character.
_QUICK_ROW = re.compile(
    rf'(<row r="(?P<row>[1-9][0-9]{{0,6}})"((?: (?!xmlns){_NAME}{_VALUE})*){_WS}'
    + f"(?:/>|>{_WS}" + "".join(map(_row_cell, COLUMN_LETTERS)) + rf"</row>){_WS})"
)
_WS_RUN = re.compile(_WS)
_ATTRIBUTE_NAME = re.compile(f" ({_NAME}){_VALUE}")
# The bytes of the characters below U+0020 that XML allows (tab, line feed, carriage return) and of
# every other character: what is left of a UTF-8 part without them is a character XML forbids.
_XML_BYTES = bytes(b for b in range(256) if b >= 0x20 or b in (0x09, 0x0A, 0x0D))
_REFERENCE = r"(?:(amp|lt|gt|quot|apos)|#([0-9]+)|#x([0-9A-Fa-f]+));"  # after its "&"
_XML_REFERENCE = re.compile("&" + _REFERENCE)
_NOT_A_REFERENCE = re.compile(f"&(?!{_REFERENCE})")
_XML_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


class _NotQuick(Exception):
    """The quick reader does not answer for this sheet: the general reader will."""


def _quick_sheet(xml: bytes, names: tuple[str, ...], shared: list[str]) -> SheetCells | None:
    """The cells of a usual form sheet, or None for the general reader to decide."""
    try:
        if not (xml.startswith((b"<worksheet ", b'<?xml version="1.0" encoding="UTF-8"'))):
            return None  # another encoding, a byte order mark, or a prefixed root
        try:
            text = xml.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not _QUICK_ROOT.match(text):
            return None
        start = text.find("<sheetData>")
        end = text.find("</sheetData>")
        if start < 0 or end < start:
            return None
        # the general reader's element limits, counted generously (every tag but the closing ones)
        head, elements = _elements(text, 0, start), _elements(text, 0, end)
        if head > MAX_HELD_ELEMENTS // 2 or elements > MAX_PART_ELEMENTS // 2:
            return None
        if text.find("<sheetData", start + 1) >= 0 or text.find("</sheetData>", end + 1) >= 0:
            return None
        prefixes = _check_well_formed_around(text, start, end + len("</sheetData>"), xml.find(b"<sheetData>"))
        start += len("<sheetData>")
        _check_characters(xml, text, start, end)
        return _quick_rows(text, start, end, names, shared, prefixes)
    except _NotQuick:
        return None


def _elements(text: str, start: int, end: int) -> int:
    return text.count("<", start, end) - text.count("</", start, end)


def _check_well_formed_around(text: str, start: int, end: int, at_byte: int) -> dict[str, str]:
    """expat, no tree, over the part with its sheet data (text[start:end], from byte `at_byte`) left
    empty: it must be well-formed, without a DTD, and that sheet data must be its only one, the
    root's child (not in a comment, CDATA or an instruction beside another, prefixed one), with no
    row elsewhere (the general reader would read one). Returns the namespace prefixes the root binds
    (the sheet data's attributes may use them)."""
    from xml.parsers import expat

    parser = expat.ParserCreate(namespace_separator="}")  # as ElementTree: an unbound prefix is an error
    depth, found, prefixes = [0], [], {"xml": "http://www.w3.org/XML/1998/namespace"}
    sheet_data, row = f"{_MAIN_NS}}}sheetData", f"{_MAIN_NS}}}row"

    def refuse(*_args: object) -> None:
        raise _NotQuick

    def declared(prefix: str | None, uri: str) -> None:
        if depth[0] == 0 and prefix:
            prefixes[prefix] = uri

    def started(name: str, _attributes: object) -> None:
        depth[0] += 1
        if name == sheet_data:
            found.append((depth[0], parser.CurrentByteIndex))
        elif name == row:
            raise _NotQuick

    def ended(_name: str) -> None:
        depth[0] -= 1

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartNamespaceDeclHandler = declared
    parser.StartElementHandler = started
    parser.EndElementHandler = ended
    try:
        parser.Parse(text[:start], False)
        parser.Parse("<sheetData/>", False)
        parser.Parse(text[end:], True)
    except expat.ExpatError:
        raise _NotQuick from None
    if found != [(2, at_byte)]:
        raise _NotQuick
    return prefixes


def _check_characters(xml: bytes, text: str, start: int, end: int) -> None:
    """What expat would refuse in the sheet data's text and attribute values, which it does not read:
    characters XML forbids (looked for in the whole part, `xml` decoded as `text`), "]]>", an "&"
    that starts no reference, a reference to a character XML forbids."""
    if (xml.translate(None, _XML_BYTES) or "\ufffe" in text or "\uffff" in text
            or text.find("]]>", start, end) >= 0 or _NOT_A_REFERENCE.search(text, start, end)):
        raise _NotQuick
    if text.find("&#", start, end) >= 0:
        for named, decimal, hexadecimal in _XML_REFERENCE.findall(text, start, end):
            if named:
                continue
            code = int(decimal) if decimal else int(hexadecimal, 16)
            if not (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
                    or 0x10000 <= code <= 0x10FFFF):
                raise _NotQuick


def _check_row_attributes(attributes: str, prefixes: dict[str, str]) -> None:
    """A row's other attributes, as expat would see them: each bound and given once (by URI and name)."""
    seen = {("", "r")}
    for name in _ATTRIBUTE_NAME.findall(attributes):
        prefix, _, local = name.rpartition(":")
        if prefix and prefix not in prefixes:
            raise _NotQuick
        expanded = (prefixes[prefix] if prefix else "", local)
        if expanded in seen:
            raise _NotQuick
        seen.add(expanded)


def _quick_rows(text: str, start: int, end: int, names: tuple[str, ...], shared: list[str],
                prefixes: dict[str, str]) -> SheetCells:
    """The sheet data's cells: matched a row at a time (every row of the usual shape), then worked
    out a column at a time, each distinct text once (a form repeats its people on every row)."""
    start = _WS_RUN.match(text, start, end).end()
    if text.count("<row", start, end) > MAX_ROWS:  # before the matches: they would all be held
        raise _NotQuick
    found = _QUICK_ROW.findall(text, start, end)
    if sum(len(row[0]) for row in found) != end - start:  # something else there
        raise _NotQuick
    if not found:
        return SheetCells(sheet_names=names, has_form_sheet=True, header=("",) * _WIDTH, rows={})
    _rows, row_numbers, attributes, *cells = zip(*found, strict=True)
    numbers = list(map(int, row_numbers))
    if numbers != sorted(set(numbers)) or numbers[-1] > MAX_ROW_NUMBER:  # each row after the last
        raise _NotQuick
    for other in set(attributes) - {""}:  # Excel gives every row the same ones
        _check_row_attributes(other, prefixes)
    inline, indexed = cells[0::2], cells[1::2]  # by column; "" where the cell has none
    inline_cells = {t: _inline_cell(t) for t in set().union(*inline)}
    shared_cells = {i: _shared_cell(shared, i) for i in set().union(*indexed)}
    columns = [_column(texts, indexes, inline_cells, shared_cells)
               for texts, indexes in zip(inline, indexed, strict=True)]
    rows = dict(zip(numbers, zip(*columns, strict=True), strict=True))
    header = rows.pop(1, ("",) * _WIDTH)
    return SheetCells(sheet_names=names, has_form_sheet=True, header=header,
                      rows={number: values for number, values in rows.items() if any(values)})


def _column(texts: tuple[str, ...], indexes: tuple[str, ...], inline_cells: dict[str, str],
            shared_cells: dict[str, str]) -> Iterable[str]:
    """A column's values: each cell's inline text or shared string ("" maps to "" in both)."""
    if not any(indexes):  # the usual columns, all inline strings or all shared: looked up at C speed
        return map(inline_cells.__getitem__, texts)
    if not any(texts):
        return map(shared_cells.__getitem__, indexes)
    return [inline_cells[t] or shared_cells[i] for t, i in zip(texts, indexes, strict=True)]


def _inline_cell(text: str) -> str:
    if "\r" in text:  # expat turns line ends into "\n": the general reader sees those
        raise _NotQuick
    return _short(_clean(_XML_REFERENCE.sub(_xml_character, text) if "&" in text else text))


def _shared_cell(shared: list[str], index: str) -> str:
    if not index:
        return ""
    at = int(index)
    if at >= len(shared):
        raise _NotQuick
    return _short(shared[at])


def _short(cell: str) -> str:
    if len(cell) > MAX_CELL_CHARS:
        raise _NotQuick
    return cell


def _xml_character(match: re.Match) -> str:
    named, decimal, hexadecimal = match.groups()
    if named:
        return _XML_NAMED[named]
    return chr(int(decimal) if decimal else int(hexadecimal, 16))
