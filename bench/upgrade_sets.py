"""The upgrades bench's catalogue: which models under which releases (bench/upgrades.py).

Two sets. `tuned`: the models and releases issue 12's differ was tuned on. `holdout`: other model
families and other releases that nobody tuned on, to tell whether a rule is general or fitted.
Every Hugging Face model is built from a small config (`HF`): its settings, its example inputs and
its config edits (diffed against the unedited model under the installed release).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_IDS = {"input_ids": ("ids", [1, 16])}
_SMALL = {"vocab_size": 1000, "intermediate_size": 128, "max_position_embeddings": 64}
_BERTLIKE = {**_SMALL, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}


@dataclass(frozen=True)
class HFModel:
    """A transformers model from a small config: `transformers.<config>(**settings)` into
    `transformers.<model>`, called with `inputs` (name -> ("ids" | "randn", shape))."""

    config: str
    model: str
    settings: dict[str, Any]
    edits: dict[str, dict[str, Any]] = field(default_factory=dict)
    inputs: dict[str, tuple[str, list[int]]] = field(default_factory=lambda: dict(_IDS))


HF: dict[str, HFModel] = {
    # --- tuned ---
    "bert": HFModel(
        "BertConfig",
        "BertModel",
        _BERTLIKE,
        {
            "layers": {"num_hidden_layers": 3},
            "heads": {"num_attention_heads": 4},
            "activation": {"hidden_act": "relu"},
            "hidden": {"hidden_size": 128},
        },
    ),
    "gpt2": HFModel(
        "GPT2Config",
        "GPT2Model",
        {"vocab_size": 1000, "n_positions": 64, "n_inner": 128, "n_embd": 64, "n_layer": 2}
        | {"n_head": 2},
        {
            "layers": {"n_layer": 3},
            "heads": {"n_head": 4},
            "activation": {"activation_function": "relu"},
            "hidden": {"n_embd": 128},
        },
    ),
    "llama": HFModel(
        "LlamaConfig",
        "LlamaModel",
        _BERTLIKE,
        {
            "layers": {"num_hidden_layers": 3},
            "heads": {"num_attention_heads": 4, "num_key_value_heads": 4},
            "activation": {"hidden_act": "gelu"},
            "hidden": {"hidden_size": 128},
        },
    ),
    "t5": HFModel(
        "T5Config",
        "T5Model",
        {"vocab_size": 1000, "d_ff": 128, "d_model": 64, "num_layers": 2, "num_heads": 2},
        {
            "layers": {"num_layers": 3, "num_decoder_layers": 3},
            "heads": {"num_heads": 4},
            "activation": {"feed_forward_proj": "gated-gelu"},
            "hidden": {"d_model": 128},
        },
        {**_IDS, "decoder_input_ids": ("ids", [1, 8])},
    ),
    # --- holdout ---
    "roberta": HFModel("RobertaConfig", "RobertaModel", _BERTLIKE),
    "distilbert": HFModel(
        "DistilBertConfig",
        "DistilBertModel",
        {"vocab_size": 1000, "max_position_embeddings": 64, "dim": 64, "n_layers": 2}
        | {"n_heads": 2, "hidden_dim": 128},
    ),
    "albert": HFModel("AlbertConfig", "AlbertModel", {**_BERTLIKE, "embedding_size": 32}),
    "electra": HFModel("ElectraConfig", "ElectraModel", {**_BERTLIKE, "embedding_size": 32}),
    "mistral": HFModel(
        "MistralConfig",
        "MistralModel",
        {**_BERTLIKE, "num_attention_heads": 4, "num_key_value_heads": 2, "sliding_window": 8},
    ),
    "qwen2": HFModel(
        "Qwen2Config",
        "Qwen2Model",
        {**_BERTLIKE, "num_attention_heads": 4, "num_key_value_heads": 2},
        {
            "layers": {"num_hidden_layers": 3},
            "heads": {"num_attention_heads": 8, "num_key_value_heads": 4},
            "activation": {"hidden_act": "gelu"},
            "hidden": {"hidden_size": 128},
        },
    ),
    "phi": HFModel("PhiConfig", "PhiModel", _BERTLIKE),
    "gemma": HFModel(
        "GemmaConfig",
        "GemmaModel",
        {**_BERTLIKE, "num_key_value_heads": 1, "head_dim": 32}
        | {"hidden_activation": "gelu_pytorch_tanh"},
    ),
    "opt": HFModel(
        "OPTConfig",
        "OPTModel",
        {"vocab_size": 1000, "max_position_embeddings": 64, "hidden_size": 64}
        | {"num_hidden_layers": 2, "num_attention_heads": 2, "ffn_dim": 128}
        | {"word_embed_proj_dim": 64},
    ),
    "bart": HFModel(
        "BartConfig",
        "BartModel",
        {"vocab_size": 1000, "max_position_embeddings": 64, "d_model": 64}
        | {"encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2}
        | {"decoder_attention_heads": 2, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128},
        {
            "layers": {"encoder_layers": 3, "decoder_layers": 3},
            "heads": {"encoder_attention_heads": 4, "decoder_attention_heads": 4},
            "activation": {"activation_function": "relu"},
            "hidden": {"d_model": 128},
        },
    ),
    "vit": HFModel(
        "ViTConfig",
        "ViTModel",
        {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
        | {"intermediate_size": 128, "image_size": 32, "patch_size": 8},
        inputs={"pixel_values": ("randn", [1, 3, 32, 32])},
    ),
    "clip_text": HFModel("CLIPTextConfig", "CLIPTextModel", _BERTLIKE),
    # --- holdout, second wave (added after the first round of fixes) ---
    "gpt_neox": HFModel("GPTNeoXConfig", "GPTNeoXModel", _BERTLIKE),
    "deberta_v2": HFModel("DebertaV2Config", "DebertaV2Model", _BERTLIKE),
    "mobilebert": HFModel(
        "MobileBertConfig",
        "MobileBertModel",
        {**_BERTLIKE, "embedding_size": 32, "intra_bottleneck_size": 32, "true_hidden_size": 32},
    ),
    "falcon": HFModel(
        "FalconConfig",
        "FalconModel",
        {"vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
    ),
    "whisper": HFModel(
        "WhisperConfig",
        "WhisperModel",
        {"vocab_size": 1000, "d_model": 64, "encoder_layers": 2, "decoder_layers": 2}
        | {"encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 128}
        | {"decoder_ffn_dim": 128, "num_mel_bins": 16, "max_source_positions": 32}
        | {"max_target_positions": 32, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
        | {"decoder_start_token_id": 1},
        inputs={"input_features": ("randn", [1, 16, 64]), "decoder_input_ids": ("ids", [1, 8])},
    ),
    "swin": HFModel(
        "SwinConfig",
        "SwinModel",
        {"image_size": 32, "patch_size": 4, "embed_dim": 16, "depths": [1, 1]}
        | {"num_heads": [2, 2], "window_size": 4},
        inputs={"pixel_values": ("randn", [1, 3, 32, 32])},
    ),
}
_TUNED_HF = ("bert", "gpt2", "llama", "t5")
_WAVE2_HF = ("gpt_neox", "deberta_v2", "mobilebert", "falcon", "whisper", "swin")


@dataclass(frozen=True)
class BenchSet:
    """Models and the older releases each is diffed from (to the installed release)."""

    models: list[str]
    versions: list[str]


SETS = {
    "tuned": BenchSet(
        [
            "vit_base_patch16_224",
            "resnet50",
            "convnext_tiny",
            "efficientnet_b0",
            "swin_tiny_patch4_window7_224",
            "mobilenetv3_large_100",
            "deit_small_patch16_224",
            "regnety_016",
            "densenet121",
            "levit_128",
            "bert",
            "gpt2",
            "llama",
            "t5",
        ],
        ["timm==0.9.16", "timm==1.0.9", "timm==1.0.20", "transformers==4.57.6"],
    ),
    "holdout": BenchSet(
        [
            "eva02_tiny_patch14_224",
            "beit_base_patch16_224",
            "maxvit_tiny_rw_224",
            "mixer_s16_224",
            "efficientformer_l1",
            "hrnet_w18_small",
            "inception_v3",
            "seresnext26d_32x4d",
            "mobilevit_xxs",
            "xcit_nano_12_p16_224",
            "cait_xxs24_224",
            "poolformer_s12",
            "ghostnet_100",
            "dla34",
            "regnetx_002",
            "crossvit_tiny_240",
            *(name for name in HF if name not in _TUNED_HF + _WAVE2_HF),
            # second wave, added after the first round of fixes: nobody tuned on these either
            "tnt_s_patch16_224",
            "twins_svt_small",
            "nfnet_l0",
            "repvgg_a2",
            "res2net50_26w_4s",
            "pit_ti_224",
            "gcvit_xxtiny",
            *_WAVE2_HF,
        ],
        [
            "timm==0.6.13",
            "timm==0.9.2",
            "timm==1.0.15",
            "transformers==4.46.3",
            "transformers==4.57.6",
        ],
    ),
}
# Each older release's own dependencies, installed beside it (longest version prefix wins):
# transformers 4.x cannot import the installed huggingface_hub/tokenizers.
COMPANIONS = {
    "transformers": {
        "4": ["huggingface_hub==0.36.0", "tokenizers==0.22.1"],
        "4.46": ["huggingface_hub==0.26.5", "tokenizers==0.20.3"],
    }
}


def library(model: str) -> str:
    """The library a model name comes from: `transformers` for the HF families (and their
    edits, `bert+layers`), else `timm`."""
    return "transformers" if model.partition("+")[0] in HF else "timm"


def companions(lib: str, version: str) -> list[str]:
    """The packages installed beside `lib==version` (see COMPANIONS)."""
    matching = [
        (len(prefix), pins)
        for prefix, pins in COMPANIONS.get(lib, {}).items()
        if version == prefix or version.startswith(f"{prefix}.")
    ]
    return max(matching, default=(0, []))[1]
