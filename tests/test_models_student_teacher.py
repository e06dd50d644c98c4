"""Seed 003's student–teacher network: the labkit model interface, sizes, local pretrained pieces, and training."""

import json

import pytest
import torch
from torchvision.models import resnet50

from labkit.data import make_world
from labkit.losses import InfoNCE, Objective
from labkit.models import ClipBundle, StudentTeacher, create_student_teacher
from labkit.models.student_teacher import load_distilbert_embeddings, wordpiece
from labkit.train import TrainConfig, fit


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world():
    return make_world(n_pairs=80, seed=0, image_size=16)


def test_interface_shapes_and_the_shared_100d_space(world):
    b = create_student_teacher(world.train, seed=0, widths=(4, 8, 8), hidden=8, word_dim=8, teacher_hidden=16)
    assert isinstance(b, ClipBundle) and isinstance(b.model, StudentTeacher) and b.image_size == 16
    m = b.model.eval()
    x = torch.stack([world.train[i]["image"] for i in range(3)])
    img = m.encode_image(x, normalize=True)
    txt = m.encode_text(b.tokenizer(world.train.captions_of(0)[:3]), normalize=True)
    assert img.shape == txt.shape == (3, 100)
    assert torch.allclose(img.norm(dim=1), torch.ones(3)) and torch.allclose(txt.norm(dim=1), torch.ones(3))
    assert m.logit_scale.exp().item() == pytest.approx(1 / 0.07)
    # the text student reads up to each caption's last word: padding does not change a caption's embedding
    tok = b.tokenizer(["a red circle"])
    padded = torch.cat([tok[:, :3], torch.zeros(1, 5, dtype=torch.long)], dim=1)
    assert torch.allclose(m.encode_text(tok), m.encode_text(padded), atol=1e-6)


def test_same_seed_same_weights(world):
    a = create_student_teacher(world.train, seed=3, widths=(4, 8, 8), hidden=8).model.state_dict()
    b = create_student_teacher(world.train, seed=3, widths=(4, 8, 8), hidden=8).model.state_dict()
    c = create_student_teacher(world.train, seed=4, widths=(4, 8, 8), hidden=8).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_fit_trains_it_with_infonce(world):
    b = create_student_teacher(world.train, seed=0, widths=(4, 8, 8), hidden=16, word_dim=8, teacher_hidden=32)
    cfg = TrainConfig(epochs=6, batch_size=16, lr=1e-2, warmup_steps=2, temperature=0.1, caption="first",
                      device="cpu", progress=False)
    hist = fit(b.model, Objective({"infonce": InfoNCE()}), world.train, b.tokenizer, cfg)
    assert hist["loss"].iloc[-1] < hist["loss"].iloc[0] - 0.3
    assert b.model.logit_scale.exp().item() == pytest.approx(10.0)  # τ fixed by TrainConfig


def test_full_size_is_resnet50_and_a_768_wide_lstm_and_loads_local_weights(world, tmp_path):
    reference = resnet50(weights=None)
    torch.save(reference.state_dict(), tmp_path / "resnet50.pth")
    b = create_student_teacher(world.train, size="full", vision_checkpoint=tmp_path / "resnet50.pth", image_size=32)
    m = b.model
    assert m.visual.out_dim == 2048 and m.text.lstm.hidden_size == 768 and m.text.lstm.num_layers == 1
    assert m.text.token_embedding.embedding_dim == 768
    assert [len(getattr(m.visual, f"layer{i}")) for i in (1, 2, 3, 4)] == [3, 4, 6, 3]  # Table 1
    assert torch.equal(m.visual.conv1.weight, reference.conv1.weight)
    assert m.eval().encode_image(torch.zeros(1, 3, 32, 32)).shape == (1, 100)
    assert b.preprocess is not None
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="other.pth"):
        create_student_teacher(world.train, size="full", vision_checkpoint=tmp_path / "other.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        create_student_teacher(world.train, size="full", vision_checkpoint=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="size='full'"):
        create_student_teacher(world.train, vision_checkpoint=tmp_path / "resnet50.pth")


def test_distilbert_token_embeddings_from_a_local_copy(world, tmp_path):
    from safetensors.torch import save_file

    vocab = ["[PAD]", "[UNK]", "a", "red", "circ", "##le", "square", "blue"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    table = torch.arange(len(vocab) * 4, dtype=torch.float32).view(len(vocab), 4)
    save_file({"distilbert.embeddings.word_embeddings.weight": table}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"dim": 4}))
    assert wordpiece("circle", {w: i for i, w in enumerate(vocab)}) == ["circ", "##le"]
    rows, found = load_distilbert_embeddings(tmp_path, ["red", "circle", "zebra"])
    assert found == 2
    assert torch.equal(rows[0], table[3]) and torch.equal(rows[1], (table[4] + table[5]) / 2)
    assert torch.equal(rows[2], table[1])  # no piece: [UNK]'s row
    b = create_student_teacher(texts=["a red circle", "a blue square"], distilbert=tmp_path, widths=(4, 8, 8),
                               hidden=8)
    emb = b.model.text.token_embedding.weight
    assert emb.shape[1] == 4 and torch.equal(emb[b.tokenizer.stoi["red"]], table[3])
    assert emb[0].abs().sum() == 0  # padding row stays zero
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        load_distilbert_embeddings(tmp_path / "nowhere", ["a"])


def test_bad_options_are_named(world):
    with pytest.raises(ValueError, match="size"):
        create_student_teacher(world.train, size="huge")
    with pytest.raises(ValueError, match="unknown"):
        create_student_teacher(world.train, depth=3)
    with pytest.raises(ValueError, match="train_set"):
        create_student_teacher()
