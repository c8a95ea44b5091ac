"""QLoRA with PEFT on a small in-memory Llama whose linear layers are bnb_core 4-bit layers.

Gradient tolerance (test_lora_grads_match_dequantized_reference): the 4-bit model and the reference model
compute the same function - the reference's nn.Linear weights ARE the dequantized 4-bit weights (bf16) and
the LoRA weights are copied - so they differ only in how the bf16 matmuls are rounded (gemm_4bit/gemv and
MatMul4Bit.backward vs F.linear's autograd may sum in different orders or round at different points).
One bf16 rounding is a relative error of at most 2**-9; a gradient passes through O(10) roundings across
2 layers (forward and backward), so an element-wise bound of ~10 * 2**-8 ~ 4% of the gradient's scale is
the worst case; we assert max|g4 - gref| <= 2e-2 * max|gref| per LoRA tensor (and print the measured
error, which is far smaller - exactly 0 when the same kernels round identically).
"""

from __future__ import annotations

import copy

import pytest
import torch

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

import bnb_core  # noqa: E402
from bnb_core.autograd import dequantize_weight  # noqa: E402
from bnb_core.integrations.peft import LoraLinear4bit, register_lora_layers  # noqa: E402
from bnb_core.nn import Linear4bit  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GRAD_RTOL = 2e-2


def _llama(seed=0, dtype=torch.bfloat16):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=128, max_position_embeddings=64,
                                   tie_word_embeddings=False)
    return transformers.LlamaForCausalLM(cfg).to(dtype)


def _lora_config(**kw):
    return register_lora_layers(peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS, **kw))


def _qlora_model(seed=0):
    model = bnb_core.replace_linear(_llama(seed), "nf4", compute_dtype=torch.bfloat16, progress=False)
    return peft.get_peft_model(model, _lora_config())


def _batch(seed=1, bs=4, seq=16):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 128, (bs, seq), generator=g)
    return ids


def test_peft_wraps_our_linear4bit():
    model = _qlora_model()
    wrapped = [(n, m) for n, m in model.named_modules() if isinstance(m, LoraLinear4bit)]
    assert len(wrapped) == 2 * len(TARGETS)
    for _, m in wrapped:
        assert isinstance(m.get_base_layer(), Linear4bit)
        assert m.get_base_layer().weight.bnb_quantized
    lm_head = model.get_base_model().lm_head
    assert type(lm_head) is torch.nn.Linear  # skipped by replace_linear
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    # peft moves adapters to the base layer's compute_dtype (bf16), then get_peft_model's default
    # autocast_adapter_dtype=True upcasts them to fp32; base weights stay packed uint8 and frozen
    for _, m in wrapped:
        assert m.lora_A["default"].weight.dtype == torch.float32
        assert m.get_base_layer().weight.dtype == torch.uint8 and not m.get_base_layer().weight.requires_grad


def test_qlora_training_lowers_loss():
    model = _qlora_model()
    ids = _batch()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    base_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    losses = []
    model.train()
    for _ in range(30):
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(f"\nQLoRA loss: {losses[0]:.4f} -> {losses[-1]:.4f}")
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0] - 0.1, losses
    # the quantized base is untouched by training
    for n, p in model.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p.detach(), base_before[n]), n


def _dequantized_twin(qmodel):
    """The LlamaForCausalLM of `qmodel` (a PeftModel) with every Linear4bit replaced by nn.Linear holding its
    dequantized bf16 weight, wrapped by peft with the same LoRA weights."""
    base = copy.deepcopy(_llama())  # same architecture; every weight gets overwritten below
    qbase = qmodel.get_base_model()
    sd = {}
    for name, mod in qbase.named_modules():
        if isinstance(mod, Linear4bit):
            w = mod.weight
            sd[name.replace(".base_layer", "") + ".weight"] = dequantize_weight(w.data, w.quant_state, torch.bfloat16)
    for k, v in qbase.state_dict().items():
        if "lora_" in k or ".base_layer." in k:
            continue
        sd[k] = v
    missing, unexpected = base.load_state_dict(sd, strict=False)
    assert not unexpected and not missing, (missing, unexpected)
    assert not any(isinstance(m, Linear4bit) for m in base.modules())
    twin = peft.get_peft_model(base, peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS))
    lora_sd = {k: v for k, v in qmodel.state_dict().items() if "lora_" in k}
    twin_sd = twin.state_dict()
    assert set(lora_sd) <= set(twin_sd)
    for k, v in lora_sd.items():
        twin_sd[k].copy_(v)
    return twin


def test_lora_grads_match_dequantized_reference():
    model = _qlora_model()
    # lora_B starts at zero, which would make every lora_A gradient zero: give B random values first
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    twin = _dequantized_twin(model)
    ids = _batch()

    def grads(m):
        m.zero_grad()
        loss = m(input_ids=ids, labels=ids).loss
        loss.backward()
        return loss.detach(), {n: p.grad.detach().float() for n, p in m.named_parameters() if p.requires_grad}

    loss_q, gq = grads(model)
    loss_r, gr = grads(twin)
    assert set(gq) == set(gr) and len(gq) == 4 * len(TARGETS)
    worst = 0.0
    for n in gq:
        scale = gr[n].abs().max().item()
        assert scale > 0, n
        err = (gq[n] - gr[n]).abs().max().item()
        worst = max(worst, err / scale)
        assert err <= GRAD_RTOL * scale, (n, err, scale)
    print(f"\nloss 4bit {loss_q.item():.6f} vs dequantized {loss_r.item():.6f}; "
          f"max |dgrad| / max|grad| over LoRA tensors = {worst:.3e} (tolerance {GRAD_RTOL})")
    assert abs(loss_q.item() - loss_r.item()) <= 1e-2 * abs(loss_r.item())


def test_merge_and_unmerge_requantize():
    model = _qlora_model()
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    ids = _batch(bs=2, seq=8)
    model.eval()
    with torch.no_grad():
        ref = model(input_ids=ids).logits.float()
        layer = model.get_base_model().model.layers[0].self_attn.q_proj
        assert isinstance(layer, LoraLinear4bit)
        with pytest.warns(UserWarning, match="requantizes"):
            layer.merge()
        assert layer.merged and layer.get_base_layer().weight.dtype == torch.uint8
        merged = model(input_ids=ids).logits.float()
        layer.unmerge()
        back = model(input_ids=ids).logits.float()
    # merging adds a requantization error only (4-bit: a few % of the layer output), not garbage
    scale = ref.abs().max().item()
    assert (merged - ref).abs().max().item() < 0.25 * scale
    assert (back - ref).abs().max().item() < 0.25 * scale
