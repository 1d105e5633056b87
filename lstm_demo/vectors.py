"""Pretrained word vectors, offline: a word2vec/GloVe text file -> an embedding matrix for a vocabulary.

Nothing is downloaded. The file is checked against the limits before anything is allocated (its
size, then the dimension its header or first line declares) and read line by line into a flat
float32 buffer; only words of the given vocabulary are kept, so memory follows the vocabulary, not
the file. `ppmi_svd` makes vectors from the training text itself (no download, no extra
dependency), so what pretrained vectors give can be measured here.
"""

from __future__ import annotations

import math
import os
import re
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import Limits
from .names import PAD_ID, UNK_ID

MISSING_SHOWN = 10  # vocabulary words without a vector named in the coverage report
_WORD = re.compile(r"\w+|[^\w\s]+")  # the tokenizer's pre-tokenizer (Whitespace)


class VectorsError(ValueError):
    """A vectors file that cannot be used, worded for the person who uploaded it."""


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
        return (
            f"pretrained vectors cover {self.found:,} of {self.total:,} vocabulary entries ({self.share:.0%})"
        )


def read_vectors(
    path: str | os.PathLike[str],
    *,
    vocabulary: Collection[str] | None = None,
    limits: Limits | None = None,
) -> WordVectors:
    """Vectors from a word2vec text file (first line "rows dim") or a GloVe file (no header).

    With `vocabulary`, a row is kept when its word, or the word lowercased, is in it; the first row
    of a word wins. Raises `VectorsError` for a malformed file and `LimitError` for one over a limit.
    """
    limits = limits or Limits()
    path = Path(path)
    if not path.is_file():
        raise VectorsError(f"no vectors file at {path.name}")
    limits.check("upload_mb", round(path.stat().st_size / 2**20, 1), f"the vectors file {path.name} (MB)")
    words: list[str] = []
    seen: set[str] = set()
    flat = array("f")
    dim = declared_rows = 0
    rows = 0
    with path.open(encoding="utf-8", newline="") as f:
        try:
            for number, line in enumerate(f, start=1):
                parts = line.rstrip("\r\n").rstrip(" ").split(" ")
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
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
                word, values = _row(parts, dim, number, path.name)
                if word in seen or (vocabulary is not None and not _wanted(word, vocabulary)):
                    continue
                seen.add(word)
                words.append(word)
                flat.extend(values)
                if len(words) > limits.vocab_size:
                    limits.check("vocab_size", len(words), f"the words kept from {path.name}")
        except UnicodeDecodeError as e:
            raise VectorsError(f"{path.name} is not UTF-8 text ({e.reason}): save it as UTF-8") from None
    if dim == 0:
        raise VectorsError(f"{path.name} holds no vectors")
    vectors = torch.frombuffer(flat, dtype=torch.float32).clone().view(len(words), dim) if words else None
    return WordVectors(tuple(words), vectors if vectors is not None else torch.empty(0, dim))


def _check_dim(dim: int, limits: Limits, name: str) -> None:
    if dim < 1:
        raise VectorsError(f"{name} declares no dimensions")
    limits.check("embedding_dim", dim, f"the dimension of {name}")


def _row(parts: list[str], dim: int, number: int, name: str) -> tuple[str, list[float]]:
    """A word and its numbers; a word may hold spaces (GloVe 840B has some), the numbers are the last `dim`."""
    # a number where the word's second part would be is one number too many, not a word with a space
    if len(parts) < dim + 1 or (len(parts) > dim + 1 and _is_float(parts[1])):
        raise VectorsError(f"{name} line {number} has {len(parts) - 1} numbers, expected {dim}")
    word = " ".join(parts[: len(parts) - dim])
    try:
        values = [float(v) for v in parts[len(parts) - dim :]]
    except ValueError:
        bad = next(v for v in parts[len(parts) - dim :] if not _is_float(v))
        raise VectorsError(f"{name} line {number}: {bad[:20]!r} is not a number") from None
    if not all(math.isfinite(v) for v in values):
        raise VectorsError(f"{name} line {number} holds a NaN or infinite value")
    return word, values


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


def embedding_matrix(
    vectors: WordVectors, vocabulary: Sequence[str], *, seed: int = 13
) -> tuple[torch.Tensor, Coverage]:
    """(V, D) rows for `vocabulary` in id order: a word's vector (exact, else its lowercase form), else
    random. [PAD] stays zero, as the model's own initialisation leaves it.

    Random rows are drawn at the found vectors' own scale: next to vectors of norm ~5, the model's
    usual U(-0.05, 0.05) would make every unknown word look like silence.
    """
    index: dict[str, int] = {}
    for i, word in enumerate(vectors.words):
        index.setdefault(word, i)
    for i, word in enumerate(vectors.words):
        index.setdefault(word.lower(), i)
    rows = [index.get(token) for token in vocabulary]
    found = [(i, r) for i, r in enumerate(rows) if r is not None and i not in (PAD_ID, UNK_ID)]
    scale = vectors.vectors[[r for _, r in found]].std().item() if len(found) > 1 else 0.05
    generator = torch.Generator().manual_seed(seed)
    matrix = (torch.rand(len(vocabulary), vectors.dim, generator=generator) * 2 - 1) * scale * math.sqrt(3)
    for i, r in found:
        matrix[i] = vectors.vectors[r]
    matrix[PAD_ID] = 0.0
    special = {PAD_ID, UNK_ID}
    missing = tuple(t for i, t in enumerate(vocabulary) if rows[i] is None and i not in special)
    return matrix, Coverage(len(found), max(len(vocabulary) - len(special), 0), missing[:MISSING_SHOWN])


def load_into(embedding: torch.nn.Embedding, matrix: torch.Tensor, *, freeze: bool = False) -> None:
    """Copy `matrix` into a model's embedding; `freeze` keeps it from training."""
    if tuple(matrix.shape) != tuple(embedding.weight.shape):
        raise VectorsError(
            f"the vectors make a {tuple(matrix.shape)} matrix but the model's embedding is "
            f"{tuple(embedding.weight.shape)}: set model.embedding_dim to {matrix.shape[1]}"
        )
    with torch.no_grad():
        embedding.weight.copy_(matrix)
    embedding.weight.requires_grad_(not freeze)


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
    """Save in word2vec text format (what `read_vectors` reads back)."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as f:
        f.write(f"{len(vectors.words)} {vectors.dim}\n")
        for word, row in zip(vectors.words, vectors.vectors.tolist(), strict=True):
            f.write(word + " " + " ".join(f"{v:.5f}" for v in row) + "\n")
    return path
