r"""The student–teacher network of seed 003 (*Reasoning about Intermodal Correspondences*, §2.2, Fig. 2).

Two modality-specific **students** turn an image or a sentence into a representation of their own; two **teachers**
(fully connected encoders: Linear → LeakyReLU → Dropout → Linear) map each student's output into one shared 100-d
space where the contrastive loss (eq. 1, :mod:`labkit.losses.infonce`) aligns them::

    image ─ vision student (residual CNN) ─ teacher 1 ─┐
                                                         ├─ shared 100-d space
    text ── word embeddings → 1-layer LSTM ── teacher 2 ─┘

=========  ==========================================  =================================================
 size       vision student                              text student
=========  ==========================================  =================================================
 ``full``   torchvision's ResNet-50 (Table 1: 3-4-6-3    768-d word vectors → LSTM with 768 hidden units
            bottleneck blocks, 2048-d pooled output),   (§2.1); DistilBERT's token embeddings when a local
            weights from a local checkpoint when given  copy is given, learned embeddings otherwise
 ``tiny``   a small residual CNN built from              small learned word vectors → small LSTM
            torchvision's ``BasicBlock`` (3 stages)
=========  ==========================================  =================================================

The model exposes the interface every labkit model has — ``encode_image(x, normalize=True)``,
``encode_text(tokens, normalize=True)`` and a ``logit_scale`` parameter (``log 1/τ``) — and
:func:`create_student_teacher` packages it as a :class:`~labkit.models.ClipBundle`, so :func:`labkit.train.fit`,
:mod:`labkit.evaluate`, the metrics and the plots work unchanged. Words are ids of a
:class:`~labkit.data.text.WordTokenizer` built from the training captions (0 = padding).

**Pretrained pieces, offline.** ``vision_checkpoint``: a state dict of torchvision's ``resnet50`` (e.g. the file
torchvision caches, ``resnet50-0676ba61.pth``), read with ``torch.load(weights_only=True)``; its ``fc.*`` entries
are ignored. ``distilbert``: a local folder of a DistilBERT model (``vocab.txt`` and ``model.safetensors`` or
``pytorch_model.bin``); the embedding row of each word of labkit's vocabulary is DistilBERT's row of that word
(or the mean of its WordPiece pieces, split greedily longest-match-first as BERT does). Nothing is downloaded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import resnet50

from ..data.text import PAD, WordTokenizer
from .backbones import ResidualCNN
from .base import DualEncoder
from .clip import ClipBundle

__all__ = ["StudentTeacher", "LSTMStudent", "Teacher", "create_student_teacher",
           "STUDENT_TEACHER_SIZES", "load_distilbert_embeddings", "wordpiece"]

SHARED_DIM = 100  # §2.2: "vector representations of a dimension 100 invariant for two modalities"

#: per-size architecture; any key can be overridden through :func:`create_student_teacher`
STUDENT_TEACHER_SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"vision": "residual", "widths": (16, 32, 64), "blocks": (1, 1, 1), "word_dim": 32, "hidden": 64,
             "teacher_hidden": 128, "embed_dim": SHARED_DIM, "dropout": 0.1},
    "full": {"vision": "resnet50", "word_dim": 768, "hidden": 768, "teacher_hidden": 512, "embed_dim": SHARED_DIM,
             "dropout": 0.2},
}


def _resnet50_student(checkpoint: str | Path | None, image_size: int) -> nn.Module:
    """torchvision's ResNet-50 (Table 1) with the classifier removed: ``(B, 2048)``; optional local weights."""
    net = resnet50(weights=None)
    net.fc = nn.Identity()
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"vision_checkpoint not found: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"cannot read vision_checkpoint {path}: {exc}") from exc
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        state = {k.removeprefix("module."): v for k, v in state.items()}
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        try:
            missing, unexpected = net.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shape mismatches
            raise ValueError(f"vision_checkpoint {path} does not fit torchvision's resnet50: {exc}") from exc
        if missing or unexpected:
            raise ValueError(f"vision_checkpoint {path} is not a torchvision resnet50 state dict: missing "
                             f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    net.out_dim = 2048
    net.image_size = image_size
    return net


class LSTMStudent(nn.Module):
    """Word embeddings → a one-layer LSTM; the output is the hidden state after each caption's last word (§2.1)."""

    def __init__(self, vocab_size: int, word_dim: int = 768, hidden: int = 768,
                 embeddings: torch.Tensor | None = None):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, word_dim, padding_idx=PAD)
        if embeddings is not None:
            if tuple(embeddings.shape) != (vocab_size, word_dim):
                raise ValueError(f"embeddings must be ({vocab_size}, {word_dim}); got {tuple(embeddings.shape)}")
            with torch.no_grad():
                self.token_embedding.weight.copy_(embeddings)
                self.token_embedding.weight[PAD].zero_()
        self.lstm = nn.LSTM(word_dim, hidden, num_layers=1, batch_first=True)
        self.out_dim = hidden

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        lengths = (tokens != PAD).sum(1).clamp(min=1)
        states, _ = self.lstm(self.token_embedding(tokens))  # (B, L, H); padding sits after the words
        return states[torch.arange(len(tokens), device=tokens.device), lengths - 1]


class Teacher(nn.Module):
    """A teacher encoder (§2.2): fully connected layers with LeakyReLU and dropout, into the shared space."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int = SHARED_DIM, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.LeakyReLU(0.01), nn.Dropout(dropout),
                                 nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class StudentTeacher(DualEncoder):
    """Students (vision, text) and teachers (encoder 1, encoder 2) of Fig. 2, with labkit's model interface."""

    def __init__(self, vision: nn.Module, text: nn.Module, teacher_hidden: int = 512, embed_dim: int = SHARED_DIM,
                 dropout: float = 0.1, temperature: float = 0.07):
        super().__init__()
        if not 0 < temperature <= 1:
            raise ValueError(f"temperature must be in (0, 1], got {temperature}")
        self.visual = vision  # ``visual.image_size`` is what ClipBundle.image_size reads
        self.text = text
        self.teacher_image = Teacher(vision.out_dim, teacher_hidden, embed_dim, dropout)
        self.teacher_text = Teacher(text.out_dim, teacher_hidden, embed_dim, dropout)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.embed_dim = embed_dim

    def encode_image(self, image: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        z = self.teacher_image(self.visual(image))
        return F.normalize(z, dim=-1) if normalize else z

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        z = self.teacher_text(self.text(tokens))
        return F.normalize(z, dim=-1) if normalize else z


# ----------------------------------------------------------------------------------------------- DistilBERT rows

def wordpiece(word: str, vocab: dict[str, int], max_chars: int = 100) -> list[str] | None:
    """BERT's WordPiece split of one (lower-cased) word: greedy longest match first, continuations prefixed
    ``##``; ``None`` when some part matches nothing (BERT then emits ``[UNK]``)."""
    if len(word) > max_chars:
        return None
    pieces, start = [], 0
    while start < len(word):
        end, piece = len(word), None
        while start < end:
            cand = word[start:end] if start == 0 else "##" + word[start:end]
            if cand in vocab:
                piece = cand
                break
            end -= 1
        if piece is None:
            return None
        pieces.append(piece)
        start = end
    return pieces


def load_distilbert_embeddings(folder: str | Path, words: Sequence[str]) -> tuple[torch.Tensor, int]:
    """DistilBERT's input token embeddings for ``words`` from a local model folder (no download).

    Reads ``vocab.txt`` and the tensor ``distilbert.embeddings.word_embeddings.weight`` (or
    ``embeddings.word_embeddings.weight``) from ``model.safetensors`` or ``pytorch_model.bin``
    (``weights_only=True``). Returns ``(E, n_found)``: row ``i`` is the embedding of ``words[i]`` (mean over its
    WordPiece pieces); words without any piece get ``[UNK]``'s row. ``n_found`` counts words that had pieces.
    """
    folder = Path(folder)
    vocab_file = folder / "vocab.txt"
    if not vocab_file.is_file():
        raise FileNotFoundError(f"DistilBERT vocabulary not found: {vocab_file}")
    vocab = {line.rstrip("\n"): i for i, line in enumerate(vocab_file.read_text(encoding="utf-8").splitlines())}
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        state = load_file(str(folder / "model.safetensors"))
        source = folder / "model.safetensors"
    elif (folder / "pytorch_model.bin").is_file():
        source = folder / "pytorch_model.bin"
        state = torch.load(source, map_location="cpu", weights_only=True)
    else:
        raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin in {folder}")
    key = next((k for k in ("distilbert.embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight")
                if k in state), None)
    if key is None:
        raise ValueError(f"{source}: no DistilBERT token embedding tensor "
                         "('distilbert.embeddings.word_embeddings.weight')")
    table = state[key].float()
    if table.shape[0] != len(vocab):
        raise ValueError(f"{source}: {table.shape[0]} embedding rows but {len(vocab)} entries in {vocab_file}")
    unk = vocab.get("[UNK]", 0)
    rows, found = [], 0
    for w in words:
        pieces = wordpiece(w.lower(), vocab)
        if pieces:
            found += 1
            rows.append(table[[vocab[p] for p in pieces]].mean(0))
        else:
            rows.append(table[unk])
    return torch.stack(rows) if rows else table.new_zeros(0, table.shape[1]), found


# ----------------------------------------------------------------------------------------------------- factory

def create_student_teacher(train_set=None, size: str = "tiny", seed: int = 0, context_length: int = 24,
                           texts: Sequence[str] | None = None, vision_checkpoint: str | Path | None = None,
                           distilbert: str | Path | None = None, image_size: int | None = None,
                           temperature: float = 0.07, **overrides: Any) -> ClipBundle:
    """A seeded :class:`StudentTeacher` with a :class:`~labkit.data.text.WordTokenizer` over the training captions.

    Args:
        train_set: the training dataset (its ``captions_flat()`` builds the vocabulary), or give ``texts``.
        size: ``"tiny"`` (small residual CNN + small LSTM, CPU) or ``"full"`` (ResNet-50 + 768-d LSTM), see
            :data:`STUDENT_TEACHER_SIZES`; ``overrides`` replace entries (``widths=(8, 16, 32)``, ``hidden=32``, …).
        vision_checkpoint: local torchvision ``resnet50`` weights (``full`` only).
        distilbert: local DistilBERT folder whose token embeddings initialise the word vectors (their width,
            768, then sets ``word_dim``).
        image_size: the input side (default: the embedded world's, else 224 for ``full`` and 32 for ``tiny``).
        temperature: the initial τ (``logit_scale = log 1/τ``); :class:`~labkit.train.TrainConfig` ``temperature``
            fixes it during training.

    Returns a :class:`~labkit.models.ClipBundle`; ``preprocess`` is ``None`` for ``tiny`` (the embedded world's
    normalised tensors are used as they are) and a resize + ImageNet normalisation for ``full``.
    """
    if size not in STUDENT_TEACHER_SIZES:
        raise ValueError(f"size must be one of {sorted(STUDENT_TEACHER_SIZES)}, got {size!r}")
    cfg = {**STUDENT_TEACHER_SIZES[size], **overrides}
    unknown = set(overrides) - set(STUDENT_TEACHER_SIZES["tiny"]) - set(STUDENT_TEACHER_SIZES["full"])
    if unknown:
        raise ValueError(f"unknown student–teacher option(s) {sorted(unknown)}")
    if texts is None:
        if train_set is None:
            raise ValueError("give train_set (its captions build the vocabulary) or texts")
        texts, _ = train_set.captions_flat()
    tokenizer = WordTokenizer.from_texts(texts, context_length=context_length)
    if image_size is None:
        world = getattr(train_set, "world", None)
        image_size = int(getattr(world, "image_size", 224 if cfg["vision"] == "resnet50" else 32))
    if vision_checkpoint is not None and cfg["vision"] != "resnet50":
        raise ValueError("vision_checkpoint needs the ResNet-50 vision student (size='full')")

    embeddings = None
    if distilbert is not None:
        embeddings, _ = load_distilbert_embeddings(distilbert, tokenizer.itos)
        cfg["word_dim"] = embeddings.shape[1]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if cfg["vision"] == "resnet50":
            vision = _resnet50_student(vision_checkpoint, image_size)
        elif cfg["vision"] == "residual":
            vision = ResidualCNN(cfg["widths"], cfg["blocks"], norm="batch")
            vision.image_size = image_size
        else:
            raise ValueError(f"vision must be 'residual' or 'resnet50', got {cfg['vision']!r}")
        text = LSTMStudent(len(tokenizer), cfg["word_dim"], cfg["hidden"], embeddings)
        model = StudentTeacher(vision, text, cfg["teacher_hidden"], cfg["embed_dim"], cfg["dropout"], temperature)

    preprocess = None
    if cfg["vision"] == "resnet50":
        from torchvision import transforms

        preprocess = transforms.Compose([
            transforms.Resize(image_size), transforms.CenterCrop(image_size), transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # ImageNet's, as ResNet-50 expects
        ])
    return ClipBundle(model=model, preprocess=preprocess, tokenizer=tokenizer, name=f"student-teacher-{size}")
