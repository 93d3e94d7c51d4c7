"""Pre-registered experiment rules (docs/rules/*.toml) applied to compare-recipes JSON."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from toolkit.cli import main
from toolkit.decision_rule import check, load_rule, markdown, passes

DOCS = Path(__file__).resolve().parents[2] / "docs"
RULES = sorted((DOCS / "rules").glob("*.toml"))
MOREBABBLE_SCREEN = DOCS / "morebabble_screen.json"


def comparison() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(MOREBABBLE_SCREEN.read_text())
    return document


def test_the_more_babble_screen_fails_rules_2_and_3_as_recorded() -> None:
    """docs/training.md, "More babble in training": the screen failed rules 2 and 3."""
    checks = check(load_rule(DOCS / "rules" / "morebabble_screen.toml"), comparison())
    assert not passes(checks)
    assert {item.rule for item in checks if not item.holds} == {"2", "3"}
    babble = next(item for item in checks if item.figure.startswith("EmoDB 10 dB babble"))
    assert babble.holds and babble.difference_points == pytest.approx(3.4044, abs=1e-4)
    ravdess = next(item for item in checks if item.figure == "RAVDESS UA, all classes")
    assert ravdess.difference_points == pytest.approx(-1.484, abs=1e-3)  # a fraction, in points
    assert "verdict: fails (rules 2, 3)" in markdown(checks)


@pytest.mark.parametrize(
    ("experiment", "failed_rules"),
    [
        ("swa_screen", {"1", "4"}),
        ("tune2_screen", {"1", "4"}),
        ("consistency_screen", {"1", "3"}),
        ("views10_prescreen", {"1"}),
        ("balanced_prescreen", set()),
        ("balanced_screen", {"3"}),
    ],
)
def test_each_recorded_screen_reaches_the_verdict_docs_training_md_states(
    experiment: str, failed_rules: set[str]
) -> None:
    """docs/training.md, "Averaged weights" and "Fine-tuning both kept layers": rules 1 and 4
    fail; "Consistency with the clean view": rules 1 and 3; "More augmented views": its one;
    the pre-screen of "Class-balanced losses with the Whisper recipe" passes."""
    document = json.loads((DOCS / f"{experiment}.json").read_text())
    checks = check(load_rule(DOCS / "rules" / f"{experiment}.toml"), document)
    assert {item.rule for item in checks if not item.holds} == failed_rules


def test_a_comparison_that_meets_every_minimum_passes() -> None:
    document = comparison()
    for row in document["rows"]:
        row["difference"] = abs(row["difference"]) + 0.03
    checks = check(load_rule(DOCS / "rules" / "morebabble_screen.toml"), document)
    assert passes(checks)
    assert markdown(checks).endswith("verdict: passes\n")


@pytest.mark.parametrize("rule_path", RULES, ids=[p.stem for p in RULES])
def test_every_rule_names_figures_that_compare_recipes_writes(rule_path: Path) -> None:
    rule = load_rule(rule_path)
    figures = {row["figure"] for row in comparison()["rows"]}
    named = {name for condition in rule.conditions for name in condition.figures}
    assert named <= figures
    assert rule.baseline == "whisper_l2_noisy_servecrop_q90"


def test_recipes_in_the_other_order_are_refused() -> None:
    """Differences are the second recipe minus the first: reversed, every sign would flip."""
    document = comparison()
    document["recipes"] = dict(reversed(list(document["recipes"].items())))
    with pytest.raises(ValueError, match="in that order"):
        check(load_rule(DOCS / "rules" / "morebabble_screen.toml"), document)


def test_a_figure_the_comparison_lacks_is_an_error() -> None:
    document = copy.deepcopy(comparison())
    document["rows"] = [r for r in document["rows"] if "10 dB" not in r["figure"]]
    with pytest.raises(ValueError, match="no figure 'EmoDB 10 dB babble"):
        check(load_rule(DOCS / "rules" / "morebabble_screen.toml"), document)


def test_a_rule_without_conditions_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text('baseline = "a"\ncandidate = "b"\nconditions = []\n')
    with pytest.raises(ValueError, match="needs conditions"):
        load_rule(path)
    path.write_text('baseline = "a"\n[[conditions]]\nrule = "1"\nfigures = ["x"]\n')
    with pytest.raises(ValueError, match="lacks the key 'min_difference_points'"):
        load_rule(path)
    path.write_text('baseline = "a"\ncandidate = "b"\n[[conditions]]\nrule = "1"\nfigures = "x"\n')
    with pytest.raises(ValueError, match="must be a list"):
        load_rule(path)


def test_the_command_exits_1_when_the_rule_fails(capsys: pytest.CaptureFixture[str]) -> None:
    rule = DOCS / "rules" / "morebabble_screen.toml"
    with pytest.raises(SystemExit) as exit_info:
        main(["check-rule", "--rule", str(rule), "--comparison", str(MOREBABBLE_SCREEN)])
    assert exit_info.value.code == 1
    assert "verdict: fails" in capsys.readouterr().out


def test_the_command_exits_2_on_inputs_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = DOCS / "rules" / "morebabble_screen.toml"
    reversed_order = comparison()
    reversed_order["recipes"] = dict(reversed(list(reversed_order["recipes"].items())))
    reversed_path = tmp_path / "reversed.json"
    reversed_path.write_text(json.dumps(reversed_order))
    for comparison_path in (tmp_path / "missing.json", reversed_path):
        with pytest.raises(SystemExit) as exit_info:
            main(["check-rule", "--rule", str(rule), "--comparison", str(comparison_path)])
        assert exit_info.value.code == 2
    errors = capsys.readouterr().err
    assert "missing.json" in errors and "in that order" in errors
