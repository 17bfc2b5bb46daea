"""The corpus builder as datatrove jobs (`xlmr_hf.corpus.build_corpus_datatrove`): byte-identical corpus files and equal
manifest counts for any number of tasks and workers and equal to the one-process builder (`build_corpus`), reruns
that skip finished tasks (datatrove's completion markers), the metadata side file, the Slurm job scripts (dry run and
a submission to a stand-in ``sbatch``), Ray on a local instance when Ray is installed, and one-line errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from test_build_corpus import make_inputs

from xlmr_hf.corpus import (
    CorpusBuildConfig,
    CorpusBuildError,
    ExecutorSettings,
    build_corpus,
    build_corpus_datatrove,
)
from xlmr_hf.corpus import pipeline as steps

CONFIG = {"jsonl_text_field": "content", "min_document_chars": 60}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("inputs")
    make_inputs(directory)
    return directory


@pytest.fixture(scope="module")
def reference(inputs: Path, tmp_path_factory: pytest.TempPathFactory):
    """Today's one-process builder on the same inputs."""
    out = tmp_path_factory.mktemp("reference")
    return out, build_corpus([inputs], out, CorpusBuildConfig(**CONFIG), progress=False)


def corpus_files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*.txt.xz")
            if ".work" not in p.parts[len(directory.parts)]}


def counts(report) -> tuple:
    """What a manifest says about the data (not timings, paths or the environment)."""
    inputs = [(i["status"], i["documents"], i["paragraphs"], i["documents_out"], i["paragraphs_out"], i["read"])
              for i in report.inputs]
    return [vars(s) for s in report.stages], report.languages, report.outputs, inputs, report.totals()


@pytest.mark.parametrize(("tasks", "workers", "dedup_tasks"), [(1, 1, 1), (3, 2, 1), (4, 1, 3)])
def test_same_corpus_at_any_scale_and_as_the_one_process_builder(inputs: Path, reference, tmp_path: Path,
                                                                 tasks: int, workers: int, dedup_tasks: int) -> None:
    ref_dir, ref_report = reference
    report = build_corpus_datatrove([inputs], tmp_path / "out", CorpusBuildConfig(**CONFIG),
                                    ExecutorSettings(tasks=tasks, workers=workers, dedup_tasks=dedup_tasks))
    files = corpus_files(tmp_path / "out")
    assert sorted(files) == sorted(corpus_files(ref_dir)) and len(files) >= 10
    assert files == corpus_files(ref_dir)  # byte-identical
    assert counts(report) == counts(ref_report)
    dedup = report.stages[2]
    assert dedup.name == "dedup" and dedup.paragraphs_removed > 30 and dedup.documents_removed == 3
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["environment"]["executor"] == "local" and manifest["totals"] == ref_report.totals()


def test_rerun_skips_finished_tasks_and_redoes_only_the_missing_one(inputs: Path, reference, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    settings = ExecutorSettings(tasks=2, workers=1)  # in-process tasks: the counter below sees every read
    first = build_corpus_datatrove([inputs], out, CorpusBuildConfig(**CONFIG), settings)
    read: list[int] = []
    original = steps.CorpusReader._read

    def counting(self, spec):
        read.append(spec["index"])
        yield from original(self, spec)

    monkeypatch.setattr(steps.CorpusReader, "_read", counting)
    again = build_corpus_datatrove([inputs], out, CorpusBuildConfig(**CONFIG), settings)
    assert read == [] and counts(again) == counts(first)  # every task of every job was complete
    work = next((out / ".work-datatrove").iterdir())
    (work / "logs" / "filter" / "completions" / "00001").unlink()  # as if task 1 of the filter job had died
    (work / "logs" / "merge" / "completions" / "00000").unlink()
    (out / "en.txt.xz").unlink()
    third = build_corpus_datatrove([inputs], out, CorpusBuildConfig(**CONFIG), settings)
    assert read == [1, 3]  # task 1 of 2 reads inputs 1 and 3, nothing else ran again
    assert counts(third) == counts(first) and corpus_files(out) == corpus_files(reference[0])
    changed = build_corpus_datatrove([inputs], out, CorpusBuildConfig(**{**CONFIG, "min_document_chars": 0}), settings)
    assert sorted(read[2:]) == [0, 0, 1, 1, 2, 2, 3, 3]  # other settings: a new work key, everything read twice
    assert [p.name for p in (out / ".work-datatrove").iterdir()] != [work.name]  # the stale work is gone
    assert changed.stages[3].documents_removed == 0


def test_metadata_side_file(inputs: Path, reference, tmp_path: Path) -> None:
    report = build_corpus_datatrove([inputs], tmp_path / "out", CorpusBuildConfig(**CONFIG),
                                    ExecutorSettings(tasks=2, metadata=True))
    rows = [json.loads(line) for line in (tmp_path / "out" / "metadata.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) == sum(o["documents"] for o in report.outputs)
    assert {row["language"] for row in rows} == set(report.languages) - {
        lang for lang, c in report.languages.items() if not c["documents"]}
    assert all(0.5 <= row["lid_score"] <= 1 and row["perplexity"] is None for row in rows)
    wet = [row for row in rows if row["url"]]
    assert wet and all(row["url"].startswith("http://site") for row in wet)  # the WET input's target URIs
    assert corpus_files(tmp_path / "out") == corpus_files(reference[0])  # the side file changes nothing else


def _fake_sbatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``sbatch`` on PATH that records its arguments and script and answers like Slurm."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "sbatch-calls"
    bin_dir.mkdir()
    calls.mkdir()
    script = bin_dir / "sbatch"
    script.write_text(f"#!/bin/sh\nn=$(ls {calls} | wc -l)\necho \"$@\" > {calls}/$n.args\n"
                      f"for last; do :; done\ncp \"$last\" {calls}/$n.script\necho \"Submitted batch job $((100 + n))\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def test_slurm_job_scripts_dry_run_and_submission(inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from xlmr_hf.cli import main

    calls = _fake_sbatch(tmp_path, monkeypatch)
    command = ["build-corpus", "--input", str(inputs), "--output", str(tmp_path / "dry"), "--jsonl-text-field",
               "content", "--executor", "slurm", "--slurm-partition", "cpu", "--tasks", "3", "--dry-run", "true",
               "--slurm-sbatch-args", "{account: lang}"]
    assert main(command) == 0
    assert "written (dry run, nothing submitted)" in capsys.readouterr().out and not list(calls.iterdir())
    work = next((tmp_path / "dry" / ".work-datatrove").iterdir())
    scripts = {job: (work / "logs" / job / "launch_script.slurm").read_text() for job in
               ("signatures", "duplicates", "filter", "merge")}
    assert "#SBATCH --array=0-2%3" in scripts["signatures"] and "#SBATCH --array=0-0%1" in scripts["merge"]
    assert all("#SBATCH --partition=cpu" in s and "#SBATCH --account=lang" in s for s in scripts.values())
    assert not (tmp_path / "dry" / "manifest.json").exists()

    report = build_corpus_datatrove([inputs], tmp_path / "sub", CorpusBuildConfig(**CONFIG),
                                    ExecutorSettings(executor="slurm", slurm_partition="cpu", tasks=2))
    assert report is None
    submitted = sorted(calls.glob("*.args"), key=lambda p: int(p.stem))
    args = [p.read_text().split() for p in submitted]
    scripts = [(calls / f"{p.stem}.script").read_text() for p in submitted]
    jobs = [next(line for line in text.splitlines() if "--job-name" in line).split("=")[1]
            for text in scripts if "merge_stats" not in text]  # datatrove adds a stats-merging job per job
    assert jobs == [f"xlmr-hf-corpus-{j}" for j in ("signatures", "duplicates", "filter", "merge")]
    chained = [a for a in args if any(x.startswith("--dependency=afterok:") for x in a)]
    assert len(chained) >= 3  # duplicates after signatures, filter after duplicates, merge after filter


def test_ray_on_a_local_instance(inputs: Path, reference, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'datatrove[ray]')")
    report = build_corpus_datatrove([inputs], tmp_path / "out", CorpusBuildConfig(**CONFIG),
                                    ExecutorSettings(executor="ray", tasks=2, workers=2))
    assert corpus_files(tmp_path / "out") == corpus_files(reference[0])
    assert counts(report) == counts(reference[1])


@pytest.mark.parametrize(("fields", "message"), [
    ({"executor": "spark"}, "executor='spark' is invalid; allowed: local, slurm, ray"),
    ({"tasks": 0}, "tasks=0 is invalid; allowed: an integer >= 1"),
    ({"workers": 0}, "workers=0 is invalid; allowed: an integer >= 1, or -1"),
    ({"executor": "slurm"}, "slurm_partition=None is invalid with executor='slurm'"),
    ({"dry_run": True}, "dry_run=True is only for executor='slurm'"),
])
def test_bad_executor_settings_are_one_line(fields: dict, message: str) -> None:
    with pytest.raises(CorpusBuildError, match=message.replace("(", r"\(")):
        ExecutorSettings(**fields)


def test_cli_bad_executor_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from xlmr_hf.cli import main

    (tmp_path / "raw.txt").write_text("hello\n", encoding="utf-8")
    assert main(["build-corpus", "--input", str(tmp_path / "raw.txt"), "--output", str(tmp_path / "o"),
                 "--executor", "spark"]) == 2
    err = capsys.readouterr().err
    assert "executor='spark' is invalid; allowed: local, slurm, ray" in err and "Traceback" not in err


def test_an_input_failing_part_way_is_skipped_and_reported(inputs: Path, tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    for path in inputs.iterdir():
        (source / path.name).write_bytes(path.read_bytes())
    data = (source / "d.txt.xz").read_bytes()
    (source / "d.txt.xz").write_bytes(data[: len(data) // 2])  # truncated: readable at first, then an xz error
    config = {**CONFIG, "on_error": "skip"}
    old = build_corpus([source], tmp_path / "old", CorpusBuildConfig(**config), progress=False)
    new = build_corpus_datatrove([source], tmp_path / "new", CorpusBuildConfig(**config), ExecutorSettings(tasks=2))
    assert [i["status"] for i in new.inputs] == [i["status"] for i in old.inputs] == ["done"] * 3 + ["error"]
    assert "d.txt.xz" in new.inputs[3]["error"] and new.inputs[3]["error"] == old.inputs[3]["error"]
    assert corpus_files(tmp_path / "new") == corpus_files(tmp_path / "old")  # nothing of the failed input is written
    assert new.outputs == old.outputs and new.totals()["inputs_failed"] == 1
    with pytest.raises(Exception, match="d.txt.xz"):  # on_error="raise": the build stops, naming the file
        build_corpus_datatrove([source], tmp_path / "raise", CorpusBuildConfig(**CONFIG), ExecutorSettings())


def test_cli_unreadable_input_is_one_line_without_traceback(inputs: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from xlmr_hf.cli import main

    data = (inputs / "d.txt.xz").read_bytes()
    (tmp_path / "d.txt.xz").write_bytes(data[: len(data) // 2])
    assert main(["build-corpus", "--input", str(tmp_path / "d.txt.xz"), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("xlmr-hf build-corpus: error: input ") and "d.txt.xz" in err
    assert "Traceback" not in err
