"""Weight norms (Liu sec. 6, "Omnigrok": generalization follows the weight norm)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch


def parameter_norms(parameters: Mapping[str, torch.Tensor]) -> tuple[float, dict[str, float]]:
    """L2 norm of all parameters together, and of each module's parameters.

    ``total = sqrt(sum_p ||p||_F^2)``; a module is the parameter name without its last part
    (``linears.0.weight`` and ``linears.0.bias`` form ``linears.0``).

    >>> parameter_norms({"a.weight": torch.tensor([3.0]), "a.bias": torch.tensor([4.0])})
    (5.0, {'a': 5.0})
    """
    total, per_module = stacked_parameter_norms({name: value.unsqueeze(0) for name, value in parameters.items()})
    return float(total[0]), {module: float(norm[0]) for module, norm in per_module.items()}


def stacked_parameter_norms(parameters: Mapping[str, torch.Tensor]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``parameter_norms`` of several models at once: every tensor has a leading axis of models
    (the stacks of a batched ensemble), and each norm is an array over that axis, in float64.

    >>> total, _ = stacked_parameter_norms({"w": torch.tensor([[3.0, 4.0], [0.0, 1.0]])})
    >>> total.tolist()
    [5.0, 1.0]
    """
    squares: dict[str, torch.Tensor] = {}
    for name, value in parameters.items():
        module = name.rsplit(".", 1)[0] if "." in name else name
        rows = value.detach().reshape(len(value), -1)
        square = torch.linalg.vector_norm(rows, 2, dim=1, dtype=torch.float64).square()
        squares[module] = squares[module] + square if module in squares else square
    total = torch.stack(list(squares.values())).sum(0).sqrt() if squares else torch.zeros(0, dtype=torch.float64)
    return total.cpu().numpy(), {module: s.sqrt().cpu().numpy() for module, s in squares.items()}
