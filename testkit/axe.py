"""axe-core, the accessibility checker the page and the caption viewer are audited with in the browser tests.

It comes from npm (package.json devDependencies; `npm ci` installs it, as `make test` does), so a test that audits
fails without it rather than skipping the audit."""

from __future__ import annotations

from pathlib import Path

AXE_JS = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


def axe_script() -> str:
    """axe-core's script, to evaluate in a page (not a <script> tag: the page's CSP rightly refuses inline
    scripts). Fails when it is missing: the test command installs it."""
    assert AXE_JS.is_file(), f"axe-core not found at {AXE_JS}: run npm ci (make test does)"
    return AXE_JS.read_text(encoding="utf-8")


# axe's verdicts that fail a test: what blocks or seriously hinders a person (moderate and minor are reported by
# axe too, and left to review). An async function for page.evaluate or tests.support.webkit.run_async.
AXE_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ['violations'] });
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}"""
