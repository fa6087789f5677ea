"""engine/: pure Python. Every module imports with nothing but the standard library and pydantic
(the events' data models, engine/events.py) on the path."""

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ENGINE = REPO / "deliberation" / "engine"

# Run in a fresh interpreter: -I ignores PYTHONPATH, the working directory and user site-packages,
# -S skips site, so the virtualenv's packages (Django, Celery, Channels, pydantic, ...) are not
# importable at all. The package `deliberation` is stubbed so that its __init__ (which loads the
# Celery app for the Django project) does not run: the engine itself is what is under test.
# pydantic and the packages it needs come from a folder that holds nothing else (argv[2]).
IMPORT_EVERY_ENGINE_MODULE = """
import importlib, json, pkgutil, sys, types

repo = sys.argv[1]
sys.path[:0] = [repo, sys.argv[2]]
parent = types.ModuleType("deliberation")
parent.__path__ = [repo + "/deliberation"]
sys.modules["deliberation"] = parent

import deliberation.engine as engine

names = ["deliberation.engine"] + [
    info.name for info in pkgutil.walk_packages(engine.__path__, "deliberation.engine.")
]
for name in names:
    importlib.import_module(name)
outside = sorted(
    {name.split(".")[0] for name in sys.modules if not name.startswith("_sysconfigdata_")}  # the stdlib's, per platform
    - set(sys.stdlib_module_names) - {"deliberation", "__main__"}
)
print(json.dumps({"modules": names, "outside_stdlib": outside}))
"""

# What the engine may import beyond the standard library: pydantic, for plain data models.
PYDANTIC = ("pydantic", "pydantic_core", "typing_extensions", "annotated_types", "typing_inspection")

FRAMEWORK_IMPORT = re.compile(
    r"^\s*(?:import|from)\s+(?:django|celery|channels|rest_framework|httpx|requests|litellm|openai)\b",
    re.MULTILINE,
)


def pydantic_only(folder: Path) -> Path:
    """A folder on the path that offers pydantic and what it imports, and nothing else."""
    for name in PYDANTIC:
        module = importlib.import_module(name)
        source = Path(module.__file__)
        source = source.parent if source.name == "__init__.py" else source
        (folder / source.name).symlink_to(source)
    return folder


def test_every_engine_module_imports_with_only_the_standard_library_and_pydantic(tmp_path):
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", IMPORT_EVERY_ENGINE_MODULE, str(REPO), str(pydantic_only(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["outside_stdlib"]) <= set(PYDANTIC)
    on_disk = {
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for path in ENGINE.rglob("*.py")
    }
    assert set(report["modules"]) == on_disk
    assert "deliberation.engine.strategies.one_shot" in report["modules"]


def test_the_isolated_interpreter_cannot_import_django():
    """The check above means something only if Django is out of reach there."""
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", "import django"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "No module named 'django'" in result.stderr


def test_no_engine_file_imports_a_framework_or_http_client():
    offenders = [
        f"{path.relative_to(REPO)}: {match.group(0).strip()}"
        for path in sorted(ENGINE.rglob("*.py"))
        for match in FRAMEWORK_IMPORT.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
