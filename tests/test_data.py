"""Uploaded tables: real files written to tmp_path, read the way the app reads them."""

from __future__ import annotations

import csv
import hashlib
import random
from collections import Counter
from pathlib import Path

import pytest

from lstm_demo import data
from lstm_demo.data import DataError, check_labels, preview_table, read_table, read_texts, stratified_split

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def write(tmp_path: Path, content: str | bytes, name: str = "upload.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


TWO = ("I loved it", "awful")
POS_NEG = ("pos", "neg")

# content, read_table kwargs, texts, labels, expected attributes
GOOD = [
    pytest.param("text,label\nI loved it,pos\nawful,neg\n", {}, TWO, POS_NEG, {"delimiter": ","}, id="comma"),
    pytest.param(
        "text;label\nGreat, really great;pos\nBad, bad;neg\n",
        {},
        ("Great, really great", "Bad, bad"),
        POS_NEG,
        {"delimiter": ";"},
        id="semicolon-with-commas-in-text",
    ),
    pytest.param(
        "text\tlabel\nyes, and; no\tpos\nawful\tneg\n",
        {},
        ("yes, and; no", "awful"),
        POS_NEG,
        {"delimiter": "\t"},
        id="tab",
    ),
    pytest.param("text|label\nI loved it|pos\nawful|neg\n", {}, TWO, POS_NEG, {"delimiter": "|"}, id="pipe"),
    pytest.param(
        "\ufefftext,label\nI loved it,pos\nawful,neg\n",
        {},
        TWO,
        POS_NEG,
        {"encoding": "utf-8-sig", "columns": ("text", "label")},
        id="utf8-bom",
    ),
    pytest.param(
        "text,label\nI loved it,pos\nawful,neg\n".encode("utf-16"),
        {},
        TWO,
        POS_NEG,
        {"encoding": "utf-16"},
        id="utf16-bom",
    ),
    pytest.param(
        "text,label\ncafé’s crème brûlée,pos\nawful,neg\n".encode("cp1252"),
        {},
        ("café’s crème brûlée", "awful"),
        POS_NEG,
        {"encoding": "cp1252"},
        id="cp1252",
    ),
    pytest.param(  # \x90 is undefined in cp1252, so only latin-1 decodes this
        "text,label\nsmörgåsbord\x90 à volonté,pos\nawful,neg\n".encode("latin-1"),
        {},
        ("smörgåsbord\x90 à volonté", "awful"),
        POS_NEG,
        {"encoding": "latin-1"},
        id="latin-1",
    ),
    pytest.param(
        'text,label\n"line one\nline two, with ""quotes""",pos\nawful,neg\n',
        {},
        ('line one\nline two, with "quotes"', "awful"),
        POS_NEG,
        {"rows_read": 2},
        id="quoted-newline-and-quotes",
    ),
    pytest.param(
        "text,label\r\nI loved it,pos\r\nawful,neg\r\n", {}, TWO, POS_NEG, {"delimiter": ","}, id="crlf"
    ),
    pytest.param(
        'text\tlabel\n"Wow" she said, 5" tall\tpos\nawful\tneg\n',
        {},
        ('"Wow" she said, 5" tall', "awful"),
        POS_NEG,
        {"delimiter": "\t"},
        id="tab-with-literal-quotes",
    ),
    pytest.param(
        "id,text,label,source\n1,I loved it,pos,web\n2,awful,neg,web\n",
        {},
        TWO,
        POS_NEG,
        {"columns": ("id", "text", "label", "source"), "text_column": "text", "label_column": "label"},
        id="extra-columns",
    ),
    pytest.param(
        ",text,label\n0,I loved it,pos\n1,awful,neg\n",
        {},
        TWO,
        POS_NEG,
        {"columns": ("(unnamed 1)", "text", "label")},
        id="pandas-index-column",
    ),
    pytest.param(
        "Review,Sentiment\nI loved it,pos\nawful,neg\n",
        {"text_column": "review", "label_column": "SENTIMENT"},
        TWO,
        POS_NEG,
        {"text_column": "Review", "label_column": "Sentiment"},
        id="names-any-case",
    ),
    pytest.param(
        "review_text,y\nI loved it,pos\nawful,neg\n",
        {},
        TWO,
        POS_NEG,
        {"text_column": "review_text", "label_column": "y"},
        id="inferred-by-name",
    ),
    pytest.param(
        "id,stars,feedback\n1,5,I loved every minute\n2,1,awful\n3,5,great fun\n4,1,dull and slow\n",
        {},
        ("I loved every minute", "awful", "great fun", "dull and slow"),
        ("5", "1", "5", "1"),
        {"text_column": "feedback", "label_column": "stars"},
        id="inferred-from-values",
    ),
    pytest.param(
        "text,label\nI loved it, 1\nawful,0 \nfine,1.0\n",
        {},
        ("I loved it", "awful", "fine"),
        ("1", "0", "1.0"),
        {},
        id="numeric-labels-kept-as-given",
    ),
    pytest.param(
        "text,label\nI loved it,pos\n   ,neg\nno label,\n\nawful,neg\n,\n",
        {},
        TWO,
        POS_NEG,
        {"rows_read": 5, "dropped_empty": 3},
        id="empty-rows-dropped-and-counted",
    ),
    pytest.param(
        "text,label,,\nI loved it,pos,,\nawful,neg,,\n", {}, TWO, POS_NEG, {}, id="trailing-blank-columns"
    ),
]


@pytest.mark.parametrize(("content", "kwargs", "texts", "labels", "expected"), GOOD)
def test_reads_good_files(tmp_path, content, kwargs, texts, labels, expected):
    path = write(tmp_path, content)
    table = read_table(path, **kwargs)
    assert table.texts == texts
    assert table.labels == labels
    for name, value in expected.items():
        assert getattr(table, name) == value, name
    assert table.source == "upload.csv"
    assert table.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()
    assert table.notes[0].startswith(f"read upload.csv as {table.encoding}")


def test_notes_say_what_was_guessed_and_dropped(tmp_path):
    path = write(tmp_path, "id,stars,feedback\n1,5,I loved it\n2,1,awful\n3,,meh\n4,1,dull\n")
    notes = " | ".join(read_table(path).notes)
    assert "text column 'feedback'" in notes
    assert "label column 'stars'" in notes
    assert "dropped 1 of 4 rows" in notes and "lines 4" in notes


def test_legacy_encoding_is_reported(tmp_path):
    table = read_table(write(tmp_path, "text,label\nok,pos\ncafé,neg\n".encode("cp1252")))
    assert any("cp1252" in note and "line 3" in note for note in table.notes)


def test_label_counts_and_classes_are_sorted(tmp_path):
    table = read_table(write(tmp_path, "text,label\na,z\nb,a\nc,z\nd,m\n"))
    assert list(table.label_counts().items()) == [("a", 1), ("m", 1), ("z", 2)]
    assert table.classes == ("a", "m", "z")


LONG_TEXTS = "".join(f"text number {i},label {i % 100}\n" for i in range(120))

# content, read_table kwargs, phrases the message must contain (besides the file name)
BAD = [
    pytest.param(b"", {}, ["is empty"], id="empty-file"),
    pytest.param("\n  \n\n", {}, ["is empty"], id="blank-lines-only"),
    pytest.param("text,label\n", {}, ["no data rows", "'text', 'label'"], id="header-only"),
    pytest.param(
        "text,label\na,pos\nb,neg\n",
        {"label_column": "sentiment"},
        ["no column 'sentiment'", "'text', 'label'", "label column"],
        id="missing-label-column",
    ),
    pytest.param(
        "review,label\na,pos\nb,neg\n",
        {"text_column": "text"},
        ["no column 'text'", "'review', 'label'", "text column"],
        id="missing-text-column",
    ),
    pytest.param(
        "text,label\na,pos\nb,pos\n", {}, ["only one class 'pos'", "label column 'label'"], id="single-class"
    ),
    pytest.param(
        "text,label\na,pos\nb,neg\n",
        {"min_classes": 3},
        ["only 2 classes", "'neg', 'pos'", "at least 3"],
        id="min-classes",
    ),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", {}, ["PNG image"], id="png"),
    pytest.param(b"PK\x03\x04\x14\x00\x06\x00", {}, ["zip archive", "save the sheet as CSV"], id="zip-xlsx"),
    pytest.param(b"\x1f\x8b\x08\x00", {}, ["gzip", "decompress"], id="gzip"),
    pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", {}, ["PDF"], id="pdf"),
    pytest.param(b"text,label\na\x00b,pos\n", {}, ["NUL bytes"], id="nul-bytes"),
    pytest.param(bytes(range(1, 256)) * 40, {}, ["binary file"], id="binary-without-nul"),
    pytest.param(
        "text,label\na,pos\nb,neg\n",
        {"max_bytes": 10},
        ["23 bytes", "limit of 10 bytes", "smaller"],
        id="over-size-limit",
    ),
    pytest.param(
        "text,label\na,pos\nb,neg\nc,pos\n", {"max_rows": 2}, ["more than 2 rows"], id="over-row-limit"
    ),
    pytest.param(
        "text,text,label\na,b,pos\n", {}, ["two columns named 'text'", "rename"], id="duplicate-header"
    ),
    pytest.param("Text,text,label\na,b,pos\n", {}, ["two columns named 'text'"], id="duplicate-header-case"),
    pytest.param("text,,label\na,b,pos\n", {}, ["column 2", "no name"], id="blank-header-name"),
    pytest.param("text\nhello\nbye\n", {}, ["single column", "text,label"], id="one-column-needs-labels"),
    pytest.param(
        "text,label\na,pos\nb,neg\nhello, world,pos\nc,neg\n",
        {},
        ["line 4", "3 cells", "header has 2", "quotes"],
        id="unquoted-separator",
    ),
    pytest.param('text,label\n"open,pos\nb,neg\n', {}, ["line 2", "never closed"], id="unclosed-quote"),
    pytest.param(
        "great movie,pos\nawful,neg\nfine film,pos\n",
        {},
        ["no header line", "text,label"],
        id="no-header-line",
    ),
    pytest.param(
        "text,label\n ,pos\n,neg\n", {}, ["all 2 rows", "empty 'text' or 'label'"], id="every-row-empty"
    ),
    pytest.param(
        b"\xef\xbb\xbftext,label\nok,pos\ncaf\xe9,neg\n",
        {},
        ["line 3", "mixes encodings"],
        id="bom-but-not-utf8",
    ),
    pytest.param(
        "text,label\n" + LONG_TEXTS,
        {"text_column": "label", "label_column": "text"},
        ["120 different values", "swapped"],
        id="swapped-columns",
    ),
    pytest.param(
        "text,label\na,pos\n",
        {"text_column": "text", "label_column": "text"},
        ["both 'text'"],
        id="same-column-twice",
    ),
]


@pytest.mark.parametrize(("content", "kwargs", "phrases"), BAD)
def test_bad_files_raise_a_data_error_that_names_the_file(tmp_path, content, kwargs, phrases):
    path = write(tmp_path, content)
    with pytest.raises(DataError) as info:
        read_table(path, **kwargs)
    message = str(info.value)
    assert "upload.csv" in message
    assert str(tmp_path) not in message  # the server's paths are not the user's business
    for phrase in phrases:
        assert phrase in message


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="gone.csv: file not found"):
        read_table(tmp_path / "gone.csv")


def test_a_cell_over_the_field_limit_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "FIELD_LIMIT", 1000)
    path = write(tmp_path, "text,label\nshort,pos\n" + "x" * 2000 + ",neg\n")
    try:
        with pytest.raises(DataError, match=r"line 3 of upload.csv has a cell over 1,000 characters"):
            read_table(path)
    finally:
        csv.field_size_limit(data.FIELD_LIMIT)  # csv's limit is process-wide


SEEDS = ['text,label\nI loved it,pos\n"a, b",neg\n', "id;body;y\n1;hi;1\n2;yo;0\n", 'text\tlabel\n"q" x\tA\n']


def test_mangled_files_fail_only_with_data_errors(tmp_path):
    """Whatever a user uploads, the app shows a message, never a traceback."""
    rng = random.Random(0)
    path = tmp_path / "upload.csv"
    for _ in range(300):
        chars = list(rng.choice(SEEDS))
        for _ in range(rng.randint(1, 5)):
            pos = rng.randrange(len(chars) + 1)
            if rng.random() < 0.5:
                chars.insert(pos, rng.choice(',;\t|"\n\r \x00\x01é’\ufeff'))
            elif chars:
                del chars[min(pos, len(chars) - 1)]
        path.write_bytes("".join(chars).encode(rng.choice(["utf-8", "cp1252", "utf-16"]), errors="replace"))
        for read in (read_table, read_texts, preview_table):
            try:
                read(path)
            except DataError:
                pass


def test_a_large_quoted_field_reads(tmp_path):
    big = "word " * 60_000  # 300 kB: over csv's default field limit of 128 kB
    table = read_table(write(tmp_path, f'text,label\n"{big}",pos\nshort,neg\n'))
    assert table.texts[0] == big.strip()


def test_read_texts_takes_a_single_column(tmp_path):
    table = read_texts(write(tmp_path, 'sentence\n"hello, world"\nbye; then | more\n'))
    assert table.texts == ("hello, world", "bye; then | more")
    assert table.labels == ()
    assert table.label_column is None
    assert table.delimiter == ""


def test_read_texts_keeps_a_label_column_named_so(tmp_path):
    table = read_texts(write(tmp_path, "text,label\na,pos\nb,pos\n"))
    assert table.labels == ("pos", "pos")  # one class is fine for prediction


def test_read_texts_ignores_an_empty_label_column(tmp_path):
    table = read_texts(write(tmp_path, "text,label\na,\nb,\n"))
    assert table.texts == ("a", "b")
    assert table.label_column is None
    assert any("ignored the empty label column 'label'" in note for note in table.notes)


def test_preview_shows_first_rows_and_guesses(tmp_path):
    rows = "".join(f"{i};review number {i} is long;{'pos' if i % 2 else 'neg'}\n" for i in range(10))
    preview = preview_table(write(tmp_path, "id;body;verdict\n" + rows), n=3)
    assert preview.columns == ("id", "body", "verdict")
    assert preview.rows == (
        ("0", "review number 0 is long", "neg"),
        ("1", "review number 1 is long", "pos"),
        ("2", "review number 2 is long", "neg"),
    )
    assert (preview.text_column, preview.label_column) == ("body", "verdict")
    assert preview.delimiter == ";"


def test_preview_of_one_column_guesses_no_label(tmp_path):
    preview = preview_table(write(tmp_path, "text\nhello\nbye\n"))
    assert (preview.text_column, preview.label_column) == ("text", None)


def test_preview_refuses_what_read_refuses(tmp_path):
    with pytest.raises(DataError, match="upload.csv is a PNG image"):
        preview_table(write(tmp_path, b"\x89PNG\r\n\x1a\n"))


# --- split -----------------------------------------------------------------------------------------

LABELS = ["a"] * 30 + ["b"] * 10 + ["c"] * 5 + ["d"] * 2


def test_split_is_stratified():
    train, val = stratified_split(LABELS, 0.2, seed=1)
    assert sorted(train + val) == list(range(len(LABELS)))
    assert train == sorted(train) and val == sorted(val)
    assert Counter(LABELS[i] for i in val) == {"a": 6, "b": 2, "c": 1, "d": 1}
    assert Counter(LABELS[i] for i in train) == {"a": 24, "b": 8, "c": 4, "d": 1}


def test_split_is_deterministic_for_a_seed():
    assert stratified_split(LABELS, 0.2, seed=7) == stratified_split(LABELS, 0.2, seed=7)
    assert stratified_split(LABELS, 0.2, seed=7) != stratified_split(LABELS, 0.2, seed=8)


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.99])
def test_every_class_is_on_both_sides(fraction):
    train, val = stratified_split(LABELS, fraction, seed=3)
    assert {LABELS[i] for i in train} == {LABELS[i] for i in val} == set(LABELS)


def test_split_names_a_class_too_small(tmp_path):
    table = read_table(write(tmp_path, "text,label\na,pos\nb,pos\nc,neg\n", name="train.csv"))
    with pytest.raises(DataError) as info:
        table.split(0.1, seed=0)
    message = str(info.value)
    assert "class 'neg'" in message and "label column 'label' of train.csv" in message
    assert "at least 2" in message


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_refuses_a_fraction_outside_0_1(fraction):
    with pytest.raises(DataError, match="between 0 and 1"):
        stratified_split(LABELS, fraction, seed=0)


# --- test files ------------------------------------------------------------------------------------


def test_check_labels_names_unseen_labels(tmp_path):
    test = read_table(write(tmp_path, "text,label\na,pos\nb,meh\nc,meh\nd,neg\n", name="test.csv"))
    check_labels(test, ["neg", "pos", "meh"])
    with pytest.raises(DataError) as info:
        check_labels(test, ["neg", "pos"])
    message = str(info.value)
    assert "'meh' (2 rows)" in message
    assert "label column 'label' of test.csv" in message
    assert "'neg', 'pos'" in message


def test_test_file_is_read_with_the_training_columns(tmp_path):
    path = write(tmp_path, "id,Body,Verdict\n1,a,pos\n2,b,neg\n", name="test.csv")
    test = read_table(path, text_column="body", label_column="verdict")
    assert (test.text_column, test.label_column) == ("Body", "Verdict")
    check_labels(test, ["neg", "pos"])


# --- the shared benchmark data --------------------------------------------------------------------


@pytest.mark.parametrize(("name", "rows", "classes"), [("sst2", 6920, 2), ("trec", 5452, 6)])
def test_reads_the_shared_datasets(name, rows, classes):
    path = DATASETS / name / "train.csv"
    if not path.exists():
        pytest.skip(f"{path} is not here")
    table = read_table(path)
    assert (table.rows_read, len(table.texts), len(table.classes)) == (rows, rows, classes)
    assert (table.text_column, table.label_column, table.encoding) == ("text", "label", "utf-8")
    _, val = table.split(0.1, seed=13)
    assert len(val) == pytest.approx(rows * 0.1, abs=classes)
    assert set(table.labels[i] for i in val) == set(table.classes)


WIDE = 100_000


def _wide(tmp_path, rows: int = 3):
    header = [f"c{i}" for i in range(WIDE - 2)] + ["text", "label"]
    lines = [",".join(header)] + [
        ",".join(["0"] * (WIDE - 2) + [f"text number {r}", "ab"[r % 2]]) for r in range(rows)
    ]
    return write(tmp_path, "\n".join(lines) + "\n", name="wide.csv")


def test_a_table_wider_than_the_limit_is_refused_after_its_header(tmp_path, monkeypatch):
    from lstm_demo import data

    fitted = []
    real = data._fit_rows

    def counting(rows, *args):
        for row in real(rows, *args):
            fitted.append(row[0])
            yield row

    monkeypatch.setattr(data, "_fit_rows", counting)
    with pytest.raises(DataError, match="100,000 columns, over the limit of 1,000"):
        read_table(_wide(tmp_path), max_columns=1000)
    assert fitted == []  # not one data row was split into cells


def test_column_guessing_on_a_very_wide_table_does_work_linear_in_its_size(tmp_path):
    """No per-column scan of the header (`columns.index`): 100,000 columns would make it quadratic."""
    import sys

    path = _wide(tmp_path)
    calls = {"index": 0, "all": 0}

    def profile(frame, event, arg):
        if event in ("call", "c_call"):
            calls["all"] += 1
            if event == "c_call" and getattr(arg, "__name__", "") == "index":
                calls["index"] += 1

    sys.setprofile(profile)
    try:
        table = read_table(path, max_columns=WIDE)
        chosen = read_table(path, "text", "label", max_columns=WIDE)
    finally:
        sys.setprofile(None)
    assert table.text_column == "text" and table.label_column == "label" and chosen.texts == table.texts
    assert calls["index"] == 0
    assert calls["all"] < 40 * WIDE  # a few calls per cell (3 rows), not one per pair of columns


def test_a_message_about_a_wide_table_names_a_few_columns_not_all(tmp_path):
    with pytest.raises(DataError, match=r"'c19', \.\.\. \(100,000 in all\)") as refused:
        read_table(_wide(tmp_path, rows=1), "nope", max_columns=WIDE)
    assert len(str(refused.value)) < 500
