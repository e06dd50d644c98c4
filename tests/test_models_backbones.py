"""labkit.models.backbones.ResidualCNN (shared by seeds 002 and 003) and labkit.models.base.DualEncoder."""

import pytest
import torch
import torch.nn as nn

from labkit.models import DualEncoder, ResidualCNN


def test_output_width_and_resolution_halving():
    net = ResidualCNN((8, 16, 24), blocks=(1, 2, 1))
    assert net.out_dim == 24
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 24)
    assert [len(stage) for stage in net.stages] == [1, 2, 1]
    strides = [stage[0].conv1.stride[0] for stage in net.stages]
    assert strides == [1, 2, 2]
    assert net.stages[0][0].downsample is None and net.stages[1][0].downsample is not None


def test_group_norm_makes_each_sample_independent_of_its_batch():
    """The reason seed 002's single network uses norm="group": photographs and encoded captions share a batch."""
    torch.manual_seed(0)
    x = torch.randn(6, 3, 16, 16)
    group, batch = ResidualCNN((8, 16), norm="group").train(), ResidualCNN((8, 16), norm="batch").train()
    assert torch.allclose(group(x)[:2], group(x[:2]), atol=1e-6)
    assert not torch.allclose(batch(x)[:2], batch(x[:2]), atol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in group.modules())


def test_stem_reads_one_visual_word_per_step():
    net = ResidualCNN((8,), stem_kernel=4, stem_stride=4, norm="group")
    assert net.stem[0].kernel_size == (4, 4) and net.stem[0].stride == (4, 4) and net.stem[0].padding == (0, 0)
    assert net.stem(torch.randn(1, 3, 32, 32)).shape[-1] == 8


def test_kaiming_init_is_optional_and_seeded():
    torch.manual_seed(1)
    a = ResidualCNN((8, 16), kaiming_init=True)
    torch.manual_seed(1)
    b = ResidualCNN((8, 16), kaiming_init=True)
    torch.manual_seed(1)
    c = ResidualCNN((8, 16), kaiming_init=False)
    assert all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.stem[0].weight, c.stem[0].weight)


@pytest.mark.parametrize("kwargs, name", [({"norm": "layer"}, "norm"), ({"blocks": (1,)}, "blocks"),
                                          ({"widths": ()}, "widths")])
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ResidualCNN(**kwargs)


class _Toy(DualEncoder):
    def __init__(self):
        super().__init__()
        self.image, self.text = nn.Linear(4, 3), nn.Linear(5, 3)
        self.logit_scale = nn.Parameter(torch.tensor(2.0))

    def encode_image(self, x, normalize=False):
        z = self.image(x)
        return nn.functional.normalize(z, dim=-1) if normalize else z

    def encode_text(self, t, normalize=False):
        z = self.text(t)
        return nn.functional.normalize(z, dim=-1) if normalize else z


def test_dual_encoder_forward_is_open_clips_output_dict():
    m = _Toy()
    out = m(torch.randn(2, 4), torch.randn(2, 5))
    assert set(out) == {"image_features", "text_features", "logit_scale"}
    assert torch.allclose(out["image_features"].norm(dim=-1), torch.ones(2))
    assert torch.allclose(out["text_features"].norm(dim=-1), torch.ones(2))
    assert torch.isclose(out["logit_scale"], torch.tensor(2.0).exp())
    only_text = m(text=torch.randn(3, 5))
    assert only_text["image_features"] is None and only_text["text_features"].shape == (3, 3)
