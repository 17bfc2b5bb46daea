"""XLM-R models. Importing this package registers them with transformers' Auto classes; nothing else happens."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from .configuration_xlmr import PRESETS, XLMRobertaConfig, XLMRobertaConfigError
from .modeling_xlmr import (
    XLMRobertaForMaskedLM,
    XLMRobertaForMultipleChoice,
    XLMRobertaForQuestionAnswering,
    XLMRobertaForSequenceClassification,
    XLMRobertaForTokenClassification,
    XLMRobertaMaskedLMOutput,
    XLMRobertaModel,
    XLMRobertaPreTrainedModel,
    packed_position_ids,
)

__all__ = [
    "AUTO_CLASSES",
    "PRESETS",
    "XLMRobertaConfig",
    "XLMRobertaConfigError",
    "XLMRobertaForMaskedLM",
    "XLMRobertaForMultipleChoice",
    "XLMRobertaForQuestionAnswering",
    "XLMRobertaForSequenceClassification",
    "XLMRobertaForTokenClassification",
    "XLMRobertaMaskedLMOutput",
    "XLMRobertaModel",
    "XLMRobertaPreTrainedModel",
    "packed_position_ids",
]

# Auto class -> our class; registered below (the package's only import-time side effect).
AUTO_CLASSES = {
    AutoModel: XLMRobertaModel,
    AutoModelForMaskedLM: XLMRobertaForMaskedLM,
    AutoModelForSequenceClassification: XLMRobertaForSequenceClassification,
    AutoModelForTokenClassification: XLMRobertaForTokenClassification,
    AutoModelForQuestionAnswering: XLMRobertaForQuestionAnswering,
    AutoModelForMultipleChoice: XLMRobertaForMultipleChoice,
}

AutoConfig.register(XLMRobertaConfig.model_type, XLMRobertaConfig, exist_ok=True)
for _auto, _model in AUTO_CLASSES.items():
    _auto.register(XLMRobertaConfig, _model, exist_ok=True)
