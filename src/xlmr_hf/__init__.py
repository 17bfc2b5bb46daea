"""xlmr-hf: XLM-R (Conneau et al., 2019) as a Hugging Face ecosystem extension.

Importing the package registers the XLM-R classes with transformers' Auto classes; nothing else happens at import.
"""

from .models import (
    PRESETS,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
    XLMRobertaForMultipleChoice,
    XLMRobertaForQuestionAnswering,
    XLMRobertaForSequenceClassification,
    XLMRobertaForTokenClassification,
    XLMRobertaModel,
    XLMRobertaPreTrainedModel,
)

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "XLMRobertaConfig",
    "XLMRobertaForMaskedLM",
    "XLMRobertaForMultipleChoice",
    "XLMRobertaForQuestionAnswering",
    "XLMRobertaForSequenceClassification",
    "XLMRobertaForTokenClassification",
    "XLMRobertaModel",
    "XLMRobertaPreTrainedModel",
    "__version__",
]
