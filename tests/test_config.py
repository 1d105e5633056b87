"""Typed settings: presets, the JSON round trip a saved run relies on, validation and the environment."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from lstm_demo import config as config_module
from lstm_demo.config import (
    LIMIT_TABLE,
    PRESETS,
    AppSettings,
    LimitError,
    Limits,
    ModelConfig,
    PreprocessConfig,
    RunConfig,
    TokenizerConfig,
    TrainConfig,
    model_megabytes,
    override,
    preset,
)
from lstm_demo.model import TextClassifier

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_a_model_and_survives_json(name):
    cfg = preset(name)
    assert cfg.preset == name
    TextClassifier(replace(cfg.model, vocab_size=50, num_classes=3))
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_seed_preset_is_the_design_notes_keras_model():
    cfg = PRESETS["seed"]
    m, t = cfg.model, cfg.train
    assert (m.encoder, m.embedding_dim, m.hidden_size, m.num_layers) == ("lstm", 128, 128, 1)
    assert (m.embedding_dropout, m.recurrent_dropout, m.variational_dropout) == (0.2, 0.2, True)
    assert m.pooling == "last" and not m.bidirectional
    assert (t.batch_size, t.epochs, t.learning_rate) == (64, 10, 1e-3)
    assert t.patience == 0  # Keras trains all 10 epochs
    assert cfg.tokenizer.kind == "word"


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="unknown preset 'huge'.*seed"):
        preset("huge")


def test_run_config_round_trips_through_json():
    cfg = preset(
        "default",
        preprocess__stem=True,
        tokenizer__kind="bpe",
        model__encoder="gru",
        model__vocab_size=1234,
        model__num_classes=3,
        train__epochs=3,
        labels=("a", "b", "c"),
        text_column="review",
    )
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["labels"] == ["a", "b", "c"]
    back = RunConfig.from_dict(d)
    assert back == cfg
    assert isinstance(back.labels, tuple) and isinstance(back.model, ModelConfig)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(colour="blue"), "unknown configuration key 'colour'"),
        (lambda d: d["model"].update(hidden=3), r"unknown ModelConfig keys: \['hidden'\]"),
        (lambda d: d["train"].update(lr=0.1), r"unknown TrainConfig keys: \['lr'\]"),
        (lambda d: d.update(tokenizer="word"), "TokenizerConfig must be an object"),
        (lambda d: d["model"].update(pooling="sum"), "pooling must be one of"),
    ],
)
def test_from_dict_rejects_what_to_dict_never_writes(mutate, message):
    d = RunConfig().to_dict()
    mutate(d)
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(d)


BAD_VALUES = [  # (settings class, one bad value); the error must name the option
    (PreprocessConfig, {"max_length": 0}),
    (TokenizerConfig, {"kind": "char"}),
    (TokenizerConfig, {"vocab_size": 3}),
    (TokenizerConfig, {"min_frequency": 0}),
    (ModelConfig, {"encoder": "transformer"}),
    (ModelConfig, {"pooling": "sum"}),
    (ModelConfig, {"embedding_init": "xavier"}),
    (ModelConfig, {"embedding_dim": 0}),
    (ModelConfig, {"hidden_size": 0}),
    (ModelConfig, {"num_layers": 0}),
    (ModelConfig, {"embedding_dropout": 1.0}),
    (ModelConfig, {"dropout": -0.1}),
    (ModelConfig, {"recurrent_dropout": 1.5}),
    (TrainConfig, {"batch_size": 0}),
    (TrainConfig, {"epochs": 0}),
    (TrainConfig, {"val_fraction": 0.0}),
    (TrainConfig, {"val_fraction": 0.95}),
    (TrainConfig, {"monitor": "val_loss"}),
    (TrainConfig, {"packing": "ragged"}),
    (TrainConfig, {"learning_rate": 0.0}),
    # accepted today, then fail (or misbehave) only once training runs:
    (TrainConfig, {"log_every": 0}),  # `step % 0` in train.py
    (TrainConfig, {"patience": -1}),
    (TrainConfig, {"label_smoothing": 1.5}),
    (TrainConfig, {"weight_decay": -1.0}),
    (TrainConfig, {"vectors": "v" * 5000}),
    (TrainConfig, {"freeze_vectors": True}),  # without vectors
    (TrainConfig, {"vectors_sha256": "abc"}),
]


@pytest.mark.parametrize(
    "cls, kwargs", BAD_VALUES, ids=[f"{c.__name__}.{next(iter(kw))}" for c, kw in BAD_VALUES]
)
def test_bad_values_raise_a_value_error_naming_the_option(cls, kwargs):
    option = next(iter(kwargs))
    with pytest.raises(ValueError, match=rf"\b{option}\b"):
        cls(**kwargs)


def test_override_replaces_fields_by_section_and_leaves_the_rest():
    base = PRESETS["fast"]
    cfg = override(base, train__epochs=3, model__encoder="gru", train__seed=None, labels=("x", "y"))
    assert cfg.train.epochs == 3 and cfg.model.encoder == "gru" and cfg.labels == ("x", "y")
    assert cfg.train.seed == base.train.seed  # None means "not given" (unset CLI flags)
    assert replace(cfg, train=base.train, model=base.model, labels=()) == base
    assert base.train.epochs == 8  # the preset itself is untouched


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"optimizer__lr": 1}, "unknown configuration section 'optimizer'"),
        ({"train__lr": 1}, r"unknown option train\.lr"),
        ({"labels__x": 1}, "unknown configuration section 'labels'"),
        ({"train__epochs": 0}, "epochs"),
        ({"train__refit": "maybe"}, r"train\.refit must be true or false, got 'maybe'"),
        ({"train__refit": 1}, r"train\.refit must be true or false"),
        ({"model__hidden_size": "abc"}, r"model\.hidden_size must be a whole number, got 'abc'"),
        ({"train__epochs": 2.5}, r"train\.epochs must be a whole number"),
        ({"train__epochs": True}, r"train\.epochs must be a whole number"),
        ({"train__learning_rate": "fast"}, r"train\.learning_rate must be a number"),
        ({"model__encoder": 3}, r"model\.encoder must be a string"),
    ],
)
def test_override_refuses_unknown_options_and_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        override(RunConfig(), **overrides)


def test_override_takes_a_whole_number_where_a_number_is_asked():
    cfg = override(RunConfig(), train__learning_rate=1, train__adversarial=0)
    assert cfg.train.learning_rate == 1.0 and isinstance(cfg.train.learning_rate, float)
    assert cfg.train.adversarial == 0.0


@pytest.mark.parametrize("value", [[], None, "seed", 3])
def test_from_dict_rejects_a_document_that_is_not_an_object(value):
    with pytest.raises(ValueError, match="must be a JSON object"):
        RunConfig.from_dict(value)


# ------------------------------------------------------------------------- the environment

HOME = str(Path.home() / ".lstm-demo")


@pytest.mark.parametrize(
    "env, expected",
    [
        (
            {},
            dict(
                home=Path(HOME),
                db_url=f"sqlite:///{HOME}/lstm-demo.sqlite3",
                host="127.0.0.1",
                port=7860,
                auth=None,
                limits=Limits(),
                device="auto",
                share=False,
            ),
        ),
        (
            {"LSTM_DEMO_HOME": "/data/x"},
            dict(home=Path("/data/x"), db_url="sqlite:////data/x/lstm-demo.sqlite3"),
        ),
        ({"LSTM_DEMO_HOME": ""}, dict(home=Path(HOME))),
        ({"LSTM_DEMO_DB_URL": "postgresql://u@h/db"}, dict(db_url="postgresql://u@h/db")),
        ({"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "8080"}, dict(host="0.0.0.0", port=8080)),
        ({"LSTM_DEMO_HOST": "10.0.0.1", "LSTM_DEMO_PORT": "9000"}, dict(host="10.0.0.1", port=9000)),
        (  # Gradio's own variables win, as a Docker image or Spaces sets them
            {
                "GRADIO_SERVER_NAME": "0.0.0.0",
                "LSTM_DEMO_HOST": "10.0.0.1",
                "GRADIO_SERVER_PORT": "1",
                "LSTM_DEMO_PORT": "2",
            },
            dict(host="0.0.0.0", port=1),
        ),
        ({"LSTM_DEMO_USERNAME": "ada", "LSTM_DEMO_PASSWORD": "s3cret"}, dict(auth=("ada", "s3cret"))),
        (
            {"LSTM_DEMO_MAX_UPLOAD_MB": "2.5", "LSTM_DEMO_MAX_ROWS": "1000"},
            dict(limits=Limits(upload_mb=2.5, rows=1000)),
        ),
        ({"LSTM_DEMO_DEVICE": "cpu"}, dict(device="cpu")),
        ({"LSTM_DEMO_SHARE": "1"}, dict(share=True)),
        ({"LSTM_DEMO_SHARE": "true"}, dict(share=True)),
        ({"LSTM_DEMO_SHARE": "no"}, dict(share=False)),
    ],
)
def test_settings_from_env(env, expected):
    settings = AppSettings.from_env(env)
    assert {name: getattr(settings, name) for name in expected} == expected


def test_settings_from_an_explicit_env_ignore_the_process_environment(monkeypatch):
    monkeypatch.setenv("LSTM_DEMO_SHARE", "1")
    monkeypatch.setenv("LSTM_DEMO_PORT", "1234")
    settings = AppSettings.from_env({})
    assert (settings.share, settings.port) == (False, 7860)


def test_settings_runs_dir_is_under_home(tmp_path):
    assert AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path)}).runs_dir == tmp_path / "runs"


@pytest.mark.parametrize(
    "env",
    [
        {"LSTM_DEMO_USERNAME": "ada"},
        {"LSTM_DEMO_PASSWORD": "s3cret"},
        {"LSTM_DEMO_USERNAME": "ada", "LSTM_DEMO_PASSWORD": ""},
    ],
)
def test_auth_needs_both_username_and_password(env):
    with pytest.raises(ValueError, match="LSTM_DEMO_USERNAME and LSTM_DEMO_PASSWORD"):
        AppSettings.from_env(env)


@pytest.mark.parametrize(
    "name, value",
    [
        ("GRADIO_SERVER_PORT", "http"),
        ("LSTM_DEMO_PORT", "80a"),
        ("LSTM_DEMO_MAX_ROWS", "lots"),
        ("LSTM_DEMO_MAX_UPLOAD_MB", "50MB"),
        ("LSTM_DEMO_TRAINING_NICE", "low"),
        ("LSTM_DEMO_TRAINING_NICE", "20"),
        ("LSTM_DEMO_TRAINING_NICE", "-5"),  # raising the child above the app is not this setting's to do
    ],
)
def test_a_malformed_number_names_its_variable(name, value):
    with pytest.raises(ValueError, match=name):
        AppSettings.from_env({name: value})


def _settings_variables() -> set[str]:
    source = Path(config_module.__file__).read_text(encoding="utf-8")
    names = set(re.findall(r"""["']((?:LSTM_DEMO|GRADIO)_[A-Z_]+)["']""", source))
    assert len(names) >= 10, names  # the pattern still finds what from_env reads
    return names


def test_every_environment_variable_is_documented_in_the_readme():
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("README.md does not exist yet, so there is no configuration table to check")
    text = readme.read_text(encoding="utf-8")
    table = [line for line in text.splitlines() if line.lstrip().startswith("|")]
    undocumented = sorted(n for n in _settings_variables() if not any(n in line for line in table))
    assert not undocumented, f"README.md's configuration table does not list {undocumented}"


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(Limits)])
def test_every_limit_is_set_by_its_variable_and_documented(name):
    default, variable, _ = LIMIT_TABLE[name]
    assert getattr(Limits(), name) == default
    raised = type(default)(default * 2)
    assert getattr(AppSettings.from_env({variable: str(raised)}).limits, name) == raised
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"`{variable}`" in readme, f"{variable} is missing from the README's configuration table"


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "many"])
def test_a_limit_must_be_a_positive_finite_number(value):
    with pytest.raises(ValueError, match="LSTM_DEMO_MAX_HIDDEN_SIZE"):
        AppSettings.from_env({"LSTM_DEMO_MAX_HIDDEN_SIZE": value})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model__hidden_size": 1024}, None),
        ({"model__hidden_size": 1025}, "model.hidden_size is 1025, over the limit of 1,024"),
        ({"model__embedding_dim": 10**6}, "model.embedding_dim"),
        ({"model__num_layers": 8}, None),
        ({"model__num_layers": 9}, "model.num_layers"),
        ({"preprocess__max_length": 1025}, "preprocess.max_length"),
        ({"tokenizer__vocab_size": 200_001}, "tokenizer.vocab_size"),
        ({"train__epochs": 500}, None),
        ({"train__epochs": 10**9}, "train.epochs"),
        ({"train__batch_size": 4097}, "train.batch_size"),
        (
            {
                "tokenizer__vocab_size": 200_000,
                "model__embedding_dim": 1024,
                "model__hidden_size": 1024,
                "model__num_layers": 8,
            },
            "the model \\(MB\\)",
        ),
    ],
)
def test_a_run_configuration_is_checked_against_the_limits(overrides, message):
    cfg = preset("default", **overrides)
    if message is None:
        Limits().check_config(cfg)
    else:
        with pytest.raises(LimitError, match=message):
            Limits().check_config(cfg)


@pytest.mark.parametrize(
    "option, value",
    [
        ("train__learning_rate", float("inf")),
        ("train__learning_rate", float("nan")),
        ("train__learning_rate", 1e6),
        ("train__weight_decay", float("nan")),
        ("train__adversarial", 1e9),
        ("train__adversarial", float("nan")),
        ("train__grad_clip", float("inf")),
        ("train__grad_clip", -1.0),
        ("train__seed", 2**70),
        ("train__seed", -1),
        ("train__patience", 10**6),
        ("model__dropout", float("nan")),
    ],
)
def test_non_finite_negative_and_huge_options_are_refused(option, value):
    with pytest.raises(ValueError, match=option.split("__")[1]):
        preset("default", **{option: value})


def test_model_megabytes_matches_the_parameters_of_a_built_model():
    cfg = preset("default", model__vocab_size=1000, model__num_classes=3, model__num_layers=2)
    n = sum(p.numel() for p in TextClassifier(cfg.model).parameters())
    assert model_megabytes(cfg.model) == pytest.approx(n * 4 / 2**20, rel=1e-9)
