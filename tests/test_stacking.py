"""Stacked training equals training each model alone."""

import pytest
import torch
import torch.nn.functional as F

from archsearch.builder import build_model
from archsearch.genome import BlockSpec, Genome
from archsearch.kernels.stacking import StackedTrainer, train_stacked
from archsearch.tasks import DataSpec

GENOME = Genome.sequential([BlockSpec("mlp", {"expansion": 2}, "gelu", residual=True),
                            BlockSpec("glu", {}, "silu", norm_placement="pre"),
                            BlockSpec("mlp", {}, "relu", norm="rmsnorm", norm_placement="post")], {"width": 16})
DATA = DataSpec("vector", n_features=10, n_outputs=3)


def models(n):
    built = []
    for seed in range(n):
        torch.manual_seed(seed)
        built.append(build_model(GENOME, DATA))
    return built


def alone(model, x, y, lr, steps, batch, generator, optimizer, weight_decay):
    opt = {"adam": lambda p: torch.optim.Adam(p, lr=lr, weight_decay=weight_decay),
           "adamw": lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=weight_decay),
           "sgd": lambda p: torch.optim.SGD(p, lr=lr, weight_decay=weight_decay, momentum=0.9, nesterov=True),
           }[optimizer](model.parameters())
    order, begin = torch.randperm(len(x), generator=generator), 0
    for _ in range(steps):
        if begin >= len(x):
            order, begin = torch.randperm(len(x), generator=generator), 0
        idx = order[begin:begin + batch]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        begin += batch
    return model


@pytest.mark.parametrize("mode", ["grouped", "vmap"])
@pytest.mark.parametrize("optimizer, weight_decay", [("adam", 0.0), ("adamw", 0.01), ("sgd", 1e-3)])
def test_stacked_training_equals_one_by_one(optimizer, weight_decay, mode):
    torch.manual_seed(0)
    x, y = torch.randn(50, 10), torch.randint(0, 3, (50,))
    lrs = [1e-3, 3e-3, 1e-2, 3e-2]
    stacked = train_stacked(models(4), x, y, F.cross_entropy, lrs, steps=12, batch_size=16,
                            generators=[torch.Generator().manual_seed(10 + k) for k in range(4)],
                            optimizer=optimizer, weight_decay=weight_decay, mode=mode)
    for k, (model, lr) in enumerate(zip(models(4), lrs, strict=True)):
        reference = alone(model, x, y, lr, 12, 16, torch.Generator().manual_seed(10 + k), optimizer, weight_decay)
        for (name, a), b in zip(reference.state_dict().items(), stacked[k].state_dict().values(), strict=True):
            torch.testing.assert_close(b, a, atol=2e-6, rtol=1e-5, msg=lambda m, n=name, k=k: f"model {k} {n}: {m}")


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["grouped", "vmap"])
def test_stacked_training_equals_one_by_one_on_the_gpu(mode):
    """cuBLAS sums a batched product in another order than a single one: a looser tolerance than on CPU."""
    torch.manual_seed(0)
    x, y = torch.randn(50, 10, device="cuda"), torch.randint(0, 3, (50,), device="cuda")
    lrs = [1e-3, 1e-2, 3e-2]
    stacked = train_stacked([m.cuda() for m in models(3)], x, y, F.cross_entropy, lrs, steps=12, batch_size=16,
                            generators=[torch.Generator().manual_seed(10 + k) for k in range(3)], mode=mode)
    for k, (model, lr) in enumerate(zip(models(3), lrs, strict=True)):
        reference = alone(model.cuda(), x, y, lr, 12, 16, torch.Generator().manual_seed(10 + k), "adam", 0.0)
        for (name, a), b in zip(reference.state_dict().items(), stacked[k].state_dict().values(), strict=True):
            torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-3, msg=lambda m, n=name, k=k: f"model {k} {n}: {m}")


def test_models_of_different_shapes_are_refused():
    other = build_model(Genome.sequential([BlockSpec("mlp", {}, "relu")], {"width": 8}), DATA)
    with pytest.raises(ValueError, match="share one architecture"):
        StackedTrainer([models(1)[0], other], [1e-3, 1e-3])


def test_grouped_mode_is_chosen_only_where_every_parameter_is_in_a_linear_or_norm():
    assert StackedTrainer(models(2), [1e-3, 1e-3]).mode == "grouped"
    prelu = Genome.sequential([BlockSpec("mlp", {}, "prelu")], {"width": 8})
    assert StackedTrainer([build_model(prelu, DATA) for _ in range(2)], [1e-3, 1e-3]).mode == "vmap"
