"""The ``archsearch`` command.

``archsearch run key=value ...`` composes the Hydra config (``space=``, ``strategy=``, ``task=`` pick
options from ``search_spaces/``, ``strategies/`` and the built-in tasks) and runs a search;
``show``, ``report``, ``compare`` and ``list`` read runs and registries. Usage errors print one line and exit with status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

USAGE_ERROR = 2
INTERRUPTED = 130

RUN_HELP = """\
overrides are key=value pairs, for example:
  archsearch run space=mlp task=digits budget=20 seed=0 executor=inline run_dir=runs/demo
  archsearch run space=mlp budget=10m space.depth.high=6 training.epochs=5
  archsearch run 'objectives=[val_accuracy:max,n_params:min]'
quote a value with [ ] or { } in it: the shell may expand it otherwise.
budget is a number of candidates, training epochs (300epochs) or a duration (90s, 10m, 2h).
fidelity=asha stops the hopeless early: fidelity.min_epochs=1 fidelity.max_epochs=9 fidelity.eta=3.
`archsearch list spaces` and `archsearch list strategies` show the options;
`archsearch list spaces mlp` shows every option of one space.
"""

LISTABLE = ("spaces", "strategies", "tasks", "executors", "blocks", "activations", "norms")


def build_parser() -> argparse.ArgumentParser:
    from archsearch import __version__

    parser = argparse.ArgumentParser(prog="archsearch", description="Neural architecture search with a Pareto front "
                                     "over accuracy, parameters and latency.")
    parser.add_argument("--version", action="version", version=f"archsearch {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser("run", help="run a search", epilog=RUN_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    resume = commands.add_parser("resume", help="continue a stopped or finished run up to a new budget",
                                 epilog="e.g. archsearch resume runs/demo budget=40 executor.workers=4")
    resume.add_argument("run_dir")
    resume.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="budget=, executor.*, keep_weights=")
    resume.add_argument("--quiet", action="store_true", help="no progress bar")
    show = commands.add_parser("show", help="summary and Pareto front of a saved run")
    show.add_argument("run_dir")
    export = commands.add_parser("export", help="write a trial's genome, weights and a README to a folder")
    export.add_argument("run_dir")
    export.add_argument("trial_id", help="a trial id, or `best`: the front's best trial in the first objective")
    export.add_argument("out_dir")
    export.add_argument("--retrain", action="store_true",
                        help="train the trial again (recorded recipe and seed) if its weights were not kept")
    report = commands.add_parser("report", help="write an offline HTML report of a saved run")
    report.add_argument("run_dir")
    report.add_argument("--output", metavar="PATH", help="where to write the page (default RUN_DIR/report.html)")
    compare = commands.add_parser("compare", help="compare saved runs: hypervolume on one scale, fronts overlaid")
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    compare.add_argument("--html", metavar="OUT.html", help="also write a comparison page")
    listing = commands.add_parser("list", help="list spaces, strategies, tasks, blocks, activations, ...",
                                  epilog="e.g. archsearch list spaces kan   (every option of the kan space)")
    listing.add_argument("what", choices=LISTABLE)
    listing.add_argument("name", nargs="?", help="one space, strategy, task, executor or block: all its options")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # overrides after an option (run a=1 --quiet b=2) belong with the others
        if not hasattr(args, "overrides") or any(word.startswith("-") for word in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    if args.command is None:
        parser.print_help()
        return USAGE_ERROR
    from archsearch.errors import ArchsearchError

    try:
        commands = {"run": cmd_run, "resume": cmd_resume, "show": cmd_show, "export": cmd_export,
                    "report": cmd_report, "compare": cmd_compare, "list": cmd_list}
        return commands[args.command](args)
    except ArchsearchError as exc:
        if args.debug:
            raise
        print(f"archsearch: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except OSError as exc:  # a path the user named: missing, unwritable, full disk
        if args.debug:
            raise
        print(f"archsearch: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1


def cmd_run(args: argparse.Namespace) -> int:
    from archsearch._plan import plan_run
    from archsearch.console import RichProgress, console, run_header

    plan = plan_run(args.overrides)
    console.print(run_header(plan.run_info, plan.run_dir))
    try:
        run = plan.execute(None if args.quiet else RichProgress(plan.objectives))
    except KeyboardInterrupt:
        return _interrupted(plan.run_dir)
    _print_result(run)
    return _constraints_note(run)


def _constraints_note(run: Any) -> int:
    """Say so (and exit 1) when a run stopped because its constraints rejected every candidate it tried."""
    if run.stop_reason != "constraints":
        return 0
    import yaml

    try:
        bounds = {k: v for k, v in (yaml.safe_load(run.store.config_yaml()).get("constraints") or {}).items()
                  if v is not None}
    except Exception:  # the note is informative only
        bounds = {}
    statuses = run.trials.column("status").to_pylist()
    shown = ", ".join(f"{k}={v}" for k, v in bounds.items()) or "see config.yaml"
    print(f"archsearch: stopped: the constraints rejected {statuses.count('rejected')} candidates before "
          f"training ({shown}); loosen them and resume", file=sys.stderr)
    return 1


def _interrupted(run_dir: Any) -> int:
    from archsearch.console import console, plain
    from archsearch.results.run import load_run

    run = load_run(run_dir)
    done = sum(status != "running" for status in run.trials.column("status").to_pylist())
    console.print(plain(f"interrupted: {done} finished trials are saved in {run_dir}; "
                        f"continue with `archsearch resume {run_dir}`"))
    return INTERRUPTED


def cmd_resume(args: argparse.Namespace) -> int:
    from archsearch.api import resume
    from archsearch.console import RichProgress, console, plain, run_header
    from archsearch.results.run import load_run

    before = load_run(args.run_dir)  # a damaged journal is its one-line error, before any header
    console.print(run_header(before.info, args.run_dir, verb="resume"))
    console.print(plain(f"{before.trials.num_rows} trials so far"))
    try:
        run = resume(args.run_dir, overrides=args.overrides,
                     progress=False if args.quiet else RichProgress(before.objectives), quiet=True)
    except KeyboardInterrupt:
        return _interrupted(args.run_dir)
    _print_result(run)
    return _constraints_note(run)


def cmd_export(args: argparse.Namespace) -> int:
    from archsearch.console import out, plain
    from archsearch.results.run import load_run

    run = load_run(args.run_dir)
    trial_id = run.best_trial_id() if args.trial_id == "best" else _trial_number(args.trial_id)
    path = run.export(trial_id, args.out_dir, retrain=args.retrain)
    out.print(plain(f"exported trial {trial_id} to {path} (load it with archsearch.load_model({str(path)!r}))"))
    return 0


def _trial_number(text: str) -> int:
    from archsearch.errors import ArchsearchError

    try:
        return int(text)
    except ValueError:
        raise ArchsearchError(f"trial must be a trial id (a number) or `best`, got {text!r}") from None
    return 0


def _print_result(run: Any) -> None:
    from archsearch.console import front_table, out, plain, stop_note

    out.print(front_table(run.pareto(), run.objectives))
    from archsearch.scheduling.summary import rung_lines

    for line in rung_lines(run.trials):
        out.print(line)
    summary = run.summary()
    hv = summary["hypervolume"]
    counts = ", ".join(f"{k}: {v}" for k, v in summary["status_counts"].items())
    out.print(plain(f"hypervolume {hv:.4f}  ·  {counts}"))
    note = stop_note(run, summary)
    if note:
        out.print(plain(note))
    out.print(plain(f"run directory: {run.path}"))


def cmd_show(args: argparse.Namespace) -> int:
    from archsearch.console import front_table, out, plain, stop_note, summary_table
    from archsearch.results.run import load_run

    run = load_run(args.run_dir)
    summary = run.summary()
    out.print(summary_table(summary))
    out.print(front_table(run.pareto(), run.objectives))
    note = stop_note(run, summary)
    if note:
        out.print(plain(note))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from archsearch.console import out, plain
    from archsearch.results.run import load_run

    path = load_run(args.run_dir).report(args.output)
    out.print(plain(f"report: {path}"))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archsearch.console import out, plain
    from archsearch.results.compare import compare_runs, comparison_tables, write_comparison

    comparison = compare_runs(args.run_dirs)
    for table in comparison_tables(comparison):
        out.print(table)
    if args.html:
        out.print(plain(f"comparison page: {write_comparison(comparison, Path(args.html))}"))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from archsearch.console import out, plain

    if args.name is not None:
        from archsearch.listing import describe_one

        title, options, note = describe_one(args.what, args.name)
        table = Table(title=title, title_justify="left")
        table.add_column("option", no_wrap=True)
        for column in ("choices", "default", "what it is"):
            table.add_column(column, overflow="fold")
        for option in options:
            table.add_row(*[plain(cell) for cell in option])
        out.print(table)
        if note:
            out.print(plain(note))
        return 0
    rows = _listing(args.what)
    table = Table(title=args.what, title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("description")
    for name, text in rows.items():
        table.add_row(plain(name), plain(text))
    out.print(table)
    return 0


def _listing(what: str) -> dict[str, str]:
    from archsearch import config

    if what in ("spaces", "strategies", "executors"):
        return config.option_descriptions({"spaces": "space", "strategies": "strategy", "executors": "executor"}[what])
    if what == "tasks":
        from archsearch.tasks import TASKS

        return TASKS.describe()
    from archsearch.blocks import ACTIVATIONS, BLOCKS, NORMS

    return {"blocks": BLOCKS, "activations": ACTIVATIONS, "norms": NORMS}[what].describe()


if __name__ == "__main__":
    sys.exit(main())
