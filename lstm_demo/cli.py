"""`lstm-demo`: the command line, a thin layer over `service`.

Bad input exits non-zero with one clear line on stderr; `--debug` shows the traceback.
With `--json` the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

from . import yardstick
from .config import ENCODERS, PRESETS, parse_budget
from .names import DELTA_TOLERANCE, METHOD_ALIASES, METHODS, method_key

EXIT_USAGE = 2


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if is_dataclass(o):
        return asdict(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"cannot serialise {type(o).__name__}")


def _emit(obj: Any) -> None:
    print(json.dumps(obj, default=_json_default, ensure_ascii=False))


def _service():
    from .service import Service  # heavy imports only when a command needs them

    return Service()


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


# ---------------------------------------------------------------------------- commands


def _settings(items: list[str]) -> dict[str, Any]:
    """`--set section__name=value` pairs; a value is read as JSON when it can be (true, 3, 0.5)."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or "__" not in key:
            raise ValueError(f"--set takes SECTION__NAME=VALUE, such as train__refit=true; got {item!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def cmd_train(args: argparse.Namespace) -> int:
    svc = _service()
    from .trials import trial_of  # an `auto` run's trials arrive as progress reports

    overrides = {
        "train__epochs": args.epochs,
        "train__seed": args.seed,
        "train__device": args.device,
        "train__batch_size": args.batch_size,
        "train__nproc": args.nproc,
        "model__encoder": args.encoder,
        "train__budget": parse_budget(args.budget) if args.budget else None,
        "train__vectors": args.vectors,
        "train__freeze_vectors": True if args.freeze_vectors else None,
        **_settings(args.set),
    }
    events = svc.train(
        args.train_csv,
        test_path=args.test,
        val_path=args.val,
        text_column=args.text_col,
        label_column=args.label_col,
        preset_name=args.preset,
        overrides=overrides,
        name=args.name,
        local=True,
    )
    last = None
    for event in events:
        last = event
        p = event.progress
        if (trial := trial_of(p)) is not None and trial.state != "running" and not args.quiet:
            print(_trial_line(trial), file=sys.stderr)
        elif p.kind == "start" and not args.quiet:
            print(f"run {event.run_id}: {p.message}", file=sys.stderr)
        elif p.kind == "epoch" and p.phase == "refit" and not args.quiet:
            print(
                f"refit epoch {p.epoch}/{p.epochs}  loss {p.train_loss:.4f}  "
                f"{p.tokens_per_second:,.0f} tok/s  eta {p.eta_seconds:.0f}s",
                file=sys.stderr,
            )
        elif p.kind == "epoch" and not args.quiet:
            print(
                f"epoch {p.epoch}/{p.epochs}  loss {p.train_loss:.4f}  val_loss {p.val_loss:.4f}  "
                f"val_acc {_pct(p.val_accuracy)}  val_f1 {_pct(p.val_macro_f1)}  "
                f"{p.tokens_per_second:,.0f} tok/s  eta {p.eta_seconds:.0f}s",
                file=sys.stderr,
            )
    assert last is not None and last.run is not None
    if last.run.status != "completed":
        why = f": {last.run.error}" if last.run.error else ""  # a failed run says why (a diverged loss)
        print(f"run {last.run_id} {last.run.status}{why}", file=sys.stderr)
        return 1
    # the saved figures: the same whether the model trained here or in torchrun's processes
    result = svc.load(last.run_id).metrics
    refit = result["refit"]
    out = {
        "run_id": last.run_id,
        "status": last.run.status,
        "val_accuracy": result["val"]["accuracy"],
        "val_macro_f1": result["val"]["macro_f1"],
        "test_accuracy": result["test"]["accuracy"] if result["test"] else None,
        "test_macro_f1": result["test"]["macro_f1"] if result["test"] else None,
        "best_epoch": result["best_epoch"],
        "epochs_run": result["epochs_run"],
        "refit_epochs": refit["epochs"] if refit else 0,
        "train_seconds": result["train_seconds"],
        "seconds_per_epoch": result["seconds_per_epoch"],
        "tokens_per_second": result["tokens_per_second"],
        "device": result["device"],
        "world_size": result["world_size"],
        "model_dir": last.run.model_dir,
        **yardstick.json_figures(result),
        **_search_figures(result),
        "vectors": _vectors_note(result),
    }
    if args.json:
        _emit(out)
    else:
        test = (
            f"  test_acc {_pct(out['test_accuracy'])}  test_f1 {_pct(out['test_macro_f1'])}"
            if result["test"]
            else ""
        )
        print(
            f"run {out['run_id']}  val_acc {_pct(out['val_accuracy'])}  val_f1 {_pct(out['val_macro_f1'])}{test}  "
            f"best epoch {out['best_epoch']}/{out['epochs_run']}  {out['seconds_per_epoch']:.2f} s/epoch on {out['device']}"
            + (f" in {out['world_size']} processes" if out["world_size"] > 1 else "")
        )
        if refit:
            print(f"refit on all {refit['rows']} training rows for {refit['epochs']} epochs")
        if verdict := yardstick.verdict(result):
            print(verdict)
        if out["vectors"]:
            print(out["vectors"])
        print(f"model saved in {out['model_dir']}")
    return 0


def _vectors_note(metrics: dict[str, Any]) -> str | None:
    """The run's note on its pretrained vectors (file, dimensions, coverage), None without vectors."""
    from .vectors import NOTE_START

    return next((n for n in metrics.get("notes") or [] if n.startswith(NOTE_START)), None)


def _trial_line(t: Any) -> str:
    value = "-" if t.value is None else f"{abs(t.value):.4f}"
    best = "" if t.best_number is None else f"  best #{t.best_number} {abs(t.best_value):.4f}"
    return f"trial {t.number} {t.state}  {value}  {t.epochs} epochs  {t.elapsed:.0f}s{best}"


def _search_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """An `auto` run's search in the JSON result (trial count and the chosen trial); {} for other runs."""
    found = metrics.get("search")
    if not found:
        return {}
    return {"search_trials": len(found["trials"]), "search_best_trial": found["best_trial"],
            "search_budget_seconds": found["budget_seconds"]}  # fmt: skip


def cmd_predict(args: argparse.Namespace) -> int:
    svc = _service()
    [pred] = svc.predict(args.run_id, [args.text])
    if args.json:
        _emit({"run_id": svc.resolve(args.run_id), **pred.to_dict()})
    else:
        print(pred.label)
        for label, p in sorted(pred.probabilities.items(), key=lambda kv: -kv[1]):
            print(f"  {label:<20} {p:.4f}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    runs = _service().runs(status=args.status)
    if args.json:
        _emit([asdict(r) for r in runs])
        return 0
    if not runs:
        print("no runs yet: train one with `lstm-demo train FILE.csv`")
        return 0
    print(
        f"{'run':<13} {'status':<11} {'preset':<8} {'dataset':<22} {'val_acc':>7} {'test_acc':>8} {'epochs':>6}  created"
    )
    for r in runs:
        print(
            f"{r.id:<13} {r.status:<11} {r.preset:<8} {(r.dataset_name or '-')[:22]:<22} "
            f"{_pct(r.val_accuracy):>7} {_pct(r.test_accuracy):>8} {r.epochs_run or '-':>6}  "
            f"{r.created:%Y-%m-%d %H:%M}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    detail = _service().run(args.run_id)
    if args.json:
        _emit(asdict(detail))
        return 0
    s = detail.summary
    print(f"run {s.id}  {s.status}  preset {s.preset}  dataset {s.dataset_name}  device {s.device}")
    print(
        f"val acc {_pct(s.val_accuracy)}  val F1 {_pct(s.val_macro_f1)}  test acc {_pct(s.test_accuracy)}  "
        f"test F1 {_pct(s.test_macro_f1)}  best epoch {s.best_epoch}/{s.epochs_run}"
    )
    if verdict := yardstick.verdict(detail.metrics):
        print(verdict)
    for note in detail.metrics.get("notes") or []:
        print(f"note: {note}")
    if s.error:
        print(f"error: {s.error}")
    for p in detail.curve:
        if p.kind == "epoch":
            print(
                f"  epoch {p.epoch:>3}  loss {p.train_loss:.4f}  val_acc {_pct(p.val_accuracy)}  val_f1 {_pct(p.val_macro_f1)}"
            )
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    s = _service().delete(args.run_id)
    print(f"deleted run {s.id}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    path = _service().export(args.run_id, args.out)
    print(f"exported to {path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    s = _service().import_bundle(args.bundle)
    print(f"imported as run {s.id}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    report = _service().doctor(repair=not args.dry_run)
    if args.json:
        _emit(report)
    else:
        for line in report["lines"]:
            print(line)
    return 0 if report["ok"] or not args.dry_run else 1


def cmd_explain(args: argparse.Namespace) -> int:
    methods = [method_key(m) for m in args.method]
    svc = _service()
    svc.limits.check("ig_steps", args.steps, "--steps")
    exp = svc.explain(args.run_id, args.text, methods=methods, target=args.target, steps=args.steps)
    if args.json:
        _emit(exp.to_dict())
        return 0
    print(f"prediction: {exp.predicted}  " + "  ".join(f"{k} {v:.3f}" for k, v in exp.probabilities.items()))
    print(f"target: {exp.target}")
    for name, att in exp.attributions.items():
        verdict = "ok" if att.delta_ok else f"OVER {DELTA_TOLERANCE:.0%}"
        delta = "" if att.delta is None else f"  delta {att.delta:+.4f} ({verdict})"
        print(f"[{name}]{delta}  baseline: {att.baseline}")
        for word, score in zip(exp.words, att.word_scores, strict=True):
            print(f"  {word:<24} {score:+.4f}")
    return 0


def cmd_gates(args: argparse.Namespace) -> int:
    data = _service().gates(args.run_id, args.text)
    if args.json:
        _emit(data.to_dict() if hasattr(data, "to_dict") else asdict(data))
        return 0
    for layer in data.layers:
        print(f"layer {layer.layer} {layer.direction}")
        for name, values in layer.states.items():
            means = [sum(v) / len(v) for v in values]
            print(f"  {name:<10} " + " ".join(f"{m:+.2f}" for m in means))
    print("tokens: " + " ".join(data.tokens))
    return 0


def cmd_faithfulness(args: argparse.Namespace) -> int:
    svc = _service()
    svc.limits.check("faithfulness_texts", args.n, "--n")
    svc.limits.check("ig_steps", args.steps, "--steps")
    result = svc.faithfulness(args.run_id, args.test_csv, n=args.n, steps=args.steps)
    if args.json:
        _emit(result)
        return 0
    print(f"{'method':<12} {'comprehensiveness':>18} {'sufficiency':>12}")
    for method, figures in result.items():
        if isinstance(figures, dict) and "comprehensiveness" in figures:
            print(f"{method:<12} {figures['comprehensiveness']:>18.4f} {figures['sufficiency']:>12.4f}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .ui.app import launch

    launch(host=args.host, port=args.port)
    return 0


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lstm-demo", description="Train, use and understand LSTM text classifiers."
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a run on a CSV/TSV of texts and labels")
    t.add_argument("train_csv")
    t.add_argument("--test", help="a separate test file, evaluated once at the end")
    t.add_argument("--val", help="a validation file (default: a stratified split of the training file)")
    t.add_argument("--text-col")
    t.add_argument("--label-col")
    t.add_argument("--preset", default="default", choices=sorted(PRESETS))
    t.add_argument("--epochs", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument(
        "--nproc", type=int, help="processes that train together under torchrun (one per GPU on CUDA)"
    )
    t.add_argument("--encoder", choices=list(ENCODERS))
    t.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION__NAME=VALUE",
        help="any other setting, repeatable: --set train__refit=true --set model__hidden_size=256",
    )
    t.add_argument(
        "--budget", help="with --preset auto: how long to search settings before training, e.g. 90s, 10m, 1h"
    )
    t.add_argument(
        "--vectors",
        metavar="FILE",
        help="start the embedding from pretrained word vectors: word2vec/GloVe text, or NAME.npy "
        "beside NAME.vocab (its words, one per line)",
    )
    t.add_argument(
        "--freeze-vectors",
        action="store_true",
        help="with --vectors: keep the embedding as read (no fine-tuning)",
    )
    t.add_argument("--name", help="a label for the run")
    t.add_argument("--json", action="store_true")
    t.add_argument("--quiet", action="store_true", help="no per-epoch lines on stderr")
    t.set_defaults(func=cmd_train)

    q = sub.add_parser("predict", help="classify a text with a trained run")
    q.add_argument("run_id")
    q.add_argument("text")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_predict)

    r = sub.add_parser("runs", help="list the saved runs")
    r.add_argument("--status")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_runs)

    s = sub.add_parser("show", help="one run with its curve")
    s.add_argument("run_id")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_show)

    d = sub.add_parser("delete", help="delete a run and its model files")
    d.add_argument("run_id")
    d.set_defaults(func=cmd_delete)

    e = sub.add_parser("export", help="export a run as a zip bundle")
    e.add_argument("run_id")
    e.add_argument("out")
    e.set_defaults(func=cmd_export)

    i = sub.add_parser("import", help="import a bundle made by `export`")
    i.add_argument("bundle")
    i.set_defaults(func=cmd_import)

    doc = sub.add_parser("doctor", help="report and repair rows without files and files without rows")
    doc.add_argument("--dry-run", action="store_true", help="report only")
    doc.add_argument("--json", action="store_true")
    doc.set_defaults(func=cmd_doctor)

    x = sub.add_parser("explain", help="which words drove the decision")
    x.add_argument("run_id")
    x.add_argument("text")
    x.add_argument(
        "--method",
        action="append",
        choices=[*METHODS, *METHOD_ALIASES],
        help="repeat for several (default: ig)",
    )
    x.add_argument("--target", help="explain this class instead of the predicted one")
    x.add_argument("--steps", type=int, default=50, help="integration steps for ig")
    x.add_argument("--json", action="store_true")
    x.set_defaults(func=cmd_explain)

    g = sub.add_parser("gates", help="gate, cell and hidden traces per word")
    g.add_argument("run_id")
    g.add_argument("text")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_gates)

    f = sub.add_parser("faithfulness", help="ERASER comprehensiveness and sufficiency of every method")
    f.add_argument("run_id")
    f.add_argument("test_csv")
    f.add_argument("--n", type=int, default=200)
    f.add_argument("--steps", type=int, default=50)
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_faithfulness)

    v = sub.add_parser("serve", help="start the web app")
    v.add_argument("--host")
    v.add_argument("--port", type=int)
    v.set_defaults(func=cmd_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, not only before the command
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    if getattr(args, "method", None) is None and args.command == "explain":
        args.method = ["ig"]
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("lstm-demo: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one clear line for the user; the traceback only on request
        if args.debug:
            traceback.print_exc()
        else:
            print(f"lstm-demo: error: {_user_message(e)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(e, (ValueError, FileNotFoundError, LookupError)) else 1


def _user_message(e: Exception) -> str:
    if isinstance(e, FileNotFoundError):
        return f"no such file: {e.filename}"
    text = str(e) or type(e).__name__
    return (
        text.splitlines()[0] if isinstance(e, (ValueError, RuntimeError)) else f"{type(e).__name__}: {text}"
    )


if __name__ == "__main__":
    sys.exit(main())
