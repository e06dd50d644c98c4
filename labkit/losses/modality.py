r"""The GRL gap reducer of seed 000 (*Pull It Together*, §4.2, eq. 5): a modality classifier behind a gradient
reversal layer, trained jointly with the contrastive loss,

.. math::
    \mathcal{L} = \mathcal{L}_{\text{Contrastive}} + \lambda\cdot\mathcal{L}_{\text{Modality}} .   \qquad (5)

Which piece implements what
---------------------------
* :func:`grad_reverse` / :class:`GradientReversal` — the GRL (Ganin & Lempitsky): identity in the forward pass,
  gradient multiplied by :math:`-c` in the backward pass (``c`` = the GRL coefficient ``lambd``).
* :class:`ModalityClassifier` — the modality classifier *M* of §5: the GRL first, then an M-layer MLP (M = 5 by
  default, ReLU between the linear layers), then a sigmoid giving :math:`P(\text{text})`. Its input is the N image
  and N text embeddings **stacked on the batch dimension, image rows first**; the modality labels are
  **0 = image, 1 = text** (:func:`stack_modalities`).
* :class:`ModalityLoss` — the loss term :math:`\mathcal{L}_{\text{Modality}}` for labkit's loss seam
  (:class:`~labkit.losses.Objective`): BCE of the classifier over the 2N stacked embeddings; it logs the
  classifier's accuracy.
* :func:`grl_objective` — the whole of eq. 5 as an :class:`~labkit.losses.Objective`:
  ``ClipLoss`` (eq. 1–3) plus the modality term with the right weight.
(The λ ablation of §6, Fig. 3 / Table 2, is a study: :mod:`labkit.studies.grl_sweep`.)

Where λ lives — two modes, one total loss
-----------------------------------------
Write :math:`e` for the embeddings, :math:`\theta` for the classifier's weights and :math:`L_m` for the BCE.
Whatever the mode, **the total loss reads** :math:`L_c + \lambda L_m` and **the encoders receive**
:math:`\partial L_c/\partial e - \lambda\,\partial L_m/\partial e` (the contrastive gradient is never touched).
The modes differ only in what the *classifier* receives:

``lambda_on="loss"`` — seed 000 literally (the default).
    λ is the Objective weight of the term and the GRL coefficient is 1:
    ``Objective({"contrastive": ClipLoss(), "modality": (ModalityLoss(d), λ)})``. The encoders get
    :math:`-\lambda\,\partial L_m/\partial e` and the classifier gets :math:`+\lambda\,\partial L_m/\partial\theta`.
    Consequence: at λ = 0 the classifier receives no gradient at all, stays at its initialisation, and its accuracy
    means nothing.

``lambda_on="grl"`` — the classifier always learns at full strength.
    λ is the GRL coefficient and the term enters the Objective with weight 1. The term returns
    ``λ·L_m.detach() + (L_m − L_m.detach())``: its *value* is exactly :math:`\lambda L_m` (the second bracket is
    exactly 0), its *gradient* is that of :math:`L_m`. So the classifier gets :math:`+\partial L_m/\partial\theta`
    for every λ, including 0, and the GRL turns the encoders' share into :math:`-\lambda\,\partial L_m/\partial e`.
    At λ = 0 the GRL cuts the path (its backward returns exact zeros): the classifier is then a pure *probe* of how
    separable the modalities are, and the encoders train exactly as the baseline does.

Under AdamW (the optimiser of :func:`labkit.train.fit` and of seed 000's CLIP run) the two modes train the
encoders identically for λ > 0 up to rounding: the encoders' gradients are the same, and Adam's update is invariant
to a constant rescaling of the classifier's gradient (up to its ε). They differ materially at λ = 0 and under
plain SGD (seed 000's CLAP run). ``ModalityLoss.objective_weight`` tells which weight the term must be given;
:func:`grl_objective` always gets it right. In ``"grl"`` mode the Objective's ``loss/modality`` log is the
weighted value λ·L_m; in both modes ``modality/bce`` is the unweighted :math:`L_m`.

Both facts are tested (``tests/test_losses_modality.py``): at λ = 0 the total loss and the encoders' gradients *equal* the
baseline CLIP loss's bit for bit; the modality term alone sends exactly :math:`-\lambda\,\partial L_m/\partial e`
to the embeddings.

Stabilisers (domain-adversarial training's standard recipe; both off by default)
-------------------------------------------------------------------------------
``schedule="dann"`` — λ warm-up. Ganin et al. (*DANN*, JMLR 2016, §5.2.2) never start the adversarial game at full
strength: with :math:`p \in [0, 1)` the training progress (step / total steps),

.. math:: \lambda_p = \lambda\,\Big(\frac{2}{1 + e^{-\gamma p}} - 1\Big), \qquad \gamma = 10,

so the encoders first learn the contrastive task and the classifier first learns to classify, and the reversed
gradient ramps up to λ (it reaches 0.99·λ at p = 0.53). The term reads the progress from the Objective's
``begin_step(step, total_steps)`` hook (called by :func:`labkit.train.fit` before every step), so the schedule is a
function of the step alone and a resumed run gets the same λ_p. (thuml's Transfer-Learning-Library calls it a
*warm-start* GRL.) λ_p takes the place of λ in whichever mode: the GRL coefficient (``"grl"``) or a factor on the
term's value under the fixed Objective weight λ (``"loss"``). ``modality/lambda`` logs it.

``classifier_lr_scale`` — the classifier learns at the encoders' learning rate times this factor (DANN and the
Transfer-Learning-Library train the new heads at 10× the feature extractor's rate), through the ``lr_scale``
attribute that :func:`labkit.train.param_groups` honours. (Tested: the ramp by hand, λ = 0 still bit-identical to
the baseline under the schedule, the classifier's own parameter group in the optimiser.)

No cost at inference: the classifier lives in the objective, not in the model; ``model.encode_image`` /
``encode_text`` are the same code path with or without it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .contrastive import ClipLoss, Features, Objective

__all__ = [
    "grad_reverse",
    "GradientReversal",
    "ModalityClassifier",
    "ModalityLoss",
    "stack_modalities",
    "grl_objective",
    "LAMBDA_MODES",
    "PAPER_LAMBDAS",
    "SCHEDULES",
    "dann_ramp",
]

LAMBDA_MODES = ("loss", "grl")
SCHEDULES = ("constant", "dann")
PAPER_LAMBDAS = (0.0, 0.5, 1.0, 3.0)  # seed 000 §5
IMAGE_LABEL, TEXT_LABEL = 0.0, 1.0


def _check_lambda(lambd: float, name: str = "lambd") -> float:
    try:
        value = float(lambd)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {lambd!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {lambd!r}")
    return value


def dann_ramp(progress: float, gamma: float = 10.0) -> float:
    r"""DANN's warm-up factor :math:`2/(1 + e^{-\gamma p}) - 1` at training progress ``p`` in [0, 1] (0 at the start,
    → 1 as training proceeds; 0.987 at p = 0.5 with γ = 10)."""
    p = float(progress)
    if not (0.0 <= p <= 1.0):
        raise ValueError(f"progress must be in [0, 1], got {progress!r}")
    return 2.0 / (1.0 + math.exp(-float(gamma) * p)) - 1.0


# ============================================================================ the GRL


class _GradReverse(torch.autograd.Function):
    """Identity forward; ``grad · (−λ)`` backward. λ = 0 returns exact zeros (nothing reaches the input)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        ctx.lambd = lambd
        return x.view_as(x)  # a new autograd node sharing the data: the forward pass is the identity

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        if ctx.lambd == 0.0:
            return torch.zeros_like(grad_output), None
        return grad_output * (-ctx.lambd), None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    r"""The gradient reversal layer as a function: returns ``x`` unchanged; in the backward pass the gradient
    arriving at the output is multiplied by :math:`-\lambda` before it reaches ``x``."""
    return _GradReverse.apply(x, _check_lambda(lambd))


class GradientReversal(nn.Module):
    """The GRL as a module (no parameters). ``lambd`` is the coefficient of the reversed gradient (default 1)."""

    def __init__(self, lambd: float = 1.0):
        super().__init__()
        self.lambd = _check_lambda(lambd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lambd)

    def extra_repr(self) -> str:
        return f"lambd={self.lambd}"


# ============================================================================ the modality classifier


def stack_modalities(image: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack N image and N text embeddings on the batch dimension (seed 000, Fig. 1's *Stack*).

    Returns ``(x, labels)``: ``x`` is (2N, D) with the image rows first, ``labels`` is (2N,) float with
    0 for image rows and 1 for text rows.
    """
    if image.ndim != 2 or text.ndim != 2 or image.shape[1] != text.shape[1]:
        raise ValueError(f"image and text must be (N, D) with the same D; got {tuple(image.shape)} and "
                         f"{tuple(text.shape)}")
    x = torch.cat([image, text], dim=0)
    labels = torch.cat([image.new_full((image.shape[0],), IMAGE_LABEL), text.new_full((text.shape[0],), TEXT_LABEL)])
    return x, labels


class ModalityClassifier(nn.Module):
    r"""Seed 000's modality classifier: GRL → M linear layers with ReLU between them → sigmoid = P(text).

    Args:
        embed_dim: width D of the embeddings.
        depth: number of linear layers M (seed 000 §5: 5).
        hidden: width of the hidden layers: one int for all M − 1 of them, or a sequence of M − 1 widths.
            Default: ``embed_dim``.
        grl_lambda: coefficient of the GRL in front of the MLP (1 for seed 000's eq. 5 with λ on the loss).
        seed: if given, the initial weights are drawn from this seed without disturbing torch's global RNG.

    Input: (B, D) embeddings; for the modality loss, :func:`stack_modalities` of the image and text batch
    (image rows first, label 0 = image, 1 = text). :meth:`forward` returns probabilities (B,) of *text*;
    :meth:`logits` returns the pre-sigmoid scores (B,), which the loss uses with
    ``binary_cross_entropy_with_logits`` — mathematically the BCE of ``sigmoid(logits)``, computed stably.
    """

    def __init__(self, embed_dim: int, depth: int = 5, hidden: int | Sequence[int] | None = None,
                 grl_lambda: float = 1.0, seed: int | None = None):
        super().__init__()
        if int(embed_dim) < 1:
            raise ValueError(f"embed_dim must be >= 1, got {embed_dim}")
        if int(depth) < 1:
            raise ValueError(f"depth (the number of linear layers M) must be >= 1, got {depth}")
        embed_dim, depth = int(embed_dim), int(depth)
        hidden = embed_dim if hidden is None else hidden
        widths = [int(hidden)] * (depth - 1) if isinstance(hidden, (int, np.integer)) else [int(h) for h in hidden]
        if len(widths) != depth - 1 or any(w < 1 for w in widths):
            raise ValueError(f"hidden must be one positive int or {depth - 1} positive widths (depth={depth}), "
                             f"got {hidden!r}")
        self.embed_dim, self.depth, self.hidden = embed_dim, depth, tuple(widths)
        self.grl = GradientReversal(grl_lambda)
        dims = [embed_dim, *widths, 1]
        layers: list[nn.Module] = []
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            for i in range(depth):
                layers.append(nn.Linear(dims[i], dims[i + 1]))
                if i < depth - 1:
                    layers.append(nn.ReLU())
        self.mlp = nn.Sequential(*layers)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid scores (B,): GRL, then the MLP. Positive means 'text'."""
        return self.mlp(self.grl(x)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """P(text) for each row of ``x`` (B,): the sigmoid at the end of seed 000's classifier."""
        return torch.sigmoid(self.logits(x))


# ============================================================================ the loss term


class ModalityLoss(nn.Module):
    r""":math:`\mathcal{L}_{\text{Modality}}` of seed 000 eq. 5 as a labkit loss term.

    ``term(features) -> (value, logs)``: stacks ``features.image`` and ``features.text`` (2N rows, image first,
    label 0 = image, 1 = text), runs the :class:`ModalityClassifier` (GRL first) and takes the mean BCE over the
    2N rows. Logs ``bce`` (:math:`L_m`, unweighted, in both modes), ``accuracy`` (threshold P(text) = 0.5) and
    ``accuracy_image`` / ``accuracy_text``.

    Args:
        embed_dim: width of the embeddings.
        lambd: λ of eq. 5 (>= 0).
        lambda_on: where λ lives (see the module docstring).
            ``"loss"``: seed 000 literally — GRL coefficient 1, value :math:`L_m`, to be weighted λ in the Objective;
            the classifier gets λ·∂L_m/∂θ (nothing at λ = 0).
            ``"grl"``: GRL coefficient λ, value exactly :math:`\lambda L_m` with the gradient of :math:`L_m`, to be
            weighted 1; the classifier always gets ∂L_m/∂θ.
            In both, the encoders get exactly −λ·∂L_m/∂e and the total reads L_c + λ·L_m.
        depth, hidden, seed: passed to :class:`ModalityClassifier`.
        schedule: ``"constant"`` (λ from step 0, seed 000) or ``"dann"`` (λ_p = λ·(2/(1+e^{−γp}) − 1), p the
            training progress, set by :meth:`begin_step`).
        gamma: γ of the DANN ramp (10 in DANN).
        classifier_lr_scale: if given, the classifier trains at the loop's learning rate times this factor (the
            ``lr_scale`` seam of :func:`labkit.train.param_groups`); ``None`` leaves it at the encoders' rate.

    Use :attr:`objective_weight` as the term's weight in an :class:`~labkit.losses.Objective`, or build the whole
    objective with :func:`grl_objective`.
    """

    def __init__(self, embed_dim: int, lambd: float = 1.0, lambda_on: str = "loss", depth: int = 5,
                 hidden: int | Sequence[int] | None = None, seed: int | None = None, schedule: str = "constant",
                 gamma: float = 10.0, classifier_lr_scale: float | None = None):
        super().__init__()
        if lambda_on not in LAMBDA_MODES:
            raise ValueError(f"lambda_on must be one of {LAMBDA_MODES}, got {lambda_on!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        lambd = _check_lambda(lambd)
        if lambd < 0:
            raise ValueError(f"lambd must be >= 0 (the GRL already reverses the gradient), got {lambd}")
        gamma = _check_lambda(gamma, "gamma")
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.lambd, self.lambda_on, self.schedule, self.gamma = lambd, lambda_on, schedule, gamma
        self.ramp = 1.0 if schedule == "constant" else 0.0  # λ_p / λ; the DANN ramp starts at 0 (p = 0)
        grl_lambda = 1.0 if lambda_on == "loss" else lambd * self.ramp
        self.classifier = ModalityClassifier(embed_dim, depth=depth, hidden=hidden, grl_lambda=grl_lambda, seed=seed)
        if classifier_lr_scale is not None:
            if isinstance(classifier_lr_scale, bool) or not (isinstance(classifier_lr_scale, (int, float))
                                                             and math.isfinite(classifier_lr_scale)
                                                             and classifier_lr_scale > 0):
                raise ValueError(f"classifier_lr_scale must be a positive number, got {classifier_lr_scale!r}")
            self.classifier.lr_scale = float(classifier_lr_scale)

    @property
    def current_lambda(self) -> float:
        """λ_p, the strength of the reversed gradient at this step (λ itself with ``schedule="constant"``)."""
        return self.lambd * self.ramp

    def begin_step(self, step: int, total_steps: int) -> None:
        """Set λ_p from the training progress p = step / total_steps (the Objective calls this before each step)."""
        if self.schedule == "constant":
            return
        if total_steps < 1 or not (0 <= step <= total_steps):
            raise ValueError(f"begin_step needs 0 <= step <= total_steps and total_steps >= 1, got {step}, {total_steps}")
        self.ramp = dann_ramp(step / total_steps, self.gamma)
        if self.lambda_on == "grl":
            self.classifier.grl.lambd = self.current_lambda

    @property
    def objective_weight(self) -> float:
        """The weight this term must have in the Objective for the total to read L_c + λ·L_m."""
        return self.lambd if self.lambda_on == "loss" else 1.0

    def forward(self, features: Features) -> tuple[torch.Tensor, dict[str, float]]:
        x, labels = stack_modalities(features.image, features.text)
        logits = self.classifier.logits(x)
        bce = F.binary_cross_entropy_with_logits(logits, labels)  # = BCE(sigmoid(logits), labels), stably
        if self.lambda_on == "grl":
            frozen = bce.detach()
            value = self.current_lambda * frozen + (bce - frozen)  # value λ_p·L_m exactly, gradient that of L_m
        elif self.schedule == "constant":
            value = bce
        else:  # weighted λ by the Objective: λ·(λ_p/λ)·L_m = λ_p·L_m
            value = self.ramp * bce
        with torch.no_grad():
            correct = ((logits > 0).to(labels.dtype) == labels).float()
            n = features.image.shape[0]
            logs = {
                "bce": float(bce),
                "accuracy": float(correct.mean()),
                "accuracy_image": float(correct[:n].mean()),
                "accuracy_text": float(correct[n:].mean()),
                "lambda": self.current_lambda,
            }
        return value, logs

    @torch.no_grad()
    def accuracy(self, image: torch.Tensor | np.ndarray, text: torch.Tensor | np.ndarray) -> float:
        """The classifier's accuracy on given embeddings (e.g. a held-out split's), in [0, 1]."""
        p = next(self.classifier.parameters())
        image = torch.as_tensor(np.asarray(image) if not torch.is_tensor(image) else image).to(p)
        text = torch.as_tensor(np.asarray(text) if not torch.is_tensor(text) else text).to(p)
        x, labels = stack_modalities(image, text)
        was_training = self.classifier.training
        self.classifier.eval()
        try:
            return float((((self.classifier.logits(x) > 0).to(labels.dtype)) == labels).float().mean())
        finally:
            self.classifier.train(was_training)

    def extra_repr(self) -> str:
        extra = f", schedule={self.schedule!r}" if self.schedule != "constant" else ""
        scale = getattr(self.classifier, "lr_scale", None)
        extra += f", classifier_lr_scale={scale}" if scale is not None else ""
        return f"lambd={self.lambd}, lambda_on={self.lambda_on!r}" + extra


def grl_objective(lambd: float, embed_dim: int, lambda_on: str = "loss", schedule: str = "constant",
                  gamma: float = 10.0, classifier_lr_scale: float | None = None,
                  **classifier_kwargs: Any) -> Objective:
    r"""Seed 000 eq. 5 as an :class:`~labkit.losses.Objective`: ``contrastive`` (:class:`~labkit.losses.ClipLoss`,
    eq. 1–3, weight 1) + ``modality`` (:class:`ModalityLoss`, weighted so that the total reads
    :math:`L_c + \lambda L_m`).

    ``lambda_on`` picks where λ lives (``"loss"``, seed 000's reading, or ``"grl"``, the classifier always learning at
    full strength; see the module docstring). ``schedule="dann"`` warms λ up over training and
    ``classifier_lr_scale`` gives the classifier its own learning rate (the stabilisers of the module docstring).
    ``classifier_kwargs`` (``depth``, ``hidden``, ``seed``) go to :class:`ModalityClassifier`.
    """
    term = ModalityLoss(embed_dim, lambd=lambd, lambda_on=lambda_on, schedule=schedule, gamma=gamma,
                        classifier_lr_scale=classifier_lr_scale, **classifier_kwargs)
    return Objective({"contrastive": ClipLoss(), "modality": (term, term.objective_weight)})
