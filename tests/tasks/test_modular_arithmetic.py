import numpy as np
import pytest

from grokscope.config import parse_config
from grokscope.errors import ConfigError
from grokscope.tasks import build_task, split_indices
from grokscope.tasks.arithmetic import ModularArithmeticSpec, is_prime
from tests.conftest import tiny_config_data


def test_split_is_disjoint_exact_and_covers_everything():
    train, test = split_indices(1000, 0.3, seed=4)
    assert len(train) == 300 and len(test) == 700
    assert not set(train) & set(test)
    assert sorted([*train, *test]) == list(range(1000))


def test_split_is_deterministic_in_its_seed_only():
    a = split_indices(500, 0.4, seed=1)
    b = split_indices(500, 0.4, seed=1)
    c = split_indices(500, 0.4, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("add", lambda a, b, p: (a + b) % p),
        ("sub", lambda a, b, p: (a - b) % p),
        ("mul", lambda a, b, p: (a * b) % p),
        ("div", lambda a, b, p: next(c for c in range(p) if (c * b) % p == a)),
        ("square_sum", lambda a, b, p: (a * a + b * b) % p),
        ("quad", lambda a, b, p: (a * a + a * b + b * b) % p),
        ("cubic", lambda a, b, p: (a**3 + a * b) % p),
    ],
)
def test_labels_are_the_operation_of_the_operands(operation, expected):
    p = 13
    task = build_task(ModularArithmeticSpec(p=p, operation=operation, train_fraction=0.5))
    for split in ("train", "test"):
        operands = task.metadata[f"{split}_operands"]
        labels = (task.y_train if split == "train" else task.y_test).numpy()
        assert [expected(int(a), int(b), p) for a, b in operands] == labels.tolist()
    total = len(task.y_train) + len(task.y_test)
    assert total == (p * (p - 1) if operation == "div" else p * p)


def test_onehot_inputs_encode_both_operands_and_tokens_are_ids():
    spec = ModularArithmeticSpec(p=7, train_fraction=0.5)
    task = build_task(spec)
    operands = task.metadata["train_operands"]
    x = task.x_train.numpy()
    assert x.shape == (len(operands), 14)
    assert np.array_equal(x[:, :7].argmax(1), operands[:, 0])
    assert np.array_equal(x[:, 7:].argmax(1), operands[:, 1])
    assert np.all(x.sum(1) == 2)
    tokens = build_task(spec.model_copy(update={"encoding": "tokens", "equals_token": True}))
    assert tokens.x_train[:, :2].tolist() == operands.tolist()
    assert set(tokens.x_train[:, 2].tolist()) == {7} and tokens.vocab_size == 8


def test_train_and_test_pairs_never_overlap():
    task = build_task(ModularArithmeticSpec(p=11, train_fraction=0.6, split_seed=3))
    train = {tuple(pair) for pair in task.metadata["train_operands"]}
    test = {tuple(pair) for pair in task.metadata["test_operands"]}
    assert not train & test and len(train) + len(test) == 121


@pytest.mark.parametrize("p", [1, 0, 4, 91])
def test_p_must_be_prime(p):
    assert not is_prime(p)
    with pytest.raises(ConfigError, match=f"task.p = {p}: must be a prime"):
        parse_config(tiny_config_data(task={"p": p}))
