import pytest
import torch

from grokscope.models import ACTIVATIONS, MLP, MLPSpec


def make(**fields) -> MLP:
    torch.manual_seed(0)
    return MLP(MLPSpec(**fields), input_dim=6, output_dim=3)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("relu", lambda h: h.clamp(min=0)),
        ("tanh", lambda h: (h.exp() - (-h).exp()) / (h.exp() + (-h).exp())),
        ("identity", lambda h: h),
        ("gaussian", lambda h: (-(h**2)).exp()),
        ("gelu", lambda h: 0.5 * h * (1 + torch.erf(h / 2**0.5))),
    ],
)
def test_every_activation_is_what_its_name_says(name, expected):
    h = torch.linspace(-3, 3, 61)
    assert torch.allclose(ACTIVATIONS[name](h), expected(h), atol=1e-6)
    model = make(activation=name, depth=3, width=5)
    trace = model.trace(torch.randn(4, 6))
    for record in trace.hidden:
        assert torch.allclose(record.x, expected(record.h), atol=1e-6)


@pytest.mark.parametrize(
    "fields", [{}, {"depth": 4, "width": 5}, {"batch_norm": True, "depth": 3}, {"residual": True, "depth": 6}]
)
def test_trace_records_every_layer_and_reproduces_the_output(fields):
    model = make(**fields)
    model.eval()
    x = torch.randn(7, 6)
    trace = model.trace(x)
    assert torch.equal(trace.output, model(x))
    assert len(trace.layers) == model.spec.depth and trace.layers[-1].name == "output"
    previous = x
    for record in trace.layers:
        assert torch.equal(record.input, previous)
        h = record.input @ record.weight.T + (record.bias if record.bias is not None else 0)
        if record.batch_norm is not None:
            h = record.batch_norm(h)
        assert torch.allclose(record.h, h, atol=1e-6)
        previous = record.x


def test_residual_adds_the_output_two_layers_back():
    model = make(residual=True, depth=6, width=5, activation="tanh")
    trace = model.trace(torch.randn(3, 6))
    skips = [record.skip_from for record in trace.hidden]
    assert skips == [None, None, 0, None, 2]
    third = trace.hidden[2]
    assert torch.allclose(third.x, torch.tanh(third.h) + trace.hidden[0].x)


def test_init_scale_multiplies_the_default_init_and_last_layer_can_start_at_zero():
    base, scaled = make(depth=3), make(depth=3, init_scale=8.0)
    for a, b in zip(base.parameters(), scaled.parameters()):
        assert torch.allclose(b, 8 * a)
    zero = make(zero_init_last=True)
    assert torch.count_nonzero(zero.linears[-1].weight) == 0
    assert torch.count_nonzero(zero.linears[0].weight) > 0


def test_output_bias_and_widths():
    model = make(widths=[4, 9], output_bias=False)
    assert [layer.out_features for layer in model.linears] == [4, 9, 3]
    assert model.linears[-1].bias is None and model.linears[0].bias is not None
    with pytest.raises(ValueError, match="equal hidden widths"):
        MLPSpec(widths=[4, 5, 4], residual=True)
