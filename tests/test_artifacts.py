"""Model directories: exact round trip, atomic writes, refusals with a clear message, no pickle."""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import toy_rows
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lstm_demo.artifacts import (
    CONFIG,
    METRICS,
    MODEL_FILES,
    TOKENIZER,
    WEIGHTS,
    load_model_dir,
    parameter_shapes,
    read_weight_shapes,
    refit_summary,
    save_model_dir,
)
from lstm_demo.config import ModelConfig, PreprocessConfig, RunConfig, TokenizerConfig
from lstm_demo.model import TextClassifier
from lstm_demo.tokenization import TextEncoder
from lstm_demo.train import predict_logits

TEXTS = [text for text, _ in toy_rows(60, seed=0)]
PROBE = ["great film and fun acting", "dull plot", "never seen words", "the the the the the the the"]


def _encoder(texts: list[str] = TEXTS) -> TextEncoder:
    return TextEncoder.train(texts, PreprocessConfig(), TokenizerConfig())


def _saved(directory: Path) -> tuple[RunConfig, TextEncoder, TextClassifier]:
    encoder = _encoder()
    cfg = RunConfig(
        model=ModelConfig(
            embedding_dim=8,
            hidden_size=6,
            bidirectional=True,
            pooling="attention",
            vocab_size=encoder.vocab_size,
            num_classes=3,
        ),
        labels=("a", "b", "c"),
        preset="fast",
    )
    torch.manual_seed(0)
    model = TextClassifier(cfg.model).eval()
    save_model_dir(directory, cfg, encoder, model, {"val": {"accuracy": 0.5}})
    return cfg, encoder, model


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, RunConfig, TextEncoder, TextClassifier]:
    directory = tmp_path_factory.mktemp("runs") / "run1"
    return (directory, *_saved(directory))


@pytest.fixture
def copy(saved, tmp_path) -> Path:
    """A private copy of the saved directory, for a test to damage."""
    return Path(shutil.copytree(saved[0], tmp_path / "run"))


def _logits(model: TextClassifier, encoder: TextEncoder) -> torch.Tensor:
    return predict_logits(model, encoder.encode_batch(PROBE))


def test_save_then_load_gives_identical_predictions(saved):
    directory, cfg, encoder, model = saved
    loaded = load_model_dir(directory)
    assert loaded.config == cfg and loaded.labels == ("a", "b", "c")
    assert loaded.metrics == {"val": {"accuracy": 0.5}}
    assert not loaded.model.training and loaded.device == torch.device("cpu")
    assert loaded.encoder.encode_batch(PROBE) == encoder.encode_batch(PROBE)
    assert torch.equal(_logits(loaded.model, loaded.encoder), _logits(model, encoder))


def test_a_model_directory_holds_exactly_the_four_files(saved):
    directory = saved[0]
    assert sorted(p.name for p in directory.iterdir()) == sorted(MODEL_FILES)
    assert sorted(p.name for p in directory.parent.iterdir()) == [directory.name]  # no temporary left


def test_weights_are_safetensors_not_pickle(saved):
    path = saved[0] / WEIGHTS
    raw = path.read_bytes()
    (header_size,) = struct.unpack("<Q", raw[:8])  # safetensors: u64 header length, then JSON
    header = json.loads(raw[8 : 8 + header_size])
    assert "head.weight" in header and header["__metadata__"]["format"] == "pt"
    with safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == set(saved[3].state_dict())
    for p in saved[0].iterdir():  # neither a raw pickle nor torch.save's zip of pickles
        assert not p.read_bytes().startswith((b"\x80", b"PK\x03\x04")), p.name


def test_save_refuses_an_existing_directory(saved):
    with pytest.raises(FileExistsError, match="already exists"):
        save_model_dir(saved[0], *saved[1:], {})


def test_the_directory_appears_only_once_complete(saved, tmp_path):
    _, cfg, encoder, model = saved
    target = tmp_path / "run2"
    seen = []

    class Watching:
        def save(self, directory: Path) -> None:
            seen.append((Path(directory), target.exists()))
            encoder.save(directory)

    save_model_dir(target, cfg, Watching(), model, {})
    [(written_to, existed)] = seen
    assert written_to.parent == target.parent and written_to != target and not existed
    assert not written_to.exists() and load_model_dir(target).config == cfg


class _BrokenEncoder:
    def save(self, directory: Path) -> None:
        (Path(directory) / TOKENIZER).write_text("{half")
        raise OSError("disk full")


def test_a_failed_save_leaves_nothing_behind(saved, tmp_path):
    _, cfg, _, model = saved
    target = tmp_path / "runs" / "broken"
    with pytest.raises(OSError, match="disk full"):
        save_model_dir(target, cfg, _BrokenEncoder(), model, {})
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # the temporary directory is gone too


# ----------------------------------------------------------------------------------- refusals


def _edit_config(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        d = json.loads((directory / CONFIG).read_text())
        change(d)
        (directory / CONFIG).write_text(json.dumps(d))

    return edit


def _edit_weights(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        state = load_file(str(directory / WEIGHTS))
        change(state)
        save_file(state, str(directory / WEIGHTS))

    return edit


def _other_tokenizer(directory: Path) -> None:
    (directory / TOKENIZER).unlink()
    _encoder(TEXTS + ["entirely", "new", "words"]).save(directory)


DAMAGE = [
    *[
        pytest.param(lambda d, name=name: (d / name).unlink(), rf"has no {name}", id=f"missing-{name}")
        for name in MODEL_FILES
    ],
    pytest.param(
        lambda d: (d / CONFIG).write_text("{not json"),
        "config.json is not a valid run configuration",
        id="corrupt-config",
    ),
    pytest.param(
        lambda d: (d / CONFIG).write_text("[1, 2]"),
        "config.json is not a valid run configuration",
        id="config-not-an-object",
    ),
    pytest.param(
        _edit_config(lambda c: c["tokenizer"].update(kind="bpe")),
        "tokenizer.json holds a WordLevel model but the run's tokenizer kind is 'bpe'",
        id="tokenizer-kind",
    ),
    pytest.param(
        _edit_config(lambda c: c.update(extra=1)), "unknown configuration key 'extra'", id="unknown-key"
    ),
    pytest.param(
        _edit_config(lambda c: c["model"].update(depth=3)),
        r"unknown ModelConfig keys: \['depth'\]",
        id="unknown-model-key",
    ),
    pytest.param(
        _edit_config(lambda c: c.update(labels=["a", "b"])),
        "2 labels but num_classes=3",
        id="labels-vs-classes",
    ),
    pytest.param(
        _edit_config(lambda c: c["model"].update(hidden_size=7)),
        r"encoder\.rnn\.\w+ has shape .*the config needs",
        id="other-shape-config",
    ),
    pytest.param(
        _edit_weights(lambda s: s.update({"head.weight": torch.zeros(4, 12)})),
        r"head\.weight has shape \(4, 12\)",
        id="other-shape-weights",
    ),
    pytest.param(
        _edit_weights(lambda s: s.update({"head.extra": torch.zeros(1)})),
        r"extra \['head\.extra'\]",
        id="extra-tensor",
    ),
    pytest.param(
        _edit_weights(lambda s: s.pop("head.bias")), r"missing \['head\.bias'\]", id="missing-tensor"
    ),
    pytest.param(
        _edit_weights(lambda s: s["head.bias"].fill_(float("nan"))), r"head\.bias holds NaN", id="nan-weights"
    ),
    pytest.param(
        _edit_weights(lambda s: s.update({"head.bias": s["head.bias"].double()})),
        r"head\.bias has shape .*float64",
        id="other-dtype",
    ),
    pytest.param(
        lambda d: (d / WEIGHTS).write_bytes(b"\x80\x04not safetensors"),
        "not a valid safetensors file",
        id="pickle-weights",
    ),
    pytest.param(
        _other_tokenizer, r"tokenizer\.json has \d+ tokens, the model expects \d+", id="tokenizer-vocab"
    ),
    pytest.param(
        lambda d: (d / TOKENIZER).write_text("[]"),
        "tokenizer.json is not a valid tokenizer",
        id="corrupt-tokenizer",
    ),
    pytest.param(
        lambda d: (d / METRICS).write_text("{"), "metrics.json is not valid JSON", id="corrupt-metrics"
    ),
]


@pytest.mark.parametrize("damage, message", DAMAGE)
def test_load_refuses_a_damaged_directory_with_a_clear_message(copy, damage, message):
    damage(copy)
    with pytest.raises(ValueError, match=message) as info:
        load_model_dir(copy)
    assert any(name in str(info.value) for name in MODEL_FILES)  # says which file is at fault


def test_load_refuses_a_missing_directory(tmp_path):
    with pytest.raises(ValueError, match="has no config.json"):
        load_model_dir(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "refit, summary",
    [
        pytest.param(
            {"epochs": 3, "rows": 120, "seconds": 1.5, "history": []},
            {"epochs": 3, "rows": 120, "seconds": 1.5},
            id="whole",
        ),  # fmt: skip
        pytest.param({"epochs": 3}, None, id="rows-missing"),
        pytest.param({"epochs": 3, "rows": "120", "seconds": 1.5}, None, id="rows-a-string"),
        pytest.param({"epochs": True, "rows": 120, "seconds": 1.5}, None, id="epochs-a-bool"),
        pytest.param([3, 120], None, id="not-a-record"),
        pytest.param(None, None, id="no-refit"),
    ],
)
def test_a_refit_is_reported_whole_or_not_at_all(refit, summary):
    """A hand-edited bundle's partial refit record must not reach the Runs tab or the model card."""
    assert refit_summary({"refit": refit}) == summary


# ------------------------------------------------------------------ measuring before loading


def test_weight_shapes_from_the_header_agree_with_the_model_and_its_config(saved):
    directory, cfg, _, model = saved
    shapes = read_weight_shapes(directory / WEIGHTS)
    assert shapes == {name: tuple(t.shape) for name, t in model.state_dict().items()}
    assert parameter_shapes(cfg.model) == shapes


def _safetensors(header: object, data: bytes = b"", length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
HEADERS = [
    pytest.param(b"\x01\x02", "too short", id="too-short"),
    pytest.param(
        _safetensors({}, length=2**40), "header length 1099511627776 is impossible", id="header-length"
    ),
    pytest.param(_safetensors(b"{not json"), "its header is not JSON", id="not-json"),
    pytest.param(_safetensors([1]), "its header is not an object", id="not-an-object"),
    pytest.param(_safetensors({"w": {"dtype": "F32"}}), "malformed header entry", id="entry"),
    pytest.param(_safetensors({"w": {**F32, "dtype": "I64"}}, bytes(8)), "only float weights", id="integers"),
    pytest.param(_safetensors({"w": {**F32, "shape": [2.0]}}, bytes(8)), "malformed shape", id="float-shape"),
    pytest.param(_safetensors({"w": {**F32, "shape": [3]}}, bytes(8)), "wrong size", id="wrong-size"),
    pytest.param(_safetensors({"w": F32}, bytes(4)), "points outside the file", id="outside"),
    pytest.param(_safetensors({"w": F32, "v": F32}, bytes(8)), "tensors overlap", id="overlap"),
]


@pytest.mark.parametrize("content, message", HEADERS)
def test_a_malformed_safetensors_header_is_refused(content, message, tmp_path):
    path = tmp_path / WEIGHTS
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_weight_shapes(path)


def test_a_well_formed_header_gives_each_shape(tmp_path):
    path = tmp_path / WEIGHTS
    path.write_bytes(
        _safetensors(
            {"__metadata__": {"format": "pt"}, "w": F32, "b": {**F32, "data_offsets": [8, 16]}}, bytes(16)
        )
    )
    assert read_weight_shapes(path) == {"w": (2,), "b": (2,)}
