"""The independent path for tests: tiny random transformers models and TransformerLens's HookedTransformer built from
them offline, loaded the way sae-lens loads a model (from_pretrained_no_processing(**model_from_pretrained_kwargs))."""

import warnings

import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM

D, LAYERS, VOCAB = 32, 2, 100
FLAGS = ("fold_ln", "center_writing_weights", "center_unembed", "fold_value_biases")


def tiny_model(kind: str, seed: int = 0) -> torch.nn.Module:
    """A 2-layer, d_model 32 GPT-2, GPTNeoX or Llama with every parameter perturbed (non-trivial norms and biases,
    so that folding and centering show)."""
    torch.manual_seed(seed)
    if kind == "gpt2":
        config = GPT2Config(vocab_size=VOCAB, n_positions=64, n_ctx=64, n_embd=D, n_layer=LAYERS, n_head=4)
        model = GPT2LMHeadModel(config)
    elif kind == "neox":
        config = GPTNeoXConfig(vocab_size=VOCAB, hidden_size=D, num_hidden_layers=LAYERS, num_attention_heads=4,
                               intermediate_size=4 * D, max_position_embeddings=64, rotary_pct=0.25)
        model = GPTNeoXForCausalLM(config)
    else:
        config = LlamaConfig(vocab_size=VOCAB, hidden_size=D, num_hidden_layers=LAYERS, num_attention_heads=4,
                             num_key_value_heads=2, intermediate_size=2 * D, max_position_embeddings=64)
        model = LlamaForCausalLM(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


def transformer_lens_model(folder, hf_model, kwargs: dict):
    """TransformerLens's model of a saved folder (whose name must not contain "llama" or "gemma"), offline."""
    import transformer_lens.loading_from_pretrained as loading
    from transformer_lens import HookedTransformer

    flags = {key: bool(kwargs.get(key, False)) for key in FLAGS}
    config = loading.get_pretrained_model_config(str(folder), fold_ln=flags["fold_ln"], device="cpu")
    config.tokenizer_name = None
    state = loading.get_pretrained_state_dict(str(folder), config, hf_model=hf_model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HookedTransformer(config, tokenizer=None, move_to_device=False)
        model.load_and_process_state_dict(state, **flags)
    return model.eval()


def stats_from_latents(z: torch.Tensor, W_dec: torch.Tensor) -> tuple[int, float, list[float]]:
    """F, L0 and the sorted contributions from latent activations [tokens, d_sae] (every firing latent alive)."""
    fires = (z != 0).double().mean(0)
    alive = fires > 0
    energy = (z.double() ** 2).mean(0) * W_dec.double().pow(2).sum(-1)
    return int(alive.sum()), float(fires[alive].sum()), sorted(energy[alive].tolist(), reverse=True)
