"""Pretrained vectors read offline, bounded and checked, and turned into an embedding for a vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lstm_demo.config import LimitError, Limits
from lstm_demo.vectors import (
    VectorsError,
    embedding_matrix,
    load_into,
    ppmi_svd,
    read_vectors,
    write_vectors,
)

GLOVE = "the 0.1 0.2 0.3\ngood 1.0 1.5 -2.0\nBad -1.0 -1.5 2.0\ngood 9 9 9\n"
VOCAB = ["[PAD]", "[UNK]", "the", "good", "bad", "plot"]


def write(tmp_path: Path, text: str, name: str = "vectors.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_glove_and_word2vec_text_alike(tmp_path: Path) -> None:
    glove = read_vectors(write(tmp_path, GLOVE))
    word2vec = read_vectors(write(tmp_path, "4 3\n" + GLOVE, "w2v.txt"))

    assert glove.words == word2vec.words == ("the", "good", "Bad")  # the first row of a word wins
    assert glove.dim == 3
    assert torch.equal(glove.vectors, word2vec.vectors)
    assert glove.vectors[1].tolist() == [1.0, 1.5, -2.0]


def test_keeps_only_the_vocabulary_words(tmp_path: Path) -> None:
    vectors = read_vectors(write(tmp_path, GLOVE), vocabulary={"good", "bad"})
    assert vectors.words == ("good", "Bad")  # "Bad" matches "bad" in a lowercased vocabulary


def test_a_word_may_hold_a_space(tmp_path: Path) -> None:
    vectors = read_vectors(write(tmp_path, "new york 0.5 0.25\nthe 1 2\n"))
    assert vectors.words == ("new york", "the") and vectors.vectors[0].tolist() == [0.5, 0.25]


def test_embedding_matrix_uses_vectors_where_found_and_reports_coverage(tmp_path: Path) -> None:
    vectors = read_vectors(write(tmp_path, GLOVE))
    matrix, coverage = embedding_matrix(vectors, VOCAB, seed=1)

    assert matrix.shape == (6, 3)
    assert matrix[3].tolist() == [1.0, 1.5, -2.0]  # good
    assert matrix[4].tolist() == [-1.0, -1.5, 2.0]  # bad, from "Bad"
    assert matrix[0].abs().sum() == 0  # [PAD]
    assert matrix[5].abs().max() > 0  # plot: random, at the vectors' scale
    assert (coverage.found, coverage.total, coverage.missing) == (3, 4, ("plot",))
    assert str(coverage) == "pretrained vectors cover 3 of 4 vocabulary entries (75%)"
    again, _ = embedding_matrix(vectors, VOCAB, seed=1)
    assert torch.equal(matrix, again)


def test_load_into_copies_and_freezes_or_refuses_a_wrong_shape(tmp_path: Path) -> None:
    matrix, _ = embedding_matrix(read_vectors(write(tmp_path, GLOVE)), VOCAB)
    embedding = torch.nn.Embedding(6, 3, padding_idx=0)

    load_into(embedding, matrix, freeze=True)

    assert torch.equal(embedding.weight.detach(), matrix) and not embedding.weight.requires_grad
    with pytest.raises(VectorsError, match="set model.embedding_dim to 3"):
        load_into(torch.nn.Embedding(6, 8), matrix)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("the 0.1 0.2 0.3\ngood 1.0 1.5\n", "line 2 has 2 numbers, expected 3"),
        ("the 0.1 0.2 0.3\ngood 1.0 1.5 2 3\n", "line 2 has 4 numbers, expected 3"),
        ("the 0.1 0.2 0.3\ngood 1.0 x 2\n", "line 2: 'x' is not a number"),
        ("the 0.1 nan 0.3\n", "line 1 holds a NaN or infinite value"),
        ("1 3\nthe 0.1 0.2 0.3\ngood 1 2 3\n", "line 3: the header promises only 1 rows"),
        ("\n\n", "holds no vectors"),
    ],
)
def test_malformed_files_get_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(VectorsError, match=message):
        read_vectors(write(tmp_path, text))


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("café 0.1 0.2\n".encode("latin-1"))
    with pytest.raises(VectorsError, match="not UTF-8"):
        read_vectors(path)


def test_limits_are_checked_before_reading_the_rows(tmp_path: Path) -> None:
    # the header's dimension is refused before any row is parsed (row 2 is malformed on purpose)
    with pytest.raises(LimitError, match="dimension of .* over the limit of 8.*LSTM_DEMO_MAX_EMBEDDING_DIM"):
        read_vectors(write(tmp_path, "2 300\nthe oops\n"), limits=Limits(embedding_dim=8))
    big = write(tmp_path, "the 0.1\n" * 40_000, "big.txt")
    with pytest.raises(LimitError, match="LSTM_DEMO_MAX_UPLOAD_MB"):
        read_vectors(big, limits=Limits(upload_mb=0.1))
    many = write(tmp_path, "".join(f"w{i} 0.5\n" for i in range(20)), "many.txt")
    with pytest.raises(LimitError, match="LSTM_DEMO_MAX_VOCAB"):
        read_vectors(many, limits=Limits(vocab_size=10))
    assert len(read_vectors(many, vocabulary={"w1", "w2"}, limits=Limits(vocab_size=10)).words) == 2


def test_ppmi_svd_places_words_of_one_context_together_and_round_trips(tmp_path: Path) -> None:
    texts = ["the film was great and fun", "the film was superb and fun", "a great superb fun film"] * 20
    texts += ["the food was cold and bland", "the food was stale and bland", "a cold stale bland meal"] * 20
    vectors = ppmi_svd(texts, dim=4, min_count=1)
    v = dict(zip(vectors.words, torch.nn.functional.normalize(vectors.vectors, dim=1), strict=True))

    assert (v["great"] @ v["superb"]) > (v["great"] @ v["stale"])
    back = read_vectors(write_vectors(vectors, tmp_path / "ppmi.txt"))
    assert back.words == vectors.words
    assert torch.allclose(back.vectors, vectors.vectors, atol=1e-4)


def test_ppmi_svd_refuses_too_little_text() -> None:
    with pytest.raises(VectorsError, match="too few"):
        ppmi_svd(["one two three"], dim=10, min_count=1)
