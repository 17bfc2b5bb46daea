"""Conversion to/from transformers' xlm-roberta(-xl) and fairseq: exact weights, equal outputs, atomic writes."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

from xlmr_hf.models import (
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
    XLMRobertaForSequenceClassification,
    XLMRobertaModel,
)
from xlmr_hf.models.conversion import (
    FAIRSEQ_KEY_MAP,
    HEADS,
    convert,
    convert_fairseq_state_dict,
    export_to_transformers,
    import_from_transformers,
    load_fairseq_checkpoint,
    to_transformers_config,
)

TINY = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=40)
HF_TYPE = {"post": "xlm-roberta", "pre": "xlm-roberta-xl"}
HF_PREFIX = {"post": "XLMRoberta", "pre": "XLMRobertaXL"}
TOL = 1e-6


# ------------------------------------------------------------------------------------------------ helpers
def tiny_config(**overrides) -> XLMRobertaConfig:
    return XLMRobertaConfig(**{**TINY, **overrides})


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter random (LayerNorm gains around 1): a wrong mapping cannot hide behind 0/1 defaults."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * 0.2
            is_gain = name.endswith("weight") and "layernorm" in name.lower().replace("_", "")
            param.copy_(noise + (1.0 if is_gain else 0.0))
    return model.eval()


def make(head: str, seed: int = 0, **overrides) -> torch.nn.Module:
    config = tiny_config(**({"num_labels": 3} if head != "question-answering" else {}), **overrides)
    return randomize(HEADS[head](config), seed)


def inputs_for(head: str) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(123)
    ids = torch.randint(3, TINY["vocab_size"], (2, 7), generator=generator)
    ids[:, 0], ids[0, -1] = 0, 2
    ids[1, 4], ids[1, 5:] = 2, 1  # second row: 5 tokens then padding
    mask = (ids != 1).long()
    if head == "multiple-choice":
        return {"input_ids": torch.stack([ids, ids.flip(0), ids], dim=1),
                "attention_mask": torch.stack([mask, mask.flip(0), mask], dim=1)}
    return {"input_ids": ids, "attention_mask": mask}


def outputs_of(model: torch.nn.Module, head: str) -> list[torch.Tensor]:
    with torch.no_grad():
        out = model(**inputs_for(head))
    if head == "model":
        return [out.last_hidden_state, out.pooler_output]
    if head == "question-answering":
        return [out.start_logits, out.end_logits]
    return [out.logits]


def max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    assert [t.shape for t in a] == [t.shape for t in b]
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb)
    different = [k for k in sa if sa[k].dtype != sb[k].dtype or not torch.equal(sa[k], sb[k])]
    assert different == []


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# The inverse of the fairseq map, written independently of conversion.py.
_LAYER_PARTS = {
    "attention.self.query": "self_attn.q_proj",
    "attention.self.key": "self_attn.k_proj",
    "attention.self.value": "self_attn.v_proj",
    "attention.output.dense": "self_attn.out_proj",
    "intermediate.dense": "fc1",
    "output.dense": "fc2",
    "attention.output.LayerNorm": "self_attn_layer_norm",  # post-LN
    "output.LayerNorm": "final_layer_norm",  # post-LN
    "attention.self_attn_layer_norm": "self_attn_layer_norm",  # pre-LN
    "LayerNorm": "final_layer_norm",  # pre-LN
}


def to_fairseq(
    state: dict[str, torch.Tensor], prefix: str = "encoder", legacy: bool = False
) -> dict[str, torch.Tensor]:
    se, lm = f"{prefix}.sentence_encoder.", f"{prefix}.lm_head."
    fixed = {
        "roberta.embeddings.word_embeddings.weight": se + "embed_tokens.weight",
        "roberta.embeddings.position_embeddings.weight": se + "embed_positions.weight",
        "roberta.encoder.LayerNorm.weight": se + "layer_norm.weight",
        "roberta.encoder.LayerNorm.bias": se + "layer_norm.bias",
        "lm_head.dense.weight": lm + "dense.weight",
        "lm_head.dense.bias": lm + "dense.bias",
        "lm_head.layer_norm.weight": lm + "layer_norm.weight",
        "lm_head.layer_norm.bias": lm + "layer_norm.bias",
        "lm_head.decoder.weight": lm + "weight",
        "lm_head.bias": lm + "bias",
    }
    emb_ln = "emb_layer_norm" if legacy else "layernorm_embedding"
    fixed["roberta.embeddings.LayerNorm.weight"] = f"{se}{emb_ln}.weight"
    fixed["roberta.embeddings.LayerNorm.bias"] = f"{se}{emb_ln}.bias"
    out = {}
    for key, tensor in state.items():
        if key in ("roberta.embeddings.token_type_embeddings.weight", "lm_head.decoder.bias"):
            continue  # fairseq has no token types; the decoder bias is lm_head.bias
        if key in fixed:
            out[fixed[key]] = tensor.clone()
            continue
        match = re.fullmatch(r"roberta\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)", key)
        assert match is not None, key
        out[f"{se}layers.{match[1]}.{_LAYER_PARTS[match[2]]}.{match[3]}"] = tensor.clone()
    # Bookkeeping entries of real fairseq checkpoints.
    out[f"{se}version"] = torch.tensor([2.0])
    out[f"{prefix}.version"] = torch.tensor([1.0])
    out[f"{se}embed_positions._float_tensor"] = torch.zeros(1)
    return out


def fairseq_source(layout: str, seed: int = 0, **overrides) -> XLMRobertaForMaskedLM:
    """A random masked LM that fairseq could have produced: its token-type embedding is all zeros."""
    model = randomize(XLMRobertaForMaskedLM(tiny_config(layer_norm_position=layout, **overrides)), seed)
    with torch.no_grad():
        model.roberta.embeddings.token_type_embeddings.weight.zero_()
    return model


# ------------------------------------------------------------------------------------------------ configs
@pytest.mark.parametrize("layout", ["post", "pre"])
def test_to_transformers_config_carries_every_field(layout):
    config = tiny_config(layer_norm_position=layout, hidden_dropout_prob=0.05, attention_probs_dropout_prob=0.07,
                         classifier_dropout=0.3, layer_norm_eps=1e-6, pad_token_id=1, type_vocab_size=2,
                         id2label={0: "neg", 1: "neu", 2: "pos"}, label2id={"neg": 0, "neu": 1, "pos": 2},
                         problem_type="single_label_classification", tie_word_embeddings=False)
    hf = to_transformers_config(config)
    expected_cls = transformers.XLMRobertaConfig if layout == "post" else transformers.XLMRobertaXLConfig
    assert type(hf) is expected_cls
    assert hf.model_type == HF_TYPE[layout]
    for field in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                  "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                  "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id", "bos_token_id",
                  "eos_token_id", "classifier_dropout", "tie_word_embeddings", "problem_type"):
        assert getattr(hf, field) == getattr(config, field), field
    assert hf.num_labels == 3
    assert hf.id2label == {0: "neg", 1: "neu", 2: "pos"}
    assert hf.label2id == {"neg": 0, "neu": 1, "pos": 2}
    assert getattr(hf, "auto_map", None) is None
    # and back: our translation of transformers' dict gives the same config values
    back = XLMRobertaConfig.from_dict(hf.to_dict())
    assert back.layer_norm_position == layout
    assert {k: getattr(back, k) for k in TINY} == TINY
    assert (back.layer_norm_eps, back.type_vocab_size, back.id2label) == (1e-6, 2, hf.id2label)


def test_to_transformers_config_rejects_language_embeddings():
    with pytest.raises(ValueError, match=r"use_language_embeddings=True") as info:
        to_transformers_config(tiny_config(use_language_embeddings=True, n_langs=3))
    assert "allowed: False" in str(info.value)


def test_export_refuses_language_embedding_model_and_dir(tmp_path):
    model = randomize(XLMRobertaForMaskedLM(tiny_config(use_language_embeddings=True, n_langs=3)))
    with pytest.raises(ValueError, match=r"use_language_embeddings"):
        export_to_transformers(model, tmp_path / "out")
    model.save_pretrained(tmp_path / "ours")
    with pytest.raises(ValueError, match=r"use_language_embeddings"):
        export_to_transformers(tmp_path / "ours", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------ transformers
@pytest.mark.parametrize("layout", ["post", "pre"])
@pytest.mark.parametrize("head", list(HEADS))
def test_round_trip_through_transformers(tmp_path, layout, head):
    ours = make(head, seed=1, layer_norm_position=layout)
    out = export_to_transformers(ours, tmp_path / "hf")
    assert out == (tmp_path / "hf").absolute()

    # A vanilla transformers checkpoint: transformers' model_type, safetensors, no auto_map, no python files.
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    saved = json.loads((out / "config.json").read_text())
    hf_name = HF_PREFIX[layout] + HEADS[head].__name__.removeprefix("XLMRoberta")
    assert saved["model_type"] == HF_TYPE[layout]
    assert saved["architectures"] == [hf_name]
    assert "auto_map" not in saved
    assert "layer_norm_position" not in saved and "use_language_embeddings" not in saved
    assert leftovers(tmp_path) == []

    # transformers' own class reads it cleanly and computes the same function.
    hf_model, info = getattr(transformers, hf_name).from_pretrained(out, output_loading_info=True)
    assert (info["missing_keys"], info["unexpected_keys"], info["mismatched_keys"]) == (set(), set(), set())
    assert max_diff(outputs_of(hf_model.eval(), head), outputs_of(ours, head)) <= TOL

    # And back to ours: identical weights, identical outputs, same head class and layout.
    back = import_from_transformers(out)
    assert type(back) is HEADS[head]
    assert back.config.model_type == "xlmr-hf"
    assert back.config.layer_norm_position == layout
    assert_same_state(back, ours)
    # Bit-identical weights; outputs may still differ in the last float32 bit on some CPUs (AMD EPYC: oneDNN picks
    # kernels by the tensors' memory alignment), so allow 1e-6.
    assert max_diff(outputs_of(back, head), outputs_of(ours, head)) <= 1e-6


def test_export_import_keeps_label_metadata_and_untied_decoder(tmp_path):
    labels = {0: "O", 1: "B-PER", 2: "I-PER"}
    model = make("token-classification", id2label=labels, label2id={v: k for k, v in labels.items()})
    back = import_from_transformers(export_to_transformers(model, tmp_path / "tok"))
    assert back.config.id2label == labels and back.config.label2id == {v: k for k, v in labels.items()}
    assert back.config.num_labels == 3

    untied = make("masked-lm", seed=3, tie_word_embeddings=False)
    assert not torch.equal(untied.lm_head.decoder.weight, untied.roberta.embeddings.word_embeddings.weight)
    out = export_to_transformers(untied, tmp_path / "untied")
    assert json.loads((out / "config.json").read_text())["tie_word_embeddings"] is False
    assert "lm_head.decoder.weight" in load_file(out / "model.safetensors")
    back = import_from_transformers(out)
    assert back.lm_head.decoder.weight is not back.roberta.embeddings.word_embeddings.weight
    assert_same_state(back, untied)
    assert max_diff(outputs_of(back, "masked-lm"), outputs_of(untied, "masked-lm")) == 0.0


def test_export_from_xlmr_hf_directory_copies_tokenizer_without_auto_map(tmp_path):
    model = make("masked-lm", seed=2)
    model.save_pretrained(tmp_path / "ours")
    assert (tmp_path / "ours" / "modeling_xlmr.py").is_file()  # our format ships code for trust_remote_code
    tokenizer_config = {"tokenizer_class": "XLMRobertaTokenizer", "auto_map": {"AutoTokenizer": ["x.Y", None]}}
    (tmp_path / "ours" / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    (tmp_path / "ours" / "tokenizer.json").write_text('{"version": "1.0"}')

    out = export_to_transformers(tmp_path / "ours", tmp_path / "hf")
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    assert json.loads((out / "tokenizer_config.json").read_text()) == {"tokenizer_class": "XLMRobertaTokenizer"}
    assert (out / "tokenizer.json").read_text() == '{"version": "1.0"}'
    hf_model = transformers.AutoModelForMaskedLM.from_pretrained(out)
    assert type(hf_model) is transformers.XLMRobertaForMaskedLM
    assert type(transformers.AutoConfig.from_pretrained(out)) is transformers.XLMRobertaConfig
    assert max_diff(outputs_of(hf_model.eval(), "masked-lm"), outputs_of(model, "masked-lm")) <= TOL


@pytest.mark.parametrize("layout", ["post", "pre"])
def test_import_in_memory_transformers_model_copies_weights(layout):
    hf_config = to_transformers_config(tiny_config(layer_norm_position=layout, num_labels=4))
    hf_cls = getattr(transformers, HF_PREFIX[layout] + "ForSequenceClassification")
    hf_model = randomize(hf_cls(hf_config), seed=5)
    ours = import_from_transformers(hf_model)
    assert type(ours) is XLMRobertaForSequenceClassification
    assert ours.config.layer_norm_position == layout and ours.config.num_labels == 4
    assert_same_state(ours, hf_model)
    assert max_diff(outputs_of(ours, "sequence-classification"),
                    outputs_of(hf_model, "sequence-classification")) <= TOL
    # a copy, not a view: changing ours leaves the transformers model alone
    with torch.no_grad():
        ours.roberta.embeddings.word_embeddings.weight.add_(1.0)
    assert not torch.equal(ours.roberta.embeddings.word_embeddings.weight,
                           hf_model.roberta.embeddings.word_embeddings.weight)


def test_import_with_another_head_keeps_the_encoder(tmp_path):
    source = make("masked-lm", seed=6)
    hf_dir = export_to_transformers(source, tmp_path / "mlm")
    from_dir = import_from_transformers(hf_dir, head="sequence-classification")
    hf_model = transformers.XLMRobertaForMaskedLM.from_pretrained(hf_dir)
    from_memory = import_from_transformers(hf_model, head="sequence-classification")
    for model in (from_dir, from_memory):
        assert type(model) is XLMRobertaForSequenceClassification
        encoder, reference = model.roberta.state_dict(), source.roberta.state_dict()
        assert sorted(encoder) == sorted(reference)
        assert all(torch.equal(encoder[k], reference[k]) for k in reference)
    bare = import_from_transformers(hf_dir, head="model")
    assert type(bare) is XLMRobertaModel
    assert torch.equal(bare.embeddings.word_embeddings.weight, source.roberta.embeddings.word_embeddings.weight)


def test_import_rejects_bad_head_and_incomplete_checkpoint(tmp_path):
    hf_dir = export_to_transformers(make("masked-lm"), tmp_path / "mlm")
    with pytest.raises(ValueError, match=r"head='classifier' is invalid: allowed \['model', 'masked-lm'"):
        import_from_transformers(hf_dir, head="classifier")
    weights = load_file(hf_dir / "model.safetensors")
    del weights["roberta.encoder.layer.1.output.dense.weight"]
    save_file(weights, hf_dir / "model.safetensors", metadata={"format": "pt"})
    for head in (None, "sequence-classification"):  # an encoder weight is missing whatever the head
        with pytest.raises(ValueError, match=r"roberta\.encoder\.layer\.1\.output\.dense\.weight"):
            import_from_transformers(hf_dir, head=head)


# ------------------------------------------------------------------------------------------------ atomic writes
def test_export_refuses_non_empty_output_and_overwrites_on_request(tmp_path):
    model = make("masked-lm")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match=r"not empty; pass overwrite=True"):
        export_to_transformers(model, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["keep.txt"]

    export_to_transformers(model, tmp_path / "out", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.json", "model.safetensors"]
    assert leftovers(tmp_path) == []

    (tmp_path / "empty").mkdir()  # an existing empty directory is fine without overwrite
    export_to_transformers(model, tmp_path / "empty")
    assert (tmp_path / "empty" / "model.safetensors").is_file()


def test_failed_export_leaves_no_partial_directory(tmp_path, monkeypatch):
    model = make("masked-lm")

    def broken_save(self, directory, **kwargs):
        (Path(directory) / "model.safetensors").write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(transformers.XLMRobertaForMaskedLM, "save_pretrained", broken_save)
    with pytest.raises(OSError, match="disk full"):
        export_to_transformers(model, tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == []

    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text("{}")
    with pytest.raises(OSError, match="disk full"):
        export_to_transformers(model, tmp_path / "old", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert (tmp_path / "old" / "config.json").read_text() == "{}"


# ------------------------------------------------------------------------------------------------ fairseq
@pytest.mark.parametrize(("layout", "prefix", "legacy"), [
    ("post", "encoder", False), ("post", "decoder", True), ("pre", "encoder", False)])
def test_fairseq_state_dict_converts_to_equal_weights_and_outputs(layout, prefix, legacy):
    source = fairseq_source(layout, seed=7)
    fairseq = to_fairseq(source.state_dict(), prefix=prefix, legacy=legacy)
    assert any(k.endswith(".version") for k in fairseq) and any(k.endswith("_float_tensor") for k in fairseq)
    converted = convert_fairseq_state_dict(fairseq, source.config)
    reference = source.state_dict()
    assert sorted(converted) == sorted(reference)
    assert [k for k in reference if not torch.equal(converted[k], reference[k])] == []

    target = XLMRobertaForMaskedLM(tiny_config(layer_norm_position=layout)).eval()
    target.load_state_dict(converted, strict=True)
    assert max_diff(outputs_of(target, "masked-lm"), outputs_of(source, "masked-lm")) <= TOL


def test_fairseq_legacy_in_proj_is_split_into_query_key_value():
    source = fairseq_source("post", seed=8)
    fairseq = to_fairseq(source.state_dict())
    for i in range(TINY["num_hidden_layers"]):
        base = f"encoder.sentence_encoder.layers.{i}.self_attn."
        for kind in ("weight", "bias"):
            parts = [fairseq.pop(f"{base}{p}_proj.{kind}") for p in "qkv"]
            fairseq[f"{base}in_proj_{kind}"] = torch.cat(parts)
    converted = convert_fairseq_state_dict(fairseq, source.config)
    reference = source.state_dict()
    assert [k for k in reference if not torch.equal(converted[k], reference[k])] == []


def test_fairseq_key_map_covers_both_layouts():
    assert set(FAIRSEQ_KEY_MAP) == {"post", "pre"}
    targets = {layout: {target for _, target in rules} for layout, rules in FAIRSEQ_KEY_MAP.items()}
    assert r"roberta.embeddings.LayerNorm.\1" in targets["post"] and r"roberta.encoder.LayerNorm.\1" in targets["pre"]
    assert not any("embeddings.LayerNorm" in t for t in targets["pre"])


def test_fairseq_unknown_key_is_named():
    source = fairseq_source("post")
    fairseq = to_fairseq(source.state_dict())
    fairseq["encoder.sentence_encoder.layers.0.adapter.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"encoder\.sentence_encoder\.layers\.0\.adapter\.weight"):
        convert_fairseq_state_dict(fairseq, source.config)
    # an embedding LayerNorm has no place in the pre-LN layout: not silently dropped either
    pre = fairseq_source("pre")
    fairseq = to_fairseq(pre.state_dict())
    fairseq["encoder.sentence_encoder.layernorm_embedding.weight"] = torch.ones(TINY["hidden_size"])
    with pytest.raises(ValueError, match=r"'pre': encoder\.sentence_encoder\.layernorm_embedding\.weight"):
        convert_fairseq_state_dict(fairseq, pre.config)


def test_fairseq_missing_extra_misshapen_and_untied_keys_fail():
    source = fairseq_source("post")
    state = to_fairseq(source.state_dict())
    missing = {k: v for k, v in state.items() if k != "encoder.sentence_encoder.layers.1.fc2.weight"}
    with pytest.raises(ValueError, match=r"lacks weights for: roberta\.encoder\.layer\.1\.output\.dense\.weight"):
        convert_fairseq_state_dict(missing, source.config)
    with pytest.raises(ValueError, match=r"encoder\.sentence_encoder\.layers\.1\..*do not fit.*num_hidden_layers=1"):
        convert_fairseq_state_dict(state, tiny_config(num_hidden_layers=1))
    with pytest.raises(ValueError, match=r"sentence_encoder\.layers\.0\.fc1\.weight: \(64, 32\) != \(48, 32\)"):
        convert_fairseq_state_dict(state, tiny_config(intermediate_size=48))
    untied = dict(state, **{"encoder.lm_head.weight": state["encoder.lm_head.weight"] + 1})
    with pytest.raises(ValueError, match=r"tie_word_embeddings=True"):
        convert_fairseq_state_dict(untied, source.config)
    converted = convert_fairseq_state_dict(untied, tiny_config(tie_word_embeddings=False))
    assert torch.equal(converted["lm_head.decoder.weight"], state["encoder.lm_head.weight"] + 1)
    duplicated = dict(state, **{"decoder.sentence_encoder.embed_tokens.weight": state[
        "encoder.sentence_encoder.embed_tokens.weight"]})
    with pytest.raises(ValueError, match=r"both map to 'roberta\.embeddings\.word_embeddings\.weight'"):
        convert_fairseq_state_dict(duplicated, source.config)


def test_fairseq_classification_head(tmp_path):
    source = fairseq_source("post", seed=9)
    classifier = randomize(XLMRobertaForSequenceClassification(tiny_config(num_labels=3)), seed=10)
    classifier.roberta.load_state_dict(source.roberta.state_dict())
    state = to_fairseq(source.state_dict())
    for part in ("dense", "out_proj"):
        for kind in ("weight", "bias"):
            state[f"classification_heads.mnli.{part}.{kind}"] = getattr(
                getattr(classifier.classifier, part), kind).detach().clone()
    state["classification_heads.other.out_proj.weight"] = torch.zeros(7, TINY["hidden_size"])

    plain = convert_fairseq_state_dict(state, source.config)  # heads not asked for are skipped
    assert not any(k.startswith("classifier.") for k in plain)
    with_head = convert_fairseq_state_dict(state, tiny_config(num_labels=3), classification_head="mnli")
    assert torch.equal(with_head["classifier.out_proj.weight"], classifier.classifier.out_proj.weight)
    with pytest.raises(ValueError, match=r"classification_head='xnli' is not in the checkpoint; allowed: "
                                         r"\['mnli', 'other'\]"):
        convert_fairseq_state_dict(state, source.config, classification_head="xnli")

    torch.save({"model": state, "args": argparse.Namespace(arch="roberta_base")}, tmp_path / "model.pt")
    loaded = load_fairseq_checkpoint(tmp_path, tiny_config(num_labels=3), classification_head="mnli")
    assert type(loaded) is XLMRobertaForSequenceClassification
    assert_same_state(loaded, classifier)
    assert max_diff(outputs_of(loaded, "sequence-classification"),
                    outputs_of(classifier, "sequence-classification")) <= TOL


@pytest.mark.parametrize("layout", ["post", "pre"])
def test_load_fairseq_checkpoint_round_trip(tmp_path, layout):
    source = fairseq_source(layout, seed=11)
    state = to_fairseq(source.state_dict())
    torch.save({"model": state, "args": None}, tmp_path / "model.pt")
    config = tiny_config(layer_norm_position=layout)
    model = load_fairseq_checkpoint(tmp_path / "model.pt", config)
    assert type(model) is XLMRobertaForMaskedLM and not model.training
    assert config.architectures is None  # the caller's config is not modified
    assert model.lm_head.decoder.weight is model.roberta.embeddings.word_embeddings.weight
    assert_same_state(model, source)
    assert max_diff(outputs_of(model, "masked-lm"), outputs_of(source, "masked-lm")) <= TOL

    # fp16 releases load as exact fp32 values
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    torch.save({"model": half, "args": None}, tmp_path / "half.pt")
    model = load_fairseq_checkpoint(tmp_path / "half.pt", config)
    weight = model.roberta.encoder.layer[0].intermediate.dense.weight
    assert weight.dtype == torch.float32
    assert torch.equal(weight, half["encoder.sentence_encoder.layers.0.fc1.weight"].float())


class _Payload:
    """Unpickling this would run code: weights_only must refuse it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_load_fairseq_checkpoint_never_unpickles_objects(tmp_path):
    state = to_fairseq(fairseq_source("post").state_dict())
    marker = tmp_path / "code-ran"
    torch.save({"model": state, "cfg": _Payload(marker)}, tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"weights_only=True\) refuses.*re-save its weights"):
        load_fairseq_checkpoint(tmp_path / "model.pt", tiny_config())
    assert not marker.exists()
    with pytest.raises(FileNotFoundError, match=r"absent\.pt"):
        load_fairseq_checkpoint(tmp_path / "absent.pt", tiny_config())


# ------------------------------------------------------------------------------------------------ convert()
def test_convert_every_direction(tmp_path):
    source = fairseq_source("post", seed=12)
    torch.save({"model": to_fairseq(source.state_dict()), "args": None}, tmp_path / "model.pt")
    shape = {k: v for k, v in TINY.items()}

    ours_dir = convert(tmp_path / "model.pt", tmp_path / "ours", to="xlmr-hf", source_format="fairseq",
                       preset="base", config_overrides=shape)
    saved = json.loads((ours_dir / "config.json").read_text())
    assert saved["model_type"] == "xlmr-hf" and "auto_map" in saved
    ours = XLMRobertaForMaskedLM.from_pretrained(ours_dir).eval()
    assert_same_state(ours, source)

    hf_dir = convert(ours_dir, tmp_path / "hf", to="transformers", source_format="xlmr-hf")
    assert json.loads((hf_dir / "config.json").read_text())["model_type"] == "xlm-roberta"
    direct = convert(tmp_path / "model.pt", tmp_path / "hf2", to="transformers", source_format="fairseq",
                     config=tiny_config())
    assert load_file(hf_dir / "model.safetensors").keys() == load_file(direct / "model.safetensors").keys()

    back_dir = convert(hf_dir, tmp_path / "back", to="xlmr-hf", source_format="transformers")
    back = XLMRobertaForMaskedLM.from_pretrained(back_dir).eval()
    assert_same_state(back, source)
    assert max_diff(outputs_of(back, "masked-lm"), outputs_of(source, "masked-lm")) <= TOL

    with pytest.raises(FileExistsError):
        convert(hf_dir, tmp_path / "back", to="xlmr-hf", source_format="transformers")


def test_convert_rejects_meaningless_options(tmp_path):
    with pytest.raises(ValueError, match=r"nothing to convert"):
        convert(tmp_path, tmp_path / "o", to="xlmr-hf", source_format="xlmr-hf")
    with pytest.raises(ValueError, match=r"preset='base' applies to source_format='fairseq' only"):
        convert(tmp_path, tmp_path / "o", to="xlmr-hf", source_format="transformers", preset="base")
    with pytest.raises(ValueError, match=r"exactly one of preset="):
        convert(tmp_path / "model.pt", tmp_path / "o", to="xlmr-hf", source_format="fairseq")
    with pytest.raises(ValueError, match=r"to='onnx' is invalid"):
        convert(tmp_path, tmp_path / "o", to="onnx", source_format="xlmr-hf")
    assert not (tmp_path / "o").exists()
