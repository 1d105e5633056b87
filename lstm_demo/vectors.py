"""Pretrained word vectors, offline: a vectors file -> the rows of a model's embedding for its vocabulary.

Nothing is downloaded. Two formats: word2vec/GloVe text (one word and its numbers per line, with or
without a "rows dim" first line), and NAME.npy (a float matrix) beside NAME.vocab (its words, one per
line, row i on line i). A run names its file in `train.vectors`; `configure` checks it when the run
is prepared (size, then the dimension its header declares, then its SHA-256, which the run keeps so
it is reproducible), and `for_run` reads it when the model is built, keeping only the vocabulary's
words, so memory follows the vocabulary, not the file. Rows of words without a vector keep the
model's own initialisation. `shelve` adds an uploaded file to the app's vectors folder once every row
of it has been checked. `ppmi_svd` makes vectors from the training text itself (no download, no
extra dependency), so what pretrained vectors give can be measured here.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import PRESETS, Limits, RunConfig, override
from .names import PAD_ID, UNK_ID

MISSING_SHOWN = 5  # vocabulary words without a vector named in the run's note
NOTE_START = "pretrained vectors"  # how the run's note on its vectors begins (one note per run)
VOCAB_SUFFIX = ".vocab"  # NAME.npy's words are in NAME.vocab
_FLOATS = ("f2", "f4", "f8")  # .npy element types read (never objects: nothing is unpickled)
_WORD = re.compile(r"\w+|[^\w\s]+")  # the tokenizer's pre-tokenizer (Whitespace)
_CHECKED = Limits()  # `read_vectors` without `limits`: the default limits


class VectorsError(ValueError):
    """A vectors file that cannot be used, worded for the person who named it."""


@dataclass(frozen=True)
class WordVectors:
    words: tuple[str, ...]
    vectors: torch.Tensor  # (N, D) float32, row i is words[i]

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]


@dataclass(frozen=True)
class Coverage:
    found: int  # vocabulary entries with a vector ([PAD] and [UNK] not counted)
    total: int  # vocabulary entries other than [PAD] and [UNK]
    missing: tuple[str, ...]  # the first few without one, most frequent first for a word tokenizer

    @property
    def share(self) -> float:
        return self.found / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"cover {self.found:,} of {self.total:,} vocabulary entries ({self.share:.0%})"


@dataclass(frozen=True)
class Pretrained:
    """A vocabulary's rows of a vectors file, ready to go into a model's embedding."""

    ids: torch.Tensor  # (K,) vocabulary ids that have a vector
    vectors: torch.Tensor  # (K, D) float32, row k for ids[k]
    freeze: bool  # the embedding gets no gradient
    coverage: Coverage
    source: str  # the file's name (never its folder)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @property
    def note(self) -> str:
        """The run's note on its vectors: where from, how used, how much of the vocabulary they cover."""
        how = "frozen" if self.freeze else "fine-tuned"
        note = f"{NOTE_START} ({self.source}, {self.dim} dimensions, {how}) {self.coverage}"
        missing = self.coverage.missing
        more = ", ..." if self.coverage.total - self.coverage.found > len(missing) else ""
        return note + (f"; none for {', '.join(missing)}{more}" if missing else "")

    def apply(self, embedding: nn.Embedding) -> None:
        """Copy the vectors into their rows; every other row keeps the model's initialisation."""
        if embedding.embedding_dim != self.dim:
            raise VectorsError(_mismatch(self.source, self.dim, embedding.embedding_dim))
        with torch.no_grad():
            weight = embedding.weight
            weight[self.ids.to(weight.device)] = self.vectors.to(weight.device, weight.dtype)
        weight.requires_grad_(not self.freeze)


def _mismatch(name: str, dim: int, embedding_dim: int) -> str:
    return (
        f"{name} holds {dim}-dimensional vectors but model.embedding_dim is {embedding_dim}: "
        f"set model.embedding_dim to {dim}"
    )


# ---------------------------------------------------------------------------- a run's vectors


def configure(cfg: RunConfig, limits: Limits, *, shelf: Path, anywhere: bool = False) -> RunConfig:
    """A run's vectors checked before it is queued; returns `cfg` naming the resolved file, its
    fingerprint, and the vectors' dimension as `model.embedding_dim`.

    `train.vectors` may come from anyone who may train (browser, HTTP API), so it names a file in
    `shelf`, the app's vectors folder, and nothing outside it is opened; `anywhere`: the machine's
    own user asks (the command line). The preset's embedding size gives way to the vectors'; one the
    person set otherwise is refused, naming both numbers. A fingerprint already in the options (a
    stored run's) must be the file's.
    """
    if not cfg.train.vectors:
        return cfg
    path = Path(cfg.train.vectors).expanduser().resolve() if anywhere else _on_shelf(cfg.train.vectors, shelf)
    _sized(path, limits, "vectors_mb", lambda f: f.name + (" beside it" if f != path else ""))
    dim = dimension(path, limits)
    preset_dim = PRESETS[cfg.preset].model.embedding_dim if cfg.preset in PRESETS else None
    if dim != cfg.model.embedding_dim and cfg.model.embedding_dim != preset_dim:
        raise VectorsError(_mismatch(path.name, dim, cfg.model.embedding_dim))
    digest = fingerprint(path)
    if cfg.train.vectors_sha256 and digest != cfg.train.vectors_sha256:
        raise VectorsError(
            f"{path.name} is not the vectors file this configuration was trained with (its SHA-256 "
            f"differs): name that file, or clear train.vectors_sha256"
        )
    return override(cfg, train__vectors=str(path), train__vectors_sha256=digest, model__embedding_dim=dim)


def for_run(cfg: RunConfig, encoder: Any, notes: list[str]) -> Pretrained | None:
    """The vectors of `cfg.train.vectors` for `encoder`'s vocabulary (None without vectors), its note
    put in `notes` in place of an earlier one (a refit's vocabulary is the kept model's).

    The file is the one `configure` checked against the limits: its fingerprint is checked again.
    """
    if not cfg.train.vectors:
        return None
    vocabulary = [encoder.id_to_token(i) for i in range(encoder.vocab_size)]
    words = read_vectors(
        cfg.train.vectors, vocabulary=vocabulary, limits=None, sha256=cfg.train.vectors_sha256
    )
    name = Path(cfg.train.vectors).name
    if words.dim != cfg.model.embedding_dim:
        raise VectorsError(_mismatch(name, words.dim, cfg.model.embedding_dim))
    pretrained = lookup(words, vocabulary, freeze=cfg.train.freeze_vectors, source=name)
    notes[:] = [note for note in notes if not note.startswith(NOTE_START)] + [pretrained.note]
    return pretrained


def _on_shelf(name: str, shelf: Path) -> Path:
    root = shelf.resolve()
    path = (root / name).resolve()  # links followed: one pointing out of the folder is refused too
    if path == root or not path.is_relative_to(root):
        raise VectorsError(
            f"train.vectors names a file in the app's vectors folder (LSTM_DEMO_HOME/vectors), "
            f"such as glove.6B.100d.txt; {Path(name).name!r} is not one"
        )
    return path


def _files(path: Path) -> tuple[Path, ...]:
    """The files a vectors path stands for: itself, or NAME.npy and NAME.vocab."""
    return (path, path.with_suffix(VOCAB_SUFFIX)) if path.suffix == ".npy" else (path,)


def _sized(
    path: Path, limits: Limits | None, limit: str, missing: Callable[[Path], str] = lambda f: f"at {f.name}"
) -> tuple[tuple[Path, ...], float]:
    """The files `path` stands for, each of them there (else "no vectors file " + `missing(file)`),
    and their size in MB, checked against the limit named `limit` unless `limits` is None."""
    files = _files(path)
    for file in files:
        if not file.is_file():
            raise VectorsError(f"no vectors file {missing(file)}")
    megabytes = round(sum(file.stat().st_size for file in files) / 2**20, 1)
    if limits is not None:
        limits.check(limit, megabytes, f"the vectors file {path.name} (MB)")
    return files, megabytes


def fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a vectors file (of NAME.npy, then NAME.vocab, for that format)."""
    digest = hashlib.sha256()
    for file in _files(Path(path)):
        with file.open("rb") as f:
            while chunk := f.read(2**20):
                digest.update(chunk)
    return digest.hexdigest()


def dimension(path: str | os.PathLike[str], limits: Limits) -> int:
    """The dimension a vectors file declares (its header, or its first row), within the limit,
    read without reading the rows."""
    path = Path(path)
    if path.suffix == ".npy":
        return _npy_header(path, limits)[1]
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        for line in f:
            if line.strip():
                parts = _parts(line)
                dim = int(parts[1]) if _is_header(parts) else _trailing_numbers(parts)
                _check_dim(dim, limits, path.name)
                return dim
    raise VectorsError(f"{path.name} holds no vectors")


# ---------------------------------------------------------------------------- reading


def read_vectors(
    path: str | os.PathLike[str],
    *,
    vocabulary: Collection[str] | None = None,
    limits: Limits | None = _CHECKED,
    sha256: str = "",
) -> WordVectors:
    """Vectors from a word2vec/GloVe text file, or NAME.npy with NAME.vocab.

    With `vocabulary`, a row is kept when its word, or the word lowercased, is in it (or lowercased);
    the first row of a word wins. `limits=None`: the file was checked when the run was prepared, and
    `sha256` says it is still that file. Raises `VectorsError` for a malformed or changed file and
    `LimitError` for one over a limit, before anything the size of the file is allocated.
    """
    path = Path(path)
    _sized(path, limits, "vectors_mb")
    if sha256 and fingerprint(path) != sha256:
        raise VectorsError(f"{path.name} changed since the run was prepared (its SHA-256 differs)")
    wanted = None if vocabulary is None else {*vocabulary, *(w.lower() for w in vocabulary)}
    read = _read_npy if path.suffix == ".npy" else _read_text
    return read(path, wanted, limits)


def _read_text(path: Path, wanted: set[str] | None, limits: Limits | None) -> WordVectors:
    words: list[str] = []
    seen: set[str] = set()
    flat = array("f")
    dim = declared_rows = rows = 0
    with path.open(encoding="utf-8", newline="") as f:
        try:
            for number, line in enumerate(f, start=1):
                parts = _parts(line)
                if number == 1 and _is_header(parts):
                    declared_rows, dim = int(parts[0]), int(parts[1])
                    _check_dim(dim, limits, path.name)
                    continue
                if line.strip() == "":
                    continue
                if dim == 0:
                    dim = _trailing_numbers(parts)
                    _check_dim(dim, limits, path.name)
                rows += 1
                if declared_rows and rows > declared_rows:
                    raise VectorsError(
                        f"{path.name} line {number}: the header promises only {declared_rows} rows"
                    )
                word = _word(parts, dim, number, path.name)
                if word in seen or (wanted is not None and not _wanted(word, wanted)):
                    continue
                seen.add(word)
                words.append(word)
                flat.extend(_values(parts, dim, number, path.name))
                if limits is not None and len(words) > limits.vocab_size:
                    limits.check("vocab_size", len(words), f"the words kept from {path.name}")
        except UnicodeDecodeError as e:
            raise VectorsError(f"{path.name} is not UTF-8 text ({e.reason}): save it as UTF-8") from None
    if dim == 0:
        raise VectorsError(f"{path.name} holds no vectors")
    vectors = torch.frombuffer(flat, dtype=torch.float32).clone().view(len(words), dim) if words else None
    return WordVectors(tuple(words), vectors if vectors is not None else torch.empty(0, dim))


def _npy_header(path: Path, limits: Limits | None) -> tuple[int, int, np.dtype]:
    """(rows, dim, dtype) of NAME.npy from its header alone, the data's size checked against them."""
    fmt = np.lib.format
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    with path.open("rb") as f:
        try:
            version = fmt.read_magic(f)
            shape, _, dtype = readers[version](f) if version in readers else ((), False, None)
        except ValueError as e:
            raise VectorsError(f"{path.name} is not a .npy array ({e})") from None
        if dtype is None:
            raise VectorsError(f"{path.name} is a .npy file of version {version}: save it with numpy.save")
        offset = f.tell()
    if dtype.hasobject or dtype.str.lstrip("<>=|") not in _FLOATS or len(shape) != 2:
        raise VectorsError(
            f"{path.name} must hold a 2-D float array (rows x dimensions), not {len(shape)}-D {dtype}"
        )
    rows, dim = shape
    _check_dim(dim, limits, path.name)
    if offset + rows * dim * dtype.itemsize != path.stat().st_size:
        raise VectorsError(f"{path.name} declares {rows} x {dim} values but its size does not match")
    return rows, dim, dtype


def _read_npy(path: Path, wanted: set[str] | None, limits: Limits | None) -> WordVectors:
    """Only the kept rows are copied out of the memory-mapped array."""
    rows, dim, _ = _npy_header(path, limits)
    vocab = path.with_suffix(VOCAB_SUFFIX)
    index: dict[str, int] = {}
    count = 0
    with vocab.open(encoding="utf-8", newline="") as f:
        try:
            for count, line in enumerate(f, start=1):
                if count > rows:
                    raise VectorsError(f"{vocab.name} has more words than {path.name} has rows ({rows})")
                word = line.rstrip("\r\n")
                if word and word not in index and (wanted is None or _wanted(word, wanted)):
                    index[word] = count - 1
                    if limits is not None and len(index) > limits.vocab_size:
                        limits.check("vocab_size", len(index), f"the words kept from {path.name}")
        except UnicodeDecodeError as e:
            raise VectorsError(f"{vocab.name} is not UTF-8 text ({e.reason}): save it as UTF-8") from None
    if count != rows:
        raise VectorsError(f"{vocab.name} has {count} words but {path.name} has {rows} rows")
    matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    kept = np.ascontiguousarray(matrix[list(index.values())], dtype=np.float32)  # (K, D)
    if not np.isfinite(kept).all():
        raise VectorsError(f"{path.name} holds a NaN or infinite value")
    return WordVectors(tuple(index), torch.from_numpy(kept).reshape(len(index), dim))


def _parts(line: str) -> list[str]:
    return line.rstrip("\r\n").rstrip(" ").split(" ")


def _is_header(parts: list[str]) -> bool:
    """A word2vec text file's first line: "rows dim"."""
    return len(parts) == 2 and all(p.isdigit() for p in parts)


def _check_dim(dim: int, limits: Limits | None, name: str) -> None:
    if dim < 1:
        raise VectorsError(f"{name} declares no dimensions")
    if limits is not None:
        limits.check("embedding_dim", dim, f"the dimension of {name}")


def _word(parts: list[str], dim: int, number: int, name: str) -> str:
    """A row's word; a word may hold spaces (GloVe 840B has some), the numbers are the last `dim`."""
    # a number where the word's second part would be is one number too many, not a word with a space
    if len(parts) < dim + 1 or (len(parts) > dim + 1 and _is_float(parts[1])):
        raise VectorsError(f"{name} line {number} has {len(parts) - 1} numbers, expected {dim}")
    return " ".join(parts[: len(parts) - dim])


def _values(parts: list[str], dim: int, number: int, name: str) -> list[float]:
    try:
        values = [float(v) for v in parts[len(parts) - dim :]]
    except ValueError:
        bad = next(v for v in parts[len(parts) - dim :] if not _is_float(v))
        raise VectorsError(f"{name} line {number}: {bad[:20]!r} is not a number") from None
    if not all(math.isfinite(v) for v in values):
        raise VectorsError(f"{name} line {number} holds a NaN or infinite value")
    return values


def _trailing_numbers(parts: list[str]) -> int:
    """A GloVe file's dimension from its first row: the numbers after the word (which may hold spaces,
    or be a number itself, as "1990")."""
    count = 0
    for part in reversed(parts):
        if not _is_float(part):
            break
        count += 1
    return min(count, len(parts) - 1)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _wanted(word: str, vocabulary: Collection[str]) -> bool:
    return word in vocabulary or word.lower() in vocabulary


def lookup(
    vectors: WordVectors, vocabulary: Sequence[str], *, freeze: bool = False, source: str = "vectors"
) -> Pretrained:
    """The rows of `vocabulary` (in id order) that have a vector: the word's own, else its lowercase
    form's. [PAD] and [UNK] never take one."""
    index: dict[str, int] = {}
    for i, word in enumerate(vectors.words):
        index.setdefault(word, i)
    for i, word in enumerate(vectors.words):
        index.setdefault(word.lower(), i)
    special = {PAD_ID, UNK_ID}
    rows = [None if i in special else index.get(t, index.get(t.lower())) for i, t in enumerate(vocabulary)]
    found = [(i, r) for i, r in enumerate(rows) if r is not None]
    missing = tuple(t for i, t in enumerate(vocabulary) if rows[i] is None and i not in special)
    coverage = Coverage(len(found), max(len(vocabulary) - len(special), 0), missing[:MISSING_SHOWN])
    ids = torch.tensor([i for i, _ in found], dtype=torch.long)
    picked = vectors.vectors[[r for _, r in found]] if found else torch.empty(0, vectors.dim)
    return Pretrained(ids, picked.reshape(len(found), vectors.dim), freeze, coverage, source)


def words_of(text: str) -> list[str]:
    """Lowercased words as the word tokenizer's pre-tokenizer cuts them."""
    return _WORD.findall(text.lower())


def ppmi_svd(
    texts: Sequence[str],
    dim: int = 100,
    *,
    window: int = 4,
    min_count: int = 2,
    max_words: int = 20_000,
    split: Callable[[str], list[str]] = words_of,
    seed: int = 13,
) -> WordVectors:
    """Word vectors from `texts` alone: positive PMI of co-occurrence within `window`, then a truncated
    SVD (Levy, Goldberg and Dagan 2015: context counts smoothed by the 0.75 power, U * sqrt(S)).

    A count-based stand-in for a small skip-gram, made from the training text so nothing is
    downloaded; the co-occurrence matrix is sparse, so memory follows the pairs seen.
    """
    docs = [split(t) for t in texts]
    counts = Counter(w for doc in docs for w in doc)
    vocab = [w for w, n in counts.most_common(max_words) if n >= min_count]
    if len(vocab) <= dim:
        raise VectorsError(
            f"the texts hold {len(vocab)} words seen {min_count}+ times: too few for {dim} dimensions"
        )
    index = {w: i for i, w in enumerate(vocab)}
    pairs: Counter[tuple[int, int]] = Counter()
    for doc in docs:
        ids = [index.get(w) for w in doc]
        for i, a in enumerate(ids):
            if a is None:
                continue
            for j in range(i + 1, min(i + 1 + window, len(ids))):
                b = ids[j]
                if b is not None:
                    pairs[a, b] += 1
                    pairs[b, a] += 1
    keys = torch.tensor(list(pairs.keys()), dtype=torch.long).T  # (2, P)
    values = torch.tensor(list(pairs.values()), dtype=torch.float64)  # (P,)
    word_totals = torch.zeros(len(vocab), dtype=torch.float64).index_add_(0, keys[0], values)
    context = word_totals**0.75
    pmi = torch.log(values * context.sum() / (word_totals[keys[0]] * context[keys[1]]))
    keep = pmi > 0
    ppmi = torch.sparse_coo_tensor(
        keys[:, keep], pmi[keep].float(), (len(vocab), len(vocab)), check_invariants=True
    ).coalesce()
    torch.manual_seed(seed)  # svd_lowrank draws its random projection from the global generator
    u, s, _ = torch.svd_lowrank(ppmi, q=dim, niter=4)
    return WordVectors(tuple(vocab), (u * s.sqrt()).contiguous())


def write_vectors(vectors: WordVectors, path: str | os.PathLike[str]) -> Path:
    """Save in word2vec text format, or as NAME.npy and NAME.vocab for a path ending in .npy (what
    `read_vectors` reads back)."""
    path = Path(path)
    if path.suffix == ".npy":
        np.save(path, vectors.vectors.numpy().astype(np.float32))
        path.with_suffix(VOCAB_SUFFIX).write_text("".join(w + "\n" for w in vectors.words), encoding="utf-8")
        return path
    with path.open("w", encoding="utf-8") as f:
        f.write(f"{len(vectors.words)} {vectors.dim}\n")
        for word, row in zip(vectors.words, vectors.vectors.tolist(), strict=True):
            f.write(word + " " + " ".join(f"{v:.5f}" for v in row) + "\n")
    return path


# ---------------------------------------------------------------------------- the app's vectors folder

SHELF_SUFFIXES = (".txt", ".vec", ".npy")  # the files a vectors option may name (.npy with its .vocab)
_UNSAFE = re.compile(r"[^\w.-]+")  # anything but letters, digits, _ . - in a shelved file's name


@dataclass(frozen=True)
class Shelved:
    """A vectors file put on the shelf: the name a run's `train.vectors` gives, and what it holds."""

    name: str
    dim: int
    words: int
    added: bool  # False: the same file was already on the shelf under this name


def shelf_names(shelf: Path) -> list[str]:
    """The vectors files in `shelf` a run may name, sorted (a .npy only with its .vocab beside it)."""
    if not shelf.is_dir():
        return []
    return sorted(
        p.name for p in shelf.iterdir() if p.suffix in SHELF_SUFFIXES and all(f.is_file() for f in _files(p))
    )


def safe_name(name: str, suffix: str) -> str:
    """`name` as a file name in the shelf: its last part, only letters, digits, _ . -, no leading
    dot, ending in `suffix`."""
    stem = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name).lstrip(".")
    stem = stem[: -len(suffix)] if stem.endswith(suffix) else Path(stem).stem
    return (stem.strip("_.-")[:100] or "vectors") + suffix


def shelve(path: str | os.PathLike[str], shelf: Path, limits: Limits, *, name: str | None = None) -> Shelved:
    """Check a vectors file (NAME.npy with NAME.vocab beside it) wholly against `limits`, then copy it
    into `shelf` under a safe form of `name`; nothing lands there for a file that is refused.

    Every row is read, so a malformed file is refused here rather than when a run is trained. A name
    taken by another file gets a number; the same file again keeps its place.
    """
    path = Path(path)
    if path.suffix not in SHELF_SUFFIXES:
        raise VectorsError(
            f"{path.name}: a vectors file is word2vec/GloVe text (.txt, .vec) or .npy with its .vocab"
        )
    files, megabytes = _sized(path, limits, "upload_mb", lambda f: f"{f.name}: upload it with {path.name}")
    words = read_vectors(path, limits=limits)
    digest = fingerprint(path)
    shelf.mkdir(parents=True, exist_ok=True)
    base = safe_name(name or path.name, path.suffix)
    target = shelf / base
    for n in range(2, 1000):
        if not target.exists() or (
            all(f.is_file() for f in _files(target)) and fingerprint(target) == digest
        ):
            break
        target = shelf / f"{Path(base).stem}-{n}{path.suffix}"
    else:
        raise VectorsError(f"the vectors folder holds too many files named like {base}")
    added = not target.exists()
    if added:
        held = sum(f.stat().st_size for f in shelf.iterdir() if f.is_file()) / 2**20
        limits.check("shelf_mb", round(held + megabytes, 1), "the vectors folder with this file (MB)")
    if added:  # the .vocab first: a .npy is listed only once both are in place
        for source, dest in reversed(list(zip(files, _files(target), strict=True))):
            partial = dest.with_name(f".{dest.name}.{os.getpid()}.part")
            shutil.copyfile(source, partial)
            os.replace(partial, dest)
    return Shelved(target.name, words.dim, len(words.words), added)
