"""Hub artifacts: model cards made with `huggingface_hub.ModelCard` (metadata, ``model-index`` with one result per
language and metric, hyperparameters, framework versions, how to load) and `HubPusher`, which uploads folders in the
background with `HfApi.upload_folder(run_as_future=True)`. Authentication is huggingface_hub's (``HF_TOKEN`` or
``hf auth login``)."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

__all__ = ["HubPusher", "framework_versions", "loading_instructions", "markdown_table", "model_card"]

logger = logging.getLogger(__name__)

_VERSIONED = ("xlmr-hf", "transformers", "torch", "accelerate", "datasets", "tokenizers", "huggingface_hub")


def framework_versions() -> dict[str, str]:
    """Installed versions of the libraries a checkpoint was made with (as the Trainer's cards list them)."""
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def loading_instructions(auto_class: str, push_format: str, repo_or_path: str) -> str:
    """Markdown telling how to load the model without xlmr-hf (and with it)."""
    if push_format == "transformers":
        how = (f"This checkpoint is in the plain transformers `xlm-roberta` format: `{auto_class}.from_pretrained"
               f"(\"{repo_or_path}\")` loads it with transformers alone, and `xlmr_hf`'s classes load it unchanged.")
    else:
        how = (f"This checkpoint is in the xlmr-hf format. Without xlmr-hf: `{auto_class}.from_pretrained("
               f"\"{repo_or_path}\", trust_remote_code=True)` (the model code is stored beside the weights); with "
               f"xlmr-hf installed, `import xlmr_hf` first and leave `trust_remote_code` out.")
    return "\n".join(["## How to load", "", how, "", "```python", f"from transformers import {auto_class}", "",
                      f"model = {auto_class}.from_pretrained(\"{repo_or_path}\""
                      + (", trust_remote_code=True)" if push_format != "transformers" else ")"), "```"])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; numbers right-aligned."""
    numeric = [bool(rows) and all(isinstance(row[i], (int, float)) for row in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def model_card(*, model_name: str, summary: str, languages: Sequence[str], pipeline_tag: str, tags: Sequence[str],
               license: str | None, eval_results: Sequence[Mapping[str, Any]], hyperparameters: Mapping[str, Any],
               loading: str, sections: Sequence[str] = (), datasets: Sequence[str] = (),
               base_model: str | None = None) -> ModelCard:
    """A `ModelCard` with the Hub's metadata (``language``, ``license``, ``library_name``, ``tags``, ``datasets``,
    ``pipeline_tag``, ``base_model``, ``model-index``) and a body: ``summary``, ``sections`` (markdown), the
    hyperparameters, how to load it, and the framework versions. ``eval_results`` are `EvalResult` keyword dicts."""
    data = ModelCardData(
        model_name=model_name, language=list(languages), license=license, library_name="transformers",
        tags=list(dict.fromkeys(["xlmr-hf", "xlm-roberta", *tags])), datasets=list(datasets) or None,
        pipeline_tag=pipeline_tag, base_model=base_model,
        eval_results=[EvalResult(**result) for result in eval_results] or None)
    body = [f"# {model_name}", "", summary, ""]
    for section in sections:
        body += [section, ""]
    body += ["## Training hyperparameters", "",
             *[f"- {name}: {value}" for name, value in hyperparameters.items()], "", loading, "",
             "## Framework versions", "", *[f"- {name} {version}" for name, version in framework_versions().items()],
             ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))


class HubPusher:
    """Uploads folders to one model repository in the background, in order (huggingface_hub runs the futures of one
    `HfApi` on a single worker thread). ``prepare(source, staging)`` writes what is uploaded (by default a plain
    copy of the folder; the training code leaves out its training state): the staging copy means pruning old
    checkpoints cannot pull files from under an upload."""

    def __init__(self, repo_id: str, *, private: bool = True, token: str | None = None,
                 revision: str | None = None) -> None:
        if not repo_id or "/" not in repo_id:
            raise ValueError(f"hub_model_id must look like 'user/name', got {repo_id!r}")
        self.repo_id, self.revision = repo_id, revision
        self.api = HfApi(token=token)
        self.api.create_repo(repo_id, private=private, exist_ok=True)
        self._futures: list[Future] = []

    def push(self, folder: str | os.PathLike[str], message: str, *,
             prepare: Callable[[Path, Path], None] | None = None, staging: str | os.PathLike[str] | None = None,
             path_in_repo: str | None = None) -> Future:
        """Queue an upload of ``folder`` (as ``prepare`` stages it) with commit ``message``."""
        folder = Path(folder)
        staging = Path(staging) if staging is not None else folder.parent / ".hub-staging" / folder.name
        if staging.exists():
            shutil.rmtree(staging)
        staging.parent.mkdir(parents=True, exist_ok=True)
        (prepare or shutil.copytree)(folder, staging)
        future = self.api.upload_folder(repo_id=self.repo_id, folder_path=str(staging), path_in_repo=path_in_repo,
                                        commit_message=message, revision=self.revision, run_as_future=True)

        def done(f: Future) -> None:
            shutil.rmtree(staging, ignore_errors=True)
            if f.exception() is None:
                logger.info("pushed %s to %s (%s)", folder, self.repo_id, message)

        future.add_done_callback(done)
        self._futures.append(future)
        return future

    def wait(self) -> None:
        """Block until every queued upload is done; raises the first upload error."""
        for future in self._futures:
            future.result()

