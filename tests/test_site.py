"""The built site in a real browser: every page reachable from index.html, images load, report tables present, module
pages open with their title and typeset their math with the site's own KaTeX, loading nothing from outside the site."""
import re, shutil, urllib.parse
from pathlib import Path
import pytest
from chromium import CHROMIUM, Chromium
from layerwise.site import page_title, write_readme

ROOT = Path(__file__).resolve().parents[1]
NEEDS_CHROMIUM = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; CI installs it)")


@pytest.fixture(scope="module")
def site(reported) -> Path:
    "The site `layerwise report` built (nbconvert) over the fixture experiments"
    return reported[0]


def test_site_pages(site, toy_batch):
    root = site.parent
    assert site.name == "index.html" and root.name == "_site"
    assert (root/"reports"/"toy"/"index.html").is_file()
    assert {p.name for p in Path(root, "reports", "toy").glob("condition=*/seed_*/output.html")} == {"output.html"}
    assert len(list(Path(root, "reports", "toy").glob("condition=*/seed_*/output.html"))) == 6
    assert 'href="reports/toy/index.html"' in site.read_text()


def test_readme_from_index(tmp_path):
    readme = write_readme(dest=tmp_path/"README.md")
    assert readme.read_text().startswith("# layerwise")


@NEEDS_CHROMIUM
def test_site_in_browser(site):
    root = site.parent.resolve()
    as_path = lambda url: Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
    seen, queue, pages = set(), [site.resolve().as_uri()], {}
    with Chromium() as browser:
        while queue:
            url = queue.pop(0)
            if as_path(url) in seen: continue
            seen.add(as_path(url))
            f = pages[as_path(url)] = browser.facts(url)
            assert f["sidebar"], f"{url}: no navigation sidebar"
            broken = [i["src"] for i in f["images"] if i["width"] == 0]
            assert not broken, f"{url}: images that did not load: {broken}"
            for link in f["links"]:
                link = link.split("#")[0]
                if not link.startswith("file://"): continue
                assert as_path(link).is_file(), f"{url}: broken link {link}"
                if as_path(link).suffix == ".html" and root in as_path(link).parents: queue.append(link)
    report = pages[root/"reports"/"toy"/"index.html"]
    assert report["tables"] >= 5, "overview, condition, ANOVA, Tukey and runs tables"
    assert len(report["images"]) >= 2 and "One-way ANOVA" in report["text"] and "Tukey HSD" in report["text"]
    run = pages[root/"reports"/"toy"/"condition=a"/"seed_0"/"output.html"]  # executed notebooks are reachable
    assert len(run["images"]) == 2  # the notebook's inline plot and the figure it saved (appended by the site)
    assert len([p for p in pages if p.parent == root and p.name != "index.html"]) >= 8, "module docs are in the sidebar"
    modules = [p for p in pages if p.name in ("20_batch.html", "21_stats.html")]
    assert len(modules) == 2, "module docs are in the sidebar"


@pytest.fixture(scope="module")
def fisher(site) -> dict:
    "The browser's facts about the module page of nbs/10_fisher.ipynb (display math, inline math)"
    with Chromium() as browser: return browser.facts((site.parent/"10_fisher.html").resolve().as_uri())


@NEEDS_CHROMIUM
def test_module_page_offline_and_titled(site, fisher):
    root, page = site.parent.resolve(), (site.parent/"10_fisher.html").read_text()
    assert not re.findall(r'<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)="(?:https?:)?//[^"]*"', page), "nothing to load from a CDN"
    inside = lambda u: u.startswith("data:") or (u.startswith("file://") and root in Path(urllib.parse.unquote(urllib.parse.urlparse(u).path)).parents)
    assert fisher["requests"] and not [u for u in fisher["requests"] if not inside(u)], fisher["requests"]
    assert fisher["heading"].rstrip("¶").strip() == page_title(ROOT/"nbs"/"10_fisher.ipynb") == "fisher"
    assert "jp-MarkdownCell" in fisher["first_cell"], "the title cell comes before the imports"


@NEEDS_CHROMIUM
def test_module_page_math(site, fisher):
    if not (site.parent/"assets"/"katex"/"katex.min.js").is_file():
        pytest.skip("KaTeX was not fetched when the site was built (no npm or registry): math stays as source")
    assert fisher["katex"] >= 10 and fisher["katex_errors"] == 0, (fisher["katex"], fisher["katex_errors"])
    assert "$$" not in fisher["text"] and "\\frac" not in fisher["text"] and "$N$" not in fisher["text"], "math left as source"
    assert any(f.startswith("KaTeX") for f in fisher["loaded_fonts"]), fisher["loaded_fonts"]  # fonts/ found next to katex.min.css
