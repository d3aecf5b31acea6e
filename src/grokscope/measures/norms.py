"""Weight norms (Liu sec. 6, "Omnigrok": generalization follows the weight norm)."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def parameter_norms(parameters: Mapping[str, torch.Tensor]) -> tuple[float, dict[str, float]]:
    """L2 norm of all parameters together, and of each module's parameters.

    ``total = sqrt(sum_p ||p||_F^2)``; a module is the parameter name without its last part
    (``linears.0.weight`` and ``linears.0.bias`` form ``linears.0``).

    >>> parameter_norms({"a.weight": torch.tensor([3.0]), "a.bias": torch.tensor([4.0])})
    (5.0, {'a': 5.0})
    """
    squares: dict[str, float] = {}
    for name, value in parameters.items():
        module = name.rsplit(".", 1)[0] if "." in name else name
        squares[module] = squares.get(module, 0.0) + float(value.double().pow(2).sum())
    per_module = {module: s**0.5 for module, s in squares.items()}
    return sum(squares.values()) ** 0.5, per_module
