"""Pretrained vectors read offline, bounded and checked, and turned into an embedding for a vocabulary."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import THREAD, toy_rows, toy_sequences, toy_vocab_size, write_toy_csv

from lstm_demo.config import AppSettings, LimitError, Limits, preset
from lstm_demo.service import Service
from lstm_demo.train import train
from lstm_demo.vectors import (
    VectorsError,
    WordVectors,
    configure,
    dimension,
    fingerprint,
    lookup,
    ppmi_svd,
    read_vectors,
    shelf_names,
    shelve,
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


def test_lookup_takes_the_vocabularys_rows_and_reports_coverage(tmp_path: Path) -> None:
    pretrained = lookup(read_vectors(write(tmp_path, GLOVE)), VOCAB, source="glove.txt")

    assert pretrained.ids.tolist() == [2, 3, 4]  # the, good, bad ("Bad" lowercased); never [PAD]/[UNK]
    assert pretrained.vectors[1].tolist() == [1.0, 1.5, -2.0]
    assert (pretrained.coverage.found, pretrained.coverage.total) == (3, 4)
    assert pretrained.coverage.missing == ("plot",)
    assert pretrained.note == (
        "pretrained vectors (glove.txt, 3 dimensions, fine-tuned) cover 3 of 4 vocabulary entries (75%)"
        "; none for plot"
    )


def test_apply_copies_known_rows_keeps_the_init_for_the_rest_and_freezes(tmp_path: Path) -> None:
    pretrained = lookup(read_vectors(write(tmp_path, GLOVE)), VOCAB, freeze=True)
    embedding = torch.nn.Embedding(6, 3, padding_idx=0)
    before = embedding.weight.detach().clone()

    pretrained.apply(embedding)

    assert embedding.weight[3].tolist() == [1.0, 1.5, -2.0]
    assert torch.equal(embedding.weight[[0, 1, 5]], before[[0, 1, 5]])  # [PAD], [UNK], plot: the init
    assert not embedding.weight.requires_grad


def test_a_dimension_mismatch_names_both_numbers(tmp_path: Path) -> None:
    pretrained = lookup(read_vectors(write(tmp_path, GLOVE)), VOCAB, source="glove.txt")
    with pytest.raises(
        VectorsError, match="glove.txt holds 3-dimensional vectors but model.embedding_dim is 8"
    ):
        pretrained.apply(torch.nn.Embedding(6, 8))


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
    with pytest.raises(LimitError, match="LSTM_DEMO_MAX_VECTORS_MB"):
        read_vectors(big, limits=Limits(vectors_mb=0.1))
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


# ---------------------------------------------------------------------------- the .npy format


def test_npy_with_its_vocabulary_reads_as_the_text_format_does(tmp_path: Path) -> None:
    text = read_vectors(write(tmp_path, GLOVE))
    npy = write_vectors(text, tmp_path / "glove.npy")

    assert (tmp_path / "glove.vocab").read_text(encoding="utf-8") == "the\ngood\nBad\n"
    back = read_vectors(npy)
    assert back.words == text.words and torch.equal(back.vectors, text.vectors)
    assert read_vectors(npy, vocabulary={"bad"}).words == ("Bad",)
    assert dimension(npy, Limits()) == 3


def npy_header_only(path: Path, shape: tuple[int, ...], dtype: str = "<f4") -> Path:
    """A .npy file whose header declares `shape` but which holds (almost) no data."""
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})
        f.write(b"\0" * 16)
    path.with_suffix(".vocab").write_text("a\nb\n", encoding="utf-8")
    return path


def test_npy_limits_are_checked_from_the_header_before_anything_is_allocated(tmp_path: Path) -> None:
    with pytest.raises(LimitError, match="dimension of huge.npy is 100000, over the limit of 1,024"):
        read_vectors(npy_header_only(tmp_path / "huge.npy", (10**9, 100_000)))
    with pytest.raises(VectorsError, match="declares 1000000000 x 8 values but its size does not match"):
        read_vectors(npy_header_only(tmp_path / "rows.npy", (10**9, 8)))


@pytest.mark.parametrize(
    ("shape", "dtype", "message"),
    [
        ((2, 2), "|O", "must hold a 2-D float array"),  # objects would need unpickling: never
        ((2, 2), "<i8", "must hold a 2-D float array"),
        ((4,), "<f4", "not 1-D"),
    ],
)
def test_npy_that_is_not_a_float_matrix_is_refused(tmp_path: Path, shape, dtype, message) -> None:
    with pytest.raises(VectorsError, match=message):
        read_vectors(npy_header_only(tmp_path / "odd.npy", shape, dtype))


def test_npy_and_its_vocabulary_must_agree(tmp_path: Path) -> None:
    npy = write_vectors(read_vectors(write(tmp_path, GLOVE)), tmp_path / "v.npy")
    (tmp_path / "v.vocab").write_text("the\ngood\n", encoding="utf-8")
    with pytest.raises(VectorsError, match="v.vocab has 2 words but v.npy has 3 rows"):
        read_vectors(npy)
    (tmp_path / "v.vocab").unlink()
    with pytest.raises(VectorsError, match="no vectors file at v.vocab"):
        read_vectors(npy)


# ---------------------------------------------------------------------------- a run's vectors


def test_configure_takes_the_vectors_size_and_fingerprint(tmp_path: Path) -> None:
    path = write(tmp_path, "2 3\n" + GLOVE.split("good 9")[0])
    cfg = configure(preset("default", train__vectors=str(path)), Limits(), shelf=tmp_path, anywhere=True)

    assert cfg.model.embedding_dim == 3  # the preset's 128 gives way to the vectors'
    assert cfg.train.vectors == str(path.resolve()) and cfg.train.vectors_sha256 == fingerprint(path)
    assert configure(preset("default"), Limits(), shelf=tmp_path) == preset("default")  # no vectors


def test_configure_refuses_an_embedding_size_the_person_set_otherwise(tmp_path: Path) -> None:
    cfg = preset("default", train__vectors=str(write(tmp_path, GLOVE)), model__embedding_dim=64)
    with pytest.raises(VectorsError, match="holds 3-dimensional vectors but model.embedding_dim is 64"):
        configure(cfg, Limits(), shelf=tmp_path, anywhere=True)


def test_configure_refuses_a_file_that_is_not_the_fingerprinted_one(tmp_path: Path) -> None:
    cfg = preset("default", train__vectors=str(write(tmp_path, GLOVE)), train__vectors_sha256="0" * 64)
    with pytest.raises(VectorsError, match="not the vectors file this configuration was trained with"):
        configure(cfg, Limits(), shelf=tmp_path, anywhere=True)


def test_configure_refuses_an_oversized_file_before_reading_it(tmp_path: Path) -> None:
    cfg = preset("default", train__vectors=str(write(tmp_path, "the 0.1\n" * 40_000)))
    with pytest.raises(LimitError, match="LSTM_DEMO_MAX_VECTORS_MB"):
        configure(cfg, Limits(vectors_mb=0.1), shelf=tmp_path, anywhere=True)


@pytest.mark.parametrize("name", ["../secret.txt", "/etc/hostname", "", "sub/../../secret.txt"])
def test_an_option_from_the_app_names_only_a_file_in_its_vectors_folder(tmp_path: Path, name: str) -> None:
    shelf = tmp_path / "vectors"
    shelf.mkdir()
    write(tmp_path, GLOVE, "secret.txt")
    write(shelf, GLOVE, "glove.txt")

    assert (
        configure(preset("default", train__vectors="glove.txt"), Limits(), shelf=shelf).model.embedding_dim
        == 3
    )
    if name:
        with pytest.raises(VectorsError, match="names a file in the app's vectors folder"):
            configure(preset("default", train__vectors=name), Limits(), shelf=shelf)


def test_freezing_without_vectors_is_refused() -> None:
    with pytest.raises(ValueError, match="freeze_vectors and vectors_sha256 need a vectors file"):
        preset("default", train__freeze_vectors=True)


# ---------------------------------------------------------------------------- training from vectors


def _trained(freeze: bool) -> tuple[torch.Tensor, torch.nn.Embedding]:
    """A toy training from vectors for every cue id; returns the rows it started from and its embedding."""
    seqs, ys = toy_sequences(60, seed=0)
    vocabulary = ["[PAD]", "[UNK]", *(f"w{i}" for i in range(2, toy_vocab_size()))]
    words = WordVectors(
        tuple(vocabulary[2:12]), torch.randn(10, 8, generator=torch.Generator().manual_seed(0))
    )
    pretrained = lookup(words, vocabulary, freeze=freeze)
    cfg = preset(
        "fast", labels=("a", "b"), model__num_classes=2, model__vocab_size=len(vocabulary),
        model__embedding_dim=8, model__hidden_size=8, train__epochs=2, train__adversarial=0.2,
        train__ema_decay=0.9, train__device="cpu",
    )  # fmt: skip
    reports = list(train(cfg, seqs[:50], ys[:50], seqs[50:], ys[50:], pretrained=pretrained))
    assert reports[-1].kind == "done", reports[-1].message
    return pretrained.vectors, reports[-1].result.model.embedding


def test_frozen_vectors_are_unchanged_by_training_and_the_kept_model_takes_gradients() -> None:
    start, embedding = _trained(freeze=True)
    assert torch.equal(embedding.weight.detach()[2:12], start)
    assert embedding.weight.requires_grad  # explanations differentiate through the kept model


def test_fine_tuned_vectors_move() -> None:
    start, embedding = _trained(freeze=False)
    assert not torch.allclose(embedding.weight.detach()[2:12], start)


def test_a_refit_run_from_the_apps_vectors_folder_notes_its_coverage_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "vectors").mkdir(parents=True)
    csv = write_toy_csv(tmp_path / "train.csv", n=60)
    texts = [row[0] for row in toy_rows(60)]
    write_vectors(ppmi_svd(texts, dim=8, min_count=1), home / "vectors" / "toy.npy")
    svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(home), **THREAD}))
    try:
        options = {
            "train__vectors": "toy.npy", "train__freeze_vectors": True, "train__epochs": 1, "train__refit": True
        }  # fmt: skip
        events = list(svc.train(csv, preset_name="fast", overrides=options))
        run = svc.run(events[-1].run_id)
        with pytest.raises(ValueError, match="vectors folder"):
            svc.prepare(csv, preset_name="fast", overrides={"train__vectors": str(csv)})
    finally:
        svc.shutdown()

    assert run.summary.status == "completed", run.summary.error
    [note] = [n for n in run.metrics["notes"] if n.startswith("pretrained vectors")]  # the refit's, alone
    assert note.startswith("pretrained vectors (toy.npy, 8 dimensions, frozen) cover 24 of 24 vocabulary")
    assert run.config["model"]["embedding_dim"] == 8
    # stored, shown and exported by its name in the vectors folder: no server path leaves the server
    saved = json.loads((Path(run.summary.model_dir) / "config.json").read_text())
    for config in (run.config, saved):
        assert config["train"]["vectors"] == "toy.npy" and len(config["train"]["vectors_sha256"]) == 64
    assert run.config["train"]["vectors_sha256"] == fingerprint(home / "vectors" / "toy.npy")


# ---------------------------------------------------------------------------- the app's vectors folder


@pytest.mark.parametrize(
    "name, shelved",
    [
        ("glove.6B.50d.txt", "glove.6B.50d.txt"),
        ("../x", "x.txt"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..", "vectors.txt"),
        (".hidden.txt", "hidden.txt"),
        ("sub\\..\\my vectors!.txt", "my_vectors.txt"),
    ],
)
def test_an_uploaded_file_joins_the_folder_under_a_safe_name(tmp_path: Path, name: str, shelved: str) -> None:
    shelf = tmp_path / "home" / "vectors"
    added = shelve(write(tmp_path, GLOVE, "upload.txt"), shelf, Limits(), name=name)

    assert (added.name, added.dim, added.words, added.added) == (shelved, 3, 3, True)
    assert shelf_names(shelf) == [shelved] and [p.name for p in shelf.iterdir()] == [shelved]
    assert (
        configure(preset("default", train__vectors=shelved), Limits(), shelf=shelf).model.embedding_dim == 3
    )


@pytest.mark.parametrize(
    "name, text, limits, message",
    [
        ("short.txt", "the 0.1 0.2 0.3\ngood 1.0 1.5\n", Limits(), "line 2 has 2 numbers, expected 3"),
        ("words.txt", "the 0.1 0.2 0.3\ngood 1.0 x 2\n", Limits(), "'x' is not a number"),
        ("big.txt", GLOVE * 2000, Limits(upload_mb=0.01), "LSTM_DEMO_MAX_UPLOAD_MB"),
        ("wide.txt", GLOVE, Limits(embedding_dim=2), "LSTM_DEMO_MAX_EMBEDDING_DIM"),
        ("table.csv", GLOVE, Limits(), "word2vec/GloVe text (.txt, .vec) or .npy with its .vocab"),
    ],
)
def test_a_refused_upload_leaves_nothing_in_the_folder(
    tmp_path: Path, name: str, text: str, limits: Limits, message: str
) -> None:
    shelf = tmp_path / "vectors"
    with pytest.raises(ValueError, match=re.escape(message)):
        shelve(write(tmp_path, text, name), shelf, limits)
    assert shelf_names(shelf) == [] and not (shelf.exists() and any(shelf.iterdir()))


def test_a_name_taken_by_another_file_gets_a_number_and_the_same_file_keeps_its_place(tmp_path: Path) -> None:
    shelf = tmp_path / "vectors"
    first = shelve(write(tmp_path, GLOVE, "a.txt"), shelf, Limits(), name="glove.txt")
    again = shelve(write(tmp_path, GLOVE, "b.txt"), shelf, Limits(), name="glove.txt")
    other = shelve(
        write(tmp_path, "3 3\n" + GLOVE.split("good 9")[0], "c.txt"), shelf, Limits(), name="glove.txt"
    )

    assert (first.name, first.added) == ("glove.txt", True)
    assert (again.name, again.added) == ("glove.txt", False)  # a second upload of the same file
    assert (other.name, other.added) == ("glove-2.txt", True)  # the first stays as runs fingerprinted it
    assert shelf_names(shelf) == ["glove-2.txt", "glove.txt"]


def test_uploads_cannot_fill_the_disk_the_folder_is_bounded_as_a_whole(tmp_path: Path) -> None:
    shelf = tmp_path / "vectors"
    big = "\n".join(f"w{i} " + " ".join(["0.123456"] * 50) for i in range(300)) + "\n"  # ~0.1 MB each
    limits = Limits(shelf_mb=0.25)
    kept = [shelve(write(tmp_path, big.replace("w", x), f"{x}.txt"), shelf, limits) for x in "ab"]
    with pytest.raises(LimitError, match="LSTM_DEMO_MAX_SHELF_MB"):
        shelve(write(tmp_path, big.replace("w", "c"), "c.txt"), shelf, limits)
    assert shelf_names(shelf) == [k.name for k in kept] == ["a.txt", "b.txt"]
    assert (
        shelve(write(tmp_path, big.replace("w", "a"), "again.txt"), shelf, limits, name="a.txt").name
        == "a.txt"
    )


def test_the_service_takes_a_npy_and_its_vocab_uploaded_apart(tmp_path: Path) -> None:
    upload = tmp_path / "one" / "wiki.npy"
    upload.parent.mkdir()
    write_vectors(read_vectors(write(tmp_path, GLOVE)), upload)
    vocab = tmp_path / "two" / "words.vocab"  # each upload arrives in a folder of its own
    vocab.parent.mkdir()
    upload.with_suffix(".vocab").rename(vocab)
    svc = Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path / "home"), **THREAD}))
    try:
        with pytest.raises(VectorsError, match="no vectors file wiki.vocab: upload it with wiki.npy"):
            svc.add_vectors(upload)
        assert svc.vectors_files() == []
        added = svc.add_vectors(upload, vocab=vocab)
        assert (added.name, added.dim, added.words) == ("wiki.npy", 3, 3)
        assert svc.vectors_files() == ["wiki.npy"]
        shelved = svc.settings.vectors_dir / "wiki.npy"
        assert shelved.read_bytes() == upload.read_bytes()
        assert shelved.with_suffix(".vocab").read_text() == vocab.read_text() == "the\ngood\nBad\n"
        assert not any(svc.scratch_dir().parent.rglob("*.npy"))  # the staging folder is gone
    finally:
        svc.shutdown()
