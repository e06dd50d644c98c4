"""labkit.negatives and InfoNCE (seed 003 eq. 1, §3.2): every sampler against a hand computation, the MoCo queue's
FIFO order, masking and EMA update, rerank's top-n, and an exact resume of a queue run."""

import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from labkit.data import make_world
from labkit.io import load_checkpoint
from labkit.losses import Features, InfoNCE, Objective, clip_loss, info_nce
from labkit.models import create_student_teacher
from labkit.negatives import (BatchNegatives, Candidates, MemoryBank, QueueNegatives, RerankNegatives, ema_update_,
                              gather_keys, rerank)
from labkit.train import TrainConfig, fit


pytestmark = pytest.mark.usefixtures("one_thread")


class Toy(nn.Module):
    """A two-tower model small enough to compute by hand: linear image and text maps into D = 3."""

    embed_dim = 3

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.img = nn.Linear(4, 3, bias=False)
        self.txt = nn.Linear(5, 3, bias=False)
        with torch.no_grad():
            self.img.weight.copy_(torch.randn(3, 4, generator=g))
            self.txt.weight.copy_(torch.randn(3, 5, generator=g))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def encode_image(self, x, normalize=False):
        z = self.img(x)
        return F.normalize(z, dim=-1) if normalize else z

    def encode_text(self, t, normalize=False):
        z = self.txt(t)
        return F.normalize(z, dim=-1) if normalize else z


def _batch(n, seed=0, pair_id=None):
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.randn(n, 4, generator=g), "text": torch.randn(n, 5, generator=g),
            "pair_id": torch.as_tensor(pair_id if pair_id is not None else list(range(n))),
            "index": torch.arange(n)}


def _features(model, batch):
    return Features(model.encode_image(batch["image"], normalize=True),
                    model.encode_text(batch["text"], normalize=True), model.logit_scale.exp(), batch)


def _hand_info_nce(q, pos, negs, scale, valid):
    """Eq. 1 by a loop: −log exp(q·k+/τ) / (exp(q·k+/τ) + Σ_valid exp(q·k_i/τ))."""
    total = 0.0
    for i in range(len(q)):
        num = math.exp(scale * float(q[i] @ pos[i]))
        den = num + sum(math.exp(scale * float(q[i] @ negs[i][j])) for j in range(len(negs[i])) if valid[i][j])
        total += -math.log(num / den)
    return total / len(q)


def test_info_nce_matches_a_hand_loop_shared_and_per_query_negatives():
    g = torch.Generator().manual_seed(1)
    q, pos = F.normalize(torch.randn(4, 3, generator=g), dim=1), F.normalize(torch.randn(4, 3, generator=g), dim=1)
    negs = F.normalize(torch.randn(6, 3, generator=g), dim=1)
    mask = torch.rand(4, 6, generator=g) > 0.3
    loss, correct = info_nce(q, pos, negs, 7.0, mask)
    expect = _hand_info_nce(q, pos, [negs] * 4, 7.0, mask.tolist())
    assert loss.item() == pytest.approx(expect, rel=1e-5)
    per_query = negs[torch.randint(0, 6, (4, 5), generator=g)]
    loss2, _ = info_nce(q, pos, per_query, 7.0)
    assert loss2.item() == pytest.approx(_hand_info_nce(q, pos, per_query, 7.0, [[True] * 5] * 4), rel=1e-5)
    for i in range(4):  # accuracy: positive strictly above every valid negative
        best = max([float(q[i] @ negs[j]) for j in range(6) if mask[i, j]], default=-math.inf)
        assert bool(correct[i]) == (float(q[i] @ pos[i]) > best)


def test_a_query_with_no_valid_negative_has_loss_zero_and_finite_gradients():
    q = F.normalize(torch.randn(2, 3), dim=1).requires_grad_()
    loss, _ = info_nce(q, q.detach(), torch.randn(4, 3), 10.0, torch.zeros(2, 4, dtype=torch.bool))
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-6) and torch.isfinite(q.grad).all()


def test_a_learnable_temperature_gets_the_hand_gradient_through_masked_negatives():
    # 1/τ multiplies the logits; a masked (-inf) negative must contribute 0 to its gradient, not 0 · -inf = NaN
    g = torch.Generator().manual_seed(2)
    q, pos = F.normalize(torch.randn(3, 4, generator=g), dim=1), F.normalize(torch.randn(3, 4, generator=g), dim=1)
    negs = F.normalize(torch.randn(5, 4, generator=g), dim=1)
    mask = torch.tensor([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
    scale = torch.tensor(5.0, requires_grad=True)
    info_nce(q, pos, negs, scale, mask)[0].backward()
    s = 5.0  # dL/ds by a loop: mean over queries of E_softmax[q·k] − q·k+ over the valid keys
    hand = 0.0
    for i in range(3):
        sims = [float(q[i] @ pos[i])] + [float(q[i] @ negs[j]) for j in range(5) if mask[i, j]]
        w = [math.exp(s * x) for x in sims]
        hand += sum(wi * x for wi, x in zip(w, sims)) / sum(w) - sims[0]
    assert scale.grad.item() == pytest.approx(hand / 3, rel=1e-5)


def test_batch_sampling_symmetric_infonce_is_clip_loss():
    model, batch = Toy(), _batch(6)
    f = _features(model, batch)
    loss, logs = InfoNCE(BatchNegatives(), symmetric=True)(f)
    assert loss.item() == pytest.approx(clip_loss(f.image, f.text, f.logit_scale).item(), rel=1e-6)
    assert logs["negatives"] == 5  # the other n − 1 items
    one_way, _ = InfoNCE(BatchNegatives(), symmetric=False)(f)
    expect = F.cross_entropy(f.logit_scale * f.image @ f.text.T, torch.arange(6))
    assert one_way.item() == pytest.approx(expect.item(), rel=1e-6)


def test_batch_sampling_masks_keys_of_the_same_pair():
    model, batch = Toy(), _batch(4, pair_id=[7, 7, 8, 9])  # two captions of image 7 in one batch
    c = BatchNegatives().sample(_features(model, batch), ("i2t",))["i2t"]
    assert c.mask.tolist() == [[False, False, True, True], [False, False, True, True],
                               [True, True, False, True], [True, True, True, False]]


def test_temperature_is_a_hyper_parameter():
    model, batch = Toy(), _batch(5)
    f = _features(model, batch)
    fixed, _ = InfoNCE(temperature=0.5, symmetric=False)(f)
    expect = F.cross_entropy(2.0 * f.image @ f.text.T, torch.arange(5))
    assert fixed.item() == pytest.approx(expect.item(), rel=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        InfoNCE(temperature=0.0)


def test_queue_fifo_order_wraps_and_handles_any_batch_size():
    q = QueueNegatives(Toy(), max_size=10, fraction=0.5)  # size = 0.5 of the maximum: 5 keys
    assert q.size == 5
    key = lambda ids: torch.tensor([[float(i), 0.0, 0.0] for i in ids])  # noqa: E731 - key i carries i
    q.enqueue(key([1, 2]), key([1, 2]), torch.tensor([1, 2]))
    q.enqueue(key([3, 4, 5]), key([3, 4, 5]), torch.tensor([3, 4, 5]))  # exactly full
    keys, ids = q.ordered("text")
    assert ids.tolist() == [1, 2, 3, 4, 5] and keys[:, 0].tolist() == [1, 2, 3, 4, 5]
    q.enqueue(key([6, 7, 8]), key([6, 7, 8]), torch.tensor([6, 7, 8]))  # a batch that does not divide the size
    keys, ids = q.ordered("image")
    assert ids.tolist() == [4, 5, 6, 7, 8] and keys[:, 0].tolist() == [4, 5, 6, 7, 8]  # oldest dropped first
    q.enqueue(key([9]), key([9]), torch.tensor([9]))  # a last partial batch of one
    assert q.ordered()[1].tolist() == [5, 6, 7, 8, 9]
    q.enqueue(key(range(10, 17)), key(range(10, 17)), torch.arange(10, 17))  # a batch larger than the queue
    assert q.ordered()[1].tolist() == [12, 13, 14, 15, 16] and int(q.count) == 5


def test_queue_masks_empty_slots_and_every_key_of_the_querys_own_pair():
    model = Toy()
    q = QueueNegatives(model, max_size=8)
    # the queue holds older keys of pairs 0 and 1 (their other captions, earlier epochs) and of pair 5
    q.enqueue(torch.randn(3, 3), torch.randn(3, 3), torch.tensor([0, 1, 5]))
    q.train()
    c = q.sample(_features(model, _batch(3)), ("i2t",))["i2t"]
    assert c.negatives.shape == (3 + 8, 3)  # current batch, then the queue's 8 slots
    valid = c.mask.tolist()
    assert valid[0] == [False, True, True] + [False, True, True] + [False] * 5  # own pair masked; 5 empty slots
    assert valid[1] == [True, False, True] + [True, False, True] + [False] * 5
    assert valid[2] == [True, True, False] + [True, True, True] + [False] * 5


def test_queue_larger_than_the_dataset_never_offers_a_querys_own_pair():
    """Four pairs, a queue of 16 (four epochs of keys): every pair's older keys are in it, all masked."""
    world_pairs = torch.arange(4)
    model = Toy()
    q = QueueNegatives(model, max_size=16)
    q.train()
    for epoch in range(5):
        batch = _batch(4, seed=epoch, pair_id=world_pairs.tolist())
        f = _features(model, batch)
        c = q.sample(f, ("i2t", "t2i"))
        for d in ("i2t", "t2i"):
            pid_of_negative = torch.cat([world_pairs, q.queue_pair_id])
            same = world_pairs[:, None] == pid_of_negative[None, :]
            assert not (c[d].mask & same).any()
        q.end_step(model)
    assert int(q.count) == 16 and sorted(q.queue_pair_id.tolist()) == sorted([0, 1, 2, 3] * 4)


def test_ema_update_is_moco_momentum_and_copies_buffers():
    online, key = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        online.weight.copy_(torch.tensor([1.0, 2.0, 3.0]))
        key.weight.copy_(torch.tensor([5.0, 5.0, 5.0]))
        online.running_mean.copy_(torch.tensor([0.5, 0.5, 0.5]))
    ema_update_(key, online, momentum=0.9)
    assert key.weight.tolist() == pytest.approx([0.9 * 5 + 0.1 * 1, 0.9 * 5 + 0.1 * 2, 0.9 * 5 + 0.1 * 3])
    assert key.running_mean.tolist() == [0.5, 0.5, 0.5]


def test_end_step_updates_the_key_encoder_then_enqueues_the_keys_of_the_step():
    model = Toy()
    q = QueueNegatives(model, max_size=4, momentum=0.75)
    q.train()
    before = copy.deepcopy(q.key_encoder)
    batch = _batch(2)
    q.sample(_features(model, batch), ("i2t", "t2i"))
    with torch.no_grad():
        model.img.weight.add_(1.0)  # an "optimiser step"
    q.end_step(model)
    expect = 0.75 * before.img.weight + 0.25 * model.img.weight
    assert torch.allclose(q.key_encoder.img.weight, expect)
    # the enqueued keys are those computed in the step, by the key encoder as it was *before* the update
    keys, ids = q.ordered("text")
    assert ids.tolist() == [0, 1]
    assert torch.allclose(keys, before.encode_text(batch["text"], normalize=True))
    assert not any(p.requires_grad for p in q.key_encoder.parameters())


def test_momentum_positives_come_from_the_key_encoder_and_need_the_symmetric_loss():
    model = Toy()
    q = QueueNegatives(model, max_size=4, positives="momentum")
    with torch.no_grad():
        model.txt.weight.mul_(-1)  # the model drifts away from its copy
    f = _features(model, _batch(3))
    c = q.sample(f, ("i2t",))["i2t"]
    assert torch.allclose(c.positive, q.key_encoder.encode_text(f.batch["text"], normalize=True))
    assert not c.positive.requires_grad
    with pytest.raises(ValueError, match="symmetric"):
        InfoNCE(q, symmetric=False)
    online = QueueNegatives(model, max_size=4)  # default: the model's own keys are the positives
    assert online.sample(f, ("i2t",))["i2t"].positive is f.text
    InfoNCE(online, symmetric=False)


def test_a_queue_without_key_encoder_stores_the_models_own_detached_keys():
    model = Toy()
    q = QueueNegatives(model, max_size=4, momentum=None)
    assert q.key_encoder is None and not list(q.parameters())
    q.train()
    f = _features(model, _batch(3))
    c = q.sample(f, ("i2t",))["i2t"]
    assert c.positive is f.text
    q.end_step(model)
    keys, ids = q.ordered("text")
    assert ids.tolist() == [0, 1, 2] and torch.equal(keys, f.text.detach()) and not keys.requires_grad
    with pytest.raises(ValueError, match="key encoder"):
        QueueNegatives(model, max_size=4, momentum=None, positives="momentum")


def test_an_eval_mode_sampler_does_not_enqueue():
    model = Toy()
    q = QueueNegatives(model, max_size=4)
    q.eval()
    q.sample(_features(model, _batch(2)), ("i2t",))
    q.end_step(model)
    assert int(q.count) == 0


def test_rerank_keeps_exactly_the_n_most_similar_valid_negatives():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    negs = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.1, 0.9], [-1.0, 0.0], [0.8, 0.0]])
    mask = torch.tensor([[True, True, True, True, False], [True, True, False, True, True]])
    c = rerank(q, Candidates(q.clone(), negs, mask), n=2)
    # query 0 scores 0.9, 0.5, 0.1, −1 (0.8 is masked): keeps rows 0 and 1
    # query 1 scores 0.1, 0.5, (0.9 masked), 0, 0.0: keeps rows 1 and 0
    assert c.negatives is negs and c.mask.tolist() == [[True, True, False, False, False],
                                                      [True, True, False, False, False]]
    few = rerank(q, Candidates(q.clone(), negs, torch.tensor([[True] + [False] * 4] * 2)), n=3)
    assert few.mask.sum(1).tolist() == [1, 1]  # fewer valid than n: only the valid one
    per_query = rerank(q, Candidates(q.clone(), negs.expand(2, -1, -1), mask), n=2)  # (N, M, D) negatives
    assert per_query.negatives[0].tolist() == negs[[0, 1]].tolist()
    assert per_query.negatives[1].tolist() == negs[[1, 0]].tolist() and per_query.mask.all()


def test_rerank_over_a_queue_scores_the_whole_pool_and_is_deterministic():
    model = Toy()
    pool = QueueNegatives(model, max_size=20)
    pool.enqueue(F.normalize(torch.randn(20, 3), dim=1), F.normalize(torch.randn(20, 3), dim=1), torch.arange(100, 120))
    sampler = RerankNegatives(pool, n=4)
    sampler.train()
    f = _features(model, _batch(3))
    c = sampler.sample(f, ("i2t",))["i2t"]
    everything = torch.cat([f.text, pool.text_queue])
    for i in range(3):
        scores = f.image[i] @ everything.T
        scores[i] = -math.inf  # the query's own pair
        top = set(scores.topk(4).indices.tolist())
        assert set(torch.nonzero(c.mask[i]).flatten().tolist()) == top
    loss, logs = InfoNCE(sampler)(f)
    assert torch.isfinite(loss) and logs["negatives"] == 4
    expect = _hand_info_nce(f.image.detach(), f.text.detach(), [everything.detach()] * 3, f.logit_scale.item(),
                            c.mask.tolist())
    i2t, _ = info_nce(f.image, c.positive, c.negatives, f.logit_scale, c.mask)
    assert i2t.item() == pytest.approx(expect, rel=1e-5)


def test_memory_bank_holds_the_latest_key_of_every_training_item():
    model = Toy()
    bank = MemoryBank(model, n_items=5)
    bank.train()
    batch = {**_batch(2), "index": torch.tensor([3, 1])}
    bank.sample(_features(model, batch), ("i2t",))
    bank.end_step(model)
    assert bank.written.tolist() == [False, True, False, True, False]
    assert bank.bank_pair_id[[3, 1]].tolist() == [0, 1]
    with pytest.raises(ValueError, match="n_items"):
        bank._store(torch.zeros(1, 3), torch.zeros(1, 3), torch.tensor([0]), torch.tensor([5]))


def test_gather_keys_is_the_identity_in_one_process():
    t = torch.randn(3, 2)
    assert gather_keys(t) is t


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="fraction"):
        QueueNegatives(Toy(), max_size=10, fraction=0.0)
    with pytest.raises(ValueError, match="max_size"):
        QueueNegatives(Toy(), max_size=0)
    with pytest.raises(ValueError, match="momentum"):
        QueueNegatives(Toy(), max_size=4, momentum=1.5)
    with pytest.raises(ValueError, match="n must"):
        RerankNegatives(BatchNegatives(), n=0)
    with pytest.raises(ValueError, match="pair_id"):
        BatchNegatives().sample(Features(torch.zeros(2, 3), torch.zeros(2, 3), 1.0, {}), ("i2t",))


# ------------------------------------------------------------------------------------------ training with a queue

@pytest.fixture(scope="module")
def small_world():
    return make_world(n_pairs=120, seed=0, image_size=16, split_fractions=(0.8, 0.1, 0.1))


def _queue_fit(world, tmp_path=None, epochs=3, resume=False, model_seed=0, train_set=None):
    bundle = create_student_teacher(world.train, seed=model_seed, context_length=12, widths=(4, 8, 8), hidden=8,
                                    word_dim=8, teacher_hidden=16)
    sampler = RerankNegatives(QueueNegatives(bundle.model, max_size=len(world.train), fraction=0.5, momentum=0.9), n=8)
    objective = Objective({"infonce": InfoNCE(sampler)})
    cfg = TrainConfig(epochs=epochs, batch_size=20, lr=3e-3, warmup_steps=2, temperature=0.1, caption="random",
                      device="cpu", progress=False, checkpoint_dir=str(tmp_path) if tmp_path else None)
    hist = fit(bundle.model, objective, train_set or world.train, bundle.tokenizer, cfg, resume=resume)
    return bundle.model, objective, hist


class Crash(RuntimeError):
    pass


class CrashAfter(torch.utils.data.Dataset):
    def __init__(self, dataset, items):
        self.dataset, self.left = dataset, items

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        self.left -= 1
        if self.left < 0:
            raise Crash("simulated crash")
        return self.dataset[i]


def test_moco_resume_equals_an_uninterrupted_run(small_world, tmp_path):
    straight_model, straight_obj, h_straight = _queue_fit(small_world)
    n = len(small_world.train)
    with pytest.raises(Crash):
        _queue_fit(small_world, tmp_path, train_set=CrashAfter(small_world.train, 2 * n + 30))
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 2
    assert any(k.endswith("text_queue") for k in state["objective"])  # the queue and the key encoder are in it
    assert any("key_encoder" in k for k in state["objective"])
    resumed_model, resumed_obj, h_resumed = _queue_fit(small_world, tmp_path, resume=True, model_seed=99)
    assert h_resumed["loss"].tolist() == h_straight["loss"].tolist()
    for a, b in zip(straight_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)
    for (k, a), b in zip(straight_obj.state_dict().items(), resumed_obj.state_dict().values()):
        assert torch.equal(a, b), k
    queue = resumed_obj.terms["infonce"].sampler.pool
    assert int(queue.count) == queue.size  # filled during training


def test_same_seed_same_numbers_with_a_queue(small_world):
    _, o1, h1 = _queue_fit(small_world, epochs=1)
    _, o2, h2 = _queue_fit(small_world, epochs=1)
    assert h1["loss"].tolist() == h2["loss"].tolist()
    assert all(torch.equal(a, b) for a, b in zip(o1.state_dict().values(), o2.state_dict().values()))
