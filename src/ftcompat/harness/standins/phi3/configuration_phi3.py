"""ftcompat's stand-in for ``configuration_phi3.py`` of microsoft/Phi-3-mini-4k-instruct (hub remote code).

Written for ftcompat from reading what the hub file does with transformers' API, not copied from
it: a bare ``PretrainedConfig`` subclass that stores every hyper-parameter itself, validates
``rope_scaling`` (the long-context checkpoints' ``su`` / ``yarn`` factors) *before* it calls
``PretrainedConfig.__init__`` with the token ids, and reads nothing else of transformers. Copied
into a model folder beside ``modeling_phi3.py`` and loaded with ``trust_remote_code=True``.
"""

from transformers.configuration_utils import PretrainedConfig
from transformers.utils import logging

logger = logging.get_logger(__name__)

ROPE_TYPES = ("su", "yarn")


class Phi3Config(PretrainedConfig):
    """Phi-3's hyper-parameters, stored the way the 2024 hub file stores them."""

    model_type = "phi3"
    keys_to_ignore_at_inference = ["past_key_values"]

    def __init__(self, vocab_size=32064, hidden_size=3072, intermediate_size=8192, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=None, resid_pdrop=0.0, embd_pdrop=0.0,
                 attention_dropout=0.0, hidden_act="silu", max_position_embeddings=4096,
                 original_max_position_embeddings=4096, initializer_range=0.02, rms_norm_eps=1e-5, use_cache=True,
                 tie_word_embeddings=False, rope_theta=10000.0, rope_scaling=None, bos_token_id=1,
                 eos_token_id=32000, pad_token_id=32000, sliding_window=None, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_attention_heads if num_key_value_heads is None else num_key_value_heads
        self.resid_pdrop = resid_pdrop
        self.embd_pdrop = embd_pdrop
        self.attention_dropout = attention_dropout
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.original_max_position_embeddings = original_max_position_embeddings
        self.initializer_range = initializer_range
        self.rms_norm_eps = rms_norm_eps
        self.use_cache = use_cache
        # The rope settings are set, and checked, before the base class's __init__ runs: whatever
        # that __init__ later does to rope_scaling is what the modeling code reads.
        self.rope_theta = rope_theta
        self.rope_scaling = rope_scaling
        self._rope_scaling_validation()
        self.sliding_window = sliding_window
        super().__init__(bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
                         tie_word_embeddings=tie_word_embeddings, **kwargs)

    def _rope_scaling_validation(self):
        """Accept no scaling, or a dict with ``type`` su/yarn and per-frequency short and long factors."""
        scaling = self.rope_scaling
        if scaling is None:
            return
        if not isinstance(scaling, dict) or len(scaling) != 3:
            raise ValueError(f"`rope_scaling` must be a dictionary with three fields, `type`, `short_factor` and "
                             f"`long_factor`, got {scaling}")
        kind = scaling.get("type", None)
        if kind not in ROPE_TYPES:
            raise ValueError(f"`rope_scaling`'s type field must be one of ['su', 'yarn'], got {kind}")
        half_head = self.hidden_size // self.num_attention_heads // 2
        for name in ("short_factor", "long_factor"):
            factors = scaling.get(name, None)
            if not (isinstance(factors, list) and all(isinstance(x, (int, float)) for x in factors)):
                raise ValueError(f"`rope_scaling`'s {name} field must be a list of numbers, got {factors}")
            if len(factors) != half_head:
                raise ValueError(f"`rope_scaling`'s {name} field must have length {half_head}, got {len(factors)}")
