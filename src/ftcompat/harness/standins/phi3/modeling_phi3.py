"""ftcompat's stand-in for ``modeling_phi3.py`` of microsoft/Phi-3-mini-4k-instruct (hub remote code).

Written for ftcompat from reading what the hub file does, not copied from it. It is a whole Phi-3
of its own, as the hub file is, and it touches transformers' API the way that file does, in the
same order, so that a release that breaks the hub file breaks this one at the same step with the
same exception:

1. import: the same names from ``transformers.activations``, ``cache_utils``,
   ``modeling_attn_mask_utils``, ``modeling_outputs``, ``modeling_utils`` and ``utils`` (a name a
   release removed fails here, as it does for the hub file), flash-attn tried and left out, and
   the docstring decorators called while the classes are defined;
2. model build: ``config._attn_implementation`` picks the attention class, and each attention
   layer's rotary set-up reads ``config.rope_scaling["type"]`` when ``rope_scaling`` is set;
3. weights: ``_init_weights`` writes ``module.weight.data`` directly (no transformers init helper),
   so whatever loading runs it on is overwritten;
4. forward: a legacy tuple cache goes through ``DynamicCache.from_legacy_cache`` and back through
   ``to_legacy_cache``, lengths come from ``get_usable_length``, the 4D mask from
   ``_prepare_4d_causal_attention_mask`` (with the config's ``sliding_window``), keys and values go
   into the cache with ``update``, and ``config.use_return_dict`` picks the output type;
5. generation: ``prepare_inputs_for_generation`` reads ``get_seq_length()``, ``seen_tokens`` and
   ``get_max_length()`` of a ``Cache``.

Where it does not match the hub file: flash-attention and SDPA attention (the hub model runs eager
attention unless flash-attn is installed and asked for; SDPA is declared unsupported) raise
NotImplementedError here, and the sequence- and token-classification heads are built but their
forward is not implemented. Neither is reached by loading and generating with a causal LM.
"""

import inspect
import math
import warnings
from typing import List, Optional, Tuple, Union  # noqa: F401, UP035 - the hub file imports them too

import torch
import torch.nn.functional as F  # noqa: F401, N812
import torch.utils.checkpoint
from torch import nn
from torch.nn import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss  # noqa: F401
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_attn_mask_utils import _prepare_4d_causal_attention_mask
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    SequenceClassifierOutputWithPast,
    TokenClassifierOutput,
)
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import (
    add_code_sample_docstrings,
    add_start_docstrings,
    add_start_docstrings_to_model_forward,
    is_flash_attn_2_available,  # noqa: F401
    is_flash_attn_greater_or_equal_2_10,
    logging,
    replace_return_docstrings,
)

from .configuration_phi3 import Phi3Config

logger = logging.get_logger(__name__)

# As in the hub file: flash-attn is optional, tried in a try block (transformers' remote-code import
# check skips those), and only a warning when it is missing.
_flash_supports_window_size = False
try:
    from flash_attn import flash_attn_func  # noqa: F401

    _flash_supports_window_size = "window_size" in list(inspect.signature(flash_attn_func).parameters)
except ImportError as error:
    logger.warning(f"`flash-attention` package not found, consider installing for better performance: {error}.")

_CHECKPOINT_FOR_DOC = "microsoft/Phi-3-mini-4k-instruct"
_CONFIG_FOR_DOC = "Phi3Config"

PHI3_START_DOCSTRING = r"""
    A Phi-3 model (ftcompat's stand-in for the hub repo's remote code).

    Parameters:
        config ([`Phi3Config`]): the model configuration.
"""

PHI3_INPUTS_DOCSTRING = r"""
    Args:
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`): token ids.
        attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*): 1 for tokens to attend to.
        position_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): positions.
        past_key_values (`Cache` or `tuple(tuple(torch.FloatTensor))`, *optional*): the KV cache.
        inputs_embeds (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`, *optional*).
        use_cache (`bool`, *optional*): return the KV cache.
        output_attentions (`bool`, *optional*): return the attention weights.
        output_hidden_states (`bool`, *optional*): return every layer's hidden states.
        return_dict (`bool`, *optional*): return a [`~utils.ModelOutput`] instead of a tuple.
"""


class Phi3RMSNorm(nn.Module):
    """Root-mean-square layer norm, computed in float32."""

    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        """Normalise over the last dimension and scale."""
        dtype = hidden_states.dtype
        as_float = hidden_states.to(torch.float32)
        scale = torch.rsqrt(as_float.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * (as_float * scale).to(dtype)


class Phi3RotaryEmbedding(nn.Module):
    """Rotary position embedding; the inverse frequencies are made on the first forward, on its device."""

    def __init__(self, dim, max_position_embeddings=2048, base=10000, device=None):
        super().__init__()
        self.dim = dim
        self.max_position_embeddings = max_position_embeddings
        self.base = base
        self.register_buffer("inv_freq", None, persistent=False)

    def _frequencies(self, x):
        exponents = torch.arange(0, self.dim, 2, dtype=torch.int64, device=x.device).float() / self.dim
        return 1.0 / (self.base**exponents)

    def _cos_sin(self, x, position_ids, scaling_factor=1.0):
        inv = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        positions = position_ids[:, None, :].float()
        device_type = x.device.type if isinstance(x.device.type, str) and x.device.type != "mps" else "cpu"
        with torch.autocast(device_type=device_type, enabled=False):  # float32 even under bf16 autocast
            freqs = (inv.float() @ positions.float()).transpose(1, 2)
            angles = torch.cat((freqs, freqs), dim=-1)
            cos, sin = angles.cos() * scaling_factor, angles.sin() * scaling_factor
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)

    @torch.no_grad()
    def forward(self, x, position_ids, seq_len=None):
        """Cosines and sines for ``position_ids``, in ``x``'s dtype."""
        if self.inv_freq is None:
            self.inv_freq = self._frequencies(x)
        return self._cos_sin(x, position_ids)


class _Phi3LongContextRotaryEmbedding(Phi3RotaryEmbedding):
    """The long-context checkpoints' rotary embedding: per-frequency factors past the trained length."""

    def __init__(self, dim, config, device=None):
        super().__init__(dim, config.max_position_embeddings, config.rope_theta, device)
        self.short_factor = config.rope_scaling["short_factor"]
        self.long_factor = config.rope_scaling["long_factor"]
        self.original_max_position_embeddings = config.original_max_position_embeddings

    def _scaling(self, scale):
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, x, position_ids, seq_len=None):
        """Cosines and sines with the short or long factors, whichever the positions need."""
        longest = torch.max(position_ids) + 1
        factors = self.long_factor if longest > self.original_max_position_embeddings else self.short_factor
        ext = torch.tensor(factors, dtype=torch.float32, device=x.device)
        self.inv_freq = self._frequencies(x) / ext
        scale = self.max_position_embeddings / self.original_max_position_embeddings
        return self._cos_sin(x, position_ids, 1.0 if scale <= 1.0 else self._scaling(scale))


class Phi3SuScaledRotaryEmbedding(_Phi3LongContextRotaryEmbedding):
    """``rope_scaling.type == "su"``."""

    def _scaling(self, scale):
        return math.sqrt(1 + math.log(scale) / math.log(self.original_max_position_embeddings))


class Phi3YarnScaledRotaryEmbedding(_Phi3LongContextRotaryEmbedding):
    """``rope_scaling.type == "yarn"``."""

    def _scaling(self, scale):
        return 0.1 * math.log(scale) + 1.0


def rotate_half(x):
    """Swap the two halves of the last dimension, negating the second."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, position_ids=None, unsqueeze_dim=1):
    """Rotate queries and keys by the position angles."""
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


class Phi3MLP(nn.Module):
    """Gated MLP with one fused gate/up projection."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.gate_up_proj = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.activation_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states):
        """down(act(gate) * up)."""
        gate, up = self.gate_up_proj(hidden_states).chunk(2, dim=-1)
        return self.down_proj(up * self.activation_fn(gate))


def repeat_kv(hidden_states, n_rep):
    """Repeat each key/value head ``n_rep`` times for grouped-query attention."""
    if n_rep == 1:
        return hidden_states
    batch, heads, length, dim = hidden_states.shape
    expanded = hidden_states[:, :, None, :, :].expand(batch, heads, n_rep, length, dim)
    return expanded.reshape(batch, heads * n_rep, length, dim)


class Phi3Attention(nn.Module):
    """Eager multi-head attention with a fused QKV projection, reading and writing a Cache."""

    def __init__(self, config: Phi3Config, layer_idx: Optional[int] = None):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        if layer_idx is None:
            logger.warning_once(f"Instantiating {self.__class__.__name__} without passing a `layer_idx` is not "
                                "recommended and will lead to errors during the forward call if caching is used.")
        self.attention_dropout = config.attention_dropout
        self.hidden_size = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = self.hidden_size // self.num_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.num_key_value_groups = self.num_heads // self.num_key_value_heads
        self.max_position_embeddings = config.max_position_embeddings
        self.original_max_position_embeddings = config.original_max_position_embeddings
        self.rope_theta = config.rope_theta
        self.rope_scaling = config.rope_scaling
        self.is_causal = True
        if self.head_dim * self.num_heads != self.hidden_size:
            raise ValueError(f"hidden_size must be divisible by num_heads (got `hidden_size`: {self.hidden_size} "
                             f"and `num_heads`: {self.num_heads}).")
        qkv_size = self.num_heads * self.head_dim + 2 * self.num_key_value_heads * self.head_dim
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, self.hidden_size, bias=False)
        self.qkv_proj = nn.Linear(self.hidden_size, qkv_size, bias=False)
        self._init_rope()

    def _init_rope(self):
        # The hub code's decision: plain rotary when rope_scaling is None, else dispatch on its "type".
        if self.rope_scaling is None:
            self.rotary_emb = Phi3RotaryEmbedding(self.head_dim, max_position_embeddings=self.max_position_embeddings,
                                                  base=self.rope_theta)
            return
        scaling_type = self.config.rope_scaling["type"]
        kinds = {"su": Phi3SuScaledRotaryEmbedding, "yarn": Phi3YarnScaledRotaryEmbedding}
        if scaling_type not in kinds:
            raise ValueError(f"Unknown RoPE scaling type {scaling_type}")
        self.rotary_emb = kinds[scaling_type](self.head_dim, self.config)

    def _split_heads(self, hidden_states):
        bsz, q_len, _ = hidden_states.size()
        qkv = self.qkv_proj(hidden_states)
        q_end = self.num_heads * self.head_dim
        kv_end = q_end + self.num_key_value_heads * self.head_dim
        query = qkv[..., :q_end].view(bsz, q_len, self.num_heads, self.head_dim).transpose(1, 2)
        key = qkv[..., q_end:kv_end].view(bsz, q_len, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        value = qkv[..., kv_end:].view(bsz, q_len, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        return query, key, value

    def forward(self, hidden_states, attention_mask=None, position_ids=None, past_key_value: Optional[Cache] = None,
                output_attentions=False, use_cache=False):
        """Attend over the cache plus the new tokens; store the new keys and values in the cache."""
        logger.warning_once("You are not running the flash-attention implementation, expect numerical differences.")
        bsz, q_len, _ = hidden_states.size()
        query, key, value = self._split_heads(hidden_states)
        kv_seq_len = key.shape[-2]
        if past_key_value is not None:
            if self.layer_idx is None:
                raise ValueError("The cache structure has changed since version v4.36: initialize the attention "
                                 "class with a layer index to use a k/v cache.")
            kv_seq_len += past_key_value.get_usable_length(kv_seq_len, self.layer_idx)
        cos, sin = self.rotary_emb(value, position_ids, seq_len=kv_seq_len)
        query, key = apply_rotary_pos_emb(query, key, cos, sin, position_ids)
        if past_key_value is not None:
            key, value = past_key_value.update(key, value, self.layer_idx, {"sin": sin, "cos": cos})
        key = repeat_kv(key, self.num_key_value_groups)
        value = repeat_kv(value, self.num_key_value_groups)
        weights = torch.matmul(query, key.transpose(2, 3)) / math.sqrt(self.head_dim)
        if weights.size() != (bsz, self.num_heads, q_len, kv_seq_len):
            raise ValueError(f"Attention weights should be of size {(bsz, self.num_heads, q_len, kv_seq_len)}, "
                             f"but is {weights.size()}")
        if attention_mask is not None:
            if attention_mask.size() != (bsz, 1, q_len, kv_seq_len):
                raise ValueError(f"Attention mask should be of size {(bsz, 1, q_len, kv_seq_len)}, but is "
                                 f"{attention_mask.size()}")
            weights = weights + attention_mask
        weights = nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(value.dtype)
        weights = nn.functional.dropout(weights, p=self.attention_dropout, training=self.training)
        out = torch.matmul(weights, value)
        out = self.o_proj(out.transpose(1, 2).contiguous().reshape(bsz, q_len, self.hidden_size))
        return out, (weights if output_attentions else None), past_key_value


class Phi3FlashAttention2(Phi3Attention):
    """Flash-attention variant: built as the hub's is (it asks transformers about flash-attn), not run here."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._flash_attn_uses_top_left_mask = not is_flash_attn_greater_or_equal_2_10()

    def forward(self, *args, **kwargs):
        """Not implemented by the stand-in (see the module docstring)."""
        raise NotImplementedError("ftcompat's Phi-3 stand-in runs eager attention only")


class Phi3SdpaAttention(Phi3Attention):
    """SDPA variant: the hub model declares SDPA unsupported, so transformers never picks it."""

    def forward(self, *args, **kwargs):
        """Not implemented by the stand-in (see the module docstring)."""
        raise NotImplementedError("ftcompat's Phi-3 stand-in runs eager attention only")


PHI3_ATTENTION_CLASSES = {"eager": Phi3Attention, "flash_attention_2": Phi3FlashAttention2, "sdpa": Phi3SdpaAttention}


class Phi3DecoderLayer(nn.Module):
    """Pre-norm decoder block: attention and MLP, each with a residual connection and dropout."""

    def __init__(self, config: Phi3Config, layer_idx: int):
        super().__init__()
        self.config = config
        self.self_attn = PHI3_ATTENTION_CLASSES[config._attn_implementation](config, layer_idx=layer_idx)
        self.mlp = Phi3MLP(config)
        self.input_layernorm = Phi3RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.resid_attn_dropout = nn.Dropout(config.resid_pdrop)
        self.resid_mlp_dropout = nn.Dropout(config.resid_pdrop)
        self.post_attention_layernorm = Phi3RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, hidden_states, attention_mask=None, position_ids=None, past_key_value=None,
                output_attentions=False, use_cache=False, **kwargs):
        """One block; returns (hidden states[, attention weights][, cache])."""
        if "padding_mask" in kwargs:
            warnings.warn("Passing `padding_mask` is deprecated; use `attention_mask` instead.", stacklevel=2)
        attended, weights, present = self.self_attn(
            hidden_states=self.input_layernorm(hidden_states), attention_mask=attention_mask,
            position_ids=position_ids, past_key_value=past_key_value, output_attentions=output_attentions,
            use_cache=use_cache)
        hidden_states = hidden_states + self.resid_attn_dropout(attended)
        hidden_states = hidden_states + self.resid_mlp_dropout(self.mlp(self.post_attention_layernorm(hidden_states)))
        outputs = (hidden_states,)
        if output_attentions:
            outputs += (weights,)
        if use_cache:
            outputs += (present,)
        return outputs


@add_start_docstrings("The bare Phi-3 model outputting raw hidden-states without any specific head on top.",
                      PHI3_START_DOCSTRING)
class Phi3PreTrainedModel(PreTrainedModel):
    """What every Phi-3 head shares: its config class, what transformers may do with it, its weight init."""

    config_class = Phi3Config
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["Phi3DecoderLayer"]
    _skip_keys_device_placement = "past_key_values"
    _supports_flash_attn_2 = True
    _supports_sdpa = False
    _supports_cache_class = True
    _version = "0.0.5"

    def _init_weights(self, module):
        # Straight into the tensors' data, as the hub file does: no transformers init helper that
        # would know a weight was already loaded.
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()


@add_start_docstrings("The bare Phi-3 model outputting raw hidden-states without any specific head on top.",
                      PHI3_START_DOCSTRING)
class Phi3Model(Phi3PreTrainedModel):
    """Embeddings, decoder blocks, final norm."""

    def __init__(self, config: Phi3Config):
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.vocab_size = config.vocab_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        self.embed_dropout = nn.Dropout(config.embd_pdrop)
        self.layers = nn.ModuleList([Phi3DecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self._attn_implementation = config._attn_implementation
        self.norm = Phi3RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self):
        """The token embedding."""
        return self.embed_tokens

    def set_input_embeddings(self, value):
        """Replace the token embedding."""
        self.embed_tokens = value

    @add_start_docstrings_to_model_forward(PHI3_INPUTS_DOCSTRING)
    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        """Run the decoder; a legacy tuple cache in means a legacy tuple cache out."""
        config = self.config
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        use_cache = config.use_cache if use_cache is None else use_cache
        return_dict = config.use_return_dict if return_dict is None else return_dict
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("You have to specify exactly one of input_ids or inputs_embeds")
        batch_size, seq_length = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
        if self.gradient_checkpointing and self.training and use_cache:
            logger.warning_once("`use_cache=True` is incompatible with gradient checkpointing. Setting "
                                "`use_cache=False`...")
            use_cache = False
        past_length, use_legacy_cache = 0, False
        if use_cache:
            use_legacy_cache = not isinstance(past_key_values, Cache)
            if use_legacy_cache:
                past_key_values = DynamicCache.from_legacy_cache(past_key_values)
            past_length = past_key_values.get_usable_length(seq_length)
        if position_ids is None:
            device = input_ids.device if input_ids is not None else inputs_embeds.device
            position_ids = torch.arange(past_length, past_length + seq_length, dtype=torch.long, device=device)
            position_ids = position_ids.unsqueeze(0).view(-1, seq_length)
        else:
            position_ids = position_ids.view(-1, seq_length).long()
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        if self._attn_implementation == "flash_attention_2":
            attention_mask = attention_mask if (attention_mask is not None and 0 in attention_mask) else None
        else:
            attention_mask = _prepare_4d_causal_attention_mask(attention_mask, (batch_size, seq_length), inputs_embeds,
                                                               past_length, sliding_window=config.sliding_window)
        hidden_states = inputs_embeds
        all_hidden, all_attn = (() if output_hidden_states else None), (() if output_attentions else None)
        next_cache = None
        for layer in self.layers:
            if output_hidden_states:
                all_hidden += (hidden_states,)
            if self.gradient_checkpointing and self.training:
                outputs = self._gradient_checkpointing_func(layer.__call__, hidden_states, attention_mask,
                                                            position_ids, past_key_values, output_attentions,
                                                            use_cache)
            else:
                outputs = layer(hidden_states, attention_mask=attention_mask, position_ids=position_ids,
                                past_key_value=past_key_values, output_attentions=output_attentions,
                                use_cache=use_cache)
            hidden_states = outputs[0]
            if use_cache:
                next_cache = outputs[2 if output_attentions else 1]
            if output_attentions:
                all_attn += (outputs[1],)
        hidden_states = self.norm(hidden_states)
        if output_hidden_states:
            all_hidden += (hidden_states,)
        if use_cache:
            next_cache = next_cache.to_legacy_cache() if use_legacy_cache else next_cache
        if not return_dict:
            return tuple(v for v in (hidden_states, next_cache, all_hidden, all_attn) if v is not None)
        return BaseModelOutputWithPast(last_hidden_state=hidden_states, past_key_values=next_cache,
                                       hidden_states=all_hidden, attentions=all_attn)


class Phi3ForCausalLM(Phi3PreTrainedModel):
    """Phi-3 with its language-model head, and the hub file's own generation-input preparation."""

    _tied_weights_keys = ["lm_head.weight"]

    def __init__(self, config):
        super().__init__(config)
        self.model = Phi3Model(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        """The token embedding."""
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        """Replace the token embedding."""
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        """The LM head."""
        return self.lm_head

    def set_output_embeddings(self, new_embeddings):
        """Replace the LM head."""
        self.lm_head = new_embeddings

    def set_decoder(self, decoder):
        """Replace the decoder."""
        self.model = decoder

    def get_decoder(self):
        """The decoder."""
        return self.model

    @add_start_docstrings_to_model_forward(PHI3_INPUTS_DOCSTRING)
    @replace_return_docstrings(output_type=CausalLMOutputWithPast, config_class=_CONFIG_FOR_DOC)
    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        r"""Logits (in float32) and, given ``labels``, the shifted cross-entropy loss.

        Returns:
        """
        config = self.config
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = config.use_return_dict if return_dict is None else return_dict
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=past_key_values, inputs_embeds=inputs_embeds, use_cache=use_cache,
                             output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                             return_dict=return_dict)
        logits = self.lm_head(outputs[0]).float()
        loss = None
        if labels is not None:
            predicted = logits[..., :-1, :].contiguous().view(-1, config.vocab_size)
            targets = labels[..., 1:].contiguous().view(-1).to(predicted.device)
            loss = CrossEntropyLoss()(predicted, targets)
        if not return_dict:
            rest = (logits,) + tuple(outputs[1:])
            return ((loss,) + rest) if loss is not None else rest
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=outputs.past_key_values,
                                      hidden_states=outputs.hidden_states, attentions=outputs.attentions)

    def prepare_inputs_for_generation(self, input_ids, past_key_values=None, attention_mask=None, inputs_embeds=None,
                                      **kwargs):
        """The 2024-era preparation: how much the cache has seen decides which tokens are fed next."""
        if past_key_values is not None:
            if isinstance(past_key_values, Cache):
                cache_length = past_key_values.get_seq_length()
                past_length = past_key_values.seen_tokens
                max_cache_length = past_key_values.get_max_length()
            else:
                cache_length = past_length = past_key_values[0][0].shape[2]
                max_cache_length = None
            # Feed only the tokens the cache has not seen.
            if attention_mask is not None and attention_mask.shape[1] > input_ids.shape[1]:
                input_ids = input_ids[:, -(attention_mask.shape[1] - past_length):]
            elif past_length < input_ids.shape[1]:
                input_ids = input_ids[:, past_length:]
            if (max_cache_length is not None and attention_mask is not None
                    and cache_length + input_ids.shape[1] > max_cache_length):
                attention_mask = attention_mask[:, -max_cache_length:]
        position_ids = kwargs.get("position_ids", None)
        if attention_mask is not None and position_ids is None:
            position_ids = attention_mask.long().cumsum(-1) - 1
            position_ids.masked_fill_(attention_mask == 0, 1)
            if past_key_values:
                position_ids = position_ids[:, -input_ids.shape[1]:]
        if inputs_embeds is not None and past_key_values is None:
            model_inputs = {"inputs_embeds": inputs_embeds}
        else:
            model_inputs = {"input_ids": input_ids}
        model_inputs.update(position_ids=position_ids, past_key_values=past_key_values,
                            use_cache=kwargs.get("use_cache"), attention_mask=attention_mask)
        return model_inputs

    @staticmethod
    def _reorder_cache(past_key_values, beam_idx):
        return tuple(tuple(state.index_select(0, beam_idx.to(state.device)) for state in layer)
                     for layer in past_key_values)


@add_start_docstrings("The Phi-3 model with a sequence classification head on top (linear layer).",
                      PHI3_START_DOCSTRING)
class Phi3ForSequenceClassification(Phi3PreTrainedModel):
    """Built as the hub's is; its forward is not part of the stand-in."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = Phi3Model(config)
        self.score = nn.Linear(config.hidden_size, self.num_labels, bias=False)
        self.post_init()

    @add_start_docstrings_to_model_forward(PHI3_INPUTS_DOCSTRING)
    def forward(self, *args, **kwargs) -> Union[Tuple, SequenceClassifierOutputWithPast]:
        """Not implemented by the stand-in (see the module docstring)."""
        raise NotImplementedError("ftcompat's Phi-3 stand-in implements the causal LM only")


@add_start_docstrings("The Phi-3 model with a token classification head on top.", PHI3_START_DOCSTRING)
class Phi3ForTokenClassification(Phi3PreTrainedModel):
    """Built as the hub's is; its forward is not part of the stand-in."""

    def __init__(self, config: Phi3Config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = Phi3Model(config)
        dropout = getattr(config, "classifier_dropout", None) or getattr(config, "hidden_dropout", None) or 0.1
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @add_start_docstrings_to_model_forward(PHI3_INPUTS_DOCSTRING)
    @add_code_sample_docstrings(checkpoint=_CHECKPOINT_FOR_DOC, output_type=TokenClassifierOutput,
                                config_class=_CONFIG_FOR_DOC)
    def forward(self, *args, **kwargs) -> Union[Tuple, TokenClassifierOutput]:
        """Not implemented by the stand-in (see the module docstring)."""
        raise NotImplementedError("ftcompat's Phi-3 stand-in implements the causal LM only")
