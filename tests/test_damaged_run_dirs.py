"""Every file of a run directory damaged in turn: show, report, export, load_run and resume answer with
a result or a one-line error naming the file, never a traceback (issue 16, finding 7)."""

import json
import shutil

import pytest

import archsearch
from archsearch.cli import main
from archsearch.errors import ArchsearchError
from archsearch.testing.faults import SlowEvaluate, numbered_space

OBJECTIVES = {"score": "maximize", "cost": "minimize"}
DEEP = "[" * 100_000 + "]" * 100_000


def journal_lines(change):
    def damage(text):
        lines = text.splitlines(keepends=True)
        number = next(i for i, line in enumerate(lines) if '"trial_finished"' in line)
        lines[number] = change(lines[number])
        return "".join(lines)
    return damage


def started_lines(change):
    def damage(text):
        return "".join(change(line) if '"trial_started"' in line else line for line in text.splitlines(keepends=True))
    return damage


def edit_record(**fields):
    def change(line):
        record = json.loads(line)
        record.update(fields)
        return json.dumps(record) + "\n"
    return change


DAMAGE = {
    "run_json_binary": ("run.json", b"\xff\xfe\x00garbage"),
    "run_json_list": ("run.json", "[1, 2]"),
    "run_json_no_objectives": ("run.json", '{"schema_version": 1, "space": "x"}'),
    "run_json_bad_direction": ("run.json", '{"schema_version": 1, "objectives": {"score": "up"}}'),
    "run_json_nested": ("run.json", DEEP),
    "run_json_empty": ("run.json", ""),
    "config_invalid_yaml": ("config.yaml", "seed: [unclosed\n  - ]: :"),
    "config_binary": ("config.yaml", b"\xff\xfe\x00"),
    "config_list": ("config.yaml", "- 1\n- 2\n"),
    "config_deleted": ("config.yaml", None),
    "journal_result_empty": ("journal.jsonl", journal_lines(edit_record(result={}))),
    "journal_trial_id_text": ("journal.jsonl", journal_lines(edit_record(trial_id="seven"))),
    "journal_nested_line": ("journal.jsonl", journal_lines(lambda line: DEEP + "\n" + line)),
    "journal_nul_in_middle": ("journal.jsonl", journal_lines(lambda line: "\x00" * 64 + "\n" + line)),
    "journal_metrics_text": ("journal.jsonl", journal_lines(edit_record(
        result={"status": "complete", "metrics": {"score": "high"}}))),
    "state_wrong_types": ("strategy_state.json", '{"journal_ops": "x", "strategy": 3}'),
    "state_wrong_content": ("strategy_state.json", '{"journal_ops": 2, "strategy": {"bogus": [1, 2]}}'),
    "state_not_json": ("strategy_state.json", "{"),
    "run_json_version_with_line_break": ("run.json", lambda text: json.dumps(
        {**json.loads(text), "schema_version": "1\nInjected: a second line"})),
    "journal_candidate_with_line_breaks": ("journal.jsonl", started_lines(edit_record(
        trial_id="0\nInjected", candidate={"arch\nitecture": 1}))),
    "trials_parquet_garbage": ("trials.parquet", b"PAR1 garbage"),
    "pareto_json_garbage": ("pareto.json", "{"),
    "lock_file_garbage": ("run.lock", b"\xff\x00 not a holder"),
}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("base") / "run"
    archsearch.search(space=numbered_space, evaluate=SlowEvaluate(0.0), budget=4, seed=3, objectives=OBJECTIVES,
                      executor="inline", run_dir=path)
    return path


def one_line_or_success(capsys, *argv):
    code = main([*map(str, argv)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("archsearch: error")]
    assert code == 0 or (code == 2 and len(errors) == 1 and err.rstrip("\n").endswith(errors[0])), (argv, code, err)
    return code, errors


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_file_never_gives_a_traceback(base, tmp_path, capsys, case):
    run_dir = tmp_path / "run"
    shutil.copytree(base, run_dir)
    name, damage = DAMAGE[case]
    path = run_dir / name
    if damage is None:
        path.unlink()
    elif callable(damage):
        path.write_text(damage(path.read_text()))
    else:
        path.write_bytes(damage if isinstance(damage, bytes) else damage.encode())
    for argv in (["show", run_dir], ["report", run_dir, "--output", tmp_path / "r.html"],
                 ["export", run_dir, "0", tmp_path / "out"]):
        one_line_or_success(capsys, *argv)
    try:
        run = archsearch.resume(run_dir, budget=6, space=numbered_space, evaluate=SlowEvaluate(0.0))
    except ArchsearchError as exc:
        assert len(str(exc).splitlines()) == 1
        assert any(part in str(exc) for part in ("run.json", "config.yaml", "journal.jsonl", "trials.parquet")), exc
    else:
        assert run.trials.num_rows == 6 and run.trials.column("status").to_pylist()[:4] == ["complete"] * 4


def test_the_resume_header_shows_run_json_strings_on_one_line():
    from archsearch.console import run_header

    header = run_header({"space": "mlp\nInjected", "strategy": "model", "task": "digits\r", "budget": "x\ny",
                         "executor": "inline"}, "runs/x", verb="resume")
    assert "\n" not in header.plain and "\r" not in header.plain
    assert "space='mlp\\nInjected'" in header.plain and "strategy=model" in header.plain
