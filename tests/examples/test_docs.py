"""The tutorial shows the examples as they are, and the docs link to pages that exist."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def test_tutorial_code_is_the_example_code():
    text = (DOCS / "tutorial.md").read_text()
    blocks = re.findall(r"<!-- file: (\S+) -->\n```python\n# [^\n]+\n(.*?)```", text, re.S)
    assert len(blocks) >= 7
    for path, body in blocks:
        assert (REPO / path).read_text() == body, f"tutorial copy of {path} is stale"


def test_my_docs_link_to_files_that_exist():
    for page in ("index.md", "concepts.md", "tutorial.md", "reference.md",
                 "migrating-from-faust.md"):
        text = (DOCS / page).read_text()
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            if target.startswith("http"):
                continue
            assert (DOCS / target).exists(), f"{page} links to missing {target}"


def test_readme_links_exist():
    text = (REPO / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (REPO / target).exists(), f"README links to missing {target}"


def test_index_links_every_docs_page():
    text = (DOCS / "index.md").read_text()
    linked = set(re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text))
    for page in DOCS.glob("*.md"):
        if page.name != "index.md":
            assert page.name in linked, f"docs/index.md does not link {page.name}"
    assert "decisions/" in linked


def test_readme_app_runs(tmp_path):
    import subprocess
    import sys
    text = (REPO / "README.md").read_text()
    code = re.search(r"```python\n(# count.py\n.*?)```", text, re.S).group(1)
    (tmp_path / "count.py").write_text(code)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("STREAMKIT_")}
    done = subprocess.run([sys.executable, "count.py", "tables"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "readme-count-vendor_rides-changelog" in done.stdout
