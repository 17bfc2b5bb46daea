"""Hub pushes of pretraining checkpoints: a model card and a background uploader.

`HubPusher` uploads each checkpoint directory (model, tokenizer, model card; the optimizer/RNG state under
``accelerate/`` is left out) to one model repository from a single background thread, so training does not wait for
the network. Uploads run in order; `HubPusher.wait` (called at the end of the run) blocks until they are done and
raises the first error. Authentication is huggingface_hub's (``HF_TOKEN`` or ``hf auth login``).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi

__all__ = ["HubPusher", "model_card"]

logger = logging.getLogger(__name__)

_IGNORE = ["accelerate/*", "accelerate/**"]


def model_card(*, repo_id: str, languages: Sequence[str], alpha: float, step: int, max_steps: int,
               language_tokens: Mapping[str, int], eval_results: Mapping[str, float] | None,
               config: Mapping[str, Any]) -> str:
    """A README.md model card: YAML metadata (languages, library, tags) and the run's figures."""
    total = sum(language_tokens.values()) or 1
    lines = ["---", "library_name: transformers", "pipeline_tag: fill-mask", "tags: [xlm-roberta, xlmr-hf, fill-mask]",
             "language:", *[f"- {lang}" for lang in languages], "---", "", f"# {repo_id}", "",
             (f"XLM-R-style masked-LM checkpoint trained with [xlmr-hf](https://github.com/xlmr-hf/xlmr-hf): step {step} "
             f"of {max_steps}, language sampling alpha = {alpha}."), "",
             (f"Model: {config.get('num_hidden_layers')} layers, hidden size {config.get('hidden_size')}, vocabulary "
             f"{config.get('vocab_size')}."), "", "## Training tokens per language", "",
             "| language | tokens | share |", "|---|---:|---:|"]
    lines += [f"| {lang} | {n:,} | {n / total:.1%} |" for lang, n in sorted(language_tokens.items())]
    if eval_results:
        lines += ["", "## Held-out masked-LM loss and accuracy", "", "| language | loss | accuracy |", "|---|---:|---:|"]
        langs = sorted(k.rsplit("/", 1)[1] for k in eval_results if k.startswith("eval/loss/"))
        lines += [f"| {lang} | {eval_results[f'eval/loss/{lang}']:.4f} | "
                  f"{eval_results[f'eval/accuracy/{lang}']:.3f} |" for lang in langs]
    lines += ["", "Load it with `AutoModelForMaskedLM.from_pretrained(...)` after `import xlmr_hf`.", ""]
    return "\n".join(lines)


class HubPusher:
    """Uploads checkpoint folders to ``repo_id`` in the background (one at a time, in order)."""

    def __init__(self, repo_id: str, *, private: bool = True, token: str | None = None) -> None:
        if not repo_id or "/" not in repo_id:
            raise ValueError(f"hub_model_id must look like 'user/name', got {repo_id!r}")
        self.repo_id = repo_id
        self.api = HfApi(token=token)
        self.api.create_repo(repo_id, private=private, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-push")
        self._futures: list[Future] = []

    def push(self, folder: str | os.PathLike[str], step: int) -> Future:
        """Queue an upload of ``folder`` without its ``accelerate/`` training state. The folder is first copied to a
        staging directory beside it, so that pruning old checkpoints cannot pull files from under the upload."""
        folder = Path(folder)
        staging = folder.parent / ".hub-staging" / f"step-{step}"
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree(folder, staging, ignore=shutil.ignore_patterns("accelerate"))

        def upload() -> None:
            try:
                self.api.upload_folder(repo_id=self.repo_id, folder_path=str(staging),
                                       commit_message=f"Training step {step}", ignore_patterns=_IGNORE)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

        future = self._executor.submit(upload)
        future.add_done_callback(lambda f: f.exception() is None and logger.info(
            "pushed %s (step %d) to %s", folder, step, self.repo_id))
        self._futures.append(future)
        return future

    def wait(self) -> None:
        """Block until every queued upload is done; raises the first upload error."""
        self._executor.shutdown(wait=True)
        for future in self._futures:
            future.result()
