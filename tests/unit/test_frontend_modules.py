"""The pages' scripts as files (docs/frontend.md): every script tag of ours is an ES module with a
src (no inline script, no classic script but the vendored Plotly), and every relative import in
frontend/static/js names a module that exists. The browser side (each page loads its modules
without a console error) is tests/e2e/test_modules.py."""

import re
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
JS = FRONTEND / "static" / "js"
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.I)
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^"';]*?\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']""", re.M)
TEMPLATES = sorted((FRONTEND / "templates").rglob("*.html"))
MODULES = sorted(JS.rglob("*.js"))


def script_tags(path: Path) -> list[str]:
    return [match.group(1) for match in SCRIPT_TAG.finditer(path.read_text())]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: str(path.relative_to(FRONTEND)))
def test_a_templates_scripts_are_modules_with_a_source(template: Path) -> None:
    for attrs in script_tags(template):
        if 'type="application/json"' in attrs:  # a json_script block written out by hand: data, never run
            continue
        assert "src=" in attrs, f"inline script in {template.name}: <script{attrs}>"
        if "vendor/" in attrs:
            continue
        assert 'type="module"' in attrs, f"classic script in {template.name}: <script{attrs}>"


def test_the_pages_load_our_scripts_only_as_modules() -> None:
    tags = [
        attrs for template in TEMPLATES for attrs in script_tags(template) if "js/" in attrs and "vendor/" not in attrs
    ]
    assert len(tags) >= 8  # run, classroom (x3 through one include), builder, experiments, calibration, upload
    assert all('type="module"' in attrs for attrs in tags)


@pytest.mark.parametrize("module", MODULES, ids=lambda path: str(path.relative_to(JS)))
def test_every_relative_import_names_a_module_that_exists(module: Path) -> None:
    for match in IMPORT.finditer(module.read_text()):
        target = match.group(1) or match.group(2)
        assert target.startswith("./") or target.startswith("../"), (
            f"{module.name}: {target} (bare specifiers need a build step)"
        )
        assert (module.parent / target).resolve().is_file(), f"{module.name} imports {target}, which is not there"
