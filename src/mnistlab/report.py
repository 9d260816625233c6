"""A self-contained HTML report of a run (settings, command, curves, metrics, confusion matrix, mistakes)
or of an ensemble (its members, their curves, the same figures), on the test set unless the run was not tested.
Images are embedded as data URIs, so the file opens in any browser with no server."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from mnistlab._html import png
from mnistlab._io import write_text
from mnistlab.runs import REPORT, EnsembleFolder, RunFolder, figure_path

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse}td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}pre{background:#f6f8fa;padding:1em;overflow-x:auto}
img{max-width:100%}.metric{display:inline-block;margin-right:2em}.metric b{font-size:1.5em;display:block}"""


SPLIT_NAMES = {"test": "test", "val": "validation", "train": "training"}


def write_report(path: str | os.PathLike, out: str | os.PathLike | None = None, model: Any = None,
                 split: str | None = None) -> Path:
    """Write `report.html` (or `out`) for a finished run or an ensemble folder, computing the figures of
    `split`: by default the test set, or the validation split for a run that was not tested (`--no-test`:
    it was not to look at the test set). Your own model needs `model`, as `mnistlab.load` does."""
    from mnistlab.evaluation import evaluate_saved

    path = Path(path)
    is_ensemble = EnsembleFolder(path).exists()
    run = None if is_ensemble else RunFolder.open(path)
    split = split or ("test" if is_ensemble or "test_accuracy" in run.metrics() else "val")
    _, dataset, result = evaluate_saved(path, split, model=model)
    name = SPLIT_NAMES[split]
    headline = [(f"{name} accuracy", f"{result['accuracy']:.4f}"), (f"{name} loss", f"{result['loss']:.4f}")]
    if is_ensemble:
        title, sections = path.name, _ensemble_sections(EnsembleFolder(path), result)
        headline.append(("members", str(len(result["members"]))))
        summary = f"an ensemble on {html.escape(dataset)}: the average of its members' class probabilities"
    else:
        title, sections = run.name, _run_sections(run)
        metrics = run.metrics()
        headline += [("best val accuracy", f"{metrics.get('best_val_accuracy') or float('nan'):.4f}"),
                     ("epochs", str(metrics.get("epochs", "-"))),
                     ("training time", f"{metrics.get('train_seconds', 0):.1f} s"),
                     ("parameters", f"{metrics.get('parameters', 0):,}")]
        summary = f"{html.escape(run.settings()['model'])} on {html.escape(dataset)}, state: {html.escape(run.state())}"
    per_class = "".join(
        f"<tr><td>{html.escape(c['name'])}</td><td>{c['precision']:.4f}</td><td>{c['recall']:.4f}</td>"
        f"<td>{c['f1']:.4f}</td><td>{c['support']}</td></tr>" for c in result["per_class"])
    mistakes = result["figures"].get("mistakes")
    mistakes = f"<h2>Most confident mistakes</h2>{png(Path(mistakes))}" if mistakes else ""
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>mnistlab report: {html.escape(title)}</title><style>{STYLE}</style></head><body>
<h1>mnistlab report: {html.escape(title)}</h1>
<p>{summary}</p>
<div>{''.join(f'<span class="metric"><b>{v}</b>{k}</span>' for k, v in headline)}</div>
{sections[0]}
<h2>Per-class metrics ({name})</h2><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>
<th>support</th></tr>{per_class}</table>
<h2>Confusion matrix ({name})</h2>{png(Path(result['figures']['confusion']))}
{mistakes}
{sections[1]}
</body></html>
"""
    out = Path(out) if out else path / REPORT
    write_text(out, body)
    return out


def _run_sections(run: RunFolder) -> tuple[str, str]:
    """(before the figures: command and curves; after them: final metrics and settings)."""
    from mnistlab import plots

    curves = figure_path(run.path, "curves")
    plots.training_curves({run.name: run.history()}, curves)
    return (f"<h2>Command</h2><pre>{html.escape(run.command())}</pre>\n"
            f"<h2>Training curves</h2>{png(curves)}",
            f"<h2>Final metrics</h2><pre>{html.escape(json.dumps(run.metrics(), indent=2))}</pre>\n"
            f"<h2>Settings</h2><pre>{html.escape(run.settings_text())}</pre>")


def _ensemble_sections(ensemble: EnsembleFolder, result: dict) -> tuple[str, str]:
    """(the members: where each came from and its own test accuracy, and the curves of those runs that
    are still there; the ensemble's description)."""
    from mnistlab import plots

    spec = ensemble.spec()
    rows = "".join(f"<tr><td>{i}</td><td>{html.escape(source)}</td><td>{html.escape(model)}</td><td>{acc:.4f}</td></tr>"
                   for i, (source, model, acc) in enumerate(zip(spec["sources"], spec["models"], result["members"])))
    runs = [RunFolder(s) for s in spec["sources"] if RunFolder(s).exists()]
    curves = ""
    if runs:
        figure = figure_path(ensemble.path, "curves")
        plots.training_curves({r.name: r.history() for r in runs}, figure)
        curves = f"<h2>Training curves of the members</h2>{png(figure)}"
    members = (f"<h2>Members</h2><table><tr><th>#</th><th>trained in</th><th>model</th><th>test accuracy</th></tr>"
               f"{rows}</table>\n{curves}")
    return members, f"<h2>Ensemble</h2><pre>{html.escape(json.dumps(spec, indent=2))}</pre>"
