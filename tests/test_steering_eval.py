"""benchmarks/steering_eval.py: its held-out prompts stay disjoint from the prompts that build
the directions and the training data, and the script runs end to end with its cross-talk
matrices (a short run on the real default model)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emochat.engine.framings import load_prompt_set
from emochat.training.recipe import load_prompts

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT = json.loads((ROOT / "benchmarks/data/steering_heldout.json").read_text())


def test_held_out_prompts_are_disjoint_from_building_and_training_prompts() -> None:
    held = {prompt for kind in HELD_OUT["prompts"].values() for prompt in kind}
    assert len(held) == 36
    assert not held & set(load_prompt_set()["questions"])
    assert not held & set(load_prompts())
    assert set(HELD_OUT["answers"]) <= held


@pytest.mark.slow
def test_the_evaluation_runs_and_prints_both_cross_talk_matrices(model_cache, tmp_path) -> None:
    saved = tmp_path / "replies.json"
    result = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks/steering_eval.py"), "--backend", "llama.cpp",
            "--per-kind", "1", "--tokens", "6", "--save", str(saved),
        ],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    for loop in ("off", "on"):
        table = out.split(f"\nloop: {loop}\n")[1].splitlines()
        assert table[0].split()[-1] == "gap"
        for row in table[1:9]:  # eight axes: two judges, on-topic, distinct-1, answers, gap
            assert len(re.findall(r"-?\d+(?:\.\d+)?%?", row)) == 6, row
        for judge in ("detector", "anchor"):
            block = out.split(f"Cross-talk ({judge}, loop {loop})")[1]
            rows = [line for line in block.splitlines()[2:10]]
            assert len(rows) == 8
            for row in rows:
                numbers = re.findall(r"-?\d+\.\d+", row)
                assert len(numbers) == 9  # eight readings and the off/diagonal ratio
            assert f"worst off-diagonal / diagonal ({judge}, loop {loop})" in out
    side_by_side = out.split("Success by loop")[1].splitlines()[2:10]
    assert all(row.count("%") == 4 for row in side_by_side)  # two judges, loop off and on
    replies = json.loads(saved.read_text())
    assert len(replies["prompts"]) == 6 and len(replies["neutral"]) == 6
    for loop in ("off", "on"):
        assert set(replies[loop]) >= {"joy", "sadness", "empathy"}
        assert all(len(texts) == 6 for texts in replies[loop].values())
