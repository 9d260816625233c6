"""A self-contained HTML report of a run: settings, command, curves, metrics, confusion matrix, mistakes.
Images are embedded as data URIs, so the file opens in any browser with no server."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

from mnistlab._io import write_text
from mnistlab.runs import RunFolder

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse}td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}pre{background:#f6f8fa;padding:1em;overflow-x:auto}
img{max-width:100%}.metric{display:inline-block;margin-right:2em}.metric b{font-size:1.5em;display:block}"""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def write_report(run_path: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write `report.html` (or `out`) for a finished run, computing missing figures on the test set."""
    from mnistlab import plots
    from mnistlab.evaluation import evaluate_saved

    run = RunFolder.open(run_path)
    settings, metrics = run.settings(), run.metrics()
    curves = plots.training_curves({run.name: run.history()}, run.path / "curves.png")
    _, _, result = evaluate_saved(run.path)
    per_class = "".join(
        f"<tr><td>{html.escape(c['name'])}</td><td>{c['precision']:.4f}</td><td>{c['recall']:.4f}</td>"
        f"<td>{c['f1']:.4f}</td><td>{c['support']}</td></tr>" for c in result["per_class"])
    headline = [("test accuracy", f"{result['accuracy']:.4f}"), ("test loss", f"{result['loss']:.4f}"),
                ("best val accuracy", f"{metrics.get('best_val_accuracy') or float('nan'):.4f}"),
                ("epochs", str(metrics.get("epochs", "-"))),
                ("training time", f"{metrics.get('train_seconds', 0):.1f} s"),
                ("parameters", f"{metrics.get('parameters', 0):,}")]
    mistakes = result["figures"].get("mistakes")
    mistakes = f"<h2>Most confident mistakes</h2>{_img(Path(mistakes))}" if mistakes else ""
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>mnistlab report: {html.escape(run.name)}</title><style>{STYLE}</style></head><body>
<h1>mnistlab report: {html.escape(run.name)}</h1>
<p>{html.escape(settings['model'])} on {html.escape(settings['dataset'])}, state: {html.escape(run.state())}</p>
<div>{''.join(f'<span class="metric"><b>{v}</b>{k}</span>' for k, v in headline)}</div>
<h2>Command</h2><pre>{html.escape((run.path / RunFolder.COMMAND).read_text().strip())}</pre>
<h2>Training curves</h2>{_img(curves)}
<h2>Per-class metrics (test)</h2><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>
<th>support</th></tr>{per_class}</table>
<h2>Confusion matrix (test)</h2>{_img(Path(result['figures']['confusion']))}
{mistakes}
<h2>Final metrics</h2><pre>{html.escape(json.dumps(metrics, indent=2))}</pre>
<h2>Settings</h2><pre>{html.escape((run.path / RunFolder.SETTINGS).read_text())}</pre>
</body></html>
"""
    out = Path(out) if out else run.path / "report.html"
    write_text(out, body)
    return out
