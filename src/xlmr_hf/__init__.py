"""xlmr-hf: XLM-R (Conneau et al., 2019) as a Hugging Face ecosystem extension.

Importing the package loads neither torch nor transformers: the model classes below load on first use, and the
XLM-R classes are registered with transformers' Auto classes as soon as those are imported (or a model class here is
used), so ``import xlmr_hf`` then ``AutoModel.from_pretrained(...)`` works. `xlmr_hf.corpus`, `xlmr_hf.data` and
`xlmr_hf.tokenization` users do not pay for the model stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _registration
from ._lazy import lazy_exports

if TYPE_CHECKING:
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

_SOURCES = dict.fromkeys([name for name in __all__ if name != "__version__"], "models")
for _name in _SOURCES:  # on importlib.reload: forget the classes cached by an earlier __getattr__
    globals().pop(_name, None)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _SOURCES, __all__)

_registration.install()
