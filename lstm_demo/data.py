"""Reading and validating the tables users upload: CSV or TSV in, texts and labels out.

Pure Python on purpose (no pandas, no torch). Everything a user can get wrong in a file
becomes a `DataError` whose message names the file, the column and what to do, so the
UI and the CLI can show it as it is.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import math
import os
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import Limits

# a caller that names no limits gets the app's defaults (the service passes its settings' own)
MAX_BYTES = Limits().upload_bytes
MAX_ROWS = Limits().rows
MAX_COLUMNS = Limits().columns
FIELD_LIMIT = 10 * 2**20  # characters in one cell; csv's default (128 KiB) is too small for long documents
SNIFF_CHARS = 64 * 1024  # what the delimiter and binary checks look at
GUESS_ROWS = 1000  # rows the column guesses look at, so the preview and the read guess alike
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
ONE_COLUMN = "\x1f"  # parse a single-column file on a separator no text uses, so commas stay in the text
UNNAMED = "(unnamed {})"  # how a blank header cell (often a saved pandas index) is shown and chosen
NUMERIC_CLASSES = 10  # more distinct all-numeric labels than this look like a score or an id
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
LABEL_NAMES = ("label", "labels", "class", "category", "target", "sentiment", "y")
TEXT_NAMES = (
    "text", "sentence", "review", "content", "comment", "message", "document", "question", "body", "tweet",
)  # fmt: skip
_SAVE_AS_CSV = "if it is a spreadsheet, save the sheet as CSV"
_MAGIC = (  # file signatures, what they are, what to do
    (b"\x89PNG", "a PNG image", ""),
    (b"\xff\xd8\xff", "a JPEG image", ""),
    (b"GIF8", "a GIF image", ""),
    (b"%PDF", "a PDF document", ""),
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx or .ods workbook is one)", _SAVE_AS_CSV),
    (b"PK\x05\x06", "an empty zip archive", ""),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document (.xls or .doc)", _SAVE_AS_CSV),
    (b"\x1f\x8b", "a gzip archive", "decompress it and upload the CSV inside"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "extract it and upload the CSV inside"),
    (b"SQLite format 3\x00", "an SQLite database", "export the table as CSV"),
)


class DataError(ValueError):
    """A problem with an uploaded file, worded for the person who uploaded it."""


@dataclass(frozen=True)
class Table:
    texts: tuple[str, ...] = field(repr=False)
    labels: tuple[str, ...] = field(repr=False)  # () when read without labels and no label column
    text_column: str
    label_column: str | None
    columns: tuple[str, ...]  # the header as read
    source: str  # file name shown to users (basename)
    encoding: str  # a codec name that decodes the file again
    delimiter: str  # "" for a single-column file
    rows_read: int  # data rows in the file
    dropped_empty: int  # rows dropped for an empty text or label
    fingerprint: str  # sha256 hex of the raw file bytes
    notes: tuple[str, ...]  # human-readable: guessed columns, encoding, dropped rows

    def label_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.labels)))

    def split(self, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
        """`stratified_split` of this table, with errors that name the file and column."""
        where = f" in label column {self.label_column!r} of {self.source}"
        return stratified_split(self.labels, val_fraction, seed, where=where)


@dataclass(frozen=True)
class Preview:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]  # the first n data rows, one cell per column
    text_column: str | None  # guessed
    label_column: str | None  # guessed
    encoding: str
    delimiter: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Parsed:
    """A whole file parsed once: every later choice of columns reads from here, not from the disk."""

    name: str  # file name shown to users (basename)
    fingerprint: str  # sha256 hex of the raw file bytes
    encoding: str
    delimiter: str  # "" for a single-column file
    columns: tuple[str, ...]  # blank names replaced by UNNAMED
    unnamed: frozenset[str]  # the names given to blank header cells; never guessed
    rows: tuple[tuple[int, tuple[str, ...]], ...] = field(repr=False)  # (line number, cells)
    notes: tuple[str, ...]

    @functools.cached_property
    def index(self) -> dict[str, int]:
        """Column name -> position, so a lookup does not scan the header (tables may be very wide)."""
        return {c: i for i, c in enumerate(self.columns)}

    @property
    def named(self) -> list[str]:
        return [c for c in self.columns if c not in self.unnamed]


def parse(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_BYTES,
    max_rows: int = MAX_ROWS,
    max_columns: int = MAX_COLUMNS,
) -> Parsed:
    """Read, decode and split a CSV/TSV file; a header wider than `max_columns` is refused before any row is read."""
    src = _open(path, max_bytes, max_columns)
    rows = tuple(_bounded(src.rows, max_rows, src.name))
    if not rows:
        raise DataError(
            f"{src.name} has a header ({_names(src.columns)}) but no data rows: add one row per example"
        )
    return Parsed(
        name=src.name,
        fingerprint=src.fingerprint,
        encoding=src.encoding,
        delimiter=src.delimiter,
        columns=src.columns,
        unnamed=src.unnamed,
        rows=rows,
        notes=tuple(src.notes),
    )


def read_table(
    path: str | os.PathLike[str],
    text_column: str | None = None,
    label_column: str | None = None,
    *,
    max_bytes: int = MAX_BYTES,
    max_rows: int = MAX_ROWS,
    max_columns: int = MAX_COLUMNS,
    require_labels: bool = True,
    min_classes: int = 2,
) -> Table:
    """Texts and labels of a CSV/TSV file; columns not given are guessed (see `Table.notes`)."""
    parsed = parse(path, max_bytes=max_bytes, max_rows=max_rows, max_columns=max_columns)
    return select(parsed, text_column, label_column, require_labels=require_labels, min_classes=min_classes)


def select(
    parsed: Parsed,
    text_column: str | None = None,
    label_column: str | None = None,
    *,
    require_labels: bool = True,
    min_classes: int = 2,
) -> Table:
    """The texts and labels of a parsed table in these columns (guessed when not given)."""
    sample = parsed.rows[:GUESS_ROWS]
    text_col, label_col, guess_notes = _choose_columns(
        parsed, sample, text_column, label_column, need_label=require_labels, guess_label=require_labels
    )
    ti = parsed.index[text_col]
    li = None if label_col is None else parsed.index[label_col]
    if label_col is not None and li is not None and label_column is None:
        _check_header_is_not_data(parsed, sample, label_col, li)
    if li is not None and not require_labels and not any(row[li].strip() for _, row in sample):
        guess_notes.append(f"ignored the empty label column {label_col!r}")
        label_col, li = None, None

    texts: list[str] = []
    labels: list[str] = []
    dropped: list[int] = []  # line numbers
    for line, row in parsed.rows:
        text = row[ti].strip()
        label = row[li].strip() if li is not None else ""
        if not text or (li is not None and not label):
            dropped.append(line)
            continue
        texts.append(text)
        if li is not None:
            labels.append(label)

    rows_read = len(parsed.rows)
    what = f"{text_col!r}" + (f" or {label_col!r}" if label_col else "")
    if not texts:
        raise DataError(
            f"{parsed.name}: all {rows_read:,} rows have an empty {what}: choose the columns that hold the data"
        )
    notes = list(parsed.notes) + guess_notes
    if dropped:
        lines = ", ".join(str(n) for n in dropped[:5]) + (", ..." if len(dropped) > 5 else "")
        notes.append(f"dropped {len(dropped):,} of {rows_read:,} rows with an empty {what} (lines {lines})")
    table = Table(
        texts=tuple(texts),
        labels=tuple(labels),
        text_column=text_col,
        label_column=label_col,
        columns=parsed.columns,
        source=parsed.name,
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        rows_read=rows_read,
        dropped_empty=len(dropped),
        fingerprint=parsed.fingerprint,
        notes=tuple(notes),
    )
    if require_labels:
        _check_classes(table, min_classes)
    return table


def read_texts(
    path: str | os.PathLike[str],
    text_column: str | None = None,
    *,
    label_column: str | None = None,
    **limits: int,
) -> Table:
    """Texts to predict; labels too when the file has a label column (given, or named like one).
    `limits`: `read_table`'s max_bytes, max_rows and max_columns."""
    return read_table(path, text_column, label_column, require_labels=False, min_classes=0, **limits)


def preview_table(
    path: str | os.PathLike[str], n: int = 5, *, max_bytes: int = MAX_BYTES, max_columns: int = MAX_COLUMNS
) -> Preview:
    """The header, the first `n` rows and guessed columns, for the upload preview."""
    return preview(parse(path, max_bytes=max_bytes, max_columns=max_columns), n)


def preview(parsed: Parsed, n: int = 5) -> Preview:
    """The header, the first `n` rows and guessed columns of a parsed table."""
    sample = parsed.rows[: max(n, GUESS_ROWS)]
    text_col, label_col, notes = _choose_columns(
        parsed, sample, None, None, need_label=False, guess_label=True
    )
    return Preview(
        columns=parsed.columns,
        rows=tuple(tuple(row) for _, row in sample[:n]),
        text_column=text_col,
        label_column=label_col,
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        notes=tuple(parsed.notes) + tuple(notes),
    )


def label_warnings(counts: dict[str, int], max_classes: int) -> list[str]:
    """What looks wrong with a chosen label column, said when it is chosen rather than at Start."""
    warnings = []
    n_rows, n_classes = sum(counts.values()), len(counts)
    if n_classes == 1:
        warnings.append(f"only one label ({_names(counts)}): a classifier needs at least two classes")
    if n_classes > min(max_classes, max(50, n_rows // 2)):
        warnings.append(
            f"{n_classes:,} different labels in {n_rows:,} rows: labels should be a few class names "
            "(is this the text column, or an id?)"
        )
    if n_classes > NUMERIC_CLASSES and all(_NUMBER.fullmatch(label) for label in counts):
        warnings.append(
            f"the labels are {n_classes:,} different numbers: is this a score or an id rather than a class? "
            "Choose a column of class names"
        )
    single = [label for label, n in counts.items() if n == 1]
    if single:
        more = f" and {len(single) - 5:,} more" if len(single) > 5 else ""
        warnings.append(
            f"{len(single):,} class{'es have' if len(single) > 1 else ' has'} a single example "
            f"({_names(single[:5])}{more}): every class needs at least 2; add examples or remove those rows"
        )
    return warnings


def stratified_split(
    labels: Sequence[str], val_fraction: float, seed: int, *, where: str = ""
) -> tuple[list[int], list[int]]:
    """Sorted train and validation indices; each class keeps about `val_fraction` of its rows
    for validation, and at least one row on each side. `where` ends error messages
    (e.g. " in label column 'label' of train.csv")."""
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"the validation fraction must be between 0 and 1, got {val_fraction}")
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    small = sorted(c for c, idx in by_class.items() if len(idx) < 2)
    if small:
        raise DataError(
            f"class {small[0]!r}{where} has only 1 example"
            + (f" (as do {_names(small[1:8])}{', ...' if len(small) > 8 else ''})" if len(small) > 1 else "")
            + ": every class needs at least 2, one to train on and one to validate on; "
            "add examples or remove those rows"
        )
    rng = random.Random(seed)
    train: list[int] = []
    val: list[int] = []
    for label in sorted(by_class):
        idx = by_class[label][:]
        rng.shuffle(idx)
        n_val = min(max(math.floor(len(idx) * val_fraction + 0.5), 1), len(idx) - 1)
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return sorted(train), sorted(val)


def check_labels(test: Table, known: Sequence[str]) -> None:
    """Refuse a test table whose labels the model was not trained on; a table without labels passes."""
    known_set = set(known)
    counts = test.label_counts()
    unknown = [
        f"{label!r} ({n} row{'s' if n > 1 else ''})" for label, n in counts.items() if label not in known_set
    ]
    if unknown:
        shown = ", ".join(unknown[:10]) + (", ..." if len(unknown) > 10 else "")
        raise DataError(
            f"label column {test.label_column!r} of {test.source} has labels the model was not trained on: "
            f"{shown}. The model knows {_names(sorted(known_set))}: fix those labels or remove those rows"
        )


# --- reading -------------------------------------------------------------------------------------


@dataclass
class _Source:
    name: str
    fingerprint: str
    encoding: str
    delimiter: str
    columns: tuple[str, ...]
    unnamed: frozenset[str]
    rows: Iterator[tuple[int, list[str]]]  # (line number, one cell per column), after the header
    notes: list[str]


def _open(path: str | os.PathLike[str], max_bytes: int, max_columns: int) -> _Source:
    name, raw = _read_bytes(path, max_bytes)
    _refuse_binary(raw, name)
    text, encoding, notes = _decode(raw, name)
    if not text.strip():
        raise DataError(f"{name} is empty: upload a CSV or TSV file with a header line (e.g. text,label)")
    delimiter, literal = _sniff_format(text)
    rows = _parse(text, delimiter, literal, name)
    _, header = next(rows)
    if len(header) > max_columns:
        raise DataError(
            f"{name} has {len(header):,} columns, over the limit of {max_columns:,}: "
            "keep the text and label columns and remove the others"
        )
    columns, unnamed = _check_header(header, name)
    layout = f"{DELIMITERS[delimiter]}-separated" if delimiter in DELIMITERS else "a single column"
    notes.insert(0, f"read {name} as {encoding}, {layout}" + (", quotes as plain text" if literal else ""))
    return _Source(
        name=name,
        fingerprint=hashlib.sha256(raw).hexdigest(),
        encoding=encoding,
        delimiter="" if delimiter == ONE_COLUMN else delimiter,
        columns=columns,
        unnamed=unnamed,
        rows=_fit_rows(rows, len(columns), name, delimiter),
        notes=notes,
    )


def _bounded(
    rows: Iterator[tuple[int, list[str]]], max_rows: int, name: str
) -> Iterator[tuple[int, tuple[str, ...]]]:
    for count, (line, row) in enumerate(rows, 1):
        if count > max_rows:
            raise DataError(
                f"{name} has more than {max_rows:,} rows (the limit): upload a sample of at most {max_rows:,} rows"
            )
        yield line, tuple(row)


def _read_bytes(path: str | os.PathLike[str], max_bytes: int) -> tuple[str, bytes]:
    name = os.path.basename(os.fspath(path)) or os.fspath(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise DataError(
                    f"{name} is {_size(size)}, over the limit of {_size(max_bytes)}: upload a smaller sample"
                )
            raw = f.read(max_bytes + 1)
    except FileNotFoundError as err:
        raise DataError(f"{name}: file not found; check the path, or upload it again") from err
    except IsADirectoryError as err:
        raise DataError(f"{name} is a folder, not a file: upload a CSV or TSV file") from err
    except OSError as err:
        raise DataError(f"could not read {name}: {err.strerror or err}") from err
    if len(raw) > max_bytes:  # grew while we read, or a pipe
        raise DataError(f"{name} is over the limit of {_size(max_bytes)}: upload a smaller sample")
    if not raw:
        raise DataError(f"{name} is empty: upload a CSV or TSV file with a header line (e.g. text,label)")
    return name, raw


def _refuse_binary(raw: bytes, name: str) -> None:
    for magic, what, todo in _MAGIC:
        if raw.startswith(magic):
            raise DataError(f"{name} is {what}, not a table: {todo or 'upload a CSV or TSV text file'}")
    if b"\x00" in raw[:SNIFF_CHARS] and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(
            f"{name} contains NUL bytes, so it is a binary file, not a table (or UTF-16 without a byte-order "
            "mark): save it as CSV in UTF-8"
        )


def _decode(raw: bytes, name: str) -> tuple[str, str, list[str]]:
    """Decode strictly as UTF-8, else UTF-16/32 when a byte-order mark says so, else cp1252, else latin-1."""
    boms = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"))
    boms += ((codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
    for bom, encoding in boms:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding), encoding, []
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{name} starts like {encoding} but is not valid {encoding}: save it as UTF-8"
                ) from err
    try:
        text = raw.decode("utf-8-sig")
        return text, "utf-8-sig" if raw.startswith(codecs.BOM_UTF8) else "utf-8", []
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        if raw.startswith(codecs.BOM_UTF8):
            raise DataError(
                f"{name} is marked as UTF-8 but line {line} is not UTF-8: the file mixes encodings; "
                "save it as UTF-8"
            ) from err
    for encoding in ("cp1252", "latin-1"):  # latin-1 decodes any bytes, so this always returns
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _control_share(text[:SNIFF_CHARS]) > 0.01:
            raise DataError(f"{name} is a binary file, not a table: upload a CSV or TSV text file")
        note = (
            f"{name} is not UTF-8 (from line {line} on), so it was read as {encoding}: check that accented "
            "letters look right"
        )
        return text, encoding, [note]
    raise AssertionError("latin-1 decodes every byte string")


def _control_share(text: str) -> float:
    # C0 controls only: C1 characters (U+0080-U+009F) are what makes a legacy file fall through to latin-1
    controls = sum(1 for ch in text if ch < " " and ch not in "\t\r\n\f")
    return controls / max(len(text), 1)


def _sniff_format(text: str) -> tuple[str, bool]:
    """(delimiter, literal quotes): the candidate that splits the header into 2+ columns and most
    lines into as many. Tab-separated files often hold quotes as plain text, so tab is also tried so."""
    sample = text[:SNIFF_CHARS]
    truncated = len(text) > SNIFF_CHARS
    best, best_key = None, (False, 0.0)
    candidates = [(d, False) for d in DELIMITERS] + [("\t", True)]
    for priority, (delimiter, literal) in enumerate(candidates):
        rows, failed = _sample_rows(sample, truncated, delimiter, literal)
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        fits = [len(r) == width or (len(r) > width and not "".join(r[width:]).strip()) for r in rows[1:]]
        fits += [False] * failed  # a csv error counts as a row that does not fit
        share = sum(fits) / len(fits) if fits else 1.0
        key = (share >= 0.5, share, -priority)
        if key > best_key:
            best, best_key = (delimiter, literal), key
    if best is None:  # a single column: its quotes are literal unless they parse as CSV quoting
        return ONE_COLUMN, _sample_rows(sample, truncated, ONE_COLUMN, False)[1]
    return best


def _sample_rows(sample: str, truncated: bool, delimiter: str, literal: bool) -> tuple[list[list[str]], bool]:
    """The sample's complete non-blank rows, and whether csv failed before the sample's cut-off."""
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(sample, newline=""), **_dialect(delimiter, literal)):
            if row:
                rows.append(row)
        if truncated and len(rows) > 1:
            rows.pop()  # cut mid-line
    except csv.Error as err:
        return rows, not (truncated and "unexpected end" in str(err))
    return rows, False


def _dialect(delimiter: str, literal: bool) -> dict[str, Any]:
    if literal:
        return {"delimiter": delimiter, "quoting": csv.QUOTE_NONE, "strict": True}
    return {
        "delimiter": delimiter,
        "quotechar": '"',
        "doublequote": True,
        "skipinitialspace": True,
        "strict": True,
    }


def _parse(text: str, delimiter: str, literal: bool, name: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each non-blank row; csv's errors become DataErrors with a line number."""
    csv.field_size_limit(FIELD_LIMIT)  # process-wide; every reader in this app wants the same bound
    reader = csv.reader(io.StringIO(text, newline=""), **_dialect(delimiter, literal))
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            if "field limit" in str(err):
                raise DataError(
                    f"line {reader.line_num} of {name} has a cell over {FIELD_LIMIT:,} characters: "
                    "split that text or check for a quote that is never closed"
                ) from err
            if "unexpected end" in str(err):
                raise DataError(
                    f'{name}: the quote (") opened on line {start} is never closed: close it or remove it'
                ) from err
            raise DataError(
                f"line {reader.line_num} of {name} is not valid CSV ({err}): "
                'put quotes around cells that hold a separator or a quote, and double inner quotes ("")'
            ) from err
        if row:
            yield start, row
        start = reader.line_num + 1


def _fit_rows(
    rows: Iterator[tuple[int, list[str]]], width: int, name: str, delimiter: str
) -> Iterator[tuple[int, list[str]]]:
    """Rows padded to the header's width; a row with more non-empty cells than the header is an error."""
    for line, row in rows:
        if len(row) > width:
            if "".join(row[width:]).strip():
                sep = DELIMITERS.get(delimiter, repr(delimiter))
                raise DataError(
                    f"line {line} of {name} has {len(row)} cells but the header has {width}: "
                    f"put quotes around texts that contain the separator ({sep})"
                )
            row = row[:width]
        elif len(row) < width:
            row = row + [""] * (width - len(row))
        yield line, row


def _check_header(header: list[str], name: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """Stripped names, and the names given to blank ones; blank names are refused except a first
    column (a saved index) and trailing ones."""
    columns = tuple(c.strip() for c in header)
    if not any(columns):
        raise DataError(
            f"the header line of {name} has no column names: start the file with a line such as text,label"
        )
    last_named = max((i for i, c in enumerate(columns) if c), default=-1)
    for i, column in enumerate(columns):
        if not column and 0 < i < last_named:
            raise DataError(
                f"column {i + 1} of the header of {name} has no name: give it a name or delete it"
            )
    seen: dict[str, int] = {}
    for i, column in enumerate(columns):
        key = column.casefold()
        if column and key in seen:
            raise DataError(
                f"{name} has two columns named {column!r} (columns {seen[key] + 1} and {i + 1}): rename one"
            )
        seen[key] = i
    unnamed = {i: UNNAMED.format(i + 1) for i, c in enumerate(columns) if not c}
    named = tuple(unnamed.get(i, c) for i, c in enumerate(columns))
    return named, frozenset(unnamed.values())


# --- columns -------------------------------------------------------------------------------------


def _choose_columns(
    src: Parsed,
    sample: Sequence[tuple[int, Sequence[str]]],
    text_column: str | None,
    label_column: str | None,
    *,
    need_label: bool,
    guess_label: bool,
) -> tuple[str, str | None, list[str]]:
    """Given names are resolved; missing ones are guessed by name, then from the values."""
    named = src.named
    notes: list[str] = []
    text = _resolve(text_column, src, "text") if text_column is not None else None
    label = _resolve(label_column, src, "label") if label_column is not None else None
    if text is not None and text == label:
        raise DataError(
            f"{src.name}: the text and label columns are both {text!r}: choose two different columns"
        )
    if need_label and len(named) < 2:
        raise DataError(
            f"{src.name} has a single column ({_names(named)}); found no , ; tab or | separator used on "
            "every line. A training table needs a text column and a label column, e.g. a header text,label"
        )
    if text is None:
        text = _by_name(named, TEXT_NAMES, exclude=label)
        if text is not None:
            notes.append(f"guessed the text column {text!r} from its name")
    if label is None:
        label = _by_name(named, LABEL_NAMES, exclude=text)
        if label is not None:
            notes.append(f"guessed the label column {label!r} from its name")
    if text is None:
        lengths = {c: _mean_length(src, sample, c) for c in named if c != label}
        if not lengths:
            raise DataError(
                f"{src.name} has no column left for the texts besides {label!r}: choose the text column"
            )
        text = max(lengths, key=lambda c: lengths[c])
        notes.append(f"guessed the text column {text!r}: it has the longest texts")
    if label is None and guess_label:
        label = _few_values(src, sample, [c for c in named if c != text])
        if label is not None:
            notes.append(f"guessed the label column {label!r}: it has few distinct values")
    if label is None and need_label:
        raise DataError(
            f"could not tell which column of {src.name} holds the labels (columns: {_names(named)}): "
            "choose the label column"
        )
    return text, label, notes


def _resolve(wanted: str, src: Parsed, role: str) -> str:
    if wanted in src.index:
        return wanted
    folded = [c for c in src.columns if c.casefold() == wanted.strip().casefold()]
    if len(folded) == 1:
        return folded[0]
    raise DataError(
        f"{src.name} has no column {wanted!r}; its columns are {_names(src.columns)}: "
        f"choose one of those as the {role} column"
    )


def _by_name(columns: list[str], names: tuple[str, ...], exclude: str | None) -> str | None:
    """Exact (case-insensitive) names first, then a name as one word of a column name ('review_text')."""
    candidates = [c for c in columns if c != exclude]
    for match in (lambda c, n: c.casefold() == n, lambda c, n: n in re.split(r"[^a-z0-9]+", c.casefold())):
        for wanted in names:
            for column in candidates:
                if match(column, wanted):
                    return column
    return None


def _values(src: Parsed, sample: Sequence[tuple[int, Sequence[str]]], column: str) -> list[str]:
    i = src.index[column]
    return [v for v in (row[i].strip() for _, row in sample) if v]


def _mean_length(src: Parsed, sample: Sequence[tuple[int, Sequence[str]]], column: str) -> float:
    values = _values(src, sample, column)
    return sum(map(len, values)) / max(len(values), 1)


def _few_values(src: Parsed, sample: Sequence[tuple[int, Sequence[str]]], columns: list[str]) -> str | None:
    """The column with the fewest distinct values (2+ preferred), if that is at most half its rows."""
    best, best_key = None, (True, 0)
    for column in columns:
        values = _values(src, sample, column)
        distinct = len(set(values))
        if values and distinct <= max(2, len(values) // 2):
            key = (distinct < 2, distinct)
            if best is None or key < best_key:
                best, best_key = column, key
    return best


def _check_header_is_not_data(
    src: Parsed, sample: Sequence[tuple[int, Sequence[str]]], label: str, li: int
) -> None:
    """A guessed label column whose name is also one of its values means the first line is data."""
    if label in {row[li].strip() for _, row in sample}:
        raise DataError(
            f"{src.name} seems to have no header line: its first line ({_names(src.columns)}) looks like "
            f"data, since {label!r} is also a label further down. Add a header line such as text,label"
        )


def _check_classes(table: Table, min_classes: int) -> None:
    counts = table.label_counts()
    where = f"label column {table.label_column!r} of {table.source}"
    if len(counts) < min_classes:
        if len(counts) == 1:
            raise DataError(
                f"only one class {next(iter(counts))!r} in {where}: a classifier needs at least two; "
                "add examples of another class"
            )
        raise DataError(
            f"only {len(counts)} classes in {where} ({_names(counts)}): this needs at least {min_classes}"
        )
    if len(counts) > max(50, len(table.labels) // 2):
        raise DataError(
            f"{where} has {len(counts):,} different values in {len(table.labels):,} rows: labels should be a "
            "few class names. Check that the text and label columns are not swapped"
        )


def _names(items: Sequence[str] | dict[str, int], shown: int = 20) -> str:
    """Quoted names for a message, the first `shown` of them (a table may have thousands of columns)."""
    items = list(items)
    more = f", ... ({len(items):,} in all)" if len(items) > shown else ""
    return ", ".join(repr(c) for c in items[:shown]) + more


def _size(n: int) -> str:
    return f"{n:,} bytes" + (f" ({n / 2**20:.1f} MB)" if n >= 2**20 else "")
