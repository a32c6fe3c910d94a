import networkx as nx
import pytest
import torch

from archsearch.blocks import (
    ACTIVATIONS,
    NORMS,
    block_param_count,
    create_block,
    create_norm,
    norm_param_count,
)
from archsearch.builder import build_model, count_parameters, param_count
from archsearch.genome import INPUT, NORM_PLACEMENTS, OUTPUT, BlockSpec, Genome
from archsearch.tasks import DataSpec

VECTOR = DataSpec("vector", n_features=12, n_outputs=5)
SEQUENCE = DataSpec("sequence", seq_len=9, n_channels=3, n_outputs=4)


def inputs(data: DataSpec, batch: int = 6) -> torch.Tensor:
    if data.input_kind == "vector":
        return torch.randn(batch, data.n_features)
    return torch.randn(batch, data.seq_len, data.n_channels)


def check_forward_backward(model, data):
    out = model(inputs(data))
    assert out.shape == (6, data.n_outputs)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("data", [VECTOR, SEQUENCE], ids=["vector", "sequence"])
@pytest.mark.parametrize("placement", NORM_PLACEMENTS)
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("norm", NORMS.names())
def test_wrapped_blocks_on_vector_and_sequence_inputs(data, placement, residual, norm):
    torch.manual_seed(0)
    spec = BlockSpec("mlp", {"expansion": 2}, "gelu", norm, placement, residual)
    genome = Genome.sequential([spec, spec], {"width": 16})
    check_forward_backward(build_model(genome, data), data)


@pytest.mark.parametrize("activation", ACTIVATIONS.names())
def test_every_activation_builds_and_trains(activation):
    torch.manual_seed(0)
    genome = Genome.sequential([BlockSpec("mlp", {"expansion": 1}, activation)], {"width": 8})
    check_forward_backward(build_model(genome, VECTOR), VECTOR)


@pytest.mark.parametrize("expansion", [0.5, 1, 2, 4])
@pytest.mark.parametrize("activation", ["relu", "prelu"])
def test_mlp_parameter_count_matches_closed_form(expansion, activation):
    block = create_block("mlp", 24, expansion=expansion, activation=activation)
    assert count_parameters(block) == block_param_count("mlp", 24, expansion=expansion, activation=activation)


def test_whole_network_parameter_count():
    spec = BlockSpec("mlp", {"expansion": 2}, "relu", "layernorm", "pre", True)
    genome = Genome.sequential([spec] * 3, {"width": 16})
    model = build_model(genome, VECTOR)
    stem = 12 * 16 + 16
    blocks = 3 * (block_param_count("mlp", 16, expansion=2) + 2 * 16)  # + LayerNorm weight and bias
    head = 2 * 16 + 16 * 5 + 5  # final LayerNorm + Linear
    assert count_parameters(model) == stem + blocks + head


def test_parallel_branches_merge_by_sum_and_by_concat():
    for merge in ("sum", "concat"):
        graph = nx.DiGraph()
        graph.add_node("a", spec=BlockSpec("mlp", activation="relu"))
        graph.add_node("b", spec=BlockSpec("mlp", activation="tanh"))
        graph.add_node("m", spec=BlockSpec("mlp", merge=merge))
        graph.add_edges_from([(INPUT, "a"), (INPUT, "b"), ("a", "m"), ("b", "m"), ("m", OUTPUT)])
        model = build_model(Genome(graph, {"width": 8}), SEQUENCE)
        check_forward_backward(model, SEQUENCE)
        has_projection = any(n.startswith("merges.m.proj") for n, _ in model.named_parameters())
        assert has_projection == (merge == "concat")


def test_sequence_of_scalars_is_accepted():
    data = DataSpec("sequence", seq_len=40, n_channels=1, n_outputs=10)
    model = build_model(Genome.sequential([BlockSpec("mlp")], {"width": 8}), data)
    assert model(torch.randn(3, 40)).shape == (3, 10)


def test_token_ids_are_embedded():
    data = DataSpec("tokens", seq_len=3, vocab_size=11, n_outputs=11)
    model = build_model(Genome.sequential([BlockSpec("mlp")], {"width": 8}), data)
    out = model(torch.randint(0, 11, (5, 3)))
    assert out.shape == (5, 11) and torch.isfinite(out).all()


def test_unknown_block_names_list_valid_ones():
    with pytest.raises(Exception, match="unknown block 'nope'; valid: attention, glu"):
        build_model(Genome.sequential([BlockSpec("nope")], {"width": 8}), VECTOR)


@pytest.mark.parametrize("space_name", ["mlp", "hybrid", "kan", "moe", "transformer"])
def test_closed_form_parameter_count_equals_the_built_model(space_name):
    """``param_count`` is what the strategy ranks by in a run: it must be the built model's count, for
    every input kind, wiring (concat merges, Peri-LN, Mix-LN, feature tokens) and the layers form."""
    from archsearch.config import compose, instantiate

    space = instantiate(compose([f"space={space_name}"]).space, "space")
    tokens = DataSpec("tokens", seq_len=7, vocab_size=30, n_outputs=3)
    checked = 0
    for seed in range(25):
        genome = space.sample(seed)
        for data in (VECTOR, SEQUENCE, tokens):
            try:
                built = count_parameters(build_model(genome, data))
            except Exception:  # noqa: BLE001 - a genome this input kind cannot take (layers of token ids)
                continue
            assert param_count(genome, data) == built, (space_name, data.input_kind, genome.to_json())
            checked += 1
    assert checked >= 50


@pytest.mark.parametrize("norm", NORMS.names())
def test_every_norm_declares_its_parameter_count(norm):
    assert norm_param_count(norm, 7) == count_parameters(create_norm(norm, 7))


def test_closed_form_parameter_count_is_none_for_a_part_without_a_formula():
    genome = Genome.sequential([BlockSpec("mlp", {"expansion": 1}, "relu", norm="my_norm")], {"width": 8})
    assert param_count(genome, VECTOR) is None
