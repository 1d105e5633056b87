"""Bundles: a real trained run exported, imported into a second installation, and hostile bundles refused.

One tiny run is trained once for the module (about two seconds on a CPU); every bad bundle is
built from the good one, so each case changes exactly one thing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import stat
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from lstm_demo import bundle_import
from lstm_demo.artifacts import CONFIG, METRICS, TOKENIZER, WEIGHTS
from lstm_demo.bundle import CARD, RUN_JSON, BundleError
from lstm_demo.config import LIMIT_TABLE, AppSettings, Limits, ModelConfig, RunConfig, model_megabytes
from lstm_demo.model import TextClassifier
from lstm_demo.service import Service
from lstm_demo.store import RunSummary

GOOD = "sunny bright warm happy joyful glad lovely cheerful".split()
BAD = "rainy dark cold sad gloomy grim awful dreary".split()
PROBES = ["sunny warm happy day", "cold dark gloomy night", "warm but rainy"]
# The opening bytes of a pickle (protocol 4 framing + GLOBAL builtins...), written out by hand:
# no pickle is ever created or loaded by these tests.
PICKLE_BYTES = b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94."


def _service(home: Path) -> Service:
    return Service(AppSettings.from_env({"LSTM_DEMO_HOME": str(home)}))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    """An installation with one completed run trained on 60 rows of two clearly different classes."""
    root = tmp_path_factory.mktemp("source")
    rng = random.Random(0)
    with open(root / "weather.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(60):
            words, label = (GOOD, "good") if i % 2 else (BAD, "bad")
            writer.writerow([" ".join(rng.choices(words, k=6)), label])
    svc = _service(root / "home")
    *_, last = svc.train(root / "weather.csv", preset_name="fast", overrides={"train__epochs": 2})
    assert last.run is not None and last.run.status == "completed"
    yield svc, last.run.id
    svc.close()


@pytest.fixture(scope="module")
def good_bundle(source: tuple[Service, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    svc, run_id = source
    return svc.export(run_id, tmp_path_factory.mktemp("export") / "run.zip")


@pytest.fixture(scope="module")
def members(good_bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(good_bundle) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A second, separate installation that bundles are imported into."""
    svc = _service(tmp_path_factory.mktemp("target") / "home")
    yield svc
    svc.close()


def _import(svc: Service, path: Path, **caps: int) -> RunSummary:
    return bundle_import.import_run(
        svc.store, svc.settings.runs_dir, path, limits=svc.settings.limits, **caps
    )


def _snapshot(svc: Service) -> tuple[set[str], list[str]]:
    """What a refused import must leave unchanged: the run ids and every entry of the runs directory."""
    return {r.id for r in svc.runs()}, sorted(os.listdir(svc.settings.runs_dir))


def _zip(
    entries: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED
) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name" is the point of one case
        with zipfile.ZipFile(buf, "w", compression=compression) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return buf.getvalue()


def _replace(members: dict[str, bytes], **changes: bytes | None) -> bytes:
    """The good bundle with some members replaced (a bytes value) or dropped (None)."""
    names = {
        "config": CONFIG,
        "tokenizer": TOKENIZER,
        "weights": WEIGHTS,
        "metrics": METRICS,
        "run": RUN_JSON,
    }
    changed = {names[k]: v for k, v in changes.items()}
    return _zip([(n, changed.get(n, d)) for n, d in members.items() if changed.get(n, d) is not None])


def _with(members: dict[str, bytes], *extra: tuple[str | zipfile.ZipInfo, bytes]) -> bytes:
    return _zip([*members.items(), *extra])


def _weights(members: dict[str, bytes], edit: Callable[[dict[str, torch.Tensor]], None]) -> bytes:
    state = load_safetensors(members[WEIGHTS])
    edit(state)
    return save_safetensors(state)


def _nan(state: dict[str, torch.Tensor]) -> None:
    state["head.bias"][0] = float("nan")


def _config(members: dict[str, bytes], **model: Any) -> bytes:
    """The bundle's config.json with some model sizes changed."""
    cfg = json.loads(members[CONFIG])
    cfg["model"].update(model)
    return json.dumps(cfg).encode()


def _weights_for(members: dict[str, bytes], **model: Any) -> bytes:
    """Fresh weights of the bundle's model with some sizes changed (same vocabulary and labels)."""
    cfg = RunConfig.from_dict(json.loads(members[CONFIG]))
    other = TextClassifier(ModelConfig(**{**cfg.to_dict()["model"], **model}))
    return save_safetensors({k: v.contiguous() for k, v in other.state_dict().items()})


def _integer_weights(members: dict[str, bytes]) -> bytes:
    return _weights(members, lambda s: s.update({"head.bias": s["head.bias"].to(torch.int64)}))


def _bigger_vocab(members: dict[str, bytes]) -> bytes:
    tok = json.loads(members[TOKENIZER])
    tok["model"]["vocab"]["zzzextra"] = len(tok["model"]["vocab"])
    return json.dumps(tok).encode()


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _bad_crc(members: dict[str, bytes]) -> bytes:
    """Stored (uncompressed) so the weights' bytes can be found and one of them flipped."""
    data = bytearray(_zip(list(members.items()), zipfile.ZIP_STORED))
    at = data.find(members[WEIGHTS][5000:5032]) + 7
    data[at] ^= 0xFF
    return bytes(data)


def _bomb(members: dict[str, bytes]) -> bytes:
    metrics = b" " * (8 * 2**20) + members[METRICS]  # valid JSON, ~1000:1 under deflate
    return _replace(members, metrics=metrics)


BAD_BUNDLES: list[tuple[str, Callable[[dict[str, bytes], bytes], bytes], dict, str]] = [
    ("truncated", lambda m, good: good[: len(good) // 2], {}, "not a zip archive"),
    ("not a zip", lambda m, good: b"text,label\nhello,good\n", {}, "not a zip archive"),
    ("damaged data", lambda m, good: _bad_crc(m), {}, "damaged zip archive"),
    ("pickle member", lambda m, good: _with(m, ("model.pkl", PICKLE_BYTES)), {}, "pickle or code"),
    ("torch checkpoint", lambda m, good: _with(m, ("model.pt", PICKLE_BYTES)), {}, "pickle or code"),
    ("python file", lambda m, good: _with(m, ("loader.py", b"import os")), {}, "pickle or code"),
    ("weights are a pickle", lambda m, good: _replace(m, weights=PICKLE_BYTES), {}, "not a safetensors"),
    ("integer weights", lambda m, good: _replace(m, weights=_integer_weights(m)), {}, "only float weights"),
    ("path traversal", lambda m, good: _with(m, ("../evil", b"x")), {}, "unsafe path"),
    ("absolute path", lambda m, good: _with(m, ("/tmp/evil", b"x")), {}, "absolute path"),
    ("directory", lambda m, good: _with(m, ("extra/", b"")), {}, "directory"),
    ("unexpected file", lambda m, good: _with(m, ("notes.txt", b"hi")), {}, "unexpected file 'notes.txt'"),
    (
        "symlink member",
        lambda m, good: _zip([(n, d) for n, d in m.items() if n != CONFIG] + [(_symlink(CONFIG), b"/etc")]),
        {},
        "symbolic link",
    ),
    ("duplicate member", lambda m, good: _with(m, (CONFIG, m[CONFIG])), {}, "'config.json' twice"),
    ("missing file", lambda m, good: _replace(m, tokenizer=None), {}, "missing tokenizer.json"),
    ("oversized", lambda m, good: good, {"max_bytes": 1000}, "larger than the limit of 1,000"),
    ("too many members", lambda m, good: good, {"max_members": 3}, "more than the limit of 3"),
    ("too big unpacked", lambda m, good: good, {"max_total_bytes": 10_000}, "unpacks to"),
    ("zip bomb", lambda m, good: _bomb(m), {}, "compression ratio"),
    (
        "config.json larger than a document",
        lambda m, good: _replace(m, config=b" " * 16 * 2**20 + m[CONFIG]),
        {},
        r"'config.json' unpacks to 16,7[\d,]+ bytes, more than the limit of 16,777,216",
    ),
    ("config not JSON", lambda m, good: _replace(m, config=b"{not json"), {}, "not a valid run config"),
    (
        "weights of another config",
        lambda m, good: _replace(m, weights=_weights_for(m, hidden_size=16)),
        {},
        "shape",
    ),
    (
        "config larger than its weights",
        lambda m, good: _replace(m, config=_config(m, hidden_size=1024)),
        {},
        r"weight_ih_l0 has shape \(192, 48\), the config needs \(4096, 48\)",
    ),
    ("size not whole", lambda m, good: _replace(m, config=_config(m, hidden_size=48.0)), {}, "whole number"),
    (
        "config over a limit",
        lambda m, good: _replace(m, config=_config(m, embedding_dim=10**6)),
        {},
        "model.embedding_dim is 1000000, over the limit of 1,024",
    ),
    (
        "tokenizer vocab size",
        lambda m, good: _replace(m, tokenizer=_bigger_vocab(m)),
        {},
        "the model expects",
    ),
    ("NaN weights", lambda m, good: _replace(m, weights=_weights(m, _nan)), {}, "NaN"),
    ("run.json curve", lambda m, good: _replace(m, run=b'{"curve": "up"}'), {}, "'curve' must be a list"),
]


@pytest.mark.parametrize(
    ("build", "caps", "message"),
    [pytest.param(build, caps, message, id=case) for case, build, caps, message in BAD_BUNDLES],
)
def test_bad_bundles_are_refused_and_leave_nothing_behind(
    build: Callable[[dict[str, bytes], bytes], bytes],
    caps: dict,
    message: str,
    members: dict[str, bytes],
    good_bundle: Path,
    target: Service,
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.zip"
    path.write_bytes(build(members, good_bundle.read_bytes()))
    before = _snapshot(target)
    with pytest.raises(BundleError, match=message):
        _import(target, path, **caps)
    assert _snapshot(target) == before


def test_export_then_import_elsewhere_predicts_identically(
    source: tuple[Service, str], good_bundle: Path, members: dict[str, bytes], target: Service
) -> None:
    svc, run_id = source
    assert set(members) == {CONFIG, TOKENIZER, WEIGHTS, METRICS, RUN_JSON, CARD}
    assert [p.name for p in good_bundle.parent.iterdir()] == ["run.zip"]  # no temporary file left

    imported = target.import_bundle(good_bundle)
    assert imported.id == run_id and imported.status == "completed"
    assert Path(imported.model_dir) == target.settings.runs_dir / run_id
    expected = [p.probabilities for p in svc.predict(run_id, PROBES)]
    assert [p.probabilities for p in target.predict(imported.id, PROBES)] == expected

    original, copy = svc.run(run_id), target.run(imported.id)
    assert copy.summary.val_accuracy == original.summary.val_accuracy
    assert copy.summary.epochs_run == original.summary.epochs_run == 2
    assert copy.summary.created == original.summary.created
    assert [(p.epoch, p.kind, p.train_loss) for p in copy.curve] == [
        (p.epoch, p.kind, p.train_loss) for p in original.curve
    ]
    assert copy.dataset is not None and copy.dataset.label_counts == {"bad": 30, "good": 30}

    again = target.import_bundle(good_bundle)  # the id is taken now: a new one
    assert again.id != run_id
    assert [p.probabilities for p in target.predict(again.id, PROBES)] == expected


def test_run_json_and_card_are_optional(
    source: tuple[Service, str], members: dict[str, bytes], target: Service, tmp_path: Path
) -> None:
    svc, run_id = source
    path = tmp_path / "bare.zip"
    path.write_bytes(_zip([(n, d) for n, d in members.items() if n not in (RUN_JSON, CARD)]))
    imported = target.import_bundle(path)
    assert imported.status == "completed" and imported.epochs_run == 2 and imported.dataset_name is None
    assert target.run(imported.id).curve == ()
    expected = [p.probabilities for p in svc.predict(run_id, PROBES)]
    assert [p.probabilities for p in target.predict(imported.id, PROBES)] == expected


def test_model_card_describes_the_run(members: dict[str, bytes], source: tuple[Service, str]) -> None:
    card = members[CARD].decode()
    val = source[0].run(source[1]).summary.val_accuracy
    for needed in ("preset `fast`", "LSTM", "hidden size 48", "max pooling", "`bad`, `good`", "weather.csv"):
        assert needed in card
    assert "60 rows" in card and f"{100 * val:.1f}%" in card and "| bad |" in card
    assert "no pretrained knowledge" in card and "lstm-demo import" in card


def test_export_refuses_a_run_without_a_model(source: tuple[Service, str], tmp_path: Path) -> None:
    svc = source[0]
    failed = svc.store.create_run(config={}, preset="fast", dataset_id=None, status="failed")
    with pytest.raises(BundleError, match="only a completed run"):
        svc.export(failed.id, tmp_path / "x.zip")
    assert not list(tmp_path.iterdir())
    svc.store.delete_run(failed.id)


# A child process that imports a bundle under a cap on its address space (RLIMIT_AS).
CAPPED_IMPORT = """
import resource, sys
cap = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from lstm_demo import cli
sys.exit(cli.main(["import", sys.argv[1]]))
"""


def test_a_config_claiming_a_huge_model_is_refused_before_anything_is_built(
    members: dict[str, bytes], tmp_path: Path
) -> None:
    """Built, this model would need about 14 GB; refused, the import fits in 1.5 GB of address space."""
    path = tmp_path / "huge.zip"
    path.write_bytes(_replace(members, config=_config(members, hidden_size=30000)))
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "LSTM_DEMO_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", CAPPED_IMPORT, str(path), str(1536 * 2**20)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr  # a refusal (bad input), not a crash or a MemoryError
    assert "model.hidden_size is 30000, over the limit of 1,024 (set LSTM_DEMO_MAX_HIDDEN_SIZE" in done.stderr
    assert list((home / "runs").iterdir()) == []


def _model_limits(members: dict[str, bytes]) -> list[tuple[str, dict[str, bytes], int]]:
    """(limit, bundle members, the bundle's figure for that limit) for each size of a model."""
    cfg = RunConfig.from_dict(json.loads(members[CONFIG]))
    two_layers = {
        **members,
        CONFIG: _config(members, num_layers=2),
        WEIGHTS: _weights_for(members, num_layers=2),
    }
    return [
        ("embedding_dim", members, cfg.model.embedding_dim),
        ("hidden_size", members, cfg.model.hidden_size),
        ("num_layers", two_layers, 2),
        ("vocab_size", members, max(cfg.model.vocab_size, cfg.tokenizer.vocab_size)),
        ("classes", members, cfg.model.num_classes),
    ]


@pytest.mark.parametrize("inside", [True, False], ids=["just inside", "just outside"])
@pytest.mark.parametrize(
    "index", range(5), ids=["embedding_dim", "hidden_size", "num_layers", "vocab", "classes"]
)
def test_each_model_size_meets_its_limit(
    index: int, inside: bool, members: dict[str, bytes], tmp_path: Path
) -> None:
    limit, bundle_members, figure = _model_limits(members)[index]
    path = tmp_path / "run.zip"
    path.write_bytes(_zip(list(bundle_members.items())))
    bound = figure if inside else figure - 1
    svc = Service(
        AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path / "home"), LIMIT_TABLE[limit][1]: str(bound)})
    )
    try:
        if inside:
            assert svc.import_bundle(path).status == "completed"
        else:
            with pytest.raises(
                BundleError, match=f"is {figure}, over the limit of {bound:,} .set {LIMIT_TABLE[limit][1]}"
            ):
                svc.import_bundle(path)
            assert svc.runs() == [] and os.listdir(svc.settings.runs_dir) == []
    finally:
        svc.close()


@pytest.mark.parametrize("inside", [True, False], ids=["just inside", "just outside"])
def test_the_models_memory_meets_its_limit(
    inside: bool, members: dict[str, bytes], good_bundle: Path, tmp_path: Path
) -> None:
    megabytes = round(model_megabytes(RunConfig.from_dict(json.loads(members[CONFIG])).model), 1)
    bound = megabytes if inside else megabytes - 0.001
    settings = AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path / "home")})
    svc = Service(replace(settings, limits=Limits(model_mb=bound)))
    try:
        if inside:
            assert svc.import_bundle(good_bundle).status == "completed"
        else:
            with pytest.raises(BundleError, match=rf"the model \(MB\) is {megabytes}, over the limit"):
                svc.import_bundle(good_bundle)
    finally:
        svc.close()


@pytest.mark.parametrize(
    ("wanted", "kept"),
    [
        (lambda stored: stored[:8], False),  # a prefix of the stored id
        (lambda stored: stored + "ab", False),  # the stored id is its prefix
        (lambda stored: "zz" + stored, True),
    ],
    ids=["prefix of a stored id", "has a stored id as prefix", "unrelated"],
)
def test_an_imported_id_never_shadows_a_stored_ones_abbreviation(
    wanted: Callable[[str], str], kept: bool, members: dict[str, bytes], good_bundle: Path, tmp_path: Path
) -> None:
    svc = _service(tmp_path / "home")
    try:
        stored = svc.import_bundle(good_bundle).id
        doc = json.loads(members[RUN_JSON])
        doc["run"]["id"] = wanted(stored)
        path = tmp_path / "renamed.zip"
        path.write_bytes(_replace(members, run=json.dumps(doc).encode()))
        imported = svc.import_bundle(path)
        assert (imported.id == wanted(stored)) is kept and imported.id != stored
        assert svc.resolve(stored[:8]) == stored and svc.resolve(imported.id) == imported.id
        assert sorted(os.listdir(svc.settings.runs_dir)) == sorted([stored, imported.id])
    finally:
        svc.close()


def test_a_tokenizer_larger_than_its_vocabulary_limit_allows_is_refused_unread(
    members: dict[str, bytes], tmp_path: Path
) -> None:
    svc = Service(
        AppSettings.from_env({"LSTM_DEMO_HOME": str(tmp_path / "home"), "LSTM_DEMO_MAX_VOCAB": "5000"})
    )
    try:
        path = tmp_path / "fat.zip"
        path.write_bytes(
            _replace(members, tokenizer=members[TOKENIZER] + b" " * 3 * 2**20)
        )  # still valid JSON
        with pytest.raises(
            BundleError, match=r"'tokenizer.json' unpacks to [\d,]+ bytes, more than the limit of 2,328,576"
        ):
            svc.import_bundle(path)
        assert svc.import_bundle(_written(tmp_path / "lean.zip", members)).status == "completed"
    finally:
        svc.close()


def _written(path: Path, members: dict[str, bytes]) -> Path:
    path.write_bytes(_zip(list(members.items())))
    return path
