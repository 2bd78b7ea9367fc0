"""The README shows real output: its quickstart summary is what the code prints now."""

import re
from pathlib import Path

import pytest

import mlmwrap
from mlmwrap.cli import DEMO_EQUATIONS

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_quickstart_summary_is_the_real_output(hsb):
    blocks = re.findall(r"```\n(Multilevel model of .*?)```", README, flags=re.S)
    assert len(blocks) == 1
    res = mlmwrap.fit(DEMO_EQUATIONS, hsb, cluster="school")
    assert blocks[0].strip() == res.summary().strip()


def test_readme_has_exactly_two_setup_commands():
    setup = README.split("## Set up")[1].split("## ")[0]
    commands = re.findall(r"```bash\n(.*?)\n```", setup, flags=re.S)
    assert len(commands) == 2
    assert commands[0].endswith("mlmwrap demo") and commands[1].endswith("pytest")


@pytest.fixture(scope="module")
def demo(hsb):
    return mlmwrap.fit(DEMO_EQUATIONS, hsb, cluster="school")


def test_build_up_block_is_the_real_output(hsb):
    section = README.split("## Comparing models")[1]
    code = section.split("```python\n")[1].split("```")[0]
    shown = section.split("```text\n")[1].split("```")[0]
    namespace = {"mlmwrap": mlmwrap, "hsb": hsb}
    exec(code.replace("print(", "output = str(", 1), namespace)
    assert shown.strip() == namespace["output"].strip()


def test_reporting_blocks_are_the_real_output(demo):
    section = README.split("## Reporting")[1]
    shown = section.split("```text\n")[1].split("```")[0]
    assert shown.strip() == demo.equations().strip()
    assert demo.fixed_table() in section and demo.variance_table() in section


def test_centering_block_is_the_real_output(hsb):
    section = README.split("## Centering")[1].split("## ")[0]
    icc = mlmwrap.icc(hsb, ["mathach", "ses", "minority"], cluster="school")
    shown = icc[
        ["n_clusters", "mean_cluster_size", "icc", "icc1_anova", "icc2_anova", "design_effect"]
    ]
    assert _lines(shown.round(3).to_string()) in _lines(section)
    wb = mlmwrap.fit(
        "mathach = b0 + b1*cwc(ses) + e\nb0 = g00 + g01*cmean(ses) + u0\nb1 = g10",
        hsb,
        cluster="school",
    )
    effects = wb.effects()[["estimate", "se", "ci_lower", "ci_upper", "source"]].round(3)
    assert _lines(effects.to_string()) in _lines(section)


def _lines(text: str) -> str:
    """Text with trailing blanks removed from each line (the README has none)."""
    return "\n".join(line.rstrip() for line in text.splitlines())


def test_formulas_section_is_the_real_output(demo):
    """The doctest-style block of 'The mixed model as formulas' runs as shown."""
    import doctest

    section = README.split("## The mixed model as formulas")[1].split("\n## ")[0]
    block = section.split("```python\n")[1].split("```")[0]
    test = doctest.DocTestParser().get_doctest(block, {"res": demo}, "README", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries == 8


def test_side_by_side_block_is_the_real_output(hsb):
    section = README.split("## Comparing models")[1].split("## Reporting")[0]
    steps_code = section.split("```python\n")[1].split("```")[0]
    code = section.split("```python\n")[2].split("```")[0]
    shown = section.split("```text\n")[2].split("```")[0]
    namespace = {"mlmwrap": mlmwrap, "hsb": hsb}
    exec(steps_code.split("print(")[0], namespace)
    exec(code.replace("print(", "output = str(", 1), namespace)
    assert _lines(shown.strip()) == _lines(namespace["output"].strip())
    assert "+meanses, sector" in shown and "J (clusters)" in shown


def test_language_section_is_the_real_output(hsb):
    """The level-1 categorical example of 'The equation language' runs as shown."""
    import doctest

    section = README.split("## The equation language")[1].split("\n## ")[0]
    block = section.split("```python\n")[1].split("```")[0]
    globs = {"mlmwrap": mlmwrap, "hsb": hsb}
    test = doctest.DocTestParser().get_doctest(block, globs, "README", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries == 4
