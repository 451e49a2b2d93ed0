"""Model families: losses against independent computations, pooling, samplers, input
augmentation, the trainer (validation-only checkpoint choice on MoA mAP or loss, determinism,
checkpoints) and embedding extraction."""

import json
import logging
import math
from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

from conftest import REPO
from morphotx.io import MorphotxInputError
from morphotx.models import embed_model, load_checkpoint, primary_view, resolve, train_model, views
from morphotx.models import losses as L
from morphotx.models.config import FAMILIES
from morphotx.models.data import ModelData, distinct_compound_batches, moa_batches
from morphotx.models.families import family_of
from morphotx.models.nets import VAE, BimodalAE, GatedAttentionPool, InputAugment, LateFusionSupCon, SetEncoder
from morphotx.models.train import mean_average_precision, select_device
from morphotx.settings import TrainSettings, build

FAST = TrainSettings(max_epochs=4, patience=2, progress=False)


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------
def naive_supcon(z, labels, tau, groups=None):
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n, total, anchors = len(z), 0.0, 0
    groups = np.arange(n) if groups is None else groups
    for i in range(n):
        pos = [p for p in range(n) if groups[p] != groups[i] and (labels[i] * labels[p]).sum() > 0]
        if not pos:
            continue
        denom = sum(math.exp(z[i] @ z[a] / tau) for a in range(n) if groups[a] != groups[i])
        total += -sum(math.log(math.exp(z[i] @ z[p] / tau) / denom) for p in pos) / len(pos)
        anchors += 1
    return total / anchors


def test_supcon_matches_naive_double_loop():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(12, 5))
    labels = np.zeros((12, 4))
    labels[np.arange(12), rng.integers(0, 4, 12)] = 1
    labels[3, :] = 0  # no MoA: never a positive, never an anchor
    labels[5, [0, 2]] = 1  # two MoAs: positive of both classes
    for tau in (0.1, 0.5):
        got = L.supcon_loss(torch.tensor(z), torch.tensor(labels), tau).item()
        assert got == pytest.approx(naive_supcon(z, labels, tau), rel=1e-5)


def test_supcon_other_compounds_leaves_the_anchors_compound_out():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(10, 4))
    labels = np.zeros((10, 3))
    labels[np.arange(10), [0, 0, 0, 1, 1, 2, 2, 0, 1, 2]] = 1
    groups = np.array([0, 0, 1, 2, 2, 3, 4, 5, 6, 7])  # rows 0-1 and 3-4: one compound each
    got = L.supcon_loss(torch.tensor(z), torch.tensor(labels), 0.2, torch.tensor(groups)).item()
    assert got == pytest.approx(naive_supcon(z, labels, 0.2, groups), rel=1e-5)
    assert got != pytest.approx(naive_supcon(z, labels, 0.2), rel=1e-3)  # the grouping changes the loss
    # one group per sample is the plain loss
    plain = L.supcon_loss(torch.tensor(z), torch.tensor(labels), 0.2, torch.arange(10)).item()
    assert plain == pytest.approx(L.supcon_loss(torch.tensor(z), torch.tensor(labels), 0.2).item(), rel=1e-6)
    # with two rows of one compound identical (the case the option exists for), still the naive loss
    z2 = z.copy()
    z2[1] = z[0]
    assert naive_supcon(z2, labels, 0.2, groups) == pytest.approx(
        L.supcon_loss(torch.tensor(z2), torch.tensor(labels), 0.2, torch.tensor(groups)).item(), rel=1e-5)


def test_supcon_without_positives_is_zero_with_graph():
    z = torch.randn(4, 3, requires_grad=True)
    loss = L.supcon_loss(z, torch.eye(4), 0.1)
    assert loss.item() == 0.0
    loss.backward()


def naive_clip(p, q, s):
    n, tot = len(p), 0.0
    for i in range(n):
        row = [math.exp(s * p[i] @ q[j]) for j in range(n)]
        col = [math.exp(s * p[j] @ q[i]) for j in range(n)]
        tot += -math.log(row[i] / sum(row)) - math.log(col[i] / sum(col))
    return tot / n


def test_clip_matches_equation_1():
    rng = np.random.default_rng(1)
    p = rng.normal(size=(6, 4))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    q = rng.normal(size=(6, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    assert L.clip_loss(torch.tensor(p), torch.tensor(q), 14.3).item() == pytest.approx(naive_clip(p, q, 14.3), rel=1e-6)


def test_cwcl_equals_clip_with_identity_weights_and_differs_otherwise():
    torch.manual_seed(0)
    p = torch.nn.functional.normalize(torch.randn(8, 5), dim=1)
    q = torch.nn.functional.normalize(torch.randn(8, 5), dim=1)
    clip = L.clip_loss(p, q, 10.0)
    assert L.cwcl_loss(p, q, 10.0, torch.eye(8)).item() == pytest.approx(clip.item(), rel=1e-6)
    w = L.cwcl_weights(torch.randn(8, 20))
    assert float(w.min()) >= 0 and float(w.max()) <= 1 + 1e-6
    assert torch.allclose(torch.diag(w), torch.ones(8))
    assert abs(L.cwcl_loss(p, q, 10.0, w).item() - clip.item()) > 1e-3


def test_mmd_kernel_is_seed_002s_by_default():
    """exp(-mean((x - y)²) / d) = exp(-||x - y||² / d²) (Chow 2022's code); bandwidth d is InfoVAE's."""
    d = 10
    x, y = torch.zeros(1, d), torch.ones(1, d)  # ||x - y||² = d
    assert L.gaussian_kernel(x, y).item() == pytest.approx(np.exp(-1 / d), rel=1e-5)
    assert L.gaussian_kernel(x, y, bandwidth=d).item() == pytest.approx(np.exp(-1.0), rel=1e-5)


def test_mmd_zero_on_itself_positive_on_shift():
    x = torch.randn(200, 10, generator=torch.Generator().manual_seed(0))
    assert L.mmd(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert L.mmd(x, x + 2.0).item() > 0.1


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(7, 3), torch.randn(7, 3)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    ref = torch.distributions.kl_divergence(q, p).sum(1).mean()
    assert L.kl_divergence(mu, logvar).item() == pytest.approx(ref.item(), rel=1e-6)


def test_beta_vae_with_beta_one_equals_vanilla_loss():
    x = np.random.default_rng(2).normal(size=(16, 12)).astype(np.float32)
    losses = {}
    for variant in ("vanilla", "beta"):
        hp = resolve(f"v_{variant}", {"family": "vae", "variant": variant, "beta": 1.0, "hidden": 6, "latent_dim": 3})
        fam = family_of(hp)
        torch.manual_seed(0)
        net = VAE(12, 6, 3)
        torch.manual_seed(1)
        losses[variant] = fam.step(net, {"cp": x}, torch.device("cpu"))
    assert losses["beta"]["loss"].item() == losses["vanilla"]["loss"].item()
    # and vanilla = reconstruction + KL, each checked independently
    v = losses["vanilla"]
    assert v["loss"].item() == pytest.approx(v["reconstruction"].item() + v["kl"].item(), rel=1e-6)


# ---------------------------------------------------------------------------------------------
# pooling and samplers
# ---------------------------------------------------------------------------------------------
def test_gated_attention_pool_masks_and_is_permutation_invariant():
    torch.manual_seed(0)
    pool = GatedAttentionPool(4, 8)
    h = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    out = pool(h, mask)
    h2 = h.clone()
    h2[0, 3:] = 1e3  # padded members must not matter
    assert torch.allclose(pool(h2, mask), out)
    perm = torch.tensor([2, 0, 1, 3, 4])
    assert torch.allclose(pool(h[:, perm], mask[:, perm]), out, atol=1e-6)
    w = pool.weights(h, mask)
    assert torch.allclose(w.sum(1), torch.ones(2)) and float(w[0, 3:].sum()) == 0.0
    # the gated-attention formula of Lu 2025 eq. 9, written out
    a = (pool.w(torch.tanh(pool.V(h[1])) * torch.sigmoid(pool.U(h[1])))).squeeze(-1)
    assert torch.allclose(out[1], (torch.softmax(a, 0).unsqueeze(-1) * h[1]).sum(0), atol=1e-6)


def test_singleton_set_equals_instance_embedding():
    torch.manual_seed(0)
    enc = SetEncoder(6, hidden=8, embedding_dim=4).eval()
    x = torch.randn(3, 6)
    assert torch.allclose(enc(x.unsqueeze(1), torch.ones(3, 1, dtype=torch.bool)), enc(x), atol=1e-6)


@pytest.mark.parametrize("unit", ["pairs", "sets"])
def test_contrastive_hidden_embedding_is_the_representation_before_the_projection(unit):
    """``embedding: hidden`` embeds each encoder's φ (pooled for sets), whose projection,
    L2-normalised, is exactly the default ``projection`` embedding; ``both`` concatenates the two."""
    from morphotx.models.nets import CrossModalContrastive

    torch.manual_seed(0)
    net = CrossModalContrastive(7, 5, hidden=12, embedding_dim=4, pooling="gated_attention").eval()
    fam = {e: family_of(resolve("c", {"family": "contrastive", "unit": unit, "embedding": e}))
           for e in ("hidden", "projection")}
    arrays = {"cp": np.random.default_rng(0).normal(size=(6, 7)).astype(np.float32),
              "l1000": np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32)}
    with torch.no_grad():
        H, P = (fam[e].encode(net, "both", arrays, "cpu") for e in ("hidden", "projection"))
        assert H.shape == (6, 24) and P.shape == (6, 8)
        for k, enc in enumerate((net.enc_cp, net.enc_l1000)):
            assert torch.allclose(F.normalize(enc.proj(H[:, 12 * k:12 * (k + 1)]), dim=1), P[:, 4 * k:4 * (k + 1)], atol=1e-6)
        assert torch.equal(fam["hidden"].encode(net, "cp", arrays, "cpu"), H[:, :12])
        if unit == "sets":
            sets = {"cp": arrays["cp"].reshape(2, 3, 7), "cp_mask": np.ones((2, 3), bool),
                    "l1000": arrays["l1000"].reshape(2, 3, 5), "l1000_mask": np.array([[1, 1, 0], [1, 1, 1]], bool)}
            Hs, Ps = (fam[e].pool(net, "both", sets, "cpu") for e in ("hidden", "projection"))
            assert Hs.shape == (2, 24)
            assert torch.allclose(F.normalize(net.enc_l1000.proj(Hs[:, 12:]), dim=1), Ps[:, 4:], atol=1e-6)
        else:
            assert fam["hidden"].pool(net, "both", {}, "cpu") is None


def test_moa_batches_guarantee_partners():
    rng = np.random.default_rng(0)
    labels = np.zeros((50, 5), np.float32)
    labels[np.arange(50), np.arange(50) % 5] = 1
    labels[0, 1] = 1  # multi-MoA
    labels[49] = 0  # unlabelled: never drawn
    for b in moa_batches(labels, 3, 4, 10, rng):
        assert len(b) == 12 and 49 not in b
        shared = (labels[b] @ labels[b].T > 0).sum(1) - 1
        assert (shared >= 3).all()
    with pytest.raises(MorphotxInputError, match="no validation item has a MoA label"):
        moa_batches(np.zeros((5, 3), np.float32), 3, 4, 1, rng, split="validation")


def test_distinct_compound_batches_have_no_repeated_compound():
    treat = np.repeat(np.arange(60), 5)  # 60 treatments × 5 replicate pairs
    compound = treat // 6  # 10 compounds × 6 doses
    batches = distinct_compound_batches(compound, 4, np.random.default_rng(0))
    for b in batches:
        assert len(set(compound[b])) == len(b)
    assert sum(len(b) for b in batches) == len(treat)
    assert len(set(np.concatenate(batches))) > len(treat) / 2  # random picks, not one item per compound


@pytest.mark.parametrize("unit", ["pairs", "collapsed", "sets"])
def test_contrastive_batches_hold_one_dose_per_compound(tiny_processed, unit):
    i = _inputs(tiny_processed)
    data = ModelData(i["cp"], i["l1000"], i["pairs"], i["sets"])
    fam = family_of(resolve("c", {"family": "contrastive", "unit": unit, "batch_size": 8}))
    items = fam.items(data, "train")
    batches = fam.batches(data, items, np.random.default_rng(0))
    for b in batches:
        compounds = data.treatments["Metadata_pert_id"].to_numpy()[items.treat[b]]
        assert len(set(compounds)) == len(b)
    assert sum(len(b) for b in batches) >= len(items)
    # batches gather rows: the profile matrices are row-major (pandas hands them over column-major)
    assert all(data.matrix(src).flags["C_CONTIGUOUS"] for src in items.source.values())


# ---------------------------------------------------------------------------------------------
# input augmentation
# ---------------------------------------------------------------------------------------------
def test_input_augment_is_identity_in_eval_and_noisy_in_training():
    torch.manual_seed(0)
    x = torch.randn(64, 50)
    out = InputAugment(noise=0.0, feature_dropout=0.5).train()(x)
    zeroed = out == 0
    assert 0.3 < float(zeroed.float().mean()) < 0.7 and torch.equal(out[~zeroed], x[~zeroed])  # no rescaling
    assert float((InputAugment(noise=0.1).train()(x) - x).std()) == pytest.approx(0.1, rel=0.1)
    assert torch.equal(InputAugment(0.1, 0.5).eval()(x), x)


@pytest.mark.parametrize("make", [
    lambda: SetEncoder(6, hidden=8, embedding_dim=4, dropout=0.0, input_noise=0.1, feature_dropout=0.1),
    lambda: LateFusionSupCon(6, 5, 8, 4, 4, 3, dropout=0.0, input_noise=0.1, feature_dropout=0.1),
], ids=["set_encoder", "late_fusion"])
def test_networks_augment_inputs_only_in_training_mode(make):
    torch.manual_seed(0)
    net = make()
    x = [torch.randn(8, 6)] + ([torch.randn(8, 5)] if isinstance(net, LateFusionSupCon) else [])
    net.eval()
    assert torch.equal(net(*x), net(*x))
    net.train()
    assert not torch.allclose(net(*x), net(*x))
    assert not any("augment" in k for k in net.state_dict())  # checkpoints are unchanged by it


# ---------------------------------------------------------------------------------------------
# downstream score
# ---------------------------------------------------------------------------------------------
def test_mean_average_precision_on_a_hand_computed_toy():
    database = np.array([[1, 0], [0, 1], [-1, 0], [1.6, 1.2]])  # cos to [1, 0]: 1, 0, -1, 0.8
    db_labels = np.array([[0, 1, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0]])  # MoAs B, A, A, B
    queries = np.array([[1, 0], [0, 2], [1, 1], [0, -1]])
    q_labels = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])  # A, B, C (no positive), A+B
    # q0 ranks d0 d3 d1 d2: positives at 3, 4 -> (1/3 + 2/4) / 2 = 5/12
    # q1 ranks d1 d3 d0 d2 (d0, d2 tie: database order): positives at 2, 3 -> (1/2 + 2/3) / 2 = 7/12
    # q2 has no positive: left out; q3 has every item as a positive -> 1
    got = mean_average_precision(queries, database, q_labels, db_labels)
    assert got == pytest.approx((5 / 12 + 7 / 12 + 1) / 3)
    assert mean_average_precision(queries[:1], database, q_labels[:1], db_labels) == pytest.approx(5 / 12)
    assert math.isnan(mean_average_precision(queries[2:3], database, q_labels[2:3], db_labels))


# ---------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------
def test_schema_defaults_agree_with_dataclasses():
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    for family, cls in FAMILIES.items():
        props = schema["$defs"][family]["properties"]
        fields = asdict(cls())
        assert set(props) - {"enabled"} == set(fields), family
        for k, v in fields.items():
            if k == "family":
                continue
            assert props[k].get("default") == v, f"{family}.{k}: schema {props[k].get('default')} vs {v}"


def test_resolve_errors_name_the_key():
    with pytest.raises(MorphotxInputError, match=r"models\.m\.family"):
        resolve("m", {"family": "gan"})
    with pytest.raises(MorphotxInputError, match=r"models\.m.*tempreature"):
        resolve("m", {"family": "supcon", "tempreature": 0.1})
    with pytest.raises(MorphotxInputError, match=r"models\.m\.variant"):
        resolve("m", {"family": "vae", "variant": "gamma"})
    with pytest.raises(MorphotxInputError, match=r"models\.m\.unit"):
        resolve("m", {"family": "vae", "input": "concat", "unit": "replicates"})
    with pytest.raises(MorphotxInputError, match=r"models\.m: cp_only \+ l1000_only"):
        resolve("m", {"family": "bimodal_ae", "cp_only": 0.6, "l1000_only": 0.5})
    with pytest.raises(MorphotxInputError, match=r"models\.m\.cp_only"):
        resolve("m", {"family": "bimodal_ae", "cp_only": -0.1})
    with pytest.raises(MorphotxInputError, match=r"train\.device"):
        build(TrainSettings, {"device": "tpu"}, "train")
    with pytest.raises(MorphotxInputError, match=r"train\.select_on"):
        build(TrainSettings, {"select_on": "accuracy"}, "train")


def test_fingerprint_covers_weight_shaping_settings_only():
    from morphotx.models.config import fingerprint

    hp, feats = resolve("s", {"family": "supcon"}), {"cp": ["a"], "l1000": ["b"]}
    base = fingerprint(hp, TrainSettings(), feats)
    assert fingerprint(hp, TrainSettings(select_on="loss"), feats) != base
    assert fingerprint(resolve("s", {"family": "supcon", "input_noise": 0.0}), TrainSettings(), feats) != base
    assert fingerprint(hp, TrainSettings(progress=False, device="cpu", seeds=[1]), feats) == base
    c = {"family": "contrastive"}
    assert (fingerprint(resolve("c", {**c, "embedding": "hidden"}), TrainSettings(), feats)
            != fingerprint(resolve("c", c), TrainSettings(), feats))


def test_views_per_family():
    assert views(resolve("a", {"family": "supcon"})) == ["both", "cp"]
    assert views(resolve("b", {"family": "translator"})) == ["l1000"]
    assert views(resolve("c", {"family": "vae", "input": "concat"})) == ["both"]
    assert views(resolve("d", {"family": "contrastive", "unit": "sets"})) == ["both", "cp", "l1000"]
    bimodal = resolve("e", {"family": "bimodal_ae"})
    assert views(bimodal) == ["both", "cp", "l1000"] and primary_view(bimodal) == "both"


# ---------------------------------------------------------------------------------------------
# bimodal autoencoder (Ha 2025)
# ---------------------------------------------------------------------------------------------
def _bimodal(**kw):
    hp = resolve("b", {"family": "bimodal_ae", "hidden": 8, "latent_dim": 3, "dropout": 0.0, **kw})
    torch.manual_seed(0)
    return family_of(hp), BimodalAE(6, 5, 8, 3, 0.0)


def test_bimodal_ae_cp_view_needs_no_l1000():
    """The Cell-Painting-only embedding of a profile is the same whatever L1000 profile (or none)
    comes with it; the joint view does depend on L1000."""
    fam, net = _bimodal()
    net.eval()
    rng = np.random.default_rng(0)
    cp, l_a, l_b = (rng.normal(size=(4, d)).astype(np.float32) for d in (6, 5, 5))
    cpu = torch.device("cpu")
    with torch.no_grad():
        z_a = fam.encode(net, "cp", {"cp": cp, "l1000": l_a}, cpu)
        z_b = fam.encode(net, "cp", {"cp": cp, "l1000": l_b}, cpu)
        z_none = fam.encode(net, "cp", {"cp": cp}, cpu)
        j_a = fam.encode(net, "both", {"cp": cp, "l1000": l_a}, cpu)
        j_b = fam.encode(net, "both", {"cp": cp, "l1000": l_b}, cpu)
    assert z_a.shape == (4, 3)
    assert torch.equal(z_a, z_b) and torch.equal(z_a, z_none)
    assert not torch.allclose(j_a, j_b)
    # absent = a zero standardised input, i.e. the L1000 training mean
    with torch.no_grad():
        at_mean = net.encode(torch.as_tensor(cp), net.norm_l1000.mean.expand(4, 5))
    torch.testing.assert_close(z_a, at_mean)


def test_bimodal_ae_loss_reconstructs_both_modalities_from_each_input_case():
    """Eval mode: the three input cases' reconstruction errors weighted by their probabilities,
    each case recomputed by hand. Training with ``cp_only: 1`` is the Cell-Painting-only case."""
    rng = np.random.default_rng(1)
    batch = {"cp": rng.normal(size=(5, 6)).astype(np.float32), "l1000": rng.normal(size=(5, 5)).astype(np.float32)}
    cpu = torch.device("cpu")
    cp, l1 = torch.as_tensor(batch["cp"]), torch.as_tensor(batch["l1000"])

    def case(net, x_cp, x_l):
        r_cp, r_l = net.decode(net.embed(x_cp, x_l))
        return float(((r_cp - cp) ** 2).mean()), float(((r_l - l1) ** 2).mean())

    fam, net = _bimodal(cp_only=0.5, l1000_only=0.2)
    net.eval()
    with torch.no_grad():
        got = fam.step(net, batch, cpu)
        parts = {"both": case(net, cp, l1), "cp": case(net, cp, 0 * l1), "l1000": case(net, 0 * cp, l1)}
    weights = {"both": 0.3, "cp": 0.5, "l1000": 0.2}
    want_cp = sum(weights[c] * parts[c][0] for c in parts)
    want_l = sum(weights[c] * parts[c][1] for c in parts)
    assert got["reconstruction_cp"].item() == pytest.approx(want_cp, rel=1e-5)
    assert got["reconstruction_l1000"].item() == pytest.approx(want_l, rel=1e-5)
    assert got["loss"].item() == pytest.approx(want_cp + want_l, rel=1e-5)
    fam, net = _bimodal(cp_only=1.0, l1000_only=0.0)
    net.train()  # dropout 0: training mode differs only by the input cases drawn
    with torch.no_grad():
        got = fam.step(net, batch, cpu)
        want = case(net, cp, 0 * l1)
    assert got["loss"].item() == pytest.approx(sum(want), rel=1e-5)


# ---------------------------------------------------------------------------------------------
# trainer and embeddings on the tiny demo
# ---------------------------------------------------------------------------------------------
def _inputs(p):
    return dict(cp=str(p["cp_p"]), l1000=str(p["l1k_p"]), pairs=str(p["pairs"]), sets=str(p["sets"]))


def _train(tmp, p, name, cfg, seed=0, train=FAST):
    out = {k: str(tmp / f"{name}_{seed}.{k}") for k in ("checkpoint", "history", "params")}
    hist = train_model(name, resolve(name, cfg), train, **_inputs(p), **out, seed=seed)
    return out, hist


def test_training_lowers_validation_loss_and_never_reads_test(tiny_processed, tmp_path, splits_read):
    cfg = {"family": "vae", "variant": "mmd", "input": "cp", "mmd_lambda": 10.0}
    out, hist = _train(tmp_path, tiny_processed, "vae", cfg, train=replace(FAST, max_epochs=8))
    assert set(splits_read) == {"train", "validation"}
    assert hist["val_loss"].min() < hist["val_loss"].iloc[0]
    assert {"train_reconstruction", "train_mmd", "val_reconstruction", "val_mmd", "val_map",
            "seconds"} <= set(hist.columns)
    params = json.loads(open(out["params"]).read())
    assert params["select_on"] == "downstream" and np.isfinite(hist["val_map"]).all()
    assert params["best_epoch"] == int(hist["val_map"].idxmax()) + 1  # the first best on ties
    assert params["best_validation_score"] == pytest.approx(hist["val_map"].max())
    assert params["best_validation_loss"] == pytest.approx(hist["val_loss"].iloc[params["best_epoch"] - 1])
    assert params["hyperparameters"]["hidden"] == 250
    assert params["device"] == str(select_device(FAST.device))
    logged = pd.read_csv(out["history"])
    assert len(logged) == len(hist)


def test_select_on_loss_keeps_the_lowest_validation_loss(tiny_processed, tmp_path):
    out, hist = _train(tmp_path, tiny_processed, "t", {"family": "translator"},
                       train=replace(FAST, max_epochs=6, patience=6, select_on="loss"))
    params = json.loads(open(out["params"]).read())
    assert params["select_on"] == "loss" and np.isfinite(hist["val_map"]).all()  # still recorded
    assert params["best_epoch"] == int(hist["val_loss"].idxmin()) + 1
    assert params["best_validation_score"] == pytest.approx(-hist["val_loss"].min())


def _relabel_validation(p, tmp_path, moa_of_compound):
    """The tiny demo with every validation compound's MoA replaced (``moa_of_compound(i)`` for the
    i-th validation compound): MoAs no training compound has."""
    sets = pd.read_parquet(p["sets"])
    val = sets["Metadata_split"] == "validation"
    code = {c: i for i, c in enumerate(sorted(sets.loc[val, "Metadata_pert_id"].unique()))}
    sets.loc[val, "Metadata_moa"] = pd.Series([[moa_of_compound(code[c])] for c in sets.loc[val, "Metadata_pert_id"]],
                                              index=sets.index[val])
    out = {**p, "sets": tmp_path / "sets.parquet"}
    sets.to_parquet(out["sets"])
    return out


def test_select_on_falls_back_to_loss_without_a_shared_moa(tiny_processed, tmp_path, caplog):
    p = _relabel_validation(tiny_processed, tmp_path, lambda i: f"unseen MoA {i}")  # one compound each
    caplog.set_level(logging.WARNING)
    out, hist = _train(tmp_path, p, "t", {"family": "translator"}, train=replace(FAST, max_epochs=3))
    params = json.loads(open(out["params"]).read())
    assert params["select_on"] == "loss" and params["best_validation_map"] is None
    assert params["best_epoch"] == int(hist["val_loss"].idxmin()) + 1
    assert hist["val_map"].isna().all()
    assert "no validation treatment shares a MoA with a training treatment or with another" in caplog.text


@pytest.mark.parametrize("name,cfg", [("s", {"family": "supcon"}), ("t", {"family": "translator"})])
def test_zero_shot_validation_selects_on_unseen_moas(tiny_processed, tmp_path, name, cfg):
    """A MoA-disjoint split: the validation MoAs are not among the training MoAs. SupCon still
    trains (its validation loss uses the validation MoAs), and the checkpoint is chosen on the
    validation compounds' mAP among themselves (own compound left out)."""
    p = _relabel_validation(tiny_processed, tmp_path, lambda i: f"unseen MoA {i % 2}")  # two MoAs
    out, hist = _train(tmp_path, p, name, cfg, train=replace(FAST, max_epochs=3))
    params = json.loads(open(out["params"]).read())
    assert params["select_on"] == "downstream" and np.isfinite(hist["val_map"]).all()
    assert np.isfinite(hist["val_loss"]).all()


def test_early_stopping_restores_best_weights(tiny_processed, tmp_path):
    out, hist = _train(tmp_path, tiny_processed, "clip", {"family": "contrastive", "lr": 1e-2},
                       train=replace(FAST, max_epochs=30, patience=2))
    best = int(hist["val_map"].idxmax()) + 1
    assert len(hist) <= best + 2
    ck = torch.load(out["checkpoint"], weights_only=True)
    assert ck["best_epoch"] == best and ck["select_on"] == "downstream"


@pytest.mark.parametrize("name,cfg", [
    ("supcon", {"family": "supcon", "moas_per_batch": 4, "per_moa": 4}),
    ("set_cwcl", {"family": "contrastive", "loss": "cwcl", "unit": "sets", "hidden": 32}),
    ("translator", {"family": "translator", "unit": "collapsed"}),
    ("vae_concat", {"family": "vae", "variant": "beta", "beta": 0.5, "input": "concat", "unit": "collapsed"}),
    ("bimodal_ae", {"family": "bimodal_ae", "unit": "pairs", "hidden": 32, "latent_dim": 8}),
])
def test_same_seed_same_embeddings_and_complete_tables(tiny_processed, tmp_path, name, cfg):
    frames = []
    for run in ("a", "b"):
        d = tmp_path / run
        d.mkdir()
        out, _ = _train(d, tiny_processed, name, cfg, seed=3)
        hp = resolve(name, cfg)
        outs = {f"{v}_{l}": str(d / f"{v}_{l}.parquet") for v in views(hp) for l in ("uncollapsed", "collapsed")}
        frames.append(embed_model(name, resolve(name, cfg), FAST, out["checkpoint"], **_inputs(tiny_processed), outputs=outs))
    for key in frames[0]:
        pd.testing.assert_frame_equal(frames[0][key], frames[1][key], check_exact=True, obj=key)
    cp = pd.read_parquet(tiny_processed["cp_p"])
    sets = pd.read_parquet(tiny_processed["sets"])
    for key, df in frames[0].items():
        emb = [c for c in df.columns if c.startswith("emb_")]
        assert emb and np.isfinite(df[emb].to_numpy()).all(), key
        assert set(df["Metadata_split"]) >= {"train", "validation", "test"}, key
        if key == "cp_uncollapsed":
            assert len(df) == len(cp) and df["Metadata_is_control"].any()
        if key.startswith("both_"):
            assert not df["Metadata_is_control"].any()
        if key == "both_collapsed":
            assert len(df) == int(((sets.n_cp > 0) & (sets.n_l1000 > 0)).sum())
        if key.endswith("_collapsed") and not key.startswith("both"):
            assert df["Metadata_pert_id_dose"].is_unique and "DMSO" in set(df["Metadata_pert_id_dose"])


def test_other_seed_other_weights(tiny_processed, tmp_path):
    cfg = {"family": "translator"}
    a, _ = _train(tmp_path, tiny_processed, "t", cfg, seed=0)
    b, _ = _train(tmp_path, tiny_processed, "t", cfg, seed=1)
    wa = torch.load(a["checkpoint"], weights_only=True)["state_dict"]["decoder.weight"]
    wb = torch.load(b["checkpoint"], weights_only=True)["state_dict"]["decoder.weight"]
    assert not torch.equal(wa, wb)


def test_checkpoint_refused_when_it_belongs_elsewhere(tiny_processed, tmp_path):
    cfg = {"family": "translator"}
    out, _ = _train(tmp_path, tiny_processed, "t", cfg)
    ck, hp, _ = load_checkpoint(out["checkpoint"], "t", resolve("t", cfg), FAST)
    assert hp.family == "translator" and ck["model"] == "t"
    with pytest.raises(MorphotxInputError, match="not of models.u"):
        load_checkpoint(out["checkpoint"], "u", resolve("u", cfg), FAST)
    with pytest.raises(MorphotxInputError, match="family"):
        load_checkpoint(out["checkpoint"], "t", resolve("t", {"family": "supcon"}), FAST)
    with pytest.raises(MorphotxInputError, match="other hyperparameters"):
        load_checkpoint(out["checkpoint"], "t", resolve("t", {"family": "translator", "hidden": 64}), FAST)
    with pytest.raises(MorphotxInputError, match="other hyperparameters"):
        load_checkpoint(out["checkpoint"], "t", resolve("t", cfg), FAST, features={"cp": ["x"], "l1000": ["y"]})
    ck["version"] = 0
    torch.save(ck, tmp_path / "old.pt")
    with pytest.raises(MorphotxInputError, match="format version"):
        load_checkpoint(str(tmp_path / "old.pt"), "t", resolve("t", cfg), FAST)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MorphotxInputError, match="junk.pt"):
        load_checkpoint(str(tmp_path / "junk.pt"), "t", resolve("t", cfg), FAST)


def test_cuda_request_without_gpu_is_an_error(tiny_processed, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the CUDA path is tested by test_cuda_checkpoint_loads_on_cpu")
    with pytest.raises(MorphotxInputError, match="train.device is 'cuda'"):
        _train(tmp_path, tiny_processed, "t", {"family": "translator"}, train=replace(FAST, device="cuda"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_checkpoint_loads_on_cpu(tiny_processed, tmp_path):
    cfg = {"family": "contrastive", "unit": "sets"}
    out, _ = _train(tmp_path, tiny_processed, "s", cfg, train=replace(FAST, device="cuda", mixed_precision=True))
    assert json.loads(open(out["params"]).read())["device"].startswith("cuda")
    ck, _, _ = load_checkpoint(out["checkpoint"], "s", resolve("s", cfg), replace(FAST, device="cuda", mixed_precision=True))
    assert all(t.device.type == "cpu" for t in ck["state_dict"].values())
    outs = {f"{v}_{l}": str(tmp_path / f"{v}_{l}.parquet") for v in ("both", "cp", "l1000")
            for l in ("uncollapsed", "collapsed")}
    embed_model("s", resolve("s", cfg), replace(FAST, device="cpu", mixed_precision=True), out["checkpoint"],
                **_inputs(tiny_processed), outputs=outs)


def test_empty_set_in_one_modality_is_skipped_and_counted(tiny_processed, tmp_path, caplog):
    sets = pd.read_parquet(tiny_processed["sets"])
    train_rows = sets.index[sets["Metadata_split"] == "train"][:2]
    sets.loc[train_rows, "l1000_rows"] = pd.Series([[] for _ in train_rows], index=train_rows)
    sets.loc[train_rows, "n_l1000"] = 0
    path = tmp_path / "sets.parquet"
    sets.to_parquet(path)
    caplog.set_level(logging.INFO)
    p = tiny_processed
    data = ModelData(str(p["cp_p"]), str(p["l1k_p"]), str(p["pairs"]), str(path))
    items = data.items("sets", "train", ("cp", "l1000"))
    assert len(items) == int((sets["Metadata_split"] == "train").sum()) - 2
    assert "2 train treatment(s) skipped: empty replicate set in cp or l1000" in caplog.text
    assert len(data.items("sets", "train", ("cp",))) == len(items) + 2


@pytest.mark.parametrize("name,cfg,view", [("vae_concat", {"family": "vae", "input": "concat", "unit": "collapsed"}, "both"),
                                           ("t", {"family": "translator"}, "l1000")])
def test_collapsed_embedding_is_the_embedding_of_the_median_profile(tiny_processed, tmp_path, name, cfg, view):
    """Saha 2025: the collapsed embedding of a treatment is the embedding of its median features
    (``collapse="features"``, default); ``collapse="embeddings"`` is the median of its replicate
    embeddings. Both checked against the model applied by hand."""
    out, _ = _train(tmp_path, tiny_processed, name, cfg)
    hp = resolve(name, cfg)
    frames = {}
    for collapse in ("features", "embeddings"):
        outs = {f"{v}_{l}": str(tmp_path / f"{collapse}_{v}_{l}.parquet") for v in views(hp)
                for l in ("uncollapsed", "collapsed")}
        frames[collapse] = embed_model(name, resolve(name, cfg), FAST, out["checkpoint"], **_inputs(tiny_processed), outputs=outs,
                                       collapse=collapse)
    i = _inputs(tiny_processed)
    data = ModelData(i["cp"], i["l1000"], i["pairs"], i["sets"])
    ck, hp, ts = load_checkpoint(out["checkpoint"], name, resolve(name, cfg), FAST)
    fam = family_of(hp, ts.input_clip)
    model = fam.build(data, None)
    model.load_state_dict(ck["state_dict"])
    model.eval()
    col = frames["features"][f"{view}_collapsed"]
    emb = [c for c in col.columns if c.startswith("emb_")]
    mods = ("cp", "l1000") if view == "both" else (view,)
    for t in col["Metadata_pert_id_dose"].iloc[[0, len(col) // 2, -1]]:
        med = {m: np.median(data.mod[m].X[(data.mod[m].meta["Metadata_pert_id_dose"] == t).to_numpy()], axis=0)[None]
               for m in mods}
        with torch.no_grad():
            z = fam.encode(model, view, med, torch.device("cpu")).numpy()[0]
        got = col.loc[col["Metadata_pert_id_dose"] == t, emb].to_numpy()[0]
        np.testing.assert_allclose(got, z, rtol=1e-5, atol=1e-6)
    unc, med_col = frames["embeddings"][f"{view}_uncollapsed"], frames["embeddings"][f"{view}_collapsed"]
    t = med_col["Metadata_pert_id_dose"].iloc[1]
    np.testing.assert_allclose(med_col.loc[med_col["Metadata_pert_id_dose"] == t, emb].to_numpy()[0],
                               np.median(unc.loc[unc["Metadata_pert_id_dose"] == t, emb].to_numpy(), axis=0), rtol=1e-6)
    assert not np.allclose(col[emb].to_numpy(), med_col[emb].to_numpy())  # the two definitions differ


def test_set_embeddings_and_pair_rows_do_not_depend_on_batching(tiny_processed, tmp_path):
    """Set-level pooled embeddings are computed in chunks capped in padded rows (the DMSO set would
    otherwise pad a whole chunk to its size): each set's embedding is the same pooled alone, in the
    default chunks or in small capped ones. The ``both`` view's pair rows, gathered a batch at a
    time, are the encoding of each pair's two profiles."""
    from morphotx.models.embed import _pooled_collapse, _set_chunks, _uncollapsed

    cfg = {"family": "contrastive", "unit": "sets", "hidden": 32}
    out, _ = _train(tmp_path, tiny_processed, "sc", cfg)
    i = _inputs(tiny_processed)
    data = ModelData(i["cp"], i["l1000"], i["pairs"], i["sets"])
    ck, hp, ts = load_checkpoint(out["checkpoint"], "sc", resolve("sc", cfg), FAST)
    fam = family_of(hp, ts.input_clip)
    model = fam.build(data, None)
    model.load_state_dict(ck["state_dict"])
    model.eval()
    cpu = torch.device("cpu")
    unc = _uncollapsed(fam, model, data, "both", cpu)
    emb = [c for c in unc.columns if c.startswith("emb_")]
    for r in (0, len(unc) // 2, len(unc) - 1):
        pair = data.pairs.iloc[r]
        with torch.no_grad():
            z = fam.encode(model, "both", {"cp": data.mod["cp"].X[[pair["cp_row"]]],
                                           "l1000": data.mod["l1000"].X[[pair["l1000_row"]]]}, cpu).numpy()[0]
        np.testing.assert_allclose(unc[emb].to_numpy()[r], z, rtol=1e-5, atol=1e-6)
    default = _pooled_collapse(fam, model, data, "both", unc, cpu)
    for batch, max_rows in [(1, 10**9), (5, 20)]:
        other = _pooled_collapse(fam, model, data, "both", unc, cpu, batch=batch, max_rows=max_rows)
        assert other["Metadata_pert_id_dose"].tolist() == default["Metadata_pert_id_dose"].tolist()
        np.testing.assert_allclose(other[emb].to_numpy(), default[emb].to_numpy(), rtol=1e-5, atol=1e-6)
    size = {str(k): int(n) for k, n in zip(default["Metadata_pert_id_dose"], default["Metadata_n_profiles"])}
    order = sorted(size, key=lambda k: (size[k], k))
    chunks = list(_set_chunks(order, size, 5, 20))
    assert [k for c in chunks for k in c] == order and len(chunks) > len(order) / 5
    assert all(len(c) == 1 or len(c) * max(size[k] for k in c) <= 20 for c in chunks)


def test_embed_profiles_applies_a_checkpoint_to_new_profiles(tiny_processed, tmp_path):
    """The notebook API (Ha 2025's new compound measured in Cell Painting only): embedding
    preprocessed profiles with a checkpoint gives exactly the workflow's embeddings of the same
    rows; missing features and views the model lacks are named."""
    from morphotx.models import embed_profiles

    cfg = {"family": "supcon"}
    out, _ = _train(tmp_path, tiny_processed, "s", cfg)
    outs = {f"{v}_{l}": str(tmp_path / f"{v}_{l}.parquet") for v in ("both", "cp") for l in ("uncollapsed", "collapsed")}
    frames = embed_model("s", resolve("s", cfg), FAST, out["checkpoint"], **_inputs(tiny_processed), outputs=outs)
    cp = pd.read_parquet(tiny_processed["cp_p"]).sample(frac=1, random_state=0)  # any order, any subset
    got = embed_profiles(out["checkpoint"], cp=cp, view="cp")
    ref = frames["cp_uncollapsed"].set_index("Metadata_profile_id").loc[cp["Metadata_profile_id"]]
    emb = [c for c in got.columns if c.startswith("emb_")]
    np.testing.assert_allclose(got[emb].to_numpy(), ref[emb].to_numpy(), rtol=1e-5, atol=1e-6)
    assert list(got["Metadata_profile_id"]) == list(cp["Metadata_profile_id"])
    feat = next(c for c in cp.columns if c.startswith("Cells_"))
    with pytest.raises(MorphotxInputError, match=f"missing.*{feat}"):
        embed_profiles(out["checkpoint"], cp=cp.drop(columns=feat), view="cp")
    with pytest.raises(MorphotxInputError, match="has the views"):
        embed_profiles(out["checkpoint"], cp=cp, view="l1000")


def test_embed_profiles_reads_pair_level_contrastive_checkpoints(tiny_processed, tmp_path):
    """A pair-level CLIP/CWCL checkpoint stores ``pooling: none`` (what :func:`resolve` sets for
    non-set units); the notebook API must read it back (the README's example uses CWCL)."""
    from morphotx.models import embed_profiles

    cfg = {"family": "contrastive", "loss": "cwcl", "unit": "pairs"}
    out, _ = _train(tmp_path, tiny_processed, "c", cfg)
    outs = {f"{v}_{l}": str(tmp_path / f"{v}_{l}.parquet") for v in ("both", "cp", "l1000")
            for l in ("uncollapsed", "collapsed")}
    frames = embed_model("c", resolve("c", cfg), FAST, out["checkpoint"], **_inputs(tiny_processed), outputs=outs)
    cp = pd.read_parquet(tiny_processed["cp_p"])
    got = embed_profiles(out["checkpoint"], cp=cp, view="cp")
    emb = [c for c in got.columns if c.startswith("emb_")]
    np.testing.assert_allclose(got[emb].to_numpy(), frames["cp_uncollapsed"][emb].to_numpy(), rtol=1e-5, atol=1e-6)


def test_resolved_hyperparameters_resolve_to_themselves():
    """Checkpoints store resolved hyperparameters; resolving them again must give the same ones
    for every model of the default config (and a set model still refuses ``pooling: none``)."""
    models = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["models"]
    for name, spec in models.items():
        spec = {k: v for k, v in spec.items() if k != "enabled"}
        hp = resolve(name, spec)
        assert resolve(name, {k: v for k, v in asdict(hp).items() if v is not None}) == hp, name
    with pytest.raises(MorphotxInputError, match="pooling"):
        resolve("s", {"family": "contrastive", "unit": "sets", "pooling": "none"})


def test_bimodal_ae_trains_and_embeds_new_compounds_from_cell_painting_alone(tiny_processed, tmp_path, splits_read):
    """Ha 2025's setting end to end: trained on both assays (validation compounds only choose the
    checkpoint), the ``cp`` view embeds profiles given without any L1000 data, exactly as the
    workflow's ``cp`` table, with the shared layer's dimension."""
    from morphotx.models import embed_profiles

    cfg, train = {"family": "bimodal_ae"}, replace(FAST, max_epochs=8, patience=8)
    out, hist = _train(tmp_path, tiny_processed, "b", cfg, train=train)
    assert set(splits_read) == {"train", "validation"}
    assert hist["val_loss"].min() < hist["val_loss"].iloc[0]
    assert {"train_reconstruction_cp", "val_reconstruction_l1000", "val_map"} <= set(hist.columns)
    params = json.loads(open(out["params"]).read())
    assert params["select_on"] == "downstream" and params["best_epoch"] == int(hist["val_map"].idxmax()) + 1
    outs = {f"{v}_{l}": str(tmp_path / f"{v}_{l}.parquet") for v in views(resolve("b", cfg))
            for l in ("uncollapsed", "collapsed")}
    frames = embed_model("b", resolve("b", cfg), train, out["checkpoint"], **_inputs(tiny_processed), outputs=outs)
    cp = pd.read_parquet(tiny_processed["cp_p"])
    got = embed_profiles(out["checkpoint"], cp=cp, view="cp")  # no L1000 at all
    emb = [c for c in got.columns if c.startswith("emb_")]
    assert len(emb) == 64 and len(got) == len(cp)
    np.testing.assert_allclose(got[emb].to_numpy(), frames["cp_uncollapsed"][emb].to_numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(frames["cp_collapsed"][emb].to_numpy()[:5], 0)


# ---------------------------------------------------------------------------------------------
# Chow 2022 fidelity: input scaling, shuffled control; Saha 2025: the curve without early stopping
# ---------------------------------------------------------------------------------------------
def test_minmax_scaling_is_fitted_on_training_rows_only():
    from morphotx.models.nets import Standardize

    train = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]])  # second feature constant
    norm = Standardize(2, clip=10.0).fit(train, "minmax")
    assert norm(torch.tensor(train, dtype=torch.float32)).tolist() == [[0.0, 0.0], [0.5, 0.0], [1.0, 0.0]]
    other = torch.tensor([[6.0, 11.0], [-2.0, 9.0]])  # rows outside the training range stay outside [0, 1]
    assert norm(other).tolist() == [[1.5, 1.0], [-0.5, -1.0]]
    z = Standardize(2).fit(train)  # the default is still the z-score
    assert z.mean.tolist() == [2.0, 10.0] and z.std[0].item() == pytest.approx(np.sqrt(8 / 3))
    with pytest.raises(ValueError, match="minmax"):
        Standardize(2).fit(train, "robust")
    with pytest.raises(MorphotxInputError, match=r"models\.m\.input_scale"):
        resolve("m", {"family": "vae", "input_scale": "robust"})


def test_vae_minmax_puts_training_rows_in_unit_interval(tiny_processed):
    data = ModelData(*_inputs(tiny_processed).values())
    for cfg in ({"input": "cp"}, {"input": "concat", "unit": "collapsed"}):
        fam = family_of(resolve("v", {"family": "vae", "input_scale": "minmax", **cfg}))
        items = fam.items(data, "train")
        net = fam.build(data, items)
        x = torch.from_numpy(np.hstack([data.fit_rows(items, m) for m in fam.modalities]))
        scaled = net.norm(x)
        assert scaled.min().item() == pytest.approx(0.0, abs=1e-6) and scaled.max().item() == pytest.approx(1.0)
        assert torch.allclose(scaled.amin(0), torch.zeros(x.shape[1]), atol=1e-6)  # every feature: min 0 ...
        spread = x.amax(0) - x.amin(0)
        assert torch.allclose(scaled.amax(0)[spread > 1e-6], torch.ones(int((spread > 1e-6).sum())), atol=1e-5)
        val = fam.items(data, "validation")
        xv = torch.from_numpy(np.hstack([data.fit_rows(val, m) for m in fam.modalities]))
        assert (net.norm(xv) < 0).any() or (net.norm(xv) > 1).any()  # fitted on training rows only


def test_permuted_features_keep_columns_and_break_rows(tiny_processed):
    data = ModelData(*_inputs(tiny_processed).values())
    perm = data.permuted(("cp",), np.random.default_rng(0))
    split = data.treatments["Metadata_split"].astype(str).to_numpy()
    t = data.mod["cp"].treat
    for s in ("train", "validation", "test"):
        rows = np.flatnonzero((t >= 0) & (split[np.maximum(t, 0)] == s))
        a, b = data.mod["cp"].X[rows], perm.mod["cp"].X[rows]
        assert np.array_equal(np.sort(a, 0), np.sort(b, 0))  # each column keeps its values in the split
        assert np.array_equal(a, b) == (s == "test")  # test rows untouched, the others permuted
    ctrl = t < 0
    assert np.array_equal(data.mod["cp"].X[ctrl], perm.mod["cp"].X[ctrl])
    assert perm.mod["l1000"] is data.mod["l1000"] and data.mod["cp"].X is not perm.mod["cp"].X
    rows = np.flatnonzero((t >= 0) & (split[np.maximum(t, 0)] == "train"))
    a, b = data.mod["cp"].X[rows], perm.mod["cp"].X[rows]
    # the rows are broken: correlation between the two most correlated features is gone
    c = np.corrcoef(a.T)
    np.fill_diagonal(c, 0)
    i, j = np.unravel_index(np.abs(c).argmax(), c.shape)
    assert abs(np.corrcoef(b[:, i], b[:, j])[0, 1]) < abs(c[i, j]) / 2


@pytest.mark.slow  # trains twice, once for all 30 epochs (~25 s)
def test_full_curve_trains_on_but_keeps_early_stoppings_checkpoint(tiny_processed, tmp_path):
    cfg = {"family": "contrastive", "lr": 1e-2}
    stop = replace(FAST, max_epochs=30, patience=2)
    out_a, hist_a = _train(tmp_path / "a", tiny_processed, "clip", cfg, train=stop)
    out_b, hist_b = _train(tmp_path / "b", tiny_processed, "clip", cfg, train=replace(stop, full_curve=True))
    assert len(hist_a) < 30 and len(hist_b) == 30  # the toy stops early; the full curve runs every epoch
    n = len(hist_a)
    cols = ["train_loss", "val_loss", "val_map", "best"]
    pd.testing.assert_frame_equal(hist_b[cols].iloc[:n], hist_a[cols])  # same epochs up to the stop
    assert not hist_b["past_early_stop"].iloc[:n].any() and hist_b["past_early_stop"].iloc[n:].all()
    assert not hist_b["best"].iloc[n:].any()  # later epochs are never kept
    ck_a, ck_b = (torch.load(o["checkpoint"], weights_only=True) for o in (out_a, out_b))
    assert ck_a["best_epoch"] == ck_b["best_epoch"] and ck_a["fingerprint"] == ck_b["fingerprint"]
    assert all(torch.equal(ck_a["state_dict"][k], ck_b["state_dict"][k]) for k in ck_a["state_dict"])
    pa, pb = (json.loads(open(o["params"]).read()) for o in (out_a, out_b))
    assert pa["early_stop_epoch"] == pb["early_stop_epoch"] == n and pb["epochs_run"] == 30
