"""KV-cache transformer machines: probes equal re-running the prefix through the module."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

import trajprobe
from trajprobe import machine as sm
from trajprobe.adapters import (
    CausalTransformer,
    Interleaved,
    KVState,
    wrap_gpt2,
    wrap_transformer,
)

E, T, N = 3, 6, 4
D_IN, D_OUT, D_MODEL, HEADS = 3, 2, 16, 4
TOL = 1e-5


class TinyDecoder(nn.Module):
    """A user's own decoder-only model: read-in, learned positions, causal encoder, read-out."""

    def __init__(self, norm_first: bool, max_len: int = T):
        super().__init__()
        self.read_in = nn.Linear(D_IN, D_MODEL)
        self.pos = nn.Embedding(max_len, D_MODEL)
        layer = nn.TransformerEncoderLayer(D_MODEL, HEADS, 32, dropout=0.0, batch_first=True,
                                           norm_first=norm_first)
        norm = nn.LayerNorm(D_MODEL) if norm_first else None
        self.encoder = nn.TransformerEncoder(layer, 2, norm=norm, enable_nested_tensor=False)
        self.read_out = nn.Linear(D_MODEL, D_OUT)

    def forward(self, x):  # [B, T, D_IN] -> [B, T, D_OUT]
        steps = x.shape[1]
        h = self.read_in(x) + self.pos(torch.arange(steps))
        mask = nn.Transformer.generate_square_subsequent_mask(steps)
        return self.read_out(self.encoder(h, mask=mask, is_causal=True))


def _probe_reference(forward, inputs, probes):
    """Re-run every prefix: out[e, t, n] = forward([x_1..x_{t-1}, probe_n])[-1]."""
    rows = []
    for t in range(inputs.shape[1]):
        history = inputs[:, :t, None].expand(-1, -1, probes.shape[2], -1)  # [E, t, N, D]
        seq = torch.cat([history, probes[:, t, None]], dim=1)  # [E, t+1, N, D]
        seq = seq.transpose(1, 2).flatten(0, 1)  # [E·N, t+1, D]
        rows.append(forward(seq)[:, -1].reshape(probes.shape[0], probes.shape[2], -1))
    return torch.stack(rows, dim=1)


def _data(seed, d_in=D_IN):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(E, T, d_in, generator=gen), torch.randn(E, T, N, d_in, generator=gen)


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-norm", "post-norm"])
def test_torch_module_probes_equal_rerunning_the_prefix(norm_first):
    torch.manual_seed(0)
    model = TinyDecoder(norm_first).eval()
    machine = wrap_transformer(model.encoder, read_in=model.read_in, read_out=model.read_out,
                               position=model.pos, max_len=T)
    inputs, probes = _data(1)
    trace = trajprobe.rollout(machine, inputs)
    with torch.no_grad():
        assert float((trace.outputs - model(inputs)).abs().max()) < TOL
        ys = trajprobe.probe(machine, trace, probes)
        ref = _probe_reference(model, inputs, probes)
    assert ys.shape == (E, T, N, D_OUT)
    assert float((ys - ref).abs().max()) < TOL  # t = 1 included: the empty cache


def test_output_many_equals_the_default_path():
    torch.manual_seed(0)
    model = TinyDecoder(True).eval()
    machine = wrap_transformer(model.encoder, read_in=model.read_in, read_out=model.read_out,
                               position=model.pos, max_len=T)
    inputs, probes = _data(2)
    trace = trajprobe.rollout(machine, inputs)

    class Plain:  # the same machine without output_many
        initial_state, step, output = machine.initial_state, machine.step, machine.output

    fast = trajprobe.probe(machine, trace, probes, memory_budget=20_000)
    slow = trajprobe.probe(Plain(), trace, probes, memory_budget=20_000)
    assert float((fast - slow).abs().max()) < TOL


def test_state_is_a_batch_leading_cache_with_a_counter():
    torch.manual_seed(0)
    model = TinyDecoder(True)
    machine = wrap_transformer(model.encoder, read_in=model.read_in, read_out=model.read_out,
                               position=model.pos, max_len=T)
    state = machine.initial_state(5)
    assert isinstance(state, KVState)
    assert state.keys.shape == (5, 2, HEADS, T, D_MODEL // HEADS)
    assert state.valid.shape == (5, T) and not state.valid.any()
    _, state = machine.step(torch.zeros(5, D_IN), state)
    assert state.length.tolist() == [1] * 5 and state.valid[:, 0].all()
    assert sm.batch_size_of(state) == 5


def test_unroll_equals_stepping_and_returns_the_cache():
    torch.manual_seed(0)
    model = TinyDecoder(False).eval()
    machine = wrap_transformer(model.encoder, read_in=model.read_in, read_out=model.read_out,
                               position=model.pos, max_len=T)
    inputs, _ = _data(3)
    trace = trajprobe.rollout(machine, inputs)
    with torch.no_grad():
        outputs, final = machine.unroll(inputs)
    assert float((outputs - trace.outputs).abs().max()) < TOL
    for a, b in zip(final, sm.tree_map(lambda leaf: leaf[:, -1], trace.states), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=TOL)


def test_full_cache_and_bad_inputs_raise():
    torch.manual_seed(0)
    model = TinyDecoder(True)
    machine = wrap_transformer(model.encoder, read_in=model.read_in, read_out=model.read_out,
                               position=model.pos, max_len=2)
    with pytest.raises(ValueError, match="max_len"):
        trajprobe.rollout(machine, torch.zeros(1, 3, D_IN))
    with pytest.raises(ValueError, match=r"x: expected shape \[batch, 3\]"):
        machine.step(torch.zeros(2, 4), machine.initial_state(2))
    with pytest.raises(TypeError, match="CachedBlock"):
        CausalTransformer([nn.Linear(2, 2)], read_in=nn.Linear(2, 2), read_out=nn.Identity(),
                          max_len=2)


# -- Hugging Face GPT-2, Garg et al.'s set-up ------------------------------------------

try:
    import transformers
except ImportError:  # the optional extra trajprobe[transformers]
    transformers = None
needs_transformers = pytest.mark.transformers  # skipped without it (tests/conftest.py)


def test_the_adapters_import_without_transformers():
    code = ("import sys; sys.modules['transformers'] = None; "
            "import trajprobe, trajprobe.adapters, trajprobe.apps.models; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


class GargTransformer(nn.Module):
    """Garg et al. 2022's TransformerModel (dtsip/in-context-learning, src/models.py),
    as they build it: read-in, GPT2Model backbone on inputs_embeds, read-out, x/y
    tokens interleaved. Written here as a stand-in for someone else's class: not edited
    to be wrapped."""

    def __init__(self, n_dims, n_positions, n_embd=16, n_layer=2, n_head=4):
        super().__init__()
        configuration = transformers.GPT2Config(
            n_positions=2 * n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False,
        )
        self.n_dims = n_dims
        self._read_in = nn.Linear(n_dims, n_embd)
        self._backbone = transformers.GPT2Model(configuration)
        self._read_out = nn.Linear(n_embd, 1)

    @staticmethod
    def _combine(xs_b, ys_b):
        bsize, points, dim = xs_b.shape
        ys_b_wide = torch.cat((ys_b.view(bsize, points, 1),
                               torch.zeros(bsize, points, dim - 1)), axis=2)
        zs = torch.stack((xs_b, ys_b_wide), dim=2)
        return zs.view(bsize, 2 * points, dim)

    def forward(self, xs, ys):
        embeds = self._read_in(self._combine(xs, ys))
        output = self._backbone(inputs_embeds=embeds).last_hidden_state
        return self._read_out(output)[:, ::2, 0]


@needs_transformers
def test_gpt2_interleaved_probes_equal_rerunning_garg_model():
    torch.manual_seed(0)
    dims = 3
    model = GargTransformer(dims, T).eval()
    machine = wrap_gpt2(model._backbone, read_in=model._read_in, read_out=model._read_out,
                        max_len=T, layout=Interleaved(dims, 1))
    gen = torch.Generator().manual_seed(4)
    xs, ys = torch.randn(E, T, dims, generator=gen), torch.randn(E, T, generator=gen)
    y_prev = torch.cat([torch.zeros(E, 1), ys[:, :-1]], dim=1)
    inputs = torch.cat([xs, y_prev[..., None]], dim=-1)  # [x_t, y_{t-1}]
    probe_x = torch.randn(E, T, N, dims, generator=gen)
    probes = torch.cat([probe_x, y_prev[:, :, None, None].expand(E, T, N, 1)], dim=-1)
    trace = trajprobe.rollout(machine, inputs)
    with torch.no_grad():
        assert float((trace.outputs[..., 0] - model(xs, ys)).abs().max()) < TOL
        got = trajprobe.probe(machine, trace, probes)[..., 0]  # [E, T, N]
        worst = 0.0
        for t in range(T):  # prefix x_1..x_{t-1}, y_1..y_{t-1}, then probe x at step t
            hx = xs[:, None, :t].expand(E, N, t, dims)
            seq_x = torch.cat([hx, probe_x[:, t, :, None]], dim=2).flatten(0, 1)
            seq_y = torch.cat([ys[:, None, :t].expand(E, N, t), torch.zeros(E, N, 1)], dim=2)
            ref = model(seq_x, seq_y.flatten(0, 1))[:, -1].reshape(E, N)
            worst = max(worst, float((got[:, t] - ref).abs().max()))
    assert worst < TOL


@needs_transformers
def test_gpt2_one_token_per_step_equals_inputs_embeds_forward():
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_positions=T, n_embd=D_MODEL, n_layer=2, n_head=HEADS,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    backbone = transformers.GPT2Model(config).eval()
    read_in, read_out = nn.Linear(D_IN, D_MODEL), nn.Linear(D_MODEL, D_OUT)
    machine = wrap_gpt2(backbone, read_in=read_in, read_out=read_out, max_len=T)
    inputs, probes = _data(5)
    trace = trajprobe.rollout(machine, inputs)

    def forward(seq):
        return read_out(backbone(inputs_embeds=read_in(seq)).last_hidden_state)

    with torch.no_grad():
        assert float((trace.outputs - forward(inputs)).abs().max()) < TOL
        ys = trajprobe.probe(machine, trace, probes)
        assert float((ys - _probe_reference(forward, inputs, probes)).abs().max()) < TOL


@needs_transformers
def test_gpt2_too_short_for_max_len_raises():
    config = transformers.GPT2Config(n_positions=4, n_embd=8, n_layer=1, n_head=2)
    with pytest.raises(ValueError, match="n_positions"):
        wrap_gpt2(transformers.GPT2Model(config), read_in=nn.Linear(2, 8),
                  read_out=nn.Linear(8, 1), max_len=3, layout=Interleaved(1, 1))


# -- the built-in GPT ------------------------------------------------------------------


def _gpt(interleaved: bool, n_layers: int):
    """A small built-in GPT on 2-D regression's [x_t, y_{t-1}] (4 inputs, 2 outputs)."""
    from trajprobe.apps.models import GPT

    layout = Interleaved(2, 2) if interleaved else None
    return GPT(4, 2, d_model=16, n_layers=n_layers, n_heads=2, max_len=T, layout=layout,
               seed=0)


@pytest.mark.parametrize("interleaved", [False, True], ids=["one-token", "interleaved"])
def test_builtin_gpt_probes_equal_unrolling_the_prefix(interleaved):
    model = _gpt(interleaved, n_layers=2)
    inputs, probes = _data(6, d_in=4)
    trace = trajprobe.rollout(model, inputs)
    ys = trajprobe.probe(model, trace, probes)
    with torch.no_grad():
        assert float((trace.outputs - model.unroll(inputs)[0]).abs().max()) < TOL
        ref = _probe_reference(lambda seq: model.unroll(seq)[0], inputs, probes)
    assert float((ys - ref).abs().max()) < TOL


def test_builtin_gpt_is_seeded_and_trains():
    from trajprobe.apps.models import GPT

    a, b = GPT(4, 2, d_model=16, max_len=T, seed=5), GPT(4, 2, d_model=16, max_len=T, seed=5)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    inputs = torch.randn(8, T, 4)
    loss = a.unroll(inputs)[0].square().mean()
    loss.backward()
    assert all(p.grad is not None for p in a.parameters())


# -- the cache summary used by state comparisons -----------------------------------------


@pytest.mark.parametrize("interleaved", [False, True], ids=["one-token", "interleaved"])
def test_cache_summary_is_the_mean_key_and_value_of_the_history(interleaved):
    from trajprobe.adapters import CacheSummary

    model = _gpt(interleaved, n_layers=1)
    summary = CacheSummary(model)
    inputs, _ = _data(7, d_in=4)
    trace = trajprobe.rollout(summary, inputs)
    z = trace.state_vectors(summary)  # [E, T + 1, 2 · 16]
    assert z.shape == (E, T + 1, 2 * 16)
    assert float(z[:, 0].abs().max()) == 0.0  # s_0: nothing cached
    with torch.no_grad():
        for t in (1, 3, T):  # by hand: layer 1's keys/values of the embedded history tokens
            tokens = model.layout.tokens(inputs[:, :t]).flatten(1, 2)  # [E, t·P, 2]
            present = model.layout.present(torch.arange(1, t + 1)).flatten()
            tokens = tokens[:, present]
            h = model.read_in(tokens) + model.position(torch.arange(tokens.shape[1]))
            _, k, v = model.blocks[0].qkv(h)  # [E, n, H, dh]
            expected = torch.cat([k.mean(1).flatten(1), v.mean(1).flatten(1)], dim=1)
            assert float((z[:, t] - expected).abs().max()) < TOL
    # a function of the history only: the same history in another batch, another route
    with torch.no_grad():
        _, final = model.unroll(inputs[1:2])
    assert float((summary.state_vector(final) - z[1:2, -1]).abs().max()) < TOL
    assert float((z[0, -1] - z[1, -1]).abs().max()) > 1e-3  # other histories differ


def test_cache_summary_has_no_inverse_and_comparisons_say_so():
    from trajprobe.adapters import CacheSummary
    from trajprobe.apps.models import GPT
    from trajprobe.compare import SimulationConfig, simulation

    model = GPT(4, 2, d_model=8, n_layers=1, n_heads=2, max_len=T, seed=0)
    summary = CacheSummary(model)
    state = summary.state_from_vector(torch.zeros(3, 16))
    assert torch.isnan(summary.output(torch.zeros(3, 4), state)).all()
    assert torch.isnan(summary.output_many(torch.zeros(3, 5, 4), state)).all()  # as output
    with torch.no_grad():  # on a real cache, output_many is output on each input
        _, real = model.unroll(torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(1)))
        x = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(2))
        many = summary.output_many(x, real)
        one = torch.stack([summary.output(x[:, n], real) for n in range(5)], dim=1)
    assert float((many - one).abs().max()) < TOL
    with pytest.raises(ValueError, match="summary-only"):
        summary.step(torch.zeros(3, 4), state)
    inputs = torch.randn(12, T, 4, generator=torch.Generator().manual_seed(0))
    config = SimulationConfig(n_folds=2, shuffled_null=False, max_epochs=2)
    ds = simulation(summary, summary, inputs, config=config)
    # itself, summarised: D_s ~ 0 both ways; D_o into the summary is undefined and flagged
    assert float(ds["state_dissimilarity"].max()) < 1e-3
    assert ds["output_dissimilarity"].isnull().all()
    assert not ds["reliable"].any()
    assert "invalid" in str(ds["reliability_note"].values[0])


def test_garg_recipes_build_their_gpt2_with_interleaved_tokens():
    from trajprobe.apps import recipes
    from trajprobe.apps.models import GPT

    paper = recipes.get("garg-linear-regression-20d/transformer", "paper")
    model = paper.build_model(0)
    assert isinstance(model, GPT) and isinstance(model.layout, Interleaved)
    # their conf/models/standard.yaml: 12 layers, 8 heads, n_embd 256; prompts of 2d + 1
    assert len(model.blocks) == 12 and model.blocks[0].n_heads == 8
    assert model.read_in.out_features == 256 and model.read_in.in_features == 20
    assert paper.training.n_steps == 41 and model.max_len == 41
    assert paper.training.batch_size == 64 and paper.training.optimiser.lr == 1e-4
    assert paper.training.n_episodes == 500_000 * 64
    smoke = recipes.get("garg-linear-regression-5d/transformer", "smoke").build_model(0)
    inputs = torch.randn(2, 11, 6)  # [x_t, y_{t-1}]: d = 5 and their scalar y
    with torch.no_grad():  # a y token per example: stepping equals the interleaved unroll
        assert torch.allclose(trajprobe.rollout(smoke, inputs).outputs, smoke.unroll(inputs)[0],
                              atol=TOL)


# -- the attention read-outs used by state comparisons (issue 33) ------------------------


def test_cache_readout_is_each_probes_attention_to_the_history():
    from trajprobe.adapters import CacheReadout

    model = _gpt(False, n_layers=1)
    probes = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    readout = CacheReadout(model, probes)
    inputs, _ = _data(8, d_in=4)
    trace = trajprobe.rollout(readout, inputs)
    z = trace.state_vectors(readout)  # [E, T + 1, N · L · H · d_head]
    assert z.shape == (E, T + 1, 3 * 1 * 16)
    assert torch.isnan(z[:, -1]).all()  # s_T: a full cache takes no probe
    block = model.blocks[0]
    with torch.no_grad():
        for t in (0, 2, T - 1):  # by hand: softmax(q_j · k_i · scale) v_i over the history
            tokens = model.layout.tokens(probes)[:, 0]  # [N, 4]: one token per step
            q, k, v = block.qkv(model.read_in(tokens) + model.position(torch.tensor(t)))
            keys = torch.cat([trace.states.keys[:, t, 0, :, :t].transpose(1, 2)[:, None]
                              .expand(-1, 3, -1, -1, -1),
                              k[None, :, None].expand(E, -1, -1, -1, -1)], dim=2)
            values = torch.cat([trace.states.values[:, t, 0, :, :t].transpose(1, 2)[:, None]
                                .expand(-1, 3, -1, -1, -1),
                                v[None, :, None].expand(E, -1, -1, -1, -1)], dim=2)
            weights = torch.softmax(torch.einsum("nhd,enihd->enih", q, keys) * block.scale, 2)
            expected = torch.einsum("enih,enihd->enhd", weights, values).flatten(1)
            assert float((z[:, t] - expected).abs().max()) < TOL
    with pytest.raises(ValueError, match=r"probes: expected shape \[N >= 1, 4\]"):
        CacheReadout(model, torch.zeros(3, 5))
