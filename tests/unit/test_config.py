"""XLMRobertaConfig: presets, parameter counts, validation messages, reading transformers' configs, language
embeddings and serialisation."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from conftest import hf_config_from_ours, max_abs_diff, randomize_parameters_, tiny_config_kwargs, tiny_xlmr_config

import xlmr_hf
from xlmr_hf import PRESETS, XLMRobertaConfig, XLMRobertaForMaskedLM, XLMRobertaModel

SHAPE_FIELDS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size",
                "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "layer_norm_position")

# The specification of each preset (XLM-R paper, Table 7; Goyal et al. 2021 for XL/XXL).
EXPECTED_PRESETS = {
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                 vocab_size=250002, layer_norm_position="post"),
    "large": dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096,
                  vocab_size=250002, layer_norm_position="post"),
    "xl": dict(num_hidden_layers=36, hidden_size=2560, num_attention_heads=32, intermediate_size=10240,
               vocab_size=250880, layer_norm_position="pre"),
    "xxl": dict(num_hidden_layers=48, hidden_size=4096, num_attention_heads=32, intermediate_size=16384,
                vocab_size=250880, layer_norm_position="pre"),
    # ablations: BERT-base shape with a 150k vocabulary (+2 fairseq ids), capacity models 768/960/1152 wide
    "bert-base-150k": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                           vocab_size=150002, layer_norm_position="post"),
    "xlm-7": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                  vocab_size=150002, layer_norm_position="post"),
    "xlm-30": dict(num_hidden_layers=12, hidden_size=960, num_attention_heads=15, intermediate_size=3840,
                   vocab_size=150002, layer_norm_position="post"),
    "xlm-100": dict(num_hidden_layers=12, hidden_size=1152, num_attention_heads=18, intermediate_size=4608,
                    vocab_size=150002, layer_norm_position="post"),
}
COMMON = dict(max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
              eos_token_id=2, hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
              initializer_range=0.02, use_language_embeddings=False, tie_word_embeddings=True)


# ---------------------------------------------------------------------------------------------------- presets
def test_preset_names():
    assert set(PRESETS) == set(EXPECTED_PRESETS)


@pytest.mark.parametrize("name", list(EXPECTED_PRESETS))
def test_preset_fields(name):
    config = XLMRobertaConfig.from_preset(name)
    for field, value in {**COMMON, **EXPECTED_PRESETS[name]}.items():
        assert getattr(config, field) == value, f"{name}.{field}"
    assert config.hidden_size // config.num_attention_heads == 64 or name in ("xl", "xxl")
    assert config.max_tokens == 512
    assert config.model_type == "xlmr-hf"


def test_default_config_is_base():
    default, base = XLMRobertaConfig(), XLMRobertaConfig.from_preset("base")
    for field in (*SHAPE_FIELDS, *COMMON):
        assert getattr(default, field) == getattr(base, field), field


def test_preset_overrides():
    config = XLMRobertaConfig.from_preset("large", use_language_embeddings=True, n_langs=4, hidden_dropout_prob=0.0)
    assert (config.num_hidden_layers, config.hidden_size, config.n_langs) == (24, 1024, 4)
    assert config.use_language_embeddings and config.hidden_dropout_prob == 0.0
    assert PRESETS["large"].get("n_langs") is None, "overrides must not leak into the preset table"


def test_unknown_preset_raises():
    with pytest.raises(ValueError, match=r"unknown preset 'huge'.*allowed.*'base'.*'xxl'"):
        XLMRobertaConfig.from_preset("huge")


# ---------------------------------------------------------------------------------------------------- parameter counts
def count_parameters(model: torch.nn.Module) -> int:
    """Unique parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters())


def hf_meta_model(config: XLMRobertaConfig, masked_lm: bool = False):
    hf_config = hf_config_from_ours(config)
    pre = config.layer_norm_position == "pre"
    if masked_lm:
        cls = transformers.XLMRobertaXLForMaskedLM if pre else transformers.XLMRobertaForMaskedLM
    else:
        cls = transformers.XLMRobertaXLModel if pre else transformers.XLMRobertaModel
    with torch.device("meta"):
        return cls(hf_config)


@pytest.mark.parametrize(
    ("name", "model_count", "mlm_count"),
    [
        ("base", 278_043_648, 278_295_186),
        ("large", 559_890_432, 560_142_482),
        ("xl", 3_482_485_760, None),
        ("xxl", 10_712_735_744, None),
    ],
)
def test_parameter_counts_on_meta(name, model_count, mlm_count):
    config = XLMRobertaConfig.from_preset(name)
    with torch.device("meta"):
        model = XLMRobertaModel(config)
        mlm = XLMRobertaForMaskedLM(config)
    assert next(model.parameters()).device.type == "meta"
    assert count_parameters(model) == model_count
    assert count_parameters(model) == count_parameters(hf_meta_model(config))
    assert mlm.lm_head.decoder.weight is mlm.roberta.embeddings.word_embeddings.weight
    # MaskedLM = encoder without pooler + LM head (dense, LayerNorm, output bias; decoder matrix tied)
    h, v = config.hidden_size, config.vocab_size
    assert count_parameters(mlm) == model_count - (h * h + h) + (h * h + h) + 2 * h + v
    if mlm_count is not None:
        assert count_parameters(mlm) == mlm_count
    assert count_parameters(mlm) == count_parameters(hf_meta_model(config, masked_lm=True))


@pytest.mark.parametrize("name", ["bert-base-150k", "xlm-7", "xlm-30", "xlm-100"])
def test_ablation_parameter_counts_match_transformers(name):
    config = XLMRobertaConfig.from_preset(name)
    with torch.device("meta"):
        model = XLMRobertaModel(config)
    assert count_parameters(model) == count_parameters(hf_meta_model(config))


# ---------------------------------------------------------------------------------------------------- validation
BAD_CONFIGS = [
    (dict(hidden_size=30), r"hidden_size=30 .*allowed a multiple of num_attention_heads=4"),
    (dict(num_hidden_layers=-1), r"num_hidden_layers=-1 .*allowed an integer >= 1"),
    (dict(intermediate_size=-5), r"intermediate_size=-5 .*allowed an integer >= 1"),
    (dict(vocab_size=0), r"vocab_size=0 .*allowed an integer >= 1"),
    (dict(n_langs=0), r"n_langs=0 .*allowed an integer >= 1"),
    (dict(hidden_dropout_prob=1.5), r"hidden_dropout_prob=1.5 .*allowed a number in \[0, 1\)"),
    (dict(attention_probs_dropout_prob=-0.1), r"attention_probs_dropout_prob=-0.1 .*allowed a number in \[0, 1\)"),
    (dict(classifier_dropout=1.0), r"classifier_dropout=1.0 .*allowed a number in \[0, 1\) or None"),
    (dict(layer_norm_eps=0.0), r"layer_norm_eps=0.0 .*allowed a number > 0"),
    (dict(layer_norm_position="middle"), r"layer_norm_position='middle' .*allowed 'post' .* or 'pre'"),
    (dict(pad_token_id=99), r"pad_token_id=99 .*allowed None or an integer in \[0, vocab_size=99\)"),
    (dict(pad_token_id=-1), r"pad_token_id=-1 .*allowed None or an integer in \[0, vocab_size=99\)"),
    (dict(max_position_embeddings=2), r"max_position_embeddings=2 .*allowed an integer > pad_token_id \+ 1 = 2"),
    (dict(hidden_act="swiglu"), r"hidden_act='swiglu' .*allowed one of \[.*'gelu'"),
    (dict(fused_mlm_loss=1), r"fused_mlm_loss=1 .*allowed True or False"),
    (dict(sparse_embedding_grad="yes"), r"sparse_embedding_grad='yes' .*allowed True or False"),
    (dict(cpu_dropout_attention=None), r"cpu_dropout_attention=None .*allowed True or False"),
]


@pytest.mark.parametrize(("overrides", "pattern"), BAD_CONFIGS,
                         ids=["-".join(f"{k}={v}" for k, v in o.items()) for o, _ in BAD_CONFIGS])
def test_bad_config_raises_value_error_naming_field_value_and_allowed(overrides, pattern):
    """The design contract: errors are ValueErrors naming the field, the bad value and what is allowed."""
    with pytest.raises(ValueError, match=pattern):
        XLMRobertaConfig(**tiny_config_kwargs(**overrides))


def test_bad_preset_override_raises_value_error():
    with pytest.raises(ValueError, match=r"hidden_size=100 .*multiple of num_attention_heads=12"):
        XLMRobertaConfig.from_preset("base", hidden_size=100)


def test_validate_after_mutation_raises_value_error(tiny_config):
    tiny_config.hidden_size = 30
    with pytest.raises(ValueError, match=r"hidden_size=30"):
        tiny_config.validate()


def test_valid_edge_values_accepted():
    config = XLMRobertaConfig(**tiny_config_kwargs(hidden_dropout_prob=0, classifier_dropout=None, pad_token_id=None,
                                                   max_position_embeddings=2, hidden_act="relu"))
    assert config.max_tokens == 1


# ------------------------------------------------------------------------------------------------ transformers configs
# config.json of the released checkpoints (FacebookAI/xlm-roberta-base, facebook/xlm-roberta-xl), as on the Hub.
HUB_BASE = {
    "architectures": ["XLMRobertaForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
    "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768,
    "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 514,
    "model_type": "xlm-roberta", "num_attention_heads": 12, "num_hidden_layers": 12, "output_past": True,
    "pad_token_id": 1, "position_embedding_type": "absolute", "transformers_version": "4.17.0.dev0",
    "type_vocab_size": 1, "use_cache": True, "vocab_size": 250002,
}
HUB_XL = {
    "architectures": ["XLMRobertaXLForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
    "classifier_dropout": None, "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "hidden_size": 2560, "initializer_range": 0.02, "intermediate_size": 10240, "layer_norm_eps": 1e-05,
    "max_position_embeddings": 514, "model_type": "xlm-roberta-xl", "num_attention_heads": 32,
    "num_hidden_layers": 36, "pad_token_id": 1, "position_embedding_type": "absolute",
    "transformers_version": "4.17.0.dev0", "type_vocab_size": 1, "use_cache": True, "vocab_size": 250880,
}


@pytest.mark.parametrize(("hub", "preset"), [(HUB_BASE, "base"), (HUB_XL, "xl")], ids=["xlm-roberta", "xlm-roberta-xl"])
def test_transformers_config_json_loads_into_ours(hub, preset, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(hub))
    for config in (XLMRobertaConfig.from_pretrained(tmp_path), XLMRobertaConfig.from_dict(dict(hub))):
        assert isinstance(config, XLMRobertaConfig) and config.model_type == "xlmr-hf"
        expected = XLMRobertaConfig.from_preset(preset)
        for field in (*SHAPE_FIELDS, *COMMON):
            assert getattr(config, field) == getattr(expected, field), field
        assert config.architectures == hub["architectures"]
        for dropped in ("use_cache", "position_embedding_type", "output_past"):
            assert dropped not in config.to_dict(), dropped


@pytest.mark.parametrize("layout", ["post", "pre"])
def test_saved_transformers_config_round_trips_into_ours(layout, tmp_path):
    ours = tiny_xlmr_config(layout, num_labels=3, classifier_dropout=0.2)
    hf_config_from_ours(ours).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == (
        "xlm-roberta-xl" if layout == "pre" else "xlm-roberta")
    loaded = XLMRobertaConfig.from_pretrained(tmp_path)
    for field in (*SHAPE_FIELDS, "pad_token_id", "classifier_dropout", "hidden_act", "num_labels"):
        assert getattr(loaded, field) == getattr(ours, field), field


def test_transformers_defaults_do_not_leak_ours():
    """A minimal xlm-roberta dict means transformers' defaults (BERT's), not XLM-R base's."""
    config = XLMRobertaConfig.from_dict({"model_type": "xlm-roberta", "hidden_size": 64, "num_attention_heads": 4})
    assert (config.vocab_size, config.max_position_embeddings, config.type_vocab_size, config.layer_norm_eps) == (
        30522, 512, 2, 1e-12)
    xl = XLMRobertaConfig.from_dict({"model_type": "xlm-roberta-xl"})
    assert (xl.hidden_size, xl.num_hidden_layers, xl.vocab_size, xl.layer_norm_position) == (2560, 36, 250880, "pre")


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        ({"position_embedding_type": "relative_key"}, r"position_embedding_type='relative_key'.*allowed 'absolute'"),
        ({"position_embedding_type": "relative_key_query"}, r"position_embedding_type"),
        ({"is_decoder": True}, r"is_decoder=True .*allowed False"),
        ({"add_cross_attention": True}, r"add_cross_attention=True .*allowed False"),
        ({"model_type": "bert"}, r"model_type='bert'.*xlm-roberta"),
    ],
)
def test_unsupported_transformers_settings_raise(extra, pattern, tmp_path):
    with pytest.raises(ValueError, match=pattern):
        XLMRobertaConfig.from_dict({**HUB_BASE, **extra})
    (tmp_path / "config.json").write_text(json.dumps({**HUB_BASE, **extra}))
    with pytest.raises(ValueError, match=pattern):
        XLMRobertaConfig.from_pretrained(tmp_path)


# ---------------------------------------------------------------------------------------------------- serialisation
def test_to_dict_from_dict_round_trip():
    config = tiny_xlmr_config("pre", use_language_embeddings=True, n_langs=7, classifier_dropout=0.2, num_labels=3,
                              hidden_act="gelu_new")
    again = XLMRobertaConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()
    assert (again.layer_norm_position, again.n_langs, again.num_labels) == ("pre", 7, 3)


def test_saved_config_json_has_our_model_type(tmp_path):
    config = tiny_xlmr_config(use_language_embeddings=True, n_langs=3)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "xlmr-hf"
    assert saved["n_langs"] == 3 and saved["use_language_embeddings"] is True
    loaded = transformers.AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is XLMRobertaConfig
    direct = XLMRobertaConfig.from_pretrained(tmp_path)
    assert {k: v for k, v in loaded.to_dict().items() if k != "_name_or_path"} == {
        k: v for k, v in direct.to_dict().items() if k != "_name_or_path"}


def test_saved_model_config_has_our_model_type_and_auto_map(tmp_path):
    XLMRobertaForMaskedLM(tiny_xlmr_config()).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "xlmr-hf"
    assert saved["auto_map"]["AutoModelForMaskedLM"] == "modeling_xlmr.XLMRobertaForMaskedLM"
    assert type(transformers.AutoModelForMaskedLM.from_pretrained(tmp_path)) is XLMRobertaForMaskedLM


# ------------------------------------------------------------------------------------------------ language embeddings
def test_language_embeddings_off_by_default_add_no_parameter(tiny_config):
    assert tiny_config.use_language_embeddings is False
    model = XLMRobertaModel(tiny_config)
    assert not hasattr(model.embeddings, "language_embeddings")
    assert not any("language" in name for name, _ in model.named_parameters())
    hf = transformers.XLMRobertaModel(hf_config_from_ours(tiny_config))
    assert count_parameters(model) == count_parameters(hf)
    assert set(model.state_dict()) == set(hf.state_dict())


@pytest.mark.parametrize("layout", ["post", "pre"])
def test_language_embeddings_on_add_exactly_n_langs_times_hidden(layout):
    off = XLMRobertaModel(tiny_xlmr_config(layout))
    on = XLMRobertaModel(tiny_xlmr_config(layout, use_language_embeddings=True, n_langs=7))
    assert count_parameters(on) - count_parameters(off) == 7 * 32
    assert on.embeddings.language_embeddings.weight.shape == (7, 32)
    assert set(on.state_dict()) - set(off.state_dict()) == {"embeddings.language_embeddings.weight"}


def language_models(layout: str = "post"):
    """(off, on) tiny models with identical shared weights; `on` has random language embeddings."""
    off = randomize_parameters_(XLMRobertaModel(tiny_xlmr_config(layout)), seed=1).eval()
    on = XLMRobertaModel(tiny_xlmr_config(layout, use_language_embeddings=True, n_langs=4)).eval()
    missing, unexpected = on.load_state_dict(off.state_dict(), strict=False)
    assert missing == ["embeddings.language_embeddings.weight"] and not unexpected
    with torch.no_grad():
        on.embeddings.language_embeddings.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(2))
    return off, on


@pytest.mark.parametrize("layout", ["post", "pre"])
def test_language_embeddings_change_outputs_additively(layout):
    off, on = language_models(layout)
    ids = torch.randint(3, 99, (2, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        lang0 = on(input_ids=ids, language_ids=torch.tensor([0, 0])).last_hidden_state
        lang3 = on(input_ids=ids, language_ids=torch.tensor([3, 3])).last_hidden_state
        per_token = on(input_ids=ids, language_ids=torch.full((2, 7), 3)).last_hidden_state
        mixed = on(input_ids=ids, language_ids=torch.tensor([0, 3])).last_hidden_state
        base = off(input_ids=ids).last_hidden_state
        # zero language vectors reproduce the model without language embeddings
        on.embeddings.language_embeddings.weight.zero_()
        zeroed = on(input_ids=ids, language_ids=torch.tensor([1, 2])).last_hidden_state
    assert max_abs_diff(lang0, lang3) > 1e-3
    assert max_abs_diff(lang3, per_token) <= 1e-6
    assert max_abs_diff(mixed[0], lang0[0]) <= 1e-6 and max_abs_diff(mixed[1], lang3[1]) <= 1e-6
    assert max_abs_diff(zeroed, base) <= 1e-5


def test_language_embeddings_require_language_ids():
    _, on = language_models()
    with pytest.raises(ValueError, match=r"language_ids is None but config.use_language_embeddings=True"):
        on(input_ids=torch.tensor([[0, 5, 6, 2]]))
    mlm = XLMRobertaForMaskedLM(tiny_xlmr_config(use_language_embeddings=True, n_langs=2))
    with pytest.raises(ValueError, match=r"language_ids"):
        mlm(input_ids=torch.tensor([[0, 5, 6, 2]]))


def test_language_ids_without_language_embeddings_raise(tiny_config):
    for model in (XLMRobertaModel(tiny_config), XLMRobertaForMaskedLM(tiny_config),
                  xlmr_hf.XLMRobertaForSequenceClassification(tiny_config)):
        with pytest.raises(ValueError, match=r"language_ids were given but config.use_language_embeddings=False"):
            model(input_ids=torch.tensor([[0, 5, 6, 2]]), language_ids=torch.tensor([0]))


def test_heads_forward_language_ids():
    config = tiny_xlmr_config(use_language_embeddings=True, n_langs=3, num_labels=2)
    torch.manual_seed(0)
    mlm = randomize_parameters_(XLMRobertaForMaskedLM(config)).eval()
    ids = torch.tensor([[0, 5, 6, 7, 2]])
    with torch.no_grad():
        a = mlm(input_ids=ids, language_ids=torch.tensor([0])).logits
        b = mlm(input_ids=ids, language_ids=torch.tensor([2])).logits
    assert max_abs_diff(a, b) > 1e-3
    mc = randomize_parameters_(xlmr_hf.XLMRobertaForMultipleChoice(config)).eval()
    choices = torch.randint(3, 99, (2, 3, 5), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        per_example = mc(input_ids=choices, language_ids=torch.tensor([1, 2])).logits
        per_choice = mc(input_ids=choices, language_ids=torch.tensor([[1, 1, 1], [2, 2, 2]])).logits
        per_token = mc(input_ids=choices, language_ids=torch.tensor([1, 2])[:, None, None].expand(2, 3, 5)).logits
    assert max_abs_diff(per_example, per_choice) <= 1e-6 and max_abs_diff(per_example, per_token) <= 1e-6


# ---------------------------------------------------------------------------------------------------- speed switches
SPEED_SWITCHES = ("fused_mlm_loss", "sparse_embedding_grad", "cpu_dropout_attention")


def test_speed_switches_are_config_fields_saved_with_the_checkpoint(tmp_path):
    assert all(getattr(XLMRobertaConfig(), name) is True for name in SPEED_SWITCHES)
    assert not any(hasattr(XLMRobertaForMaskedLM, name) for name in SPEED_SWITCHES)  # no class attributes left
    model = XLMRobertaForMaskedLM(tiny_xlmr_config(fused_mlm_loss=False, cpu_dropout_attention=False))
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert {name: saved[name] for name in SPEED_SWITCHES} == {
        "fused_mlm_loss": False, "sparse_embedding_grad": True, "cpu_dropout_attention": False}
    loaded = XLMRobertaForMaskedLM.from_pretrained(tmp_path)
    assert (loaded.config.fused_mlm_loss, loaded.config.sparse_embedding_grad, loaded.config.cpu_dropout_attention) == (
        False, True, False)


def test_configs_without_speed_switches_get_the_defaults(tmp_path):
    """config.json of older xlmr-hf versions (no switches) and of transformers' xlm-roberta(-xl)."""
    old = tiny_xlmr_config().to_dict()
    for name in SPEED_SWITCHES:
        old.pop(name)
    (tmp_path / "config.json").write_text(json.dumps(old))
    configs = [XLMRobertaConfig.from_pretrained(tmp_path), XLMRobertaConfig.from_dict(old),
               XLMRobertaConfig.from_dict(dict(HUB_BASE)), XLMRobertaConfig.from_dict(dict(HUB_XL))]
    hf_config_from_ours(tiny_xlmr_config()).save_pretrained(tmp_path / "hf")
    configs.append(XLMRobertaConfig.from_pretrained(tmp_path / "hf"))
    for config in configs:
        assert all(getattr(config, name) is True for name in SPEED_SWITCHES), config
