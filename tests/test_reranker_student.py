"""The student's weight interpolation with its base model (WiSE-FT), on the real MiniLM weights."""

from __future__ import annotations

import pytest
import torch

from synthwright.errors import UserError
from synthwright.reranker.student import TrainSettings, interpolate_with_base, train_student


@pytest.fixture
def minilm():
    from sentence_transformers import SentenceTransformer

    from synthwright.embed.local import minilm_path

    return minilm_path(), SentenceTransformer(str(minilm_path()), local_files_only=True, device="cpu")


def test_interpolation_moves_every_weight_back_by_the_base_share(minilm):
    base_path, model = minilm
    base = {name: value.clone() for name, value in model.state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a stand-in for fine-tuning: every float weight moves
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.add_(torch.randn(value.shape, generator=generator) * 0.05)
    tuned = {name: value.clone() for name, value in model.state_dict().items()}

    interpolate_with_base(model, base_path, 0.25)

    merged = model.state_dict()
    floats = [name for name, value in merged.items() if value.is_floating_point()]
    assert len(floats) > 50
    for name in floats:
        torch.testing.assert_close(merged[name], 0.75 * tuned[name] + 0.25 * base[name], rtol=1e-5, atol=1e-6)
    for name in set(merged) - set(floats):  # position ids and the like stay as they are
        assert torch.equal(merged[name], tuned[name])
    embedding = model.encode(["honey bees make honey"], convert_to_tensor=True)
    assert embedding.shape == (1, 384) and torch.isfinite(embedding).all()


def test_interpolating_a_cross_encoder_or_outside_zero_to_one_is_a_clear_error():
    with pytest.raises(UserError, match="kind: bi only"):
        train_student([], {}, "unused", TrainSettings(kind="cross", base_weight=0.5))
    with pytest.raises(UserError, match="below 1"):
        train_student([], {}, "unused", TrainSettings(kind="bi", base_weight=1.0))
