"""The batched ensemble trains each cell as the sequential runner would: with Adam / AdamW the
same parameters bit for bit (compiled: to rounding) over the first 100 steps, same phase labels
at the end of the budget."""

import sys
from collections.abc import Callable
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from torch import nn
from torch._dynamo.utils import counters

import grokscope
from grokscope.config import merge, parse_config
from grokscope.errors import ConfigError
from grokscope.runner import Experiment, open_run
from grokscope.train.ensemble import StackedGroup, check_compiler, side_by_side, stack_key, train_ensemble
from grokscope.train.stacked_forward import stacked_forward
from grokscope.train.trainer import Callback
from tests.conftest import tiny_config_data


class Recorder(Callback):
    """Copies of every parameter at each step up to ``last``."""

    changes_weights = False

    def __init__(self, last: int = 100) -> None:
        self.last = last
        self.params: dict[int, list[torch.Tensor]] = {}

    def on_step(self, trainer) -> None:
        if trainer.step <= self.last:
            self.params[trainer.step] = [p.detach().clone() for p in trainer.model.parameters()]


def _has_compiler() -> bool:
    try:
        check_compiler()
    except ConfigError:
        return False
    return True


needs_compiler = pytest.mark.skipif(not _has_compiler(), reason="torch.compile needs a C++ compiler")


def liu_toy(dtype: str, steps: int, **overrides) -> dict:
    base = {
        "name": "liu",
        "device": "cpu",
        "dtype": dtype,
        "task": {"name": "addition", "p": 10, "train_size": 45, "targets": "vectors", "target_dim": 30},
        "model": {"name": "liu_toy", "embedding_dim": 1, "decoder_widths": [32, 32], "activation": "tanh"},
        "optimizer": {
            "name": "adamw",
            "groups": {"embeddings": {"lr": 1e-3, "weight_decay": 0.0}, "decoder": {"lr": 1e-3, "weight_decay": 0.0}},
        },
        "training": {"steps": steps, "loss": "mse"},
        "schedule": {"linear_points": 30, "log_points_per_decade": 5},
        "analysis": {"thresholds": [0.5], "phase_threshold": 0.5, "gap": 100},
    }
    return merge(base, overrides)


def six_cells(fast: float = 1e-2) -> list[dict]:
    """Overrides of ``liu_toy`` for six cells of one stack: seed, decoder lr (the fast cell's:
    ``fast``), decoder weight decay and decoder init scale differ."""
    return [
        {},
        {"seed": 1},
        {"optimizer": {"groups": {"decoder": {"lr": fast}}}},
        {"optimizer": {"groups": {"decoder": {"lr": 3e-3, "weight_decay": 2.0}}}},
        {"optimizer": {"groups": {"decoder": {"lr": 1e-2, "weight_decay": 10.0}}}},
        {"model": {"decoder_init_scale": 0.5}, "seed": 2},
    ]


def train_both(
    datas: list[dict],
    tmp_path,
    compile: bool = False,
    extra: Callable[[], list[Callback]] = list,
    stacks: int | None = None,
):
    """Each config run alone and in the ensemble (in ``stacks`` stacks), each run with a
    Recorder and ``extra()``."""
    configs = [parse_config({**d, "name": f"c{i}"}) for i, d in enumerate(datas)]
    sequential = [Recorder() for _ in configs]
    for i, config in enumerate(configs):
        grokscope.run(config, out=tmp_path / "seq" / f"c{i}", progress=False, callbacks=[sequential[i], *extra()])
    stacked = [Recorder() for _ in configs]
    ended: dict[int, str] = {}
    train_ensemble(
        configs,
        [tmp_path / "ens" / f"c{i}" for i in range(len(configs))],
        extra_callbacks=lambda i: [stacked[i], *extra()],
        done=lambda i, status: ended.__setitem__(i, status),
        compile=compile,
        stacks=stacks,
    )
    assert sorted(ended) == list(range(len(configs)))
    return configs, sequential, stacked


def max_difference(a: Recorder, b: Recorder) -> float:
    assert sorted(a.params) == sorted(b.params) == list(range(101))
    return max(
        float((x - y).abs().max()) for step in a.params for x, y in zip(a.params[step], b.params[step], strict=True)
    )


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("compile", [False, pytest.param(True, marks=needs_compiler)], ids=["eager", "compiled"])
def test_adamw_cells_match_sequential_runs_and_phases(tmp_path, dtype, compile):
    # The eager step computes each cell's bits (exact_linears): every parameter at every step
    # equal, and in float32 every recorded metric. The compiled step rounds otherwise: 1e-5 in
    # float32 over the first 100 steps, 1e-9 in float64. Cells differing in seed, decoder lr,
    # decoder weight decay and decoder init scale: one stack. Compiled in float32, the fast
    # undecayed cell has lr 5e-3: at 1e-2 the dynamics amplify rounding, so that two runs one ulp
    # apart in one embedding at step 1 are 3e-5 apart at step 100.
    tolerance = 0.0 if not compile else {"float32": 1e-5, "float64": 1e-9}[dtype]
    fast = 5e-3 if compile and dtype == "float32" else 1e-2
    datas = [liu_toy(dtype, 600, **o) for o in six_cells(fast)]
    graphs = counters["stats"]["unique_graphs"]
    configs, sequential, stacked = train_both(datas, tmp_path, compile)
    assert len({stack_key(c) for c in configs}) == 1
    assert (counters["stats"]["unique_graphs"] > graphs) == compile  # the step ran compiled, or eager
    for i in range(len(configs)):
        difference = max_difference(sequential[i], stacked[i])
        assert difference <= tolerance, f"cell {i}: {difference}"
        # a different cell is far away: the comparison can fail
        assert max_difference(sequential[i], stacked[(i + 1) % len(configs)]) > 1e-3
    phases = []
    for i in range(len(configs)):
        seq, ens = open_run(tmp_path / "seq" / f"c{i}"), open_run(tmp_path / "ens" / f"c{i}")
        assert ens.summary["status"] == seq.summary["status"] == "finished"
        assert [e["compiled"] for e in ens.events if e["event"] == "stacked"] == [compile]
        assert ens.summary["phase"] == seq.summary["phase"]
        assert ens.summary["fit_step"] == seq.summary["fit_step"]
        assert ens.summary["generalization_step"] == seq.summary["generalization_step"]
        assert list(ens.metrics.columns) == list(seq.metrics.columns)
        assert ens.metrics["step"].tolist() == seq.metrics["step"].tolist()
        if compile:
            # the batched evaluation and stacked probes record what each run records alone (to
            # the rounding of the parameters over the first 100 steps)
            early = seq.metrics["step"] <= 100
            pd.testing.assert_frame_equal(ens.metrics[early], seq.metrics[early], rtol=1e3 * tolerance)
        elif dtype == "float32":  # every evaluation of the 600 steps, bit for bit
            pd.testing.assert_frame_equal(ens.metrics, seq.metrics, check_exact=True)
        else:  # float64: a few recorded metrics differ in the last bits
            pd.testing.assert_frame_equal(ens.metrics, seq.metrics, rtol=1e-12)
        phases.append(seq.summary["phase"])
    assert len(set(phases)) >= 2, phases  # the cells do not all end alike


def test_sgd_momentum_minibatch_clip_warmup_and_unstackable_cells(tmp_path):
    base = tiny_config_data(
        optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3},
        training={"steps": 100, "batch_size": 16, "grad_clip": 0.5, "warmup_steps": 10},
    )
    datas = [
        base,
        merge(base, {"seed": 1, "optimizer": {"lr": 0.05}}),
        merge(base, {"optimizer": {"weight_decay": 0.1}, "model": {"init_scale": 2.0}}),
        merge(base, {"model": {"width": 24}}),  # another architecture: a stack of its own
        merge(base, {"model": {"batch_norm": True}}),  # buffers: trained alone
    ]
    configs, sequential, stacked = train_both(datas, tmp_path)
    assert len({stack_key(c) for c in configs[:3]}) == 1
    assert stack_key(configs[3]) != stack_key(configs[0])
    for i in range(len(configs)):
        # SGD op by op on stacks, per-cell clipping norms: to rounding (2e-7 here)
        assert max_difference(sequential[i], stacked[i]) < 1e-5, i


def test_adam_cells_sharing_a_learning_rate_but_not_a_weight_decay(tmp_path):
    # Adam's decay enters the gradient, so the stacked optimizer groups cells by (lr, wd); the
    # cells are given interleaved, so the ensemble must reorder them and still report each as itself
    base = tiny_config_data(optimizer={"name": "adam", "lr": 0.01, "weight_decay": 0.0}, training={"steps": 100})
    datas = [
        base,
        merge(base, {"optimizer": {"lr": 0.003}}),
        merge(base, {"optimizer": {"weight_decay": 0.1}}),
        merge(base, {"seed": 1, "optimizer": {"lr": 0.003}}),
        merge(base, {"seed": 2}),
    ]
    configs, sequential, stacked = train_both(datas, tmp_path)
    assert len({stack_key(c) for c in configs}) == 1
    for i in range(len(configs)):
        assert max_difference(sequential[i], stacked[i]) == 0, i
        assert max_difference(sequential[i], stacked[(i + 1) % len(configs)]) > 1e-3


def test_a_finished_cell_is_left_alone_and_an_interrupted_one_resumes(tmp_path):
    datas = [liu_toy("float32", 200, seed=s) for s in (0, 1)]
    configs = [parse_config({**d, "name": f"c{i}"}) for i, d in enumerate(datas)]
    folders = [tmp_path / f"c{i}" for i in range(2)]
    train_ensemble(configs[:1], folders[:1])
    before = (folders[0] / "events.jsonl").read_text()
    # cell 1 trained half way by the sequential runner, then "killed": its summary says running
    half = parse_config(merge(configs[1].to_dict(), {"output": {"checkpoint_every": 100}}))
    grokscope.run(half, out=folders[1], progress=False)
    reference = open_run(folders[1]).metrics
    store = open_run(folders[1]).store
    store.lock()
    store.write_summary({"status": "running"})
    store.unlock()
    ended = {}
    train_ensemble([configs[0], half], folders, done=lambda i, status: ended.__setitem__(i, status))
    assert ended == {0: "finished", 1: "finished"}
    assert (folders[0] / "events.jsonl").read_text() == before
    assert open_run(folders[1]).summary["status"] == "finished"
    assert len(open_run(folders[1]).metrics) == len(reference)


def test_a_diverging_cell_leaves_the_stack_and_the_others_go_on(tmp_path):
    base = tiny_config_data(optimizer={"name": "adamw", "lr": 0.01}, training={"steps": 100})
    datas = [base, merge(base, {"optimizer": {"lr": 1e6}, "model": {"init_scale": 1e3}}), merge(base, {"seed": 1})]
    _, sequential, stacked = train_both(datas, tmp_path)
    statuses = [open_run(tmp_path / "ens" / f"c{i}").summary["status"] for i in range(3)]
    assert statuses == [open_run(tmp_path / "seq" / f"c{i}").summary["status"] for i in range(3)]
    assert statuses == ["finished", "diverged", "finished"]
    for i in (0, 2):
        assert max_difference(sequential[i], stacked[i]) == 0


def test_a_model_without_a_stacked_forward_is_vmapped(tmp_path):
    # matrix embeddings (S3) have no forward written on stacks: the ensemble vmaps the model,
    # with exact_linears, and still computes each cell's bits
    base = {
        "name": "s3",
        "device": "cpu",
        "task": {"name": "permutation_group", "n": 3},
        "model": {"name": "liu_toy", "combine": "product", "decoder_widths": [16]},
        "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.1},
        "training": {"steps": 100, "loss": "mse"},
    }
    datas = [base, merge(base, {"seed": 1, "optimizer": {"lr": 0.003}})]
    configs, sequential, stacked = train_both(datas, tmp_path)
    assert stacked_forward(Experiment(configs[0]).model) is None
    for i in range(len(configs)):
        assert max_difference(sequential[i], stacked[i]) == 0, i
        assert max_difference(sequential[i], stacked[1 - i]) > 1e-3


class Shrinker(Callback):
    """Multiplies every weight by 0.999 at every step: a callback that changes the weights."""

    @torch.no_grad()
    def on_step(self, trainer) -> None:
        for parameter in trainer.model.parameters():
            parameter.mul_(0.999)


@pytest.mark.parametrize("shrink", [False, True], ids=["measuring-callbacks", "a-callback-changes-weights"])
def test_an_evaluation_runs_the_next_training_forward_ahead(tmp_path, monkeypatch, shrink):
    # All cells evaluate together on full batches: the evaluation at step s runs the training
    # forward of step s + 1 (the same weights on the train split) and takes its outputs, and that
    # step reuses it, unless a callback may change the weights in between. Each cell's bits either way.
    counts = {"ahead": 0, "forwards": 0}
    run_ahead, forward_with_graph = StackedGroup._run_ahead, StackedGroup._forward_with_graph

    def counted_run_ahead(self, positions):
        train = run_ahead(self, positions)
        counts["ahead"] += train is not None
        return train

    def counted_forward(self, *args):
        counts["forwards"] += 1
        return forward_with_graph(self, *args)

    monkeypatch.setattr(StackedGroup, "_run_ahead", counted_run_ahead)
    monkeypatch.setattr(StackedGroup, "_forward_with_graph", counted_forward)
    steps = 120
    datas = [liu_toy("float32", steps, seed=seed) for seed in (0, 1)]
    configs, sequential, stacked = train_both(datas, tmp_path, extra=(lambda: [Shrinker()]) if shrink else list)
    # every evaluation but the last (30 linear points and a log grid), or none
    assert (counts["ahead"] == 0) if shrink else (counts["ahead"] >= 30)
    assert counts["forwards"] == steps  # each step's forward ran once, ahead or in the step
    for i in range(len(configs)):
        assert max_difference(sequential[i], stacked[i]) == 0, i
        assert max_difference(sequential[i], stacked[1 - i]) > 1e-3
        seq, ens = open_run(tmp_path / "seq" / f"c{i}"), open_run(tmp_path / "ens" / f"c{i}")
        pd.testing.assert_frame_equal(ens.metrics, seq.metrics, check_exact=True)


@pytest.mark.parametrize("stacks", [2, 3])
def test_stacks_side_by_side_in_threads_give_each_cell_its_bits(tmp_path, stacks):
    # the cells cut into stacks of equal learning rates, each trained in a thread of its own:
    # every parameter at every step and every metric as in the run alone; torch's threads and
    # the interpreter's switch interval as before
    threads, switch_interval = torch.get_num_threads(), sys.getswitchinterval()
    datas = [liu_toy("float32", 150, **o) for o in six_cells()]
    configs, sequential, stacked = train_both(datas, tmp_path, stacks=stacks)
    assert (torch.get_num_threads(), sys.getswitchinterval()) == (threads, switch_interval)
    sizes = []
    for i in range(len(configs)):
        assert max_difference(sequential[i], stacked[i]) == 0, i
        assert max_difference(sequential[i], stacked[(i + 1) % len(configs)]) > 1e-3
        seq, ens = open_run(tmp_path / "seq" / f"c{i}"), open_run(tmp_path / "ens" / f"c{i}")
        pd.testing.assert_frame_equal(ens.metrics, seq.metrics, check_exact=True)
        assert ens.summary["status"] == "finished"
        sizes += [e["cells"] for e in ens.events if e["event"] == "stacked"]
    assert sorted(sizes) == sorted([len(configs) // stacks] * len(configs))


class InterruptAt(Callback):
    """Raises KeyboardInterrupt (as Ctrl-C would) at one step."""

    changes_weights = False

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, trainer) -> None:
        if trainer.step == self.step:
            raise KeyboardInterrupt


def test_an_interrupt_in_one_stack_stops_every_stack_and_the_cells_resume_to_their_runs(tmp_path):
    datas = [liu_toy("float32", 160, **o) for o in six_cells()[:4]]
    configs = [parse_config({**d, "name": f"c{i}"}) for i, d in enumerate(datas)]
    folders = [tmp_path / "ens" / f"c{i}" for i in range(len(configs))]
    ended: dict[int, str] = {}
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(
            configs,
            folders,
            extra_callbacks=lambda i: [InterruptAt(60)] if i == 0 else [],
            done=lambda i, status: ended.__setitem__(i, status),
            stacks=2,
        )
    assert ended == dict.fromkeys(range(len(configs)), "interrupted")  # both stacks stopped
    assert all(open_run(f).summary["step"] < 160 for f in folders)
    train_ensemble(configs, folders, stacks=2)
    for i, config in enumerate(configs):
        alone = grokscope.run(config, out=tmp_path / "seq" / f"c{i}", progress=False)
        resumed = open_run(folders[i])
        assert resumed.summary["status"] == "finished"
        assert [e["event"] for e in resumed.events].count("resumed") == 1
        weights, _ = resumed.store.load_checkpoint(160, "cpu")
        expected, _ = alone.store.load_checkpoint(160, "cpu")
        assert all(torch.equal(weights[k], expected[k]) for k in expected), i


def test_side_by_side_gives_a_stack_to_each_torch_thread_of_at_least_25_cells_on_cpu():
    def cells(count: int, device: str = "cpu") -> list:
        return [SimpleNamespace(experiment=SimpleNamespace(model=nn.Linear(1, 1, device=device)))] * count

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert [side_by_side(cells(n), compile=False) for n in (10, 49, 50, 500)] == [1, 1, 2, 2]
        assert side_by_side(cells(100), compile=True) == 1  # torch.compile: one stack
        assert side_by_side(cells(100, "meta"), compile=False) == 1  # not on CPU: one stack
        torch.set_num_threads(4)
        assert [side_by_side(cells(n), compile=False) for n in (75, 100, 400)] == [3, 4, 4]
    finally:
        torch.set_num_threads(threads)
