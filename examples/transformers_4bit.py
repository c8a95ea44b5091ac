"""Load a Hugging Face model in 4-bit (NF4, double quantization, bf16 compute) with bnb_core, generate, save and
reload it. Runs offline: the "pretrained" model is a small random Llama saved to a temporary directory.

    python examples/transformers_4bit.py
"""

import tempfile

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

import bnb_core.nn as bnn
from bnb_core.integrations import BnbCoreConfig  # registers quant_method "bnb_core" with transformers

with tempfile.TemporaryDirectory() as tmp:
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=256)
    LlamaForCausalLM(cfg).save_pretrained(f"{tmp}/fp")

    qc = BnbCoreConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                       bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(f"{tmp}/fp", quantization_config=qc)
    n = sum(isinstance(m, bnn.Linear4bit) for m in model.modules())
    print(f"{n} linear layers in 4-bit; lm_head kept as {type(model.lm_head).__name__}")
    print(f"memory footprint: {model.get_memory_footprint() / 2**20:.2f} MiB")

    prompt = torch.tensor([[1, 17, 42, 99]])
    out = model.generate(prompt, max_new_tokens=8, do_sample=False)
    print("generated:", out[0].tolist())

    model.save_pretrained(f"{tmp}/nf4")                       # safetensors, bitsandbytes' tensor keys
    again = AutoModelForCausalLM.from_pretrained(f"{tmp}/nf4")  # quantization_config read from config.json
    assert torch.equal(again.generate(prompt, max_new_tokens=8, do_sample=False), out)
    print("saved and reloaded: same tokens")
