"""RQI probe: known answers on a hand-built embedding model, and a live run of Liu's toy."""

import numpy as np
import pytest
import torch

import grokscope
from grokscope.errors import ConfigError
from grokscope.measures.rqi import addition_dataset
from grokscope.models.base import Trace, TracedModel
from grokscope.probes.base import ProbeContext
from grokscope.probes.rqi import RQIProbe, RQISpec
from grokscope.tasks.base import Task
from grokscope.train.objective import Objective


class FixedEmbeddings(TracedModel):
    """Dec(E_a + E_b) with a fixed table and a decoder that reads the sum exactly."""

    def __init__(self, table: torch.Tensor, n_classes: int) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(table)
        self.n_classes = n_classes

    def forward(self, x):
        total = (self.table[x[:, 0]] + self.table[x[:, 1]])[:, 0]
        return -((total[:, None] - torch.arange(self.n_classes)) ** 2)  # argmax at the nearest integer sum

    def trace(self, x):
        return Trace(layers=[], output=self(x))

    def embeddings(self):
        return self.table


class NoEmbeddings(FixedEmbeddings):
    def embeddings(self):
        return None


def addition_task(p: int, train_pairs: set) -> Task:
    operands, sums = addition_dataset(p)
    train = np.array([tuple(map(int, o)) in train_pairs for o in operands])
    return Task(
        x_train=torch.from_numpy(operands[train]),
        y_train=torch.from_numpy(sums[train]),
        x_test=torch.from_numpy(operands[~train]),
        y_test=torch.from_numpy(sums[~train]),
        kind="classification",
        n_classes=2 * p - 1,
        vocab_size=p,
        metadata={"train_operands": operands[train], "test_operands": operands[~train]},
    )


def measure(model, task):
    probe = RQIProbe(RQISpec())
    objective = Objective(task, "cross_entropy")
    probe.setup(model, task, objective)
    return probe(ProbeContext(model, task, objective, step=0, seed=0))


def test_linear_embeddings_on_liu_appendix_e_training_set():
    task = addition_task(4, {(0, 2), (1, 1), (0, 3), (1, 2), (1, 3), (2, 2)})
    output = measure(FixedEmbeddings(torch.arange(4.0)[:, None], 7), task)
    assert output["rqi/rqi"] == 1.0
    assert output["rqi/acc"] == 1.0  # the decoder reads the exact sum
    assert output["rqi/acc_hat"] == pytest.approx(0.6)  # P0 reaches no sample outside D (Liu app. E)
    assert output["rqi/rqi_bar"] == 1.0 and output["rqi/acc_bar"] == pytest.approx(0.6)
    assert output["rqi/nullity"] == 2.0
    np.testing.assert_array_equal(output["embeddings"], np.arange(4.0)[:, None])


def test_random_embeddings_score_low_and_non_embedding_models_are_refused():
    task = addition_task(10, {(i, j) for i in range(10) for j in range(i, 10) if (i + j) % 3})
    table = torch.from_numpy(np.random.default_rng(0).standard_normal((10, 2)))
    output = measure(FixedEmbeddings(table, 19), task)
    assert output["rqi/rqi"] < 0.1
    assert output["rqi/acc_hat"] <= output["rqi/acc_bar"]
    with pytest.raises(ConfigError, match="embedding model"):
        measure(NoEmbeddings(table, 19), task)


@pytest.mark.slow
def test_liu_toy_run_records_rqi_and_probes_leave_training_untouched(tmp_path):
    config = {
        "task": {"name": "addition", "p": 6, "train_size": 15},
        "model": {"name": "liu_toy", "decoder_widths": [16, 16]},
        "optimizer": {"lr": 1e-2},
        "training": {"steps": 40, "loss": "mse"},
        "device": "cpu",
    }
    plain = grokscope.run(config, out=tmp_path / "plain", progress=False)
    probed = grokscope.run(
        {**config, "probes": [{"name": "rqi"}, {"name": "ntk", "samples": 4}]}, out=tmp_path / "probed", progress=False
    )
    for column in ("rqi/rqi", "rqi/acc_hat", "rqi/acc", "rqi/rqi_bar", "ntk/kernel_distance"):
        assert column in probed.metrics
    final_plain = plain.load_model().state_dict()
    final_probed = probed.load_model().state_dict()
    for name, value in final_plain.items():
        assert torch.equal(value, final_probed[name]), name
    steps = sorted(probed.arrays("rqi"))
    assert probed.arrays("rqi")[steps[-1]]["embeddings"].shape == (6, 1)
