"""``archsearch report`` and ``archsearch compare`` as a user types them, on runs the tests produce.

The pages are checked by their contents (the plotted data is the run's data, nothing is fetched from the
network), the compared hypervolumes by recomputing them here, and the report in headless Chromium.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from clitools import archsearch_cli

import archsearch
from archsearch.pareto import hypervolume

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
THREE = {"score": "maximize", "n_params": "minimize", "cost": "minimize"}


def numbered(chooser):
    return {"x": chooser.suggest_int("x", 0, 10**6)}


def evaluate_a(arch):
    x = arch["x"]
    if x % 9 == 0:
        raise RuntimeError("diverged")  # some failures: they count as evaluations, not as points
    return {"score": (x % 997) / 997, "n_params": float(500 + x % 40000), "cost": float(x % 13)}


def evaluate_b(arch):
    # A wider cost range than run A's: the common normalization must differ from each run's own.
    x = arch["x"]
    return {"score": (x % 991) / 991, "n_params": float(800 + x % 90000), "cost": float(3 * (x % 11))}


def toy_run(path, evaluate, objectives=THREE, budget=24, seed=0):
    return archsearch.search(space=numbered, evaluate=evaluate, objectives=objectives, budget=budget, seed=seed,
                             strategy="random", executor="inline", run_dir=path)  # random meets the failures


def figures(page: str) -> dict:
    """The figures a page draws, by div id, unpacked as the page's script unpacks them."""
    from archsearch.results.page import page_figures

    found = page_figures(page)
    assert set(found) == set(re.findall(r'<div class="plot" id="([\w-]+)"', page))  # a div for every figure
    return found


def assert_self_contained(page: str) -> None:
    assert not re.search(r"<script[^>]*\bsrc\s*=", page), "the page loads a script from elsewhere"
    assert not re.search(r"<link[^>]*\bhref\s*=", page), "the page loads a stylesheet from elsewhere"
    assert not re.search(r"<(img|iframe)[^>]*\bsrc\s*=", page)
    assert "plotly.js v" in page and page.count('id="plotly-packed"') == 1  # plotly.js inlined, once
    assert 1_000_000 < len(page.encode()) < 2_000_000


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("report")
    archsearch_cli("run", "space=mlp", "task=digits", "budget=5", "seed=0", "executor=inline", "run_dir=runs/a",
                   "training.epochs=0.3", "--quiet", cwd=cwd)
    return cwd, cwd / "runs" / "a"


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("toys")
    toy_run(base / "a", evaluate_a, seed=0)
    toy_run(base / "b", evaluate_b, seed=1, budget=16)
    return base


def test_report_command_writes_a_self_contained_page_with_the_runs_data(mlp_run):
    cwd, run_dir = mlp_run
    proc = archsearch_cli("report", "runs/a", cwd=cwd)
    assert proc.stdout.strip() == f"report: {Path('runs/a/report.html')}"
    page = (run_dir / "report.html").read_text()
    assert_self_contained(page)
    assert 'data-js-errors="[]"' in page

    trials = pq.read_table(run_dir / "trials.parquet").to_pandas()
    summary = json.loads((run_dir / "pareto.json").read_text())
    front_ids = summary["pareto_trial_ids"]
    figs = figures(page)
    assert set(figs) == {"pair-0-1", "pair-0-2", "pair-1-2", "front-3d", "hypervolume"}  # 5 trials: no importance

    names = list(summary["objectives"])
    pair = {trace["name"]: trace for trace in figs["pair-0-1"]["data"]}
    everything, front = pair["all complete trials"], pair["Pareto front"]
    assert sorted(everything["x"]) == sorted(trials[names[0]]) and sorted(everything["y"]) == sorted(trials[names[1]])
    shown = [int(re.search(r"trial (\d+)", text).group(1)) for text in front["text"]]
    assert sorted(shown) == sorted(front_ids)
    assert all("mlp(" in text for text in front["text"])  # the hover shows the architecture sketch
    by_id = trials.set_index("trial_id")
    assert front["x"] == [by_id.loc[i, names[0]] for i in shown]
    assert figs["pair-0-1"]["layout"]["yaxis"]["type"] == "log"  # n_params: log-scaled in the hypervolume too

    three_d = {trace["name"]: trace for trace in figs["front-3d"]["data"]}
    assert len(three_d["Pareto front"]["x"]) == len(front_ids)

    history = archsearch.load_run(run_dir).hypervolume_history()
    hv_traces = figs["hypervolume"]["data"]
    assert hv_traces[0]["x"] == list(range(1, 6)) and hv_traces[1]["x"] == history.column("active_s").to_pylist()
    assert hv_traces[0]["y"] == history.column("hypervolume").to_pylist()
    assert "too few to say which genes matter" in page

    table = page[page.index('<table class="sortable" id="front-table">'):]
    table = table[:table.index("</table>")]
    assert table.count("<tr>") == len(front_ids) + 1
    assert "test_accuracy" in table and "fidelity" in table  # the test metric and what each was trained to
    for trial_id in front_ids:
        assert f'data-sort="{trial_id}"><a href="#arch-{trial_id}">{trial_id}</a></td>' in table
        card = page[page.index(f'<div class="card" id="arch-{trial_id}">'):]
        assert card.index("<svg") < card.index("</svg>") < card.index("</div></div>") + 20
    assert table.count("mlp(") >= len(front_ids)
    assert "training recipe" in page and "epochs 0.3" in page


def test_report_output_option_and_python_api(toy_runs, tmp_path):
    proc = archsearch_cli("report", str(toy_runs / "a"), "--output", str(tmp_path / "out" / "r.html"), cwd=tmp_path)
    assert proc.stdout.strip() == f"report: {tmp_path / 'out' / 'r.html'}"
    figs = figures((tmp_path / "out" / "r.html").read_text())
    assert "front-3d" in figs and "pair-1-2" in figs

    run = archsearch.load_run(toy_runs / "b")
    path = run.report()
    assert path == toy_runs / "b" / "report.html" and path.exists()


def test_report_of_two_objectives_has_no_3d_plot(tmp_path):
    toy_run(tmp_path / "r", evaluate_a, objectives={"score": "maximize", "cost": "minimize"}, budget=8)
    archsearch_cli("report", str(tmp_path / "r"), cwd=tmp_path)
    figs = figures((tmp_path / "r" / "report.html").read_text())
    assert set(figs) == {"pair-0-1", "hypervolume"}


def test_report_of_a_run_without_complete_trials(tmp_path):
    def always_fails(arch):
        raise RuntimeError("out of memory")

    toy_run(tmp_path / "r", always_fails, budget=3)
    archsearch_cli("report", str(tmp_path / "r"), cwd=tmp_path)
    page = (tmp_path / "r" / "report.html").read_text()
    assert "No complete trials yet" in page and set(figures(page)) == {"hypervolume"}


def test_report_of_a_missing_run_is_a_one_line_error(tmp_path):
    proc = archsearch_cli("report", str(tmp_path / "nothing"), cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("archsearch: error:") and "not an archsearch run directory" in proc.stderr


def test_hypervolume_history_is_monotone_and_ends_at_the_runs_hypervolume(toy_runs):
    run = archsearch.load_run(toy_runs / "a")
    history = run.hypervolume_history().to_pandas()
    assert history.columns.tolist() == ["trial_id", "n_evaluated", "elapsed_s", "active_s", "hypervolume"]
    assert history.n_evaluated.tolist() == list(range(1, 25))  # failed trials count as evaluations
    assert (run.trials.to_pandas().status == "failed").any()
    assert history.hypervolume.is_monotonic_increasing and history.elapsed_s.is_monotonic_increasing
    assert (history.active_s <= history.elapsed_s + 1e-9).all() and history.active_s.is_monotonic_increasing
    assert history.elapsed_s.iloc[0] > 0
    summary = json.loads((toy_runs / "a" / "pareto.json").read_text())
    assert history.hypervolume.iloc[-1] == pytest.approx(summary["hypervolume"], rel=1e-12)
    journal = [json.loads(line) for line in (toy_runs / "a" / "journal.jsonl").read_text().splitlines()]
    assert history.trial_id.tolist() == [r["trial_id"] for r in journal if r["event"] == "trial_finished"]


def common_hypervolumes(run_dirs):
    """Recompute compare's numbers from the Parquet files: fixed n_params bounds, the union's for the rest."""
    frames = [pq.read_table(d / "trials.parquet").to_pandas() for d in run_dirs]
    frames = [f[f.status == "complete"] for f in frames]
    union = np.vstack([f[list(THREE)].to_numpy() for f in frames])
    lower = [union[:, 0].min(), 2.0, union[:, 2].min()]
    upper = [union[:, 0].max(), 8.0, union[:, 2].max()]
    result = []
    for f in frames:
        v = f[list(THREE)].to_numpy().copy()
        v[:, 1] = np.log10(v[:, 1])
        s = (v - lower) / (np.array(upper) - lower)
        s[:, 0] = 1 - s[:, 0]
        result.append(hypervolume(s, [1.1, 1.1, 1.1]))
    return result


def test_compare_prints_hypervolumes_on_a_common_normalization(toy_runs):
    proc = archsearch_cli("compare", "a", "b", cwd=toy_runs)
    expected = common_hypervolumes([toy_runs / "a", toy_runs / "b"])
    own = [json.loads((toy_runs / r / "pareto.json").read_text())["hypervolume"] for r in "ab"]
    assert f"{expected[1]:.4f}" != f"{own[1]:.4f}"  # run b alone fits cost to its own range
    lines = proc.stdout.splitlines()
    for label, hv, trials in (("a", expected[0], 24), ("b", expected[1], 16)):
        front = json.loads((toy_runs / label / "pareto.json").read_text())["pareto_trial_ids"]
        row = next(line for line in lines if re.match(rf"│ {label} ", line))
        cells = [c.strip() for c in row.strip("│").split("│")]
        assert cells == [label, "numbered", "random", str(trials), str(len(front)), f"{hv:.4f}"]
    assert "Fronts overlaid" in proc.stdout
    overlaid = [line for line in lines[lines.index(next(x for x in lines if "Fronts overlaid" in x)):]
                if re.match(r"│ [ab] ", line)]
    n_fronts = sum(len(json.loads((toy_runs / r / "pareto.json").read_text())["pareto_trial_ids"]) for r in "ab")
    assert len(overlaid) == n_fronts


def test_compare_html_overlays_fronts_and_hypervolume_curves(toy_runs):
    archsearch_cli("compare", "a", "b", "--html", "cmp/compare.html", cwd=toy_runs)
    page = (toy_runs / "cmp" / "compare.html").read_text()
    assert_self_contained(page)
    figs = figures(page)
    assert set(figs) == {"pair-0-1", "pair-0-2", "pair-1-2", "hypervolume"}
    names = {trace["name"] for trace in figs["pair-0-1"]["data"]}
    assert {"a: Pareto front", "b: Pareto front"} <= names
    curves = [t for t in figs["hypervolume"]["data"] if t["xaxis"] == "x"]
    assert [t["name"] for t in curves] == ["a", "b"]
    assert [c["y"][-1] for c in curves] == pytest.approx(common_hypervolumes([toy_runs / "a", toy_runs / "b"]))


def test_compare_refuses_runs_with_different_objectives(toy_runs, tmp_path):
    toy_run(tmp_path / "c", evaluate_a, objectives={"score": "maximize", "cost": "minimize"}, budget=3)
    proc = archsearch_cli("compare", str(toy_runs / "a"), str(tmp_path / "c"), cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("archsearch: error: cannot compare runs with different objectives")

    proc = archsearch_cli("compare", str(toy_runs / "a"), cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "at least two run directories" in proc.stderr


def test_explore_run_example(mlp_run):
    cwd, run_dir = mlp_run
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "explore_run.py"), str(run_dir)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for text in ("activation (share of blocks on the front", "width (share of networks", "mlp",
                 "val_accuracy by parameter count", "best trial per objective", "latency_ms"):
        assert text in proc.stdout


def load_in_chromium(page: Path, tmp_path: Path, screenshot: bool = True) -> tuple[str, str, Path | None]:
    """Load a page in headless Chromium: the DOM after scripts ran, the browser's log and a screenshot
    (``None`` when not asked for).

    A render takes seconds, but in two CI runs on a loaded machine Chromium never exited on the
    200-trial report (three tries of four minutes each; the same page, copied out, renders in 12 s on
    the same machine). So a try that outlasts four minutes is killed with its renderer processes, and
    the page is loaded once more without the screenshot, the part that draws through the software GPU:
    the DOM still says whether every figure drew. The screenshot is then ``None``, with a warning. A
    page whose scripts never finish hangs every try and fails. No verdict on speed either way."""
    shot = tmp_path / f"{page.stem}.png"
    log = ""
    tries = [[f"--screenshot={shot}"], []] if screenshot else [[]]
    for attempt, flags in enumerate(tries):
        browser = subprocess.Popen(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
             "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / f'profile-{attempt}'}",
             "--enable-logging=stderr", "--v=0", "--hide-scrollbars", "--window-size=1400,3000",
             "--virtual-time-budget=10000", *flags, "--dump-dom", page.resolve().as_uri()],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        try:
            stdout, stderr = browser.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)  # its renderer processes too, which hold the pipes
            log += browser.communicate()[1][-2000:]
            continue
        assert browser.returncode == 0, stderr[-3000:]
        if not flags:
            if screenshot:
                warnings.warn(f"Chromium hung while taking a screenshot of {page.name}; checked its DOM only",
                              stacklevel=2)
            return stdout, stderr, None
        if os.environ.get("ARCHSEARCH_SCREENSHOT_DIR"):  # keep it to look at
            shutil.copy(shot, Path(os.environ["ARCHSEARCH_SCREENSHOT_DIR"]) / shot.name)
        return stdout, stderr, shot
    raise AssertionError(f"headless Chromium did not finish loading {page.name} in {len(tries)} tries; its log: {log}")


def assert_rendered(dom: str, log: str, plot_ids) -> None:
    errors = re.search(r'data-js-errors="([^"]*)"', dom)
    assert errors is not None and errors.group(1) == "[]", errors and errors.group(1)
    assert f'data-drawn="{len(plot_ids)}"' in dom  # plotly.js and the figures unpacked, every figure drawn
    assert "Uncaught" not in log, [line for line in log.splitlines() if "Uncaught" in line]
    for plot_id in plot_ids:
        start = dom.index(f'id="{plot_id}"')
        assert 'class="main-svg"' in dom[start:start + 3000], f"plot {plot_id} did not render"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium package (apt-get install chromium)")
def test_report_loads_and_renders_in_headless_chromium(mlp_run, toy_runs, tmp_path):
    cwd, run_dir = mlp_run
    archsearch_cli("report", "runs/a", cwd=cwd)
    dom, log, shot = load_in_chromium(run_dir / "report.html", tmp_path)
    assert_rendered(dom, log, ["pair-0-1", "pair-0-2", "pair-1-2", "front-3d", "hypervolume"])
    assert "gl-container" in dom[dom.index('id="front-3d"'):]  # the 3-D scene got a WebGL canvas
    assert shot is None or shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000

    # The comparison page, with one click on the n_params header of its fronts table to check the sorting.
    archsearch_cli("compare", "a", "b", "--html", "compare.html", cwd=toy_runs)
    page = (toy_runs / "compare.html").read_text()
    click = '<script>document.querySelectorAll("#fronts-table th")[4].click();</script></body>'
    (toy_runs / "compare_clicked.html").write_text(page.replace("</body>", click))
    dom, log, _ = load_in_chromium(toy_runs / "compare_clicked.html", tmp_path)
    assert_rendered(dom, log, ["pair-0-1", "pair-0-2", "pair-1-2", "hypervolume"])
    before, after = column_of(page, "fronts-table", 4), column_of(dom, "fronts-table", 4)
    assert len(after) > 3 and after == sorted(before) and before != after


def column_of(document: str, table_id: str, column: int) -> list[float]:
    """The raw values (data-sort) of one column of a table, in row order."""
    body = document[document.index(f'id="{table_id}"'):]
    body = body[body.index("<tbody>"):body.index("</tbody>")]
    return [float(re.findall(r'data-sort="([^"]*)"', row)[column]) for row in body.split("<tr>")[1:]]
