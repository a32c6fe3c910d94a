"""Files load_model and Run.model read are checked and bounded before allocation (issue 16, finding 7)."""

import json

import pytest

import archsearch
from archsearch.errors import ArchsearchError


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("model")
    run = archsearch.search(space="mlp", budget=1, seed=0, executor="inline", run_dir=base / "run",
                            overrides=["training.epochs=0.2", "latency.repeats=1", "latency.warmup=0",
                                       "latency.large_batch=null", "keep_weights=all"])
    run.export(0, base / "export")
    return base


def copy(exported, tmp_path):
    import shutil

    shutil.copytree(exported / "export", tmp_path / "m")
    return tmp_path / "m"


def set_width(genome, width):
    genome["meta"]["width"] = width
    return genome


TAMPERING = {
    "model_not_json": ("model.json", lambda text: "{not json", "model.json is damaged: not UTF-8 JSON"),
    "model_nested": ("model.json", lambda text: "[" * 100_000 + "]" * 100_000, "model.json is damaged: nested too deeply"),
    "model_list": ("model.json", lambda text: "[1]", "has export schema_version None"),
    "data_spec_huge": ("model.json", lambda text: json.dumps({**json.loads(text), "data_spec": {
        **json.loads(text)["data_spec"], "n_outputs": 10**12}}), "data_spec.n_outputs must be an integer from 0"),
    "genome_nested": ("genome.json", lambda text: '{"a":' * 50_000 + "1" + "}" * 50_000, "nested too deeply"),
    "genome_keys": ("genome.json", lambda text: '{"nodes": 3}', "not a valid genome"),
    "genome_width": ("genome.json", lambda text: json.dumps(set_width(json.loads(text), 3_000_000)),
                     "the files do not belong together"),
    "weights_garbage": ("model.safetensors", lambda text: "garbage", "is not a safetensors file"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_a_tampered_export_is_a_one_line_error_naming_the_file(exported, tmp_path, case):
    folder = copy(exported, tmp_path)
    name, change, message = TAMPERING[case]
    path = folder / name
    path.write_text(change(path.read_text(errors="replace")))
    with pytest.raises(ArchsearchError, match=message) as caught:
        archsearch.load_model(folder)
    assert len(str(caught.value).splitlines()) == 1


def test_an_intact_export_loads(exported):
    import torch

    model = archsearch.load_model(exported / "export")
    assert isinstance(model, torch.nn.Module) and not model.training


def test_damaged_kept_weights_in_a_run_are_a_one_line_error(exported):
    run = archsearch.load_run(exported / "run")
    assert run.model(0) is not None
    weights = run.store.weights_path(0)
    data = weights.read_bytes()
    try:
        weights.write_bytes(b"\x00" * 64)
        with pytest.raises(ArchsearchError, match="is not a safetensors file"):
            run.model(0)
    finally:
        weights.write_bytes(data)
