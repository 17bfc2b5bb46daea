"""`push_to_hub`: checkpoints are uploaded in the background with a model card; tested against a fake `HfApi`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

import pytest
from test_pretrain import overrides, setup  # noqa: F401 - setup: the module-scoped corpus/tokenizer fixture

from xlmr_hf import hub
from xlmr_hf.training import RecipeError, load_recipe, pretrain


class FakeApi:
    instances: ClassVar[list[FakeApi]] = []

    def __init__(self, token: str | None = None) -> None:
        self.repos: list[tuple[str, bool]] = []
        self.uploads: list[dict] = []
        FakeApi.instances.append(self)

    def create_repo(self, repo_id: str, private: bool = True, exist_ok: bool = False) -> None:
        self.repos.append((repo_id, private))

    def upload_folder(self, *, repo_id: str, folder_path: str, commit_message: str, ignore_patterns: list[str]) -> None:
        folder = Path(folder_path)
        self.uploads.append({"repo_id": repo_id, "message": commit_message, "thread": threading.current_thread().name,
                             "files": sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()),
                             "card": (folder / "README.md").read_text()})


def test_checkpoints_are_pushed_in_the_background_with_a_model_card(setup: dict[str, str], tmp_path: Path,  # noqa: F811
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "HfApi", FakeApi)
    FakeApi.instances.clear()
    pretrain(load_recipe(None, overrides(setup, tmp_path / "run", max_steps=20, save_total_limit=1,
                                         push_to_hub=True, hub_model_id="me/tiny-xlmr", eval_corpus=setup["corpus"],
                                         eval_documents=3)))
    (api,) = FakeApi.instances
    assert api.repos == [("me/tiny-xlmr", True)]
    assert [u["message"] for u in api.uploads] == ["Training step 10", "Training step 20"]
    for upload in api.uploads:
        assert upload["thread"].startswith("hub-push")  # not the training thread
        assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "trainer_state.json"} <= set(
            upload["files"])
        assert not any(f.startswith("accelerate/") for f in upload["files"])
    card = api.uploads[-1]["card"]
    assert "language:\n- de\n- en\n- fr\n- sw\n" in card and "step 20 of 20" in card and "alpha = 0.3" in card
    assert "| en |" in card and "## Held-out masked-LM loss and accuracy" in card
    assert not (tmp_path / "run" / ".hub-staging").exists() or not any((tmp_path / "run" / ".hub-staging").iterdir())


def test_push_to_hub_needs_a_repository_id() -> None:
    with pytest.raises(RecipeError, match=r"push_to_hub needs hub_model_id='user/name', got None"):
        load_recipe(None, ["--push_to_hub", "true"])
